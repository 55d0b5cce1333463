// `dpoUpdate`: Direct Preference Optimisation of a causal LM — documented on the exported `dpoUpdate` (hover it).
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { Int32, NonNegativeInt, NonNegativeNumber, PositiveInt, PositiveNumber, decodeOrThrow } from '../lib/codec.ts';
import type { CausalLM } from '../lib/models/lm.ts';
import {
  PositiveNumberOrInfinity,
  checkLearner,
  checkTokens,
  completionBatch,
  guardedStep,
  minibatchIndices,
  sequenceLogProbs,
  type LmLearner,
} from './lmUpdateInternals.ts';

/** One preference: for prompt x, completion y_w (`chosen`) is preferred to y_l (`rejected`). */
export const PreferencePair = t.type({ prompt: Int32, chosen: Int32, rejected: Int32 }, 'PreferencePair');
export type PreferencePair = t.TypeOf<typeof PreferencePair>;

/** One iteration's preference pairs (plain data); `metrics` from earlier operators are kept. */
export const PreferenceBatch = t.intersection(
  [t.type({ iteration: NonNegativeInt, pairs: t.readonlyArray(PreferencePair) }), t.partial({ metrics: t.record(t.string, t.number) })],
  'PreferenceBatch',
);
export type PreferenceBatch = t.TypeOf<typeof PreferenceBatch>;

/** The configuration of `dpoUpdate`. */
export const DpoUpdateConfig = t.type(
  {
    /** β: strength of the implicit KL constraint to π_ref (the temperature of the implicit reward). */
    beta: PositiveNumber,
    /** ε of conservative DPO (cDPO): the probability that a preference label is flipped; in [0, 0.5). */
    labelSmoothing: NonNegativeNumber,
    /** Passes over the batch's pairs. */
    epochs: PositiveInt,
    /** Optimizer steps per epoch, on random disjoint slices of the pairs. */
    minibatches: PositiveInt,
    /** Global gradient-norm clip (Infinity: off). */
    maxGradNorm: PositiveNumberOrInfinity,
  },
  'DpoUpdateConfig',
);
export type DpoUpdateConfig = t.TypeOf<typeof DpoUpdateConfig>;

/**
 * β = 0.1 (the paper's "unless noted otherwise" value, Appendix B; also TRL's default), no label
 * smoothing, one epoch of one full-batch step, clip at 1 (the Hugging Face Trainer / TRL default).
 */
export const DPO_UPDATE_DEFAULTS: DpoUpdateConfig = { beta: 0.1, labelSmoothing: 0, epochs: 1, minibatches: 1, maxGradNorm: 1 };

/** A learner for DPO: the trained model's state plus the frozen reference π_ref (same vocabulary). */
export interface DpoLearner extends LmLearner {
  readonly ref: CausalLM;
}

/** Sequence log-probs log π(y|x) of the chosen and the rejected completions: [N] each. Inside a tidy. */
export function preferenceLogProbs(lm: CausalLM, pairs: readonly PreferencePair[]): { chosen: tf.Tensor1D; rejected: tf.Tensor1D } {
  // One forward pass: rows 0..N−1 the chosen completions, N..2N−1 the rejected ones.
  const rows = [...pairs.map((p) => ({ prompt: p.prompt, completion: p.chosen })), ...pairs.map((p) => ({ prompt: p.prompt, completion: p.rejected }))];
  const both = sequenceLogProbs(lm, completionBatch(rows));
  const [chosen, rejected] = tf.split(both, 2) as [tf.Tensor1D, tf.Tensor1D];
  return { chosen, rejected };
}

/**
 * log σ(z) = min(z, 0) − log(1 + e^−|z|), stable for large |z|. Not `tf.logSigmoid`: in tfjs-core
 * 4.22 its gradient, taken by tf.variableGrads of an intermediate z, reads a disposed tensor
 * ("Cannot read properties of undefined (reading 'backend')"; checked on the cpu backend).
 */
