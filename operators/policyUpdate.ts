// `policyUpdate`: the clipped policy-gradient update (PPO / GRPO / GSPO) — documented on the exported `policyUpdate` (hover it).
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { NonNegativeNumber, PositiveInt, PositiveNumber, Uint32, oneOf } from '../lib/codec.ts';
import type { AdvantagedGroup, AdvantagedTrajectory, Batch, Trajectory, UNCOMBINED_COST } from '../lib/data.ts';

/** What policyUpdate trains on: advantaged groups whose cost advantages (if any) went through primalDual. */
export interface UpdatableGroup extends Omit<AdvantagedGroup, 'trajectories'> {
  trajectories: (AdvantagedTrajectory & { readonly [UNCOMBINED_COST]?: never })[];
}
import type { Policy } from '../lib/models/policy.ts';
import { Rng } from '../lib/random.ts';

/** The learner's state: what an update changes and a checkpoint must hold. */
export interface Learner<B> {
  readonly policy: Policy<B, unknown, unknown>;
  readonly optimizer: tf.Optimizer;
  /**
   * The policy's training batch for these trajectories. Contract: `policy.logProb(batchOf(trs))`
   * (and `entropy`), flattened, is every trajectory's per-step value in trajectory order.
   */
  batchOf(trajectories: readonly Trajectory[]): B;
  /** Incremented by every `policyUpdate` batch. */
  version: number;
  /** Frozen reference policy for the KL penalty (same batch type). */
  readonly ref?: Policy<B, unknown, unknown>;
  /** Minibatch shuffling stream; part of the learner so a checkpoint can carry it. Default: from `seed`. */
  readonly rng?: Rng;
}

/**
 * The update's knobs as a codec (the single source of their type, `PolicyUpdateConfig`, and of the
 * pipeline-file checks):
 *
 * - `clipEps`: ε of the clipped surrogate. PPO/GRPO default 0.2.
 * - `clipEpsHigh`: upper clip ε_high (DAPO's clip-higher); `null` (default) = `clipEps`.
 * - `ratioLevel`: `'token'` (default) | `'sequence'` | `'subtrajectory'`.
 * - `klCoef`: β of the KL penalty to `learner.ref`; 0 (default) turns it off. `klEstimator`: `'k1'` | `'k3'` (default).
 * - `entropyCoef`: c_H of the entropy bonus. Default 0.
 * - `lossAggregation`: `'token-mean'` (default) | `'sequence-mean'` | `'constant'`; `aggregationConstant`
 *   (optional): C of `constant`, default the batch's longest trajectory.
 * - `epochs`, `minibatches`: passes over the batch and minibatches per pass. Default 1 and 1.
 * - `maxGradNorm`: global gradient-norm clip (Infinity, from code, turns it off). Default 1.
 * - `seed`: seed of the minibatch shuffling stream. Default 0.
 */
export const PolicyUpdateProps = {
  clipEps: PositiveNumber,
  clipEpsHigh: t.union([PositiveNumber, t.null]),
  ratioLevel: oneOf(['token', 'sequence', 'subtrajectory']),
  klCoef: NonNegativeNumber,
  klEstimator: oneOf(['k1', 'k3']),
  entropyCoef: NonNegativeNumber,
  lossAggregation: oneOf(['token-mean', 'sequence-mean', 'constant']),
  epochs: PositiveInt,
  minibatches: PositiveInt,
  maxGradNorm: PositiveNumber,
  seed: Uint32,
};
export const PolicyUpdateOptions = t.intersection([t.type(PolicyUpdateProps), t.partial({ aggregationConstant: PositiveNumber })], 'PolicyUpdateOptions');
export type PolicyUpdateConfig = t.TypeOf<typeof PolicyUpdateOptions>;

export const POLICY_UPDATE_DEFAULTS: PolicyUpdateConfig = {
  clipEps: 0.2,
  clipEpsHigh: null,
  ratioLevel: 'token',
  klCoef: 0,
  klEstimator: 'k3',
  entropyCoef: 0,
  lossAggregation: 'token-mean',
  epochs: 1,
  minibatches: 1,
  maxGradNorm: 1,
  seed: 0,
};

export class NonFiniteUpdateError extends Error {
  override readonly name = 'NonFiniteUpdateError';
}

