/**
 * Checkpoints and the safetensors codec: byte-level format (checked by an independent parser),
 * round trips of weights / optimizer state / run state, bit-identical Adam resume, corruption and
 * mismatch errors that leave the targets untouched, and atomic writes surviving a SIGKILL.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { CausalLM } from '../lib/models/index.ts';
import { bf16ToFloat, floatToBf16, floatToHalf, halfToFloat, readSafetensors, openSafetensors, toFloat32, writeSafetensors } from '../lib/io/safetensors.ts';
import type { SafetensorsTensor } from '../lib/io/safetensors.ts';
import { CheckpointError, decodeState, encodeState, loadCheckpoint, readCheckpoint, saveCheckpoint } from '../lib/io/checkpoint.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

before(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

const tmp = (): string => mkdtempSync(join(tmpdir(), 'rxrl-ckpt-'));

/** Bytes of every variable, for bit-exact comparisons. */
function snapshot(lm: CausalLM): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const n of lm.params.names()) {
    const d = lm.params.get(n).dataSync() as Float32Array;
    out[n] = Buffer.from(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
  }
  return out;
}

const tinyLlama = { arch: 'llama', vocabSize: 50, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 24 } as const;

/** A minimal safetensors parser written from the spec, sharing no code with lib/io. */
function parseByHand(path: string): { header: Record<string, any>; data: Buffer; headerLen: number } {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  return { header, data: b.subarray(8 + n), headerLen: n };
}

function lossStep(lm: CausalLM, opt: tf.Optimizer, x: tf.Tensor2D, y: tf.Tensor2D): void {
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.neg(tf.mean(lm.tokenLogProbs(x, y))) as tf.Scalar, lm.variables);
    opt.applyGradients(grads);
  });
}

// ---------------------------------------------------------------------------------------------
// safetensors
// ---------------------------------------------------------------------------------------------

test('safetensors: every dtype round-trips, and an independent parser reads the file', async () => {
  const dir = tmp();
  const p = join(dir, 'all.safetensors');
  const tensors: Record<string, SafetensorsTensor> = {
    f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, NaN, -0, 1e-40]) },
    f64: { dtype: 'F64', shape: [3], data: Float64Array.from([Math.PI, -1e300, 5e-324]) },
    i32: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([1, -1, 2 ** 31 - 1, -(2 ** 31)]) },
    i64: { dtype: 'I64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 42n]) },
    f16: { dtype: 'F16', shape: [1], data: Uint16Array.from([0x3c00]) },
    bf16: { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xc049]) },
    u8: { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 2, 254, 255]) },
    scalar: { dtype: 'F32', shape: [], data: Float32Array.from([7]) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  };
  await writeSafetensors(p, tensors, { hello: 'world', 'json.thing': '{"a":1}' });

  const back = await readSafetensors(p);
  assert.deepEqual(back.metadata, { hello: 'world', 'json.thing': '{"a":1}' });
  for (const [name, t] of Object.entries(tensors)) {
    const r = back.tensors[name]!;
    assert.equal(r.dtype, t.dtype, name);
    assert.deepEqual([...r.shape], [...t.shape], name);
    assert.equal(r.data.constructor, t.data.constructor, name);
    assert.deepEqual(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), name);
  }

  // The hand parser: length prefix, JSON header, 8-byte aligned data, offsets covering the data.
  const { header, data, headerLen } = parseByHand(p);
  assert.equal((8 + headerLen) % 8, 0);
  assert.deepEqual(header['__metadata__'], { hello: 'world', 'json.thing': '{"a":1}' });
  let covered = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const e = header[name];
    assert.equal(e.dtype, t.dtype);
    assert.deepEqual(e.shape, [...t.shape]);
    const [b, en] = e.data_offsets as [number, number];
    assert.deepEqual(data.subarray(b, en), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength), name);
    covered += en - b;
  }
  assert.equal(covered, data.length);

  // The lazy reader agrees.
  const r = await openSafetensors(p);
  assert.deepEqual([...r.names].sort(), Object.keys(tensors).sort());
  assert.deepEqual(toFloat32(await r.read('bf16')), Float32Array.from([1, -3.140625]));
  await r.close();
});

