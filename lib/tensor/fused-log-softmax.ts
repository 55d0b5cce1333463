/**
 * log-softmax over the last axis from the `Softmax` kernel, with a hand-written gradient.
 *
 *   p = softmax(x),  m = max(x):  max(p) = e⁰/Σ_j e^(x_j − m),  so
 *   log softmax(x) = x − m − log Σ_j e^(x_j − m) = x − m + log max(p)
 *   backward: dx = dy − p · Σ dy
 *
 * Same values as `tf.logSoftmax` (max(p) ∈ [1/V, 1] never underflows, so the log is exact to
 * float32 rounding), but no `Exp` over the whole input: wasm's `Softmax` runs XNNPACK's
 * vectorised kernel, while its `Exp` is a scalar loop (≈2.6 ms for [1920, 256], twice per
 * training step through tfjs's log-softmax and its gradient). Plain tfjs ops: every backend.
 * Tested against `tf.logSoftmax` (values and gradients) in test/fused-log-softmax.test.ts.
 *
 * ```ts
 * const logp = logSoftmax(logits);                  // [..., V]
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Tensor } from '@tensorflow/tfjs-core';

const logSoftmaxFn = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [Tensor, tf.GradSaveFunc];
  const axis = x.rank - 1;
  const p = tf.softmax(x);
  const value = tf.add(tf.sub(x, tf.max(x, axis, true)), tf.log(tf.max(p, axis, true)));
  save([p]);
  return {
    value,
    gradFunc: (dy: Tensor, saved: Tensor[]) => tf.sub(dy, tf.mul(saved[0]!, tf.sum(dy, axis, true))),
  };
}) as (x: Tensor) => Tensor;

/** log softmax(x) over the last axis (see the module comment). */
export function logSoftmax<T extends Tensor>(x: T): T {
  return logSoftmaxFn(x) as T;
}