function checkConfig(c: PolicyUpdateConfig): void {
  const bad = (k: string, why: string, v: unknown) => {
    throw new RangeError(`policyUpdate: ${k}: expected ${why}, got ${String(v)}`);
  };
  if (!(c.clipEps > 0)) bad('clipEps', 'a positive number', c.clipEps);
  if (c.clipEpsHigh != null && !(c.clipEpsHigh > 0)) bad('clipEpsHigh', 'a positive number', c.clipEpsHigh);
  if (!Number.isInteger(c.epochs) || c.epochs < 1) bad('epochs', 'a positive integer', c.epochs);
  if (!Number.isInteger(c.minibatches) || c.minibatches < 1) bad('minibatches', 'a positive integer', c.minibatches);
  if (!(c.maxGradNorm > 0)) bad('maxGradNorm', 'a positive number (Infinity to disable)', c.maxGradNorm);
  if (!(c.klCoef >= 0)) bad('klCoef', 'a non-negative number', c.klCoef);
  if (!(c.entropyCoef >= 0)) bad('entropyCoef', 'a non-negative number', c.entropyCoef);
  if (!['token', 'sequence', 'subtrajectory'].includes(c.ratioLevel)) bad('ratioLevel', "'token' | 'sequence' | 'subtrajectory'", c.ratioLevel);
  if (!['token-mean', 'sequence-mean', 'constant'].includes(c.lossAggregation))
    bad('lossAggregation', "'token-mean' | 'sequence-mean' | 'constant'", c.lossAggregation);
  if (!['k1', 'k3'].includes(c.klEstimator)) bad('klEstimator', "'k1' | 'k3'", c.klEstimator);
}

/** Per-step arrays of a minibatch: old log-probs, advantages, aggregation weights, segments. */
interface StepArrays {
  oldLogp: Float32Array;
  adv: Float32Array;
  weight: Float32Array;
  /** For sequence-level ratios: [N, S] segment matrix (1/T_i or 1 on trajectory i's steps). */
  segment?: Float32Array;
  seqAdv: Float32Array;
  /** For sequence-level ratios: trajectory i's weight, Σ_t w over its steps (its term counts on each step). */
  seqWeight: Float32Array;
  /** 1 on real steps, 0 on padding (`Trajectory.mask` 0), length S. */
  valid: Float32Array;
  /** 1 on each ratio that counts in the metrics (real steps; trajectories with a real step). */
  ratioValid: Float32Array;
  /** Σ ratioValid. */
  ratioCount: number;
  steps: number;
  /** Real (unpadded) steps. */
  validSteps: number;
}

/** The number of real steps of a trajectory: its mask's non-zero entries (all T without a mask). */
function validLength(t: Trajectory): number {
  if (!t.mask) return t.length;
  let n = 0;
  for (let k = 0; k < t.length; k++) if (t.mask[k] !== 0) n++;
  return n;
}

function stepArrays(trs: readonly AdvantagedTrajectory[], cfg: PolicyUpdateConfig, C: number): StepArrays {
  let S = 0;
  for (const t of trs) S += t.length;
  // Padding steps (mask 0) count nowhere: not in the weights, token counts, ratios or metrics.
  const lengths = trs.map(validLength);
  const validSteps = lengths.reduce((x, y) => x + y, 0);
  const N = lengths.filter((T) => T > 0).length;
  const valid = new Float32Array(S);
  const oldLogp = new Float32Array(S);
  const adv = new Float32Array(S);
  const weight = new Float32Array(S);
  const seqAdv = Float32Array.from(trs, (t) => t.advantage);
  const seqWeight = new Float32Array(trs.length);
  const segment = cfg.ratioLevel === 'token' ? undefined : new Float32Array(trs.length * S);
  let o = 0;
  trs.forEach((t, i) => {
    const T = lengths[i]!;
    const w = cfg.lossAggregation === 'token-mean' ? 1 / validSteps : cfg.lossAggregation === 'sequence-mean' ? 1 / (N * T) : 1 / (N * C);
    for (let k = 0; k < t.length; k++) {
      if (t.mask && t.mask[k] === 0) continue;
      valid[o + k] = 1;
      oldLogp[o + k] = t.logProbs[k]!;
      adv[o + k] = t.advantage;
      weight[o + k] = w;
      if (segment) segment[i * S + o + k] = cfg.ratioLevel === 'sequence' ? 1 / T : 1;
    }
    seqWeight[i] = T > 0 ? T * w : 0;
    o += t.length;
  });
  const ratioValid = segment ? Float32Array.from(lengths, (T) => (T > 0 ? 1 : 0)) : valid;
  return { oldLogp, adv, weight, segment, seqAdv, seqWeight, valid, ratioValid, ratioCount: segment ? N : validSteps, steps: S, validSteps };
}

