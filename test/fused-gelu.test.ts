/**
 * Tanh-GELU (lib/tensor/fused-gelu.ts) against the textbook composition differentiated by
 * autodiff, on cpu (σ form with a hand-written gradient) and wasm (SIMD kernels): values and
 * gradients to 1e-5 over a wide range of inputs (including ±10…±100, where σ saturates),
 * sizes that are and are not multiples of 4, no tensor leak.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { Rng } from '../lib/random.ts';
import { geluTanh, geluTanhOps } from '../lib/tensor/fused-gelu.ts';

before(async () => {
  await initBackend({ backend: 'wasm', threads: 1, quiet: true });
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(y[i]!)));
  return m;
}

function inputs(n: number, seed: number): Float32Array {
  const rng = new Rng(seed, 'gelu');
  const xs = Float32Array.from(rng.normalArray(n, 0, 3));
  const special = [0, -0, 1e-8, -1e-8, 10, -10, 30, -30, 100, -100, 5.5, -5.5];
  special.forEach((v, i) => {
    if (i < n) xs[i] = v;
  });
  return xs;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`fused tanh-GELU on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
    });
    for (const shape of [
      [6, 50, 16],
      [7, 3],
    ]) {
      it(`[${shape}]: values and gradients equal the composition to 1e-5`, () => {
        tf.tidy(() => {
          const n = shape.reduce((a, b) => a * b, 1);
          const x = tf.tensor(inputs(n, 1), shape);
          const w = tf.tensor(Float32Array.from(new Rng(2, 'w').normalArray(n)), shape);
          const dv = maxAbsDiff(geluTanh(x), geluTanhOps(x));
          assert.ok(dv < 1e-5, `values differ by ${dv}`);
          const gf = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(geluTanh(t), w)))(x);
          const gr = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(geluTanhOps(t), w)))(x);
          const dg = maxAbsDiff(gf, gr);
          assert.ok(dg < 1e-5, `gradients differ by ${dg}`);
        });
      });
    }
    it('no tensor leak', () => {
      const x = tf.tensor(inputs(64, 3), [4, 16]);
      const f = () =>
        tf.tidy(() =>
          tf
            .grad((t: tf.Tensor) => tf.sum(geluTanh(t)))(x)
            .dataSync(),
        );
      f();
      const n = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) f();
      assert.equal(tf.memory().numTensors, n);
      x.dispose();
    });
  });
}
