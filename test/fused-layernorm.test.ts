/**
 * Fused LayerNorm (lib/tensor/fused-layernorm.ts) against the plain ops differentiated by
 * autodiff, on cpu (hand-written gradient as ops) and wasm (SIMD kernels): values and the
 * gradients of x, γ and β to 1e-5, with and without β, several shapes, no tensor leak.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { Rng } from '../lib/random.ts';
import { layerNorm, layerNormOps } from '../lib/tensor/fused-layernorm.ts';

before(async () => {
  await initBackend({ backend: 'wasm', threads: 1, quiet: true });
});

function normal(rng: Rng, shape: number[], mean = 0, std = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from(rng.normalArray(n, mean, std)), shape);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** Max differences of the value and of the x, γ(, β) gradients of Σ w ⊙ LN(x). */
function compare(shape: number[], withBeta: boolean, seed: number): number[] {
  const rng = new Rng(seed, `layernorm/${shape.join('x')}`);
  const D = shape[shape.length - 1]!;
  const x = normal(rng, shape, 0.5, 2); // off-centre, wide: exercises the mean and variance
  const g = normal(rng, [D], 1, 0.3);
  const b = normal(rng, [D], 0, 0.3);
  const w = normal(rng, shape);
  const eps = 1e-5;
  const beta = withBeta ? b : null;
  const loss = (f: typeof layerNormOps) => (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(xx, gg, withBeta ? bb : null, eps), w));
  const out = [maxAbsDiff(layerNorm(x, g, beta, eps), layerNormOps(x, g, beta, eps))];
  const args = withBeta ? [x, g, b] : [x, g];
  const lf = withBeta ? loss(layerNorm) : (xx: tf.Tensor, gg: tf.Tensor) => loss(layerNorm)(xx, gg, b);
  const lr = withBeta ? loss(layerNormOps) : (xx: tf.Tensor, gg: tf.Tensor) => loss(layerNormOps)(xx, gg, b);
  const gf = tf.grads(lf as (...t: tf.Tensor[]) => tf.Tensor)(args);
  const gr = tf.grads(lr as (...t: tf.Tensor[]) => tf.Tensor)(args);
  gf.forEach((t, i) => out.push(maxAbsDiff(t, gr[i]!)));
  return out;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`fused LayerNorm on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
    });
    for (const shape of [
      [4, 7, 32],
      [30, 128],
      [3, 5, 6],
    ]) {
      for (const withBeta of [true, false]) {
        it(`[${shape}]${withBeta ? '' : ' without β'}: values and gradients equal the ops to 1e-5`, () => {
          const diffs = tf.tidy(() => compare(shape, withBeta, 1));
          diffs.forEach((d, i) => assert.ok(d < 1e-5, `${['value', 'dx', 'dγ', 'dβ'][i]} differs by ${d}`));
        });
      }
    }
    it('no tensor leak', () => {
      tf.tidy(() => compare([4, 7, 32], true, 2));
      const n = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.tidy(() => compare([4, 7, 32], true, 3 + i));
      assert.equal(tf.memory().numTensors, n);
    });
  });
}