interface StepStats {
  loss: number;
  kl: number;
  clipFrac: number;
  ratioMean: number;
  ratioMax: number;
  entropy: number;
  gradNorm: number;
}

/** One optimizer step on a minibatch. Throws before applying anything if the loss or gradient is not finite. */
export function updateStep<B>(
  learner: Learner<B>,
  trs: readonly AdvantagedTrajectory[],
  cfg: PolicyUpdateConfig,
  C: number,
  step?: { done: number },
): StepStats {
  const a = stepArrays(trs, cfg, C);
  if (a.validSteps === 0) throw new RangeError('policyUpdate: a minibatch with no steps (or only padding)');
  const lo = 1 - cfg.clipEps;
  const hi = 1 + (cfg.clipEpsHigh ?? cfg.clipEps);
  const batch = learner.batchOf(trs);
  const vars = learner.policy.variables.filter((v) => v.trainable);

  const stats = tf.tidy(() => {
    const oldLogp = tf.tensor1d(a.oldLogp);
    const weight = tf.tensor1d(a.weight);
    // Measured whenever a reference exists (the `kl` metric), in the loss only when klCoef > 0.
    const refLogp = learner.ref ? tf.reshape(learner.ref.logProb(batch), [-1]) : undefined;
    let side: tf.Tensor[] = [];
    const { value: loss, grads } = tf.variableGrads(() => {
      const logp = tf.reshape(learner.policy.logProb(batch), [-1]);
      const logRatio = tf.mul(tf.sub(logp, oldLogp), tf.tensor1d(a.valid)); // 0 on padding: ratio 1
      let ratio: tf.Tensor;
      let surrogate: tf.Tensor; // scalar, to maximise
      if (!a.segment) {
        ratio = tf.exp(logRatio);
        const adv = tf.tensor1d(a.adv);
        const s = tf.minimum(tf.mul(ratio, adv), tf.mul(tf.clipByValue(ratio, lo, hi), adv));
        surrogate = tf.sum(tf.mul(s, weight));
      } else {
        const seg = tf.tensor2d(a.segment, [trs.length, a.steps]);
        ratio = tf.exp(tf.squeeze(tf.matMul(seg, tf.reshape(logRatio, [-1, 1])), [1]));
        const adv = tf.tensor1d(a.seqAdv);
        const s = tf.minimum(tf.mul(ratio, adv), tf.mul(tf.clipByValue(ratio, lo, hi), adv));
        surrogate = tf.sum(tf.mul(s, tf.tensor1d(a.seqWeight)));
      }
      let total = tf.neg(surrogate);
      let kl: tf.Tensor = tf.scalar(0);
      if (refLogp) {
        const d = tf.mul(tf.sub(refLogp, logp), tf.tensor1d(a.valid));
        const perStep = cfg.klEstimator === 'k1' ? tf.neg(d) : tf.sub(tf.sub(tf.exp(d), d), 1);
        kl = tf.sum(tf.mul(perStep, weight));
        if (cfg.klCoef > 0) total = tf.add(total, tf.mul(cfg.klCoef, kl));
      }
      let entropy: tf.Tensor = tf.scalar(0);
      if (cfg.entropyCoef > 0) {
        entropy = tf.sum(tf.mul(tf.reshape(learner.policy.entropy(batch), [-1]), weight));
        total = tf.sub(total, tf.mul(cfg.entropyCoef, entropy));
      }
      const clipped = tf.logicalOr(tf.less(ratio, lo), tf.greater(ratio, hi));
      // Ratio metrics over the counted ratios (all of them unless there is padding).
      const counted = a.ratioCount === a.ratioValid.length ? undefined : tf.tensor1d(a.ratioValid);
      const meanCounted = (x: tf.Tensor) => (counted ? tf.div(tf.sum(tf.mul(x, counted)), a.ratioCount) : tf.mean(x));
      side = [
        tf.keep(kl),
        tf.keep(entropy),
        tf.keep(meanCounted(tf.cast(clipped, 'float32'))),
        tf.keep(meanCounted(ratio)),
        tf.keep(tf.max(counted ? tf.mul(ratio, counted) : ratio)),
      ];
      return total as tf.Scalar;
    }, vars);
    if (cfg.entropyCoef === 0) {
      // Report the entropy even when it is not in the loss.
      side[1]!.dispose();
      side[1] = tf.keep(tf.sum(tf.mul(tf.reshape(learner.policy.entropy(batch), [-1]), weight)));
    }
    const names = Object.keys(grads);
    const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!)))));
    // One device read for all seven scalars.
    const [lossV, normV, klV, entV, clipV, rMeanV, rMaxV] = tf.stack([loss, norm, ...side]).dataSync();
    side.forEach((x) => x.dispose());
    if (!Number.isFinite(lossV!) || !Number.isFinite(normV!)) {
      throw new NonFiniteUpdateError(
        `policyUpdate: non-finite ${Number.isFinite(lossV!) ? 'gradient norm' : 'loss'} (loss ${lossV}, grad norm ${normV}) at policy version ${learner.version}; this step changed no weights${step ? ` (${step.done} earlier minibatch step${step.done === 1 ? ' was' : 's were'} applied in this batch)` : ''}`,
      );
    }
    const scale = Math.min(1, cfg.maxGradNorm / (normV! + 1e-6));
    const applied: tf.NamedTensorMap = {};
    for (const n of names) applied[n] = scale < 1 ? tf.mul(grads[n]!, scale) : grads[n]!;
    learner.optimizer.applyGradients(applied);
    return { loss: lossV!, kl: klV!, clipFrac: clipV!, ratioMean: rMeanV!, ratioMax: rMaxV!, entropy: entV!, gradNorm: normV! };
  });
  return stats;
}

