/**
 * log-softmax from the Softmax kernel (lib/tensor/fused-log-softmax.ts) against
 * `tf.logSoftmax`, on cpu and wasm: values and gradients to 1e-5, including rows whose logits
 * span thousands (no underflow to −∞, no NaN).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { Rng } from '../lib/random.ts';
import { logSoftmax } from '../lib/tensor/fused-log-softmax.ts';

before(async () => {
  await initBackend({ backend: 'wasm', threads: 1, quiet: true });
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    assert.ok(Number.isFinite(x[i]!), `non-finite value at ${i}: ${x[i]}`);
    m = Math.max(m, Math.abs(x[i]! - y[i]!) / Math.max(1, Math.abs(y[i]!)));
  }
  return m;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`log-softmax on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
    });
    it('random logits [3, 5, 37]: values and gradients equal tf.logSoftmax to 1e-5', () => {
      tf.tidy(() => {
        const rng = new Rng(1, 'logits');
        const x = tf.tensor(Float32Array.from(rng.normalArray(3 * 5 * 37, 0, 4)), [3, 5, 37]);
        const w = tf.tensor(Float32Array.from(rng.normalArray(3 * 5 * 37)), [3, 5, 37]);
        assert.ok(maxAbsDiff(logSoftmax(x), tf.logSoftmax(x)) < 1e-5);
        const gf = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(logSoftmax(t), w)))(x);
        const gr = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.logSoftmax(t), w)))(x);
        assert.ok(maxAbsDiff(gf, gr) < 1e-5);
      });
    });
    it('extreme logits stay finite and exact', () => {
      tf.tidy(() => {
        const x = tf.tensor2d([
          [1000, 0, -1000],
          [-5e3, -5e3, -5e3],
          [0, 0, 88],
        ]);
        const got = logSoftmax(x);
        assert.ok(maxAbsDiff(got, tf.logSoftmax(x)) < 1e-5);
        assert.ok(Math.abs(got.dataSync()[2]! + 2000) < 1e-3);
      });
    });
  });
}
