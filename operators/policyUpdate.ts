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
 * (Dr. GRPO: 1/(N·C) with C = `aggregationConstant`, default the longest trajectory).
 * Gradients are clipped to a global norm `maxGradNorm`. The loss and the gradient norm are read
 * before any weight changes: a NaN or ±Inf in either throws `NonFiniteUpdateError` and the
 * weights stay as they were. Emits `loss`, `kl`, `clip_frac`, `ratio/mean`, `ratio/max`,
 * `grad_norm`, `entropy`, `policy_version`, `staleness`.
 *
 * ```ts
 * const learner = { policy, optimizer: tf.train.adam(3e-3), version: 0, batchOf: mlpBatchOf };
 * batches$.pipe(returns(), groupAdvantages(), policyUpdate(learner, { epochs: 4, minibatches: 4 }));
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { map, type OperatorFunction } from 'rxjs';
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

export interface PolicyUpdateConfig {
  /** ε of the clipped surrogate. PPO/GRPO default 0.2. */
  clipEps: number;
  /** Upper clip ε_high (DAPO's clip-higher); default = clipEps. */
  clipEpsHigh?: number;
  ratioLevel: 'token' | 'sequence' | 'subtrajectory';
  /** β of the KL penalty to `learner.ref`; 0 turns it off. */
  klCoef: number;
  klEstimator: 'k1' | 'k3';
  /** c_H of the entropy bonus. */
  entropyCoef: number;
  lossAggregation: 'token-mean' | 'sequence-mean' | 'constant';
  /** C of the `constant` aggregation; default: the batch's longest trajectory. */
  aggregationConstant?: number;
  epochs: number;
  minibatches: number;
  /** Global gradient-norm clip; Infinity turns it off. */
  maxGradNorm: number;
  /** Seed of the minibatch shuffling stream. */
  seed: number;
}

export const POLICY_UPDATE_DEFAULTS: PolicyUpdateConfig = {
  clipEps: 0.2,
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
  if (c.clipEpsHigh !== undefined && !(c.clipEpsHigh > 0)) bad('clipEpsHigh', 'a positive number', c.clipEpsHigh);
  if (!Number.isInteger(c.epochs) || c.epochs < 1) bad('epochs', 'a positive integer', c.epochs);
  if (!Number.isInteger(c.minibatches) || c.minibatches < 1) bad('minibatches', 'a positive integer', c.minibatches);
  if (!(c.maxGradNorm > 0)) bad('maxGradNorm', 'a positive number (Infinity to disable)', c.maxGradNorm);
  if (!(c.klCoef >= 0)) bad('klCoef', 'a non-negative number', c.klCoef);
  if (!(c.entropyCoef >= 0)) bad('entropyCoef', 'a non-negative number', c.entropyCoef);
  if (!['token', 'sequence', 'subtrajectory'].includes(c.ratioLevel)) bad('ratioLevel', "'token' | 'sequence' | 'subtrajectory'", c.ratioLevel);
  if (!['token-mean', 'sequence-mean', 'constant'].includes(c.lossAggregation)) bad('lossAggregation', "'token-mean' | 'sequence-mean' | 'constant'", c.lossAggregation);
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
  steps: number;
}

function stepArrays(trs: readonly AdvantagedTrajectory[], cfg: PolicyUpdateConfig, C: number): StepArrays {
  const N = trs.length;
  let S = 0;
  for (const t of trs) S += t.length;
  const oldLogp = new Float32Array(S);
  const adv = new Float32Array(S);
  const weight = new Float32Array(S);
  const seqAdv = Float32Array.from(trs, (t) => t.advantage);
  const segment = cfg.ratioLevel === 'token' ? undefined : new Float32Array(N * S);
  let o = 0;
  trs.forEach((t, i) => {
    const T = t.length;
    const w = cfg.lossAggregation === 'token-mean' ? 1 / S : cfg.lossAggregation === 'sequence-mean' ? 1 / (N * T) : 1 / (N * C);
    for (let k = 0; k < T; k++) {
      oldLogp[o + k] = t.logProbs[k]!;
      adv[o + k] = t.advantage;
      weight[o + k] = w;
      if (segment) segment[i * S + o + k] = cfg.ratioLevel === 'sequence' ? 1 / T : 1;
    }
    o += T;
  });
  return { oldLogp, adv, weight, segment, seqAdv, steps: S };
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
export function updateStep<B>(learner: Learner<B>, trs: readonly AdvantagedTrajectory[], cfg: PolicyUpdateConfig, C: number, step?: { done: number }): StepStats {
  const a = stepArrays(trs, cfg, C);
  if (a.steps === 0) throw new RangeError('policyUpdate: a minibatch with no steps');
  const lo = 1 - cfg.clipEps;
  const hi = 1 + (cfg.clipEpsHigh ?? cfg.clipEps);
  const batch = learner.batchOf(trs);
  const vars = learner.policy.variables.filter((v) => v.trainable);

  const stats = tf.tidy(() => {
    const oldLogp = tf.tensor1d(a.oldLogp);
    const weight = tf.tensor1d(a.weight);
    const refLogp = cfg.klCoef > 0 && learner.ref ? tf.reshape(learner.ref.logProb(batch), [-1]) : undefined;
    let side: tf.Tensor[] = [];
    const { value: loss, grads } = tf.variableGrads(() => {
      const logp = tf.reshape(learner.policy.logProb(batch), [-1]);
      const logRatio = tf.sub(logp, oldLogp);
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
        surrogate = tf.mean(tf.minimum(tf.mul(ratio, adv), tf.mul(tf.clipByValue(ratio, lo, hi), adv)));
      }
      let total = tf.neg(surrogate);
      let kl: tf.Tensor = tf.scalar(0);
      if (refLogp) {
        const d = tf.sub(refLogp, logp);
        const perStep = cfg.klEstimator === 'k1' ? tf.neg(d) : tf.sub(tf.sub(tf.exp(d), d), 1);
        kl = tf.sum(tf.mul(perStep, weight));
        total = tf.add(total, tf.mul(cfg.klCoef, kl));
      }
      let entropy: tf.Tensor = tf.scalar(0);
      if (cfg.entropyCoef > 0) {
        entropy = tf.sum(tf.mul(tf.reshape(learner.policy.entropy(batch), [-1]), weight));
        total = tf.sub(total, tf.mul(cfg.entropyCoef, entropy));
      }
      const clipped = tf.logicalOr(tf.less(ratio, lo), tf.greater(ratio, hi));
      side = [tf.keep(kl), tf.keep(entropy), tf.keep(tf.mean(tf.cast(clipped, 'float32'))), tf.keep(tf.mean(ratio)), tf.keep(tf.max(ratio))];
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
      throw new TypeError(`policyUpdate: trajectories of group ${uncombined.groupId} carry cost advantages that were never combined with the reward advantage; put primalDual between constraintCost and policyUpdate`);
    }
    if (trs.length === 0) return { ...batch, metrics: { ...batch.metrics, policy_version: learner.version } };
    const C = cfg.aggregationConstant ?? Math.max(...trs.map((t) => t.length));
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
        const s = updateStep(learner, idx.map((k) => trs[k]!), cfg, C, { done: n });
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
