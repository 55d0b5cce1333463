/**
 * Fused causal attention (lib/tensor/fused-attention.ts) against the unfused ops, on cpu (JS
 * loops) and wasm (rxrl's SIMD kernels): values and gradients to 1e-5, GQA, key padding (left,
 * right, rows with no real key), fallbacks, memory; the same on the threaded wasm build (a child
 * process); and the embedded SIMD module is current.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { Rng } from '../lib/random.ts';
import { attentionOps, causalAttention, hasFusedAttention } from '../lib/tensor/fused-attention.ts';
import { tfjsPatches } from '../lib/tensor/patches.ts';
import { KERNELS_C_SHA256, KERNELS_WASM_BASE64 } from '../lib/tensor/simd/kernels-wasm.ts';

/** Set in the child process that reruns this file on tfjs's threaded wasm build. */
const THREADED_CHILD = process.env['RXRL_FUSED_THREADED'] === '1';

before(async () => {
  await initBackend({ backend: 'wasm', threads: THREADED_CHILD ? 2 : 1, quiet: true });
});

const BACKENDS = ['cpu', 'wasm'] as const;

function normal(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from(rng.normalArray(n)), shape);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

interface Case {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  d: number;
  /** keyMask rows as strings of 0/1, or null */
  mask: string[] | null;
}

const CASES: Case[] = [
  { B: 3, T: 13, H: 4, Hkv: 4, d: 32, mask: null },
  { B: 2, T: 7, H: 4, Hkv: 2, d: 8, mask: null }, // grouped-query attention
  { B: 3, T: 6, H: 2, Hkv: 2, d: 4, mask: ['111111', '001111', '000011'] }, // left padding, fully padded query rows
  { B: 2, T: 5, H: 4, Hkv: 1, d: 12, mask: ['11100', '11111'] }, // right padding, one kv head
];

/** Values and q/k/v gradients of Σ w ⊙ attention(q, k, v) for the fused op and the reference. */
function compare(c: Case, seed: number): { value: number; grads: number[] } {
  const rng = new Rng(seed, `attention/${c.B}x${c.T}x${c.H}x${c.Hkv}x${c.d}`);
  const q = normal(rng, [c.B, c.T, c.H, c.d]);
  const k = normal(rng, [c.B, c.T, c.Hkv, c.d]);
  const v = normal(rng, [c.B, c.T, c.Hkv, c.d]);
  const w = normal(rng, [c.B, c.T, c.H, c.d]);
  const mask = c.mask
    ? tf.tensor2d(
        c.mask.map((r) => [...r].map(Number)),
        [c.B, c.T],
      )
    : null;
  const loss = (f: typeof attentionOps) => (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(f(a, b, d, mask), w));
  const value = maxAbsDiff(causalAttention(q, k, v, mask), attentionOps(q, k, v, mask));
  const gf = tf.grads(loss(causalAttention))([q, k, v]);
  const gr = tf.grads(loss(attentionOps))([q, k, v]);
  return { value, grads: gf.map((g, i) => maxAbsDiff(g, gr[i]!)) };
}

for (const backend of BACKENDS) {
  describe(`fused causal attention on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
    });

    const fusedOff = tfjsPatches().enabled ? false : `the fused kernels are a tfjs patch; ${tfjsPatches().reason}`;
    it('runs fused (the SIMD module loads)', { skip: fusedOff }, async () => {
      if (backend === 'wasm') assert.equal((await initBackend()).threads, THREADED_CHILD ? 2 : 1);
      assert.equal(hasFusedAttention(32), true);
      assert.equal(hasFusedAttention(12), true);
    });

    for (const c of CASES) {
      it(`B${c.B} T${c.T} H${c.H} Hkv${c.Hkv} d${c.d}${c.mask ? ' masked' : ''}: values and gradients equal the ops to 1e-5`, () => {
        const r = tf.tidy(() => compare(c, 1));
        assert.ok(r.value < 1e-5, `values differ by ${r.value}`);
        r.grads.forEach((g, i) => assert.ok(g < 1e-5, `gradient of ${'qkv'[i]} differs by ${g}`));
      });
    }

    it('no tensor leak over forward and backward', () => {
      const c = CASES[2]!;
      tf.tidy(() => compare(c, 2)); // warm-up
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.tidy(() => compare(c, 3 + i));
      assert.equal(tf.memory().numTensors, before);
    });
  });
}

describe('fused attention fallbacks and build', () => {
  it('wasm: a head size that is not a multiple of 4 runs the ops (same result)', async () => {
    await tf.setBackend('wasm');
    assert.equal(hasFusedAttention(6), false);
    const r = tf.tidy(() => compare({ B: 2, T: 5, H: 2, Hkv: 2, d: 6, mask: null }, 4));
    assert.equal(r.value, 0);
  });

  it('kernels-wasm.ts was built from the current kernels.c, with no data section', () => {
    const src = readFileSync(new URL('../lib/tensor/simd/kernels.c', import.meta.url));
    const sha = createHash('sha256').update(src).digest('hex').slice(0, 16);
    assert.equal(KERNELS_C_SHA256, sha, 'kernels.c changed: run lib/tensor/simd/build.sh');
    // walk the sections: none may be a data section (id 11), which would overwrite tfjs's memory
    const bytes = Buffer.from(KERNELS_WASM_BASE64, 'base64');
    let p = 8;
    const leb = (): number => {
      let v = 0;
      let shift = 0;
      for (;;) {
        const b = bytes[p++]!;
        v |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) return v;
        shift += 7;
      }
    };
    while (p < bytes.length) {
      const id = bytes[p++]!;
      const len = leb();
      assert.notEqual(id, 11, 'kernels.wasm has a data section');
      p += len;
    }
  });

  if (!THREADED_CHILD) {
    it('the same checks pass on the threaded wasm build (shared-memory SIMD module; child process)', () => {
      const file = new URL(import.meta.url).pathname;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', file], {
        env: { ...process.env, RXRL_FUSED_THREADED: '1', RXRL_BACKEND: '', RXRL_THREADS: '' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.error, undefined, `child did not exit: ${String(r.error)}`);
      assert.equal(
        r.status,
        0,
        r.stdout
          .split('\n')
          .filter((l) => /not ok|error/i.test(l))
          .join('\n'),
      );
    });
  }
});