test('safetensors: F16 / BF16 decoding and encoding', () => {
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(halfToFloat(0xc000), -2);
  assert.equal(halfToFloat(0x7bff), 65504);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(halfToFloat(0x0400), 2 ** -14);
  assert.equal(halfToFloat(0x7c00), Infinity);
  assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  assert.ok(Object.is(halfToFloat(0x8000), -0));
  assert.equal(bf16ToFloat(0x3f80), 1);
  assert.equal(bf16ToFloat(0x4049), 3.140625);
  // Every half round-trips through float → half.
  for (let h = 0; h < 0x10000; h++) {
    const x = halfToFloat(h);
    if (Number.isNaN(x)) continue;
    assert.equal(floatToHalf(x), h, `half 0x${h.toString(16)}`);
  }
  // Rounding to nearest even.
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(floatToHalf(65520), 0x7c00); // overflow
  assert.equal(floatToBf16(1), 0x3f80);
  assert.equal(floatToBf16(Math.PI), 0x4049);
  assert.equal(floatToBf16(1 + 2 ** -8), 0x3f80); // tie → even
  assert.equal(floatToBf16(1 + 3 * 2 ** -8), 0x3f82);
  const vals = toFloat32({ dtype: 'F16', data: Uint16Array.from([0x3c00, 0xbc00, 0x3555]) });
  assert.deepEqual([...vals], [1, -1, halfToFloat(0x3555)]);
});

