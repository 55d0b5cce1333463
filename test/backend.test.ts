/**
 * Backend resolver + wasm kernel fixes.
 * Run: node --import tsx --test test/backend.test.ts
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_NAMES, currentBackend, initBackend, type BackendInfo } from '../lib/backend.ts';
import { wasmMatMulTuning } from '../lib/tensor/wasm-kernels.ts';
import { tfjsPatches } from '../lib/tensor/patches.ts';

/** Tests of a patch's effect skip themselves, with this reason, when the tfjs patches are off
 * (`npm run test:nofixes`: RXRL_WASM_FIXES=0); the others must pass with the stock kernels. */
const PATCH_EFFECT: { skip: string | false } = {
  skip: tfjsPatches().enabled ? false : `asserts a tfjs patch's effect; ${tfjsPatches().reason}`,
};

// ----------------------------------------------------------------------------------------------
// helpers

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(12345);
const randInt = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const size = (s: readonly number[]): number => s.reduce((p, d) => p * d, 1);
function randomValues(shape: readonly number[]): Float32Array {
  const v = new Float32Array(size(shape));
  for (let i = 0; i < v.length; i++) v[i] = rand() * 2 - 1;
  return v;
}

/** Run `f` on a backend with fresh tensors made from plain values; return plain values. */
async function onBackend(
  name: 'cpu' | 'wasm',
  inputs: { values: Float32Array | Int32Array; shape: number[]; dtype?: 'float32' | 'int32' }[],
  f: (...xs: tf.Tensor[]) => tf.Tensor,
): Promise<{ values: Float32Array; shape: number[] }> {
  const prev = tf.getBackend();
  await tf.setBackend(name);
  try {
    const xs = inputs.map((i) => tf.tensor(i.values, i.shape, i.dtype ?? 'float32'));
    const y = tf.tidy(() => f(...xs));
    const values = (await y.data()) as Float32Array;
    const shape = y.shape.slice();
    tf.dispose([...xs, y]);
    return { values, shape };
  } finally {
    await tf.setBackend(prev);
  }
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    const tol = rtol * Math.max(Math.abs(e), 1e-2 * scale, 1e-6);
    if (!(Math.abs(a - e) <= tol)) {
      assert.fail(`${what}: element ${i}: got ${a}, expected ${e} (tol ${tol.toExponential(2)})`);
    }
  }
}

/** Plain-JS batched matmul with full numpy broadcasting of the batch axes. */
function referenceMatMul(
  a: Float32Array,
  aShape: number[],
  b: Float32Array,
  bShape: number[],
  ta: boolean,
  tb: boolean,
): { values: Float64Array; shape: number[] } {
  const ar = aShape.length;
  const br = bShape.length;
  const m = ta ? aShape[ar - 1]! : aShape[ar - 2]!;
  const k = ta ? aShape[ar - 2]! : aShape[ar - 1]!;
  const n = tb ? bShape[br - 2]! : bShape[br - 1]!;
  const aB = aShape.slice(0, -2);
  const bB = bShape.slice(0, -2);
  const rank = Math.max(aB.length, bB.length);
  const pad = (s: number[]): number[] => [...new Array<number>(rank - s.length).fill(1), ...s];
  const pa = pad(aB);
  const pb = pad(bB);
  const oB = pa.map((d, i) => Math.max(d, pb[i]!));
  const out = new Float64Array(size(oB) * m * n);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < size(oB); o++) {
    let rem = o;
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax] = rem % oB[ax]!;
      rem = Math.floor(rem / oB[ax]!);
    }
    let ia = 0;
    let ib = 0;
    for (let ax = 0; ax < rank; ax++) {
      ia = ia * pa[ax]! + (pa[ax] === 1 ? 0 : idx[ax]!);
      ib = ib * pb[ax]! + (pb[ax] === 1 ? 0 : idx[ax]!);
    }
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          const av = ta ? a[ia * k * m + p * m + i]! : a[ia * m * k + i * k + p]!;
          const bv = tb ? b[ib * n * k + j * k + p]! : b[ib * k * n + p * n + j]!;
          s += av * bv;
        }
        out[o * m * n + i * n + j] = s;
      }
    }
  }
  return { values: out, shape: [...oB, m, n] };
}