function logSigmoid(z: tf.Tensor): tf.Tensor {
  return tf.sub(tf.minimum(z, 0), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
}

/**
 * The DPO loss and implicit rewards of `pairs` under `lm`, given the reference's sequence
 * log-probs (`refChosen[i]` = log π_ref(y_w,i | x_i), `refRejected[i]` likewise). Inside a tidy.
 */
export function dpoLoss(
  lm: CausalLM,
  pairs: readonly PreferencePair[],
  refChosen: Float32Array,
  refRejected: Float32Array,
  cfg: Pick<DpoUpdateConfig, 'beta' | 'labelSmoothing'>,
): { loss: tf.Scalar; chosenReward: tf.Tensor1D; rejectedReward: tf.Tensor1D } {
  const { chosen, rejected } = preferenceLogProbs(lm, pairs);
  const chosenReward = tf.mul(cfg.beta, tf.sub(chosen, tf.tensor1d(refChosen))) as tf.Tensor1D;
  const rejectedReward = tf.mul(cfg.beta, tf.sub(rejected, tf.tensor1d(refRejected))) as tf.Tensor1D;
  const z = tf.sub(chosenReward, rejectedReward);
  const eps = cfg.labelSmoothing;
  let perPair = tf.mul(-(1 - eps), logSigmoid(z));
  if (eps > 0) perPair = tf.sub(perPair, tf.mul(eps, logSigmoid(tf.neg(z))));
  return { loss: tf.mean(perPair) as tf.Scalar, chosenReward, rejectedReward };
}

export interface DpoStepStats {
  loss: number;
  gradNorm: number;
  /** Sums over the step's pairs (divide by `pairs`). */
  chosenReward: number;
  rejectedReward: number;
  correct: number;
  pairs: number;
}

/**
 * One optimizer step of DPO on `pairs` (see `dpoUpdate`); the reference log-probs are given.
 * Throws `NonFiniteUpdateError` before any weight changes if the loss or gradient is not finite.
 */
export function dpoStep(
  learner: LmLearner,
  pairs: readonly PreferencePair[],
  refChosen: Float32Array,
  refRejected: Float32Array,
  cfg: DpoUpdateConfig,
  appliedInBatch = 0,
): DpoStepStats {
  const r = guardedStep(
    'dpoUpdate',
    learner,
    () => {
      const { loss, chosenReward, rejectedReward } = dpoLoss(learner.lm, pairs, refChosen, refRejected, cfg);
      const margin = tf.sub(chosenReward, rejectedReward);
      return { loss, side: [tf.sum(chosenReward), tf.sum(rejectedReward), tf.sum(tf.cast(tf.greater(margin, 0), 'float32'))] as tf.Scalar[] };
    },
    cfg.maxGradNorm,
    appliedInBatch,
  );
  const [chosenReward, rejectedReward, correct] = r.side as [number, number, number];
  return { loss: r.loss, gradNorm: r.gradNorm, chosenReward, rejectedReward, correct, pairs: pairs.length };
}

/** log π_ref of every pair's chosen and rejected completion, in chunks of `chunk` pairs. */
function referenceLogProbs(ref: CausalLM, pairs: readonly PreferencePair[], chunk: number): { chosen: Float32Array; rejected: Float32Array } {
  const chosen = new Float32Array(pairs.length);
  const rejected = new Float32Array(pairs.length);
  for (let o = 0; o < pairs.length; o += chunk) {
    const part = pairs.slice(o, o + chunk);
    const [c, r] = tf.tidy(() => {
      const lp = preferenceLogProbs(ref, part);
      return [lp.chosen.dataSync(), lp.rejected.dataSync()];
    });
    chosen.set(c!, o);
    rejected.set(r!, o);
  }
  return { chosen, rejected };
}

/**
 * Direct Preference Optimisation (DPO, Rafailov et al. 2023) of a causal LM π_θ against a frozen
 * reference π_ref, on preference pairs (x, y_w ≻ y_l).
 *
 * For each batch it scores every pair once under π_ref, then for `epochs` passes over
 * `minibatches` random disjoint slices ℬ of the pairs (shuffled by `learner.rng`) takes one
 * optimizer step on
 *
 *   h_i   = [log π_θ(y_w|x) − log π_ref(y_w|x)] − [log π_θ(y_l|x) − log π_ref(y_l|x)]
 *   L(θ)  = (1/|ℬ|) Σ_{i∈ℬ} −(1 − ε) log σ(β h_i) − ε log σ(−β h_i)
 *
 * where log π(y|x) = Σ_k log π(y_k | x, y_<k) sums over the completion tokens only (prompt and
 * padding masked out), σ is the logistic function, β the KL-constraint strength and ε the cDPO
 * label-smoothing (ε = 0: the paper's loss). The implicit rewards are r̂(x, y) = β(log π_θ(y|x) −
 * log π_ref(y|x)). The global gradient norm is clipped to `maxGradNorm`; with
 * `learner.weightDecay` > 0 the step is AdamW's. A NaN or ±Inf loss or gradient norm throws
 * `NonFiniteUpdateError` before that step changes any weight. Each batch bumps `learner.version`.
 *
 * Metrics (pre-step values, mean over every pair of every step): `dpo/loss`, `dpo/chosen_reward`
 * (mean r̂(x, y_w)), `dpo/rejected_reward` (mean r̂(x, y_l)), `dpo/reward_margin` (mean β·h_i),
 * `dpo/accuracy` (fraction with β·h_i > 0), `grad_norm` (mean pre-clip norm), `policy_version`.
 *
 * @param learner The trained model, optimizer, counters, minibatch stream and the frozen `ref`
 *   (a distinct model with the same vocabulary; typically a copy of the SFT model); mutated.
 * @param config Partial {@link DpoUpdateConfig}; missing keys from {@link DPO_UPDATE_DEFAULTS}.
 * @returns An operator from each batch of pairs to the same batch with the metrics added.
 * @throws DecodeError for a bad config (naming the key); at run time a RangeError naming the pair
 *   (`pairs.2.rejected: expected at least one token, got none`) and `NonFiniteUpdateError`.
 * @example
 * const learner: DpoLearner = { ...lmLearner(policy, { learningRate: 1e-4 }), ref: sftCopy };
 * const batch = { iteration: 0, pairs: [{ prompt: Int32Array.of(1, 4), chosen: Int32Array.of(7), rejected: Int32Array.of(8) }] };
 * of(batch).pipe(dpoUpdate(learner, { beta: 0.1 })).subscribe((b) => {
 *   console.log(b.metrics['dpo/loss'], b.metrics['dpo/accuracy']);
 * });
 */
export function dpoUpdate<B extends PreferenceBatch>(
  learner: DpoLearner,
  config: Partial<DpoUpdateConfig> = {},
): OperatorFunction<B, B & { readonly metrics: Readonly<Record<string, number>> }> {
  const cfg = decodeOrThrow(DpoUpdateConfig, { ...DPO_UPDATE_DEFAULTS, ...config }, 'dpoUpdate config');
  if (!(cfg.labelSmoothing < 0.5)) throw new RangeError(`dpoUpdate: labelSmoothing: expected a number in [0, 0.5), got ${cfg.labelSmoothing}`);
  checkLearner('dpoUpdate', learner);
  if (!learner.ref) throw new RangeError('dpoUpdate: learner.ref: expected the frozen reference model, got none');
  if (learner.ref === learner.lm) throw new RangeError('dpoUpdate: learner.ref: the reference must be a separate, frozen copy, not the trained model itself');
  const V = learner.lm.config.vocabSize;
  if (learner.ref.config.vocabSize !== V)
    throw new RangeError(`dpoUpdate: learner.ref: vocabulary ${learner.ref.config.vocabSize} differs from the trained model's ${V}`);
  return map((batch) => {
    const pairs = batch.pairs;
    pairs.forEach((p, i) => {
      checkTokens('dpoUpdate', p.prompt, `pairs.${i}.prompt`, V);
      checkTokens('dpoUpdate', p.chosen, `pairs.${i}.chosen`, V);
      checkTokens('dpoUpdate', p.rejected, `pairs.${i}.rejected`, V);
    });
    if (pairs.length === 0) return { ...batch, metrics: { ...batch.metrics, policy_version: learner.version } };
    const ref = referenceLogProbs(learner.ref, pairs, Math.ceil(pairs.length / Math.min(cfg.minibatches, pairs.length)));
    const acc = { loss: 0, norm: 0, chosen: 0, rejected: 0, correct: 0, pairs: 0 };
    let n = 0;
    for (let e = 0; e < cfg.epochs; e++) {
      for (const idx of minibatchIndices(pairs.length, cfg.minibatches, learner.rng)) {
        const s = dpoStep(
          learner,
          idx.map((k) => pairs[k]!),
          Float32Array.from(idx, (k) => ref.chosen[k]!),
          Float32Array.from(idx, (k) => ref.rejected[k]!),
          cfg,
          n,
        );
        acc.loss += s.loss * s.pairs;
        acc.norm += s.gradNorm;
        acc.chosen += s.chosenReward;
        acc.rejected += s.rejectedReward;
        acc.correct += s.correct;
        acc.pairs += s.pairs;
        n++;
      }
    }
    learner.version++;
    return {
      ...batch,
      metrics: {
        ...batch.metrics,
        'dpo/loss': acc.loss / acc.pairs,
        'dpo/reward_margin': (acc.chosen - acc.rejected) / acc.pairs,
        'dpo/accuracy': acc.correct / acc.pairs,
        'dpo/chosen_reward': acc.chosen / acc.pairs,
        'dpo/rejected_reward': acc.rejected / acc.pairs,
        grad_norm: acc.norm / n,
        policy_version: learner.version,
      },
    };
  });
}