test('safetensors: writer refuses mismatched data', async () => {
  const p = join(tmp(), 'bad.safetensors');
  await assert.rejects(writeSafetensors(p, { w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /shape \[3\] has 3 elements, data has 2/);
  await assert.rejects(writeSafetensors(p, { w: { dtype: 'BF16', shape: [2], data: new Float32Array(2) } as never }), /BF16 needs a Uint16Array/);
});

// ---------------------------------------------------------------------------------------------
// Run state encoding
// ---------------------------------------------------------------------------------------------

test('state: typed arrays, non-finite numbers, -0 and bigints survive; bad values are named', () => {
  const s = {
    a: Float32Array.from([1, NaN, -0]),
    b: { c: [Int32Array.from([1, 2]), Float64Array.from([Math.E])], d: NaN, e: -Infinity, f: -0, g: 2n ** 70n },
    h: Uint8Array.from([1, 2, 3]),
    i: new BigInt64Array([-5n]),
    j: null,
    k: 'text',
    l: [1, true, { m: Uint16Array.from([7]) }],
  };
  const json = JSON.parse(JSON.stringify(encodeState(s)));
  assert.deepStrictEqual(decodeState(json), s);
  // The small-float32 form is the one lib/codec.ts reads.
  assert.deepEqual(Object.keys((encodeState({ x: new Float32Array(1) }) as any).x).sort(), ['$typed', 'b64']);
  assert.throws(() => encodeState({ replay: { buf: new Map() } }), /state\.replay\.buf: cannot store a Map/);
  assert.throws(() => encodeState({ f: () => 1 }), /state\.f: cannot store a function/);
  const cyc: Record<string, unknown> = {};
  cyc['self'] = cyc;
  assert.throws(() => encodeState({ cyc }), /circular/);
});

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

test('checkpoint: weights bit-identical, state identical (incl. large typed arrays), checksum as documented', async () => {
  const dir = tmp();
  const p = join(dir, 'ckpt.safetensors');
  const a = new CausalLM(tinyLlama, { seed: 1 });
  const big = new Float32Array(5000).map((_, i) => Math.sin(i) * 1e3);
  const state = {
    iteration: 17,
    rng: { policy: Uint32Array.from([1, 2, 3, 4]), env: [5, 6] },
    lagrange: { lambda: 0.25, lr: 0.01, history: Float64Array.from([0, 0.1, 0.25]) },
    replay: { obs: big, actions: new Int32Array(2000).map((_, i) => i % 7), size: 2000 },
    stream: { position: 1234, done: false, note: null },
    weird: [NaN, -0, Infinity],
  };
  const cfg = { model: tinyLlama, lr: 1e-3 };
  await saveCheckpoint(p, { params: a.params.map, config: cfg, state, metadata: { run: 'x' } });

  const b = new CausalLM(tinyLlama, { seed: 2 });
  assert.notDeepEqual(snapshot(b), snapshot(a));
  const out = await loadCheckpoint(p, { params: b.params.map, expectConfig: cfg });
  assert.deepEqual(snapshot(b), snapshot(a));
  assert.deepStrictEqual(out.state, state);
  assert.deepEqual(out.config, cfg);
  assert.equal(out.metadata['run'], 'x');
  assert.equal(out.metadata['rxrl.format'], '1');
  assert.equal(out.iterations, null);

  // The large arrays went to tensors, the small ones stayed inline.
  const { header } = parseByHand(p);
  const stateTensors = Object.keys(header).filter((k) => k.startsWith('state/'));
  assert.equal(stateTensors.length, 2);
  assert.ok(header['layers.1.attn.q.weight']);

  // rxrl.sha256 = SHA-256 of the file with the digest's 64 characters replaced by '0'.
  const bytes = readFileSync(p);
  const digest = header['__metadata__']['rxrl.sha256'] as string;
  assert.match(digest, /^[0-9a-f]{64}$/);
  const at = bytes.indexOf(Buffer.from(digest), 8);
  const zeroed = Buffer.from(bytes);
  zeroed.write('0'.repeat(64), at, 'latin1');
  assert.equal(createHash('sha256').update(zeroed).digest('hex'), digest);

  // readCheckpoint gives the same without touching anything.
  const ck = await readCheckpoint(p);
  assert.deepEqual(Object.keys(ck.params).sort(), a.params.names().sort());
  a.dispose();
  b.dispose();
});

test('checkpoint: Adam state round-trips; one more step is bit-identical to never stopping', async () => {
  const dir = tmp();
  const p = join(dir, 'adam.safetensors');
  const x = tf.tensor2d(
    [
      [1, 2, 3, 4, 5, 6],
      [7, 8, 9, 10, 11, 12],
    ],
    [2, 6],
    'int32',
  );
  const y = tf.tensor2d(
    [
      [2, 3, 4, 5, 6, 7],
      [8, 9, 10, 11, 12, 13],
    ],
    [2, 6],
    'int32',
  );

  const a = new CausalLM(tinyLlama, { seed: 3 });
  const optA = tf.train.adam(0.01);
  for (let i = 0; i < 3; i++) lossStep(a, optA, x, y);
  await saveCheckpoint(p, { params: a.params.map, optimizer: optA, config: tinyLlama, state: { iteration: 3 } });
  lossStep(a, optA, x, y);
  lossStep(a, optA, x, y);

  // A fresh process would have fresh variables (other tfjs ids) and a fresh optimizer.
  const b = new CausalLM(tinyLlama, { seed: 99 });
  const optB = tf.train.adam(0.01);
  const res = await loadCheckpoint(p, { params: b.params.map, optimizer: optB, expectConfig: tinyLlama });
  assert.equal(res.iterations, 3);
  assert.equal(optB.iterations, 3);
  lossStep(b, optB, x, y);
  lossStep(b, optB, x, y);
  assert.deepEqual(snapshot(b), snapshot(a));

  // The slots are stored under parameter names.
  const { header } = parseByHand(p);
  assert.ok(header['optimizer/slots/layers.0.attn.q.weight/m']);
  assert.ok(header['optimizer/slots/layers.0.attn.q.weight/v']);
  assert.ok(header['optimizer/vars/accBeta1']);
  assert.deepEqual(header['optimizer/iter'].shape, []);

  // An optimizer of another class is refused, and nothing is assigned.
  const c = new CausalLM(tinyLlama, { seed: 5 });
  const before = snapshot(c);
  await assert.rejects(loadCheckpoint(p, { params: c.params.map, optimizer: tf.train.sgd(0.1) }), /holds Adam optimizer state; this run's optimizer is SGD/);
  assert.deepEqual(snapshot(c), before);
  for (const m of [a, b, c]) m.dispose();
  optA.dispose();
  optB.dispose();
  tf.dispose([x, y]);
});

test('checkpoint: corruption and mismatches are clear errors and leave the model untouched', async () => {
  const dir = tmp();
  const good = join(dir, 'good.safetensors');
  const a = new CausalLM(tinyLlama, { seed: 1 });
  await saveCheckpoint(good, { params: a.params.map, config: { model: tinyLlama }, state: { it: 1 } });
  const bytes = readFileSync(good);
  const target = new CausalLM(tinyLlama, { seed: 7 });
  const opt = tf.train.adam(0.01);
  const before = snapshot(target);
  const expectError = async (path: string, re: RegExp, extra: Record<string, unknown> = {}): Promise<void> => {
    await assert.rejects(loadCheckpoint(path, { params: target.params.map, optimizer: undefined, ...extra }), (e: unknown) => {
      assert.ok(e instanceof CheckpointError, String(e));
      assert.match((e as Error).message, re);
      return true;
    });
    assert.deepEqual(snapshot(target), before, `model changed by a failed load of ${path}`);
  };

  // A flipped byte in the data section.
  const flipped = join(dir, 'flipped.safetensors');
  const fb = Buffer.from(bytes);
  fb[fb.length - 100] = fb[fb.length - 100]! ^ 0x10;
  writeFileSync(flipped, fb);
  await expectError(flipped, /^checkpoint .*flipped\.safetensors: checksum mismatch \(file corrupted\)$/);

  // A flipped byte in the header that keeps it valid JSON (a digit of a shape).
  const hdrFlip = join(dir, 'hdrflip.safetensors');
  const hb = Buffer.from(bytes);
  const at = hb.indexOf('"rxrl.format":"1"');
  hb.write('"rxrl.format":"2"', at, 'latin1');
  writeFileSync(hdrFlip, hb);
  await expectError(hdrFlip, /checksum mismatch/);

  // Truncated.
  const trunc = join(dir, 'trunc.safetensors');
  writeFileSync(trunc, bytes);
  truncateSync(trunc, bytes.length - 1000);
  await expectError(trunc, /truncated: header says \d+ bytes of data, file has \d+/);

  // Garbage.
  const garbage = join(dir, 'garbage.safetensors');
  writeFileSync(garbage, Buffer.from('this is not a checkpoint at all, just text'));
  await expectError(garbage, /garbage\.safetensors: is not a safetensors file/);
  const junkJson = join(dir, 'junkjson.safetensors');
  const jj = Buffer.alloc(8 + 16);
  jj.writeBigUInt64LE(16n, 0);
  jj.write('{"a": [1, 2, 3 ', 8);
  writeFileSync(junkJson, jj);
  await expectError(junkJson, /is not a safetensors file \(header is not valid JSON/);
  const tiny = join(dir, 'tiny.safetensors');
  writeFileSync(tiny, Buffer.from([1, 2, 3]));
  await expectError(tiny, /is not a safetensors file/);
  await expectError(join(dir, 'nope.safetensors'), /nope\.safetensors: no such file/);

  // A plain safetensors file is not a checkpoint.
  const plain = join(dir, 'plain.safetensors');
  await writeSafetensors(plain, { 'embed.weight': { dtype: 'F32', shape: [50, 16], data: new Float32Array(800) } });
  await expectError(plain, /not an rxrl checkpoint/);

  // Shapes: a model with another width.
  const wide = new CausalLM({ ...tinyLlama, dModel: 32 }, { seed: 1 });
  const wideP = join(dir, 'wide.safetensors');
  await saveCheckpoint(wideP, { params: wide.params.map, config: { model: { ...tinyLlama, dModel: 32 } } });
  await expectError(wideP, /wide\.safetensors: tensor embed\.weight has shape \[50,32\], the model expects \[50,16\]/);
  await expectError(wideP, /was written for config \{.*\}; this run's config differs at model\.dModel: 32 \(checkpoint\) vs 16 \(this run\)/, {
    expectConfig: { model: tinyLlama },
  });

  // Only the LAST tensor is wrong: earlier ones must not have been assigned.
  const rec: Record<string, { shape: number[]; data: Float32Array }> = {};
  const names = target.params.names();
  for (const n of names) {
    const v = a.params.get(n);
    rec[n] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
  }
  const last = names[names.length - 1]!;
  rec[last] = {
    shape: [rec[last]!.shape[0]! + 1, ...rec[last]!.shape.slice(1)],
    data: new Float32Array((rec[last]!.shape[0]! + 1) * rec[last]!.shape.slice(1).reduce((x, y) => x * y, 1)),
  };
  const lastBad = join(dir, 'lastbad.safetensors');
  await saveCheckpoint(lastBad, { params: rec, config: {} });
  await expectError(lastBad, new RegExp(`tensor ${last.replace(/\./g, '\\.')} has shape`));

  // Missing and unexpected tensors.
  const fewer = { ...rec };
  delete fewer['layers.0.mlp.up.weight'];
  fewer[last] = { shape: [...target.params.get(last).shape], data: a.params.get(last).dataSync() as Float32Array };
  const missingP = join(dir, 'missing.safetensors');
  await saveCheckpoint(missingP, { params: fewer, config: {} });
  await expectError(missingP, /is missing tensor the model has: layers\.0\.mlp\.up\.weight/);
  const more = { ...fewer, 'layers.0.mlp.up.weight': rec['layers.0.mlp.up.weight']!, 'extra.weight': { shape: [2], data: new Float32Array(2) } };
  const extraP = join(dir, 'extra.safetensors');
  await saveCheckpoint(extraP, { params: more, config: {} });
  await expectError(extraP, /has a tensor the model does not: extra\.weight/);
  await loadCheckpoint(extraP, { params: target.params.map, strict: false }); // non-strict: loads
  assert.deepEqual(snapshot(target), snapshot(a));

  // No optimizer state in the file but one was asked for.
  const t2 = new CausalLM(tinyLlama, { seed: 8 });
  const b2 = snapshot(t2);
  await assert.rejects(loadCheckpoint(good, { params: t2.params.map, optimizer: opt }), /has no optimizer state/);
  assert.deepEqual(snapshot(t2), b2);
  for (const m of [a, target, wide, t2]) m.dispose();
  opt.dispose();
});

test('checkpoint: a failed save leaves the previous file and no temporary file', async () => {
  const dir = tmp();
  const p = join(dir, 'ckpt.safetensors');
  const a = new CausalLM(tinyLlama, { seed: 1 });
  await saveCheckpoint(p, { params: a.params.map, config: { v: 1 } });
  const before = readFileSync(p);
  await assert.rejects(saveCheckpoint(p, { params: a.params.map, config: { v: 2 }, state: { bad: new Map() } }), /state\.bad: cannot store a Map/);
  await assert.rejects(
    saveCheckpoint(p, {
      params: a.params.map,
      config: { v: 2 },
      onProgress: () => {
        throw new Error('disk full (simulated)');
      },
    }),
    /disk full/,
  );
  assert.deepEqual(readFileSync(p), before);
  assert.deepEqual(readdirSync(dir), ['ckpt.safetensors']);
  a.dispose();
});

test('checkpoint: SIGKILL in the middle of a write leaves the previous checkpoint loadable', async () => {
  const dir = tmp();
  const p = join(dir, 'ckpt.safetensors');
  const a = new CausalLM(tinyLlama, { seed: 1 });
  await saveCheckpoint(p, { params: a.params.map, config: { which: 'good' }, state: { iteration: 1 } });
  const goodBytes = readFileSync(p);

  // The child writes ~64 MB to the same path and blocks (synchronously) half-way, so it is
  // killed with a partial temporary file on disk.
  const script = join(dir, 'writer.mts');
  writeFileSync(
    script,
    `import { writeSync } from 'node:fs';
import { saveCheckpoint } from ${JSON.stringify(pathToFileURL(join(ROOT, 'lib/io/checkpoint.ts')).href)};
const params: Record<string, { shape: number[]; data: Float32Array }> = {};
for (let i = 0; i < 8; i++) params['big.' + i] = { shape: [2048, 1024], data: new Float32Array(2048 * 1024).fill(i) };
let told = false;
await saveCheckpoint(process.argv[2]!, { params, config: { which: 'big' }, onProgress: (done, total) => {
  if (!told && done >= total / 2) {
    told = true;
    writeSync(1, 'HALF ' + total + '\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
  }
} });
writeSync(1, 'DONE\\n');
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script, p], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += String(d)));
  const total = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += String(d);
      const m = /HALF (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`writer exited (${code}) before half-way: ${out} ${err}`)));
  });
  const names = readdirSync(dir).filter((n) => n !== 'writer.mts');
  const tmpName = names.find((n) => n.startsWith('.ckpt.safetensors.tmp-'));
  assert.ok(tmpName, `expected a temporary file, got ${names.join(', ')}`);
  assert.ok(statSync(join(dir, tmpName!)).size < total);
  const exited = new Promise((r) => child.once('exit', r));
  assert.ok(child.kill('SIGKILL'));
  await exited;

  // The target is the old file, byte for byte, and loads; only the stale temporary is left.
  assert.deepEqual(readFileSync(p), goodBytes);
  assert.deepEqual(
    readdirSync(dir)
      .filter((n) => n !== 'writer.mts')
      .sort(),
    [tmpName!, 'ckpt.safetensors'].sort(),
  );
  const b = new CausalLM(tinyLlama, { seed: 2 });
  const res = await loadCheckpoint(p, { params: b.params.map, expectConfig: { which: 'good' } });
  assert.deepEqual(res.state, { iteration: 1 });
  assert.deepEqual(snapshot(b), snapshot(a));

  // The next save to that target removes the dead writer's temporary file.
  await saveCheckpoint(p, { params: a.params.map, config: { which: 'newer' } });
  assert.deepEqual(
    readdirSync(dir).filter((n) => n !== 'writer.mts'),
    ['ckpt.safetensors'],
  );
  a.dispose();
  b.dispose();
});

test('readCheckpoint refuses what is not a regular checkpoint file before reading it', async () => {
  await assert.rejects(readCheckpoint('/dev/zero'), (e: unknown) => e instanceof CheckpointError && /\/dev\/zero: is not a regular file/.test(e.message));
  const dir = tmp();
  await assert.rejects(readCheckpoint(dir), /is a directory, not a checkpoint file/);
  const short = join(dir, 'short.safetensors');
  writeFileSync(short, Buffer.from([1, 2, 3]));
  await assert.rejects(readCheckpoint(short), /short\.safetensors: is not a safetensors file \(3 bytes/);
  const lying = join(dir, 'lying.safetensors');
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(1n << 40n, 0);
  writeFileSync(lying, b);
  await assert.rejects(readCheckpoint(lying), /lying\.safetensors: is not a safetensors file \(implausible header length 1099511627776\)/);
});