function stored(shape: number[], t: boolean): number[] {
  if (!t) return shape;
  const s = shape.slice();
  const r = s.length;
  [s[r - 2], s[r - 1]] = [s[r - 1]!, s[r - 2]!];
  return s;
}

// ----------------------------------------------------------------------------------------------
// Child mode: `RXRL_TEST_THREADED_CHILD=1 node --import tsx test/backend.test.ts` initialises the
// multi-threaded wasm build, checks a few results against plain JS, prints one JSON line and
// then simply returns: the process must exit on its own (worker threads unref'd).

const CHILD = process.env['RXRL_TEST_THREADED_CHILD'] === '1';

async function threadedChild(): Promise<void> {
  const b = await initBackend({ backend: 'wasm', threads: 2, quiet: true });
  let maxErr = 0;
  for (const [sa, sb, ta, tb] of [
    [[96, 80], [80, 112], false, false],
    [[3, 40, 96], [3, 40, 64], true, false],
    [[3, 40, 96], [3, 64, 96], false, true],
    [[256, 256], [256, 256], false, true],
  ] as [number[], number[], boolean, boolean][]) {
    const av = randomValues(sa);
    const bv = randomValues(sb);
    const y = tf.matMul(tf.tensor(av, sa), tf.tensor(bv, sb), ta, tb);
    const got = await y.data();
    const ref = referenceMatMul(av, sa, bv, sb, ta, tb).values;
    for (let i = 0; i < ref.length; i++) maxErr = Math.max(maxErr, Math.abs(got[i]! - ref[i]!) / Math.max(1, Math.abs(ref[i]!)));
  }
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, tf.tensor1d([1, 1, 2], 'int32'))))(tf.ones([4, 2]));
  console.log(JSON.stringify({ name: b.name, threads: b.threads, reason: b.reason, maxErr, grad: Array.from(await g.data()) }));
}

if (CHILD) await threadedChild();

let info: BackendInfo;

