/**
 * The policy interface shared by the MLP policies and the Decision Transformer.
 *
 * Two sides, matching the data model (plain data between operators, tensors inside them):
 *
 * - training side, tensors out: `logProb(batch)` → log π(a | ·) per item ([N] for an MLP,
 *   [B, K] per step for a DT) and `entropy(batch)`, differentiable, meant to be called inside
 *   `tf.variableGrads` / `optimizer.minimize` (whose tidy frees the intermediates);
 * - acting side, plain data in and out: `act(obs, rng)` → `{ action, logProb }` as typed arrays,
 *   with every tensor disposed inside. Sampling draws from the given `Rng` on the JS side, so it
 *   is deterministic across backends. `logProb` there is the behaviour log-probability of the
 *   returned action, computed with the same formula `logProb(batch)` uses.
 *
 * `Batch` is the policy's training record (typed arrays), `Obs` what it acts on, `Act` the action
 * array type (`Int32Array` for discrete actions, `Float32Array` for continuous ones, row-major).
 *
 * ```ts
 * function ppoLoss<B, O, A>(pi: Policy<B, O, A>, batch: B, oldLogProb: tf.Tensor, adv: tf.Tensor) {
 *   const ratio = tf.exp(tf.sub(pi.logProb(batch), oldLogProb));
 *   return tf.neg(tf.mean(tf.minimum(tf.mul(ratio, adv), tf.mul(tf.clipByValue(ratio, 0.8, 1.2), adv))));
 * }
 * const { action, logProb } = pi.act(obs, rng);
 * ```
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random.ts';

export interface ActOptions {
  /** Take the mode (argmax / tanh(mean) / mean) instead of sampling. Default false. */
  deterministic?: boolean;
  /**
   * Row n draws its noise from `rowRng(n)` instead of `rng` — several groups stepped as one batch,
   * each with its own stream, sample what each would have sampled alone (rows are drawn in order).
   */
  rowRng?: (row: number) => Rng;
}

export interface ActResult<Act> {
  /** One action per row: Int32Array [N] (discrete) or Float32Array [N·A] (continuous). */
  readonly action: Act;
  /** log π(action | ·) [N] of the returned actions (also when `deterministic`). */
  readonly logProb: Float32Array;
  /** Value estimates [N], when the policy has a value head. */
  readonly value?: Float32Array;
}

export interface Policy<Batch, Obs, Act> {
  /** Every trainable variable (the optimizer's varList). */
  readonly variables: tf.Variable[];
  /** log π(a | ·) of the batch's actions; differentiable. */
  logProb(batch: Batch): tf.Tensor;
  /** Per-item entropy (exact, or a reparameterised estimate drawing noise from `rng`). */
  entropy(batch: Batch, rng?: Rng): tf.Tensor;
  /** Samples (or takes the mode of) actions on plain data; no tensor escapes. */
  act(obs: Obs, rng: Rng, opts?: ActOptions): ActResult<Act>;
  dispose(): void;
}