/**
 * `policyUpdate` — the clipped policy-gradient update (PPO / GRPO / GSPO family).
 *
 * In and out: `Batch<AdvantagedGroup>`. For `epochs` passes over `minibatches` random slices of
 * the batch's trajectories it takes one optimizer step on
 *
 *   L(θ) = −Σ_i w · min(ρ · A_i, clip(ρ, 1 − ε, 1 + ε_high) · A_i)  +  β · KL  −  c_H · H
 *
 * where A_i is trajectory i's advantage (broadcast over its steps) and the importance ratio ρ is
 * - `token`:         ρ_{i,t} = π_θ(a_t|·) / π_θold(a_t|·), one per step (PPO, GRPO);
 * - `sequence`:      s_i = exp((1/T_i) Σ_t log ρ_{i,t}), GSPO's length-normalised geometric mean;
 * - `subtrajectory`: s_i = exp(Σ_t log ρ_{i,t}), the joint likelihood ratio of the whole
 *                    sub-trajectory (GRPO for Decision Transformers).
 * KL to a frozen reference policy per step: k1 = log π_θ − log π_ref, or Schulman's k3 =
 * exp(log π_ref − log π_θ) − (log π_ref − log π_θ) − 1. Entropy H per step from the policy.
 * Aggregation weights w: `token-mean` (1/Σ_i T_i), `sequence-mean` (1/(N·T_i)), `constant`
 * (Dr. GRPO: 1/(N·C) with C = `aggregationConstant`, default the longest trajectory). They weigh
 * the whole loss: with a `sequence` or `subtrajectory` ratio, trajectory i's one clipped term
 * counts on each of its T_i steps, so its weight is T_i·w — T_i/Σ_j T_j (`token-mean`), 1/N
 * (`sequence-mean`, GSPO's objective) or T_i/(N·C) (`constant`). The `kl` metric is measured
 * whenever `learner.ref` exists; it enters the loss only when β = `klCoef` > 0. Padding steps
 * (`Trajectory.mask` 0) count nowhere: T_i, Σ T_i and N count real steps and trajectories only.
 * Gradients are clipped to a global norm `maxGradNorm`. The loss and the gradient norm are read
 * before any weight changes: a NaN or ±Inf in either throws `NonFiniteUpdateError` and the
 * weights stay as they were. Emits `loss`, `kl`, `clip_frac`, `ratio/mean`, `ratio/max`,
 * `grad_norm`, `entropy`, `policy_version`, `staleness`.
 *
 * @param learner The policy, optimizer, batch builder, version counter, optional frozen `ref` and minibatch `rng` ({@link Learner}); built once, mutated by every batch of every subscription, and what a checkpoint stores.
 * @param config Partial {@link PolicyUpdateConfig} (knobs declared on {@link PolicyUpdateProps}); missing keys from {@link POLICY_UPDATE_DEFAULTS}.
 * @returns An operator from `Batch<UpdatableGroup>` to `Batch<AdvantagedGroup>` (the same groups) with the update metrics added.
 * @throws RangeError for a bad config (naming the key) or `klCoef > 0` without `learner.ref`; `NonFiniteUpdateError` (stream error) for a NaN/Inf loss or gradient.
 * @example
 * ```ts
 * const learner = { policy, optimizer: tf.train.adam(3e-3), version: 0, batchOf: stepBatchOf };
 * batches$.pipe(returns(), groupAdvantages(), policyUpdate(learner, { epochs: 4, minibatches: 4 }));
 * ```
 */