if (!CHILD) {
  before(async () => {
    info = await initBackend({ quiet: true });
  });

  describe('initBackend', () => {
    it('resolves to a valid backend and says why', () => {
      assert.ok(BACKEND_NAMES.includes(info.name));
      assert.equal(tf.getBackend(), info.name);
      assert.ok(info.reason.length > 0);
      assert.deepEqual(currentBackend(), info);
    });

    it('is idempotent (same result, no re-initialisation), also when called concurrently', async () => {
      const backendObject = tf.backend();
      const [a, b] = await Promise.all([initBackend({ quiet: true }), initBackend({ quiet: true })]);
      assert.equal(a, info);
      assert.equal(b, info);
      assert.equal(await initBackend({ quiet: true, backend: info.name }), info);
      assert.equal(tf.backend(), backendObject);
    });

    it('rejects an unknown backend name, listing the valid ones', async () => {
      await assert.rejects(
        initBackend({ quiet: true, backend: 'gpu' as never }),
        (e: Error) => /unknown backend 'gpu'/.test(e.message) && /tensorflow, wasm, cpu/.test(e.message),
      );
      const saved = process.env['RXRL_BACKEND'];
      process.env['RXRL_BACKEND'] = 'webgl';
      try {
        await assert.rejects(
          initBackend({ quiet: true }),
          (e: Error) => /unknown backend 'webgl' \(from RXRL_BACKEND\)/.test(e.message) && /tensorflow, wasm, cpu/.test(e.message),
        );
      } finally {
        if (saved === undefined) delete process.env['RXRL_BACKEND'];
        else process.env['RXRL_BACKEND'] = saved;
      }
    });

    it("rejects 'tensorflow' with a clear reason when tfjs-node is absent", async (t) => {
      if (info.name === 'tensorflow') return t.skip('tfjs-node is installed here');
      await assert.rejects(
        initBackend({ quiet: true, backend: 'tensorflow' }),
        (e: Error) => /backend 'tensorflow' is unavailable/.test(e.message) && /tfjs-node not installed/.test(e.message),
      );
    });

    it('registers gradients (tfjs-core alone ships none for Node)', () => {
      for (const k of ['Sum', 'Multiply', 'GatherV2', 'BatchMatMul', 'Softmax', 'Relu']) assert.ok(tf.getGradient(k), k);
    });
  });

  describe('wasm BatchMatMul fix', { skip: tf.findBackendFactory('wasm') === null }, () => {
    before(async () => {
      if (info.name !== 'wasm') await tf.setBackend('wasm');
    });

    // [aShape (logical, untransposed), bShape (logical)] — transposes are applied on top
    const cases: [number[], number[]][] = [];
    // shapes with batch dims, large enough per entry for the XNNPACK route
    for (let i = 0; i < 3; i++) {
      const bt = randInt(2, 5);
      const m = randInt(17, 40);
      const k = randInt(9, 33);
      const n = randInt(17, 40);
      cases.push([
        [bt, m, k],
        [bt, k, n],
      ]); // equal batches
      cases.push([
        [1, m, k],
        [bt, k, n],
      ]); // batch of 1 broadcast against b
      cases.push([
        [bt, m, k],
        [1, k, n],
      ]);
      cases.push([
        [m, k],
        [bt, k, n],
      ]); // rank-2 × rank-3
      cases.push([
        [bt, m, k],
        [k, n],
      ]); // rank-3 × rank-2
      cases.push([
        [m, k],
        [k, n],
      ]); // plain 2-D
    }
    cases.push([
      [2, 3, 20, 16],
      [3, 16, 24],
    ]); // rank-4 × rank-3
    cases.push([
      [3, 4, 5],
      [3, 5, 6],
    ]); // tiny entries: stock-kernel route
    cases.push([
      [1, 1, 7],
      [1, 7, 1],
    ]); // degenerate

    for (const [aShape, bShape] of cases) {
      for (const [ta, tb] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        it(`[${aShape}]${ta ? 'ᵀ' : ''} · [${bShape}]${tb ? 'ᵀ' : ''} matches cpu`, async () => {
          const sa = stored(aShape, ta);
          const sb = stored(bShape, tb);
          const av = randomValues(sa);
          const bv = randomValues(sb);
          const ins = [
            { values: av, shape: sa },
            { values: bv, shape: sb },
          ];
          const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.matMul(a, b, ta, tb);
          const cpu = await onBackend('cpu', ins, f);
          const wasm = await onBackend('wasm', ins, f);
          assert.deepEqual(wasm.shape, cpu.shape);
          assertClose(wasm.values, cpu.values, 'wasm vs cpu');
          const ref = referenceMatMul(av, sa, bv, sb, ta, tb);
          assertClose(wasm.values, ref.values, 'wasm vs JS reference');
        });
      }
    }

    it('broadcasts batch axes in full ([2,1,m,k]·[1,3,k,n] → [2,3,m,n]; stock kernels get this wrong)', PATCH_EFFECT, async () => {
      for (const [ta, tb] of [
        [false, false],
        [true, true],
        [true, false],
      ] as const) {
        const sa = stored([2, 1, 20, 16], ta);
        const sb = stored([1, 3, 16, 24], tb);
        const av = randomValues(sa);
        const bv = randomValues(sb);
        const wasm = await onBackend(
          'wasm',
          [
            { values: av, shape: sa },
            { values: bv, shape: sb },
          ],
          (a, b) => tf.matMul(a, b, ta, tb),
        );
        const ref = referenceMatMul(av, sa, bv, sb, ta, tb);
        assert.deepEqual(wasm.shape, [2, 3, 20, 24]);
        assertClose(wasm.values, ref.values, `transposeA=${ta} transposeB=${tb}`);
      }
    });

    it('handles empty and k = 0 products', PATCH_EFFECT, async () => {
      const z = await onBackend(
        'wasm',
        [
          { values: new Float32Array(0), shape: [2, 3, 0] },
          { values: new Float32Array(0), shape: [2, 0, 4] },
        ],
        (a, b) => tf.matMul(a, b),
      );
      assert.deepEqual(z.shape, [2, 3, 4]);
      assert.ok(z.values.every((v) => v === 0));
      const e = await onBackend(
        'wasm',
        [
          { values: new Float32Array(0), shape: [0, 3, 5] },
          { values: randomValues([5, 4]), shape: [5, 4] },
        ],
        (a, b) => tf.matMul(a, b),
      );
      assert.deepEqual(e.shape, [0, 3, 4]);
    });

    it('does not reuse XNNPACK weights cached for another reshape of the same buffer', PATCH_EFFECT, async () => {
      const w = Float32Array.from({ length: 16 }, (_, i) => i);
      const r = await onBackend('wasm', [{ values: w, shape: [16] }], (x) => {
        const first = tf.matMul(tf.ones([1, 4]), tf.reshape(x, [4, 4]));
        const second = tf.matMul(tf.ones([1, 2]), tf.reshape(x, [2, 8]));
        return tf.concat([tf.reshape(first, [4]), tf.reshape(second, [8])]);
      });
      assert.deepEqual(Array.from(r.values), [24, 28, 32, 36, 8, 10, 12, 14, 16, 18, 20, 22]);
    });

    it('tf.fused.matMul with transposes, bias and relu matches cpu', PATCH_EFFECT, async () => {
      for (const [ta, tb] of [
        [false, true],
        [true, false],
        [true, true],
      ] as const) {
        const sa = stored([33, 20], ta);
        const sb = stored([20, 27], tb);
        const ins = [
          { values: randomValues(sa), shape: sa },
          { values: randomValues(sb), shape: sb },
          { values: randomValues([27]), shape: [27] },
        ];
        const f = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor): tf.Tensor =>
          tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation: 'relu' });
        const cpu = await onBackend('cpu', ins, f);
        const wasm = await onBackend('wasm', ins, f);
        assertClose(wasm.values, cpu.values, `fused ta=${ta} tb=${tb}`);
      }
    });

    it('gradients through batched matMul (transposed kernels in the backward pass; broadcast batch reduced) match cpu', PATCH_EFFECT, async () => {
      const ins = [
        { values: randomValues([4, 30, 24]), shape: [4, 30, 24] },
        { values: randomValues([24, 28]), shape: [24, 28] },
      ];
      const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => {
        const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y))))([a, b]);
        return tf.concat([tf.reshape(g[0]!, [-1]), tf.reshape(g[1]!, [-1])]);
      };
      const cpu = await onBackend('cpu', ins, f);
      const wasm = await onBackend('wasm', ins, f);
      assertClose(wasm.values, cpu.values, 'grads');
    });

    it('leaks no tensors or wasm memory across repeated calls', () => {
      const a = tf.randomNormal([6, 40, 24]);
      const b = tf.randomNormal([6, 40, 24]);
      const w = tf.randomNormal([24, 40]);
      const run = (): void => {
        tf.tidy(() => {
          tf.matMul(a, b, false, true);
          tf.matMul(a, b, true, false);
          tf.matMul(a, w);
          tf.matMul(w, a, true, true);
          tf.matMul(tf.slice(a, [0, 0, 0], [6, 2, 2]), tf.slice(b, [0, 0, 0], [6, 2, 2]), false, true);
          tf.fused.matMul({ a: tf.reshape(a, [240, 24]), b: w, transposeB: false });
        });
      };
      run();
      const before = tf.memory();
      const dataIds = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
      for (let i = 0; i < 5; i++) run();
      const afterMem = tf.memory();
      assert.equal(afterMem.numTensors, before.numTensors);
      assert.equal(afterMem.numBytes, before.numBytes);
      assert.equal((tf.backend() as unknown as { numDataIds(): number }).numDataIds(), dataIds);
      tf.dispose([a, b, w]);
    });

    it('gives the same results whichever route a batched product takes (stock loop vs XNNPACK loop)', async () => {
      const sa = [9, 6, 5];
      const sb = [9, 7, 5];
      const ins = [
        { values: randomValues(sa), shape: sa },
        { values: randomValues(sb), shape: sb },
      ];
      const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.matMul(a, b, false, true);
      const saved = { ...wasmMatMulTuning };
      try {
        wasmMatMulTuning.smallBatchEntryMacs = wasmMatMulTuning.smallBatchEntryMacsThreaded = 1e9;
        const stock = await onBackend('wasm', ins, f);
        wasmMatMulTuning.smallBatchEntryMacs = wasmMatMulTuning.smallBatchEntryMacsThreaded = 0;
        const xnn = await onBackend('wasm', ins, f);
        assertClose(xnn.values, stock.values, 'routes');
      } finally {
        Object.assign(wasmMatMulTuning, saved);
      }
    });
  });

  describe('wasm gather gradient (UnsortedSegmentSum)', { skip: tf.findBackendFactory('wasm') === null }, () => {
    before(async () => {
      if (info.name !== 'wasm') await tf.setBackend('wasm');
    });

    const V = 11;
    const D = 6;
    const B = 3;
    const T = 7;

    function indicesWithDuplicates(): Int32Array {
      const idx = new Int32Array(B * T);
      for (let i = 0; i < idx.length; i++) idx[i] = randInt(0, V - 1);
      idx[1] = idx[0]!; // guaranteed duplicates
      idx[5] = idx[0]!;
      idx[B * T - 1] = idx[2]!;
      return idx;
    }

    it('grad of sum(w ⊙ gather(E, idx)) equals onehot(idx)ᵀ · w (duplicates summed, [B,T] indices)', PATCH_EFFECT, async () => {
      const idx = indicesWithDuplicates();
      const w = randomValues([B, T, D]);
      const e = randomValues([V, D]);
      const g = await onBackend(
        'wasm',
        [
          { values: e, shape: [V, D] },
          { values: idx, shape: [B, T], dtype: 'int32' },
          { values: w, shape: [B, T, D] },
        ],
        (E, I, W) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(W!, tf.gather(x, I!))))(E!),
      );
      // onehot(idx)ᵀ · w in plain JS
      const expected = new Float64Array(V * D);
      for (let i = 0; i < B * T; i++) for (let d = 0; d < D; d++) expected[idx[i]! * D + d]! += w[i * D + d]!;
      assert.deepEqual(g.shape, [V, D]);
      assertClose(g.values, expected, 'embedding gradient', 1e-5);
    });

    it('works for gather along axis 1 too', PATCH_EFFECT, async () => {
      const idx = Int32Array.from([2, 0, 2, 3, 2]);
      const e = randomValues([4, 5, 3]);
      const w = randomValues([4, 5, 3]);
      const g = await onBackend(
        'wasm',
        [
          { values: e, shape: [4, 5, 3] },
          { values: idx, shape: [5], dtype: 'int32' },
          { values: w, shape: [4, 5, 3] },
        ],
        (E, I, W) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(W!, tf.gather(x, I!, 1))))(E!),
      );
      const expected = new Float64Array(4 * 5 * 3);
      for (let a = 0; a < 4; a++) {
        for (let j = 0; j < idx.length; j++) {
          for (let c = 0; c < 3; c++) expected[a * 15 + idx[j]! * 3 + c]! += w[a * 15 + j * 3 + c]!;
        }
      }
      assertClose(g.values, expected, 'axis-1 gradient', 1e-5);
    });

    it('gather forward matches cpu (axes 0, 1, -1; [B,T] indices; int32 table) and rejects bad indices', async () => {
      const x = randomValues([6, 5, 4]);
      const xi = Int32Array.from({ length: 6 * 5 * 4 }, (_, i) => i * 7 - 50);
      for (const [axis, ishape, hi] of [
        [0, [3, 4], 5],
        [1, [7], 4],
        [-1, [2, 2], 3],
      ] as [number, number[], number][]) {
        const idx = Int32Array.from({ length: size(ishape) }, () => randInt(0, hi));
        for (const [vals, dtype] of [
          [x, 'float32'],
          [xi, 'int32'],
        ] as const) {
          const ins = [
            { values: vals, shape: [6, 5, 4], dtype },
            { values: idx, shape: ishape, dtype: 'int32' as const },
          ];
          const f = (X: tf.Tensor, I: tf.Tensor): tf.Tensor => tf.gather(X, I, axis);
          const cpu = await onBackend('cpu', ins, f);
          const wasm = await onBackend('wasm', ins, f);
          assert.deepEqual(wasm.shape, cpu.shape);
          assert.deepEqual(Array.from(wasm.values), Array.from(cpu.values), `axis ${axis} ${dtype}`);
        }
      }
      await assert.rejects(
        onBackend(
          'wasm',
          [
            { values: x, shape: [6, 5, 4] },
            { values: Int32Array.from([0, 6]), shape: [2], dtype: 'int32' },
          ],
          (X, I) => tf.gather(X, I),
        ),
        /index value 6 is not in \[0, 5\]/,
      );
    });

    it('gather with batchDims = 1 (forward and gradient; the stock wasm kernel returned wrong values)', PATCH_EFFECT, async () => {
      // x [B=3, O=2, D=5, S=4], indices [B=3, K=4], axis 2 → out [3, 2, 4, 4]
      const [Bn, O, Dn, S, K] = [3, 2, 5, 4, 4];
      const x = randomValues([Bn, O, Dn, S]);
      const idx = Int32Array.from({ length: Bn * K }, () => randInt(0, Dn - 1));
      idx[1] = idx[0]!;
      const w = randomValues([Bn, O, K, S]);
      const ins = [
        { values: x, shape: [Bn, O, Dn, S] },
        { values: idx, shape: [Bn, K], dtype: 'int32' as const },
        { values: w, shape: [Bn, O, K, S] },
      ];
      const fwd = (X: tf.Tensor, I: tf.Tensor): tf.Tensor => tf.gather(X, I, 2, 1);
      const cpu = await onBackend('cpu', ins, fwd);
      const wasm = await onBackend('wasm', ins, fwd);
      assert.deepEqual(wasm.shape, [Bn, O, K, S]);
      assertClose(wasm.values, cpu.values, 'forward', 1e-6);
      const expectedFwd = new Float64Array(Bn * O * K * S);
      const expectedGrad = new Float64Array(Bn * O * Dn * S);
      for (let b = 0; b < Bn; b++) {
        for (let o = 0; o < O; o++) {
          for (let k = 0; k < K; k++) {
            for (let c = 0; c < S; c++) {
              const src = ((b * O + o) * Dn + idx[b * K + k]!) * S + c;
              const dst = ((b * O + o) * K + k) * S + c;
              expectedFwd[dst] = x[src]!;
              expectedGrad[src]! += w[dst]!;
            }
          }
        }
      }
      assertClose(wasm.values, expectedFwd, 'forward vs JS', 1e-6);
      for (const be of ['wasm', 'cpu'] as const) {
        const g = await onBackend(be, ins, (X, I, W) => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(W!, tf.gather(t, I!, 2, 1))))(X!));
        assertClose(g.values, expectedGrad, `${be} gradient`, 1e-5);
      }
    });

    it('tf.unsortedSegmentSum matches cpu (out-of-range ids dropped)', PATCH_EFFECT, async () => {
      const ids = Int32Array.from([0, 3, 3, -1, 1, 9, 0]);
      const x = randomValues([7, 4]);
      const ins = [
        { values: x, shape: [7, 4] },
        { values: ids, shape: [7], dtype: 'int32' as const },
      ];
      const f = (a: tf.Tensor, s: tf.Tensor): tf.Tensor => tf.unsortedSegmentSum(a, s as tf.Tensor1D, 5);
      const cpu = await onBackend('cpu', ins, f);
      const wasm = await onBackend('wasm', ins, f);
      assert.deepEqual(wasm.shape, [5, 4]);
      assertClose(wasm.values, cpu.values, 'unsortedSegmentSum', 1e-6);
    });

    it('leaks no tensors across repeated gradient calls', PATCH_EFFECT, () => {
      const E = tf.randomNormal([V, D]);
      const I = tf.tensor2d(indicesWithDuplicates(), [B, T], 'int32');
      const step = (): void => {
        tf.tidy(() => {
          tf.grad((x: tf.Tensor) => tf.sum(tf.gather(x, I)))(E);
        });
      };
      step();
      const n0 = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) step();
      assert.equal(tf.memory().numTensors, n0);
      tf.dispose([E, I]);
    });
  });

  describe('multi-threaded wasm (child process, RXRL_THREADS=2)', () => {
    it('initialises, matches plain JS, and the process exits by itself', PATCH_EFFECT, () => {
      const file = fileURLToPath(import.meta.url);
      const r = spawnSync(process.execPath, ['--import', 'tsx', file], {
        env: { ...process.env, RXRL_TEST_THREADED_CHILD: '1', RXRL_BACKEND: '' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.error, undefined, `child did not exit: ${String(r.error)}`);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { name: string; threads: number; reason: string; maxErr: number; grad: number[] };
      assert.equal(out.name, 'wasm');
      // the threaded build either initialised, or the fallback says why
      assert.ok(out.threads === 2 || /threaded init failed/.test(out.reason), out.reason);
      assert.ok(out.maxErr < 1e-4, `max relative error ${out.maxErr}`);
      assert.deepEqual(out.grad, [0, 0, 2, 2, 1, 1, 0, 0]);
    });
  });
}