export function policyUpdate<B>(
  learner: Learner<B>,
  config: Partial<PolicyUpdateConfig> = {},
): OperatorFunction<Batch<UpdatableGroup>, Batch<AdvantagedGroup>> {
  const cfg: PolicyUpdateConfig = { ...POLICY_UPDATE_DEFAULTS, ...config };
  checkConfig(cfg);
  if (cfg.klCoef > 0 && !learner.ref) throw new RangeError('policyUpdate: klCoef > 0 needs a reference policy (learner.ref)');
  const rng = learner.rng ?? new Rng(cfg.seed, 'policyUpdate/minibatch');
  return map((batch) => {
    const trs = batch.groups.flatMap((g) => g.trajectories).filter((t) => t.length > 0);
    const uncombined = trs.find((t) => t.costAdvantages !== undefined && t.scores?.['advantage/reward'] === undefined);
    if (uncombined) {
      throw new TypeError(
        `policyUpdate: trajectories of group ${uncombined.groupId} carry cost advantages that were never combined with the reward advantage; put primalDual between constraintCost and policyUpdate`,
      );
    }
    if (trs.length === 0) return { ...batch, metrics: { ...batch.metrics, policy_version: learner.version } };
    const C = cfg.aggregationConstant ?? Math.max(...trs.map(validLength));
    const staleness = trs.reduce((s, t) => s + (learner.version - t.policyVersion), 0) / trs.length;
    const acc = { loss: 0, kl: 0, clipFrac: 0, ratioMean: 0, entropy: 0, gradNorm: 0 };
    let ratioMax = -Infinity;
    let n = 0;
    const order = trs.map((_, i) => i);
    const mbCount = Math.min(cfg.minibatches, trs.length);
    for (let e = 0; e < cfg.epochs; e++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      for (let m = 0; m < mbCount; m++) {
        const idx = order.filter((_, k) => k % mbCount === m);
        const s = updateStep(
          learner,
          idx.map((k) => trs[k]!),
          cfg,
          C,
          { done: n },
        );
        acc.loss += s.loss;
        acc.kl += s.kl;
        acc.clipFrac += s.clipFrac;
        acc.ratioMean += s.ratioMean;
        acc.entropy += s.entropy;
        acc.gradNorm += s.gradNorm;
        ratioMax = Math.max(ratioMax, s.ratioMax);
        n++;
      }
    }
    learner.version++;
    return {
      ...batch,
      metrics: {
        ...batch.metrics,
        loss: acc.loss / n,
        kl: acc.kl / n,
        clip_frac: acc.clipFrac / n,
        'ratio/mean': acc.ratioMean / n,
        'ratio/max': ratioMax,
        entropy: acc.entropy / n,
        grad_norm: acc.gradNorm / n,
        policy_version: learner.version,
        staleness,
      },
    };
  });
}
