/**
 * `dtSupervisedUpdate` — Online Decision Transformer's supervised update (Zheng, Zhang & Grover
 * 2022, arXiv 2202.05607), offline pretraining and online finetuning alike.
 *
 * In: any item with `trajectories` (targets = the returns-to-go to learn from: the dataset's, or
 * hindsight-relabeled ones from the replay buffer) and optional `metrics`; out: the same item with
 * the metrics added. Per item, `steps` optimizer steps, each on `batchSize` K-windows sampled from
 * the trajectories (trajectory j with P ∝ T_j, start uniform; lib/datasets/windows.ts):
 *
 *   L(θ) = −(1/|M|) Σ_{(b,t)∈M} log π_θ(a_{b,t} | R̂, s, a_<t)  −  α · H(θ)
 *   H(θ) = −(1/|M|) Σ_{(b,t)∈M} log π_θ(tanh(μ + σ ε)),   ε ~ N(0, I) (one sample, ODT)
 *
 * over the real (unpadded) positions M; α = exp(log α) is held fixed in L and learned as a dual
 * variable: J(log α) = α · (H − H̄) with H̄ = −|A| (ODT's target entropy), one Adam step on
 * log α per optimizer step (a scalar Adam in float64, so its state is plain data). θ takes AdamW
 * (decoupled weight decay on matrices) with a linear learning-rate warm-up over `warmupSteps` and
 * the global gradient norm clipped to `maxGradNorm` (ODT: LAMB, lr 1e-4, wd 5e-4, warm-up 10⁴,
 * clip 0.25; LAMB's layer-wise trust ratio is not implemented, AdamW is the documented stand-in).
 * The DT has no dropout (ODT's 0.1 is not available). A NaN or ±Inf loss or gradient norm throws
 * `NonFiniteUpdateError` before any weight changes.
 *
 * Metrics: `dt/nll` (mean over steps), `dt/entropy`, `dt/temperature` (α after the steps),
 * `grad_norm` (mean pre-clip norm), `policy_version` (incremented once per item).
 *
 * ```ts
 * const learner = dtLearner(dt, { seed: 1 });
 * of({ iteration: 0, trajectories: d4rlTrajectories(data, 'Hopper-v4'), metrics: {} })
 *   .pipe(dtSupervisedUpdate(learner, { steps: 10, stateNorm }));
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { FiniteNumber, NonNegativeInt, NonNegativeNumber, PositiveInt, PositiveNumber, decodeOrThrow } from '../lib/codec.ts';
import type { Trajectory } from '../lib/data.ts';
import { sampleWindows, windowBatch } from '../lib/datasets/windows.ts';
import { type DecisionTransformer, type DtBatch, tanhGaussianLogProb, tanhGaussianLogProbPre } from '../lib/models/decision-transformer.ts';
import type { StateNorm } from '../lib/models/dt-batch.ts';
import { Rng, type RngState } from '../lib/random.ts';
import { NonFiniteUpdateError } from './policyUpdate.ts';

/** The knobs of the update (ODT's MuJoCo values as defaults). */
export const DtSupervisedUpdateProps = {
  /** Optimizer steps per item. */
  steps: PositiveInt,
  /** Windows per step (ODT: 256). */
  batchSize: PositiveInt,
  /** K: window length in steps (ODT: 20). */
  contextLength: PositiveInt,
  /** Peak learning rate of AdamW (ODT: 1e-4). */
  learningRate: PositiveNumber,
  /** Decoupled weight decay λ on matrices (ODT: 5e-4). */
  weightDecay: NonNegativeNumber,
  /** Linear warm-up of the learning rate over this many optimizer steps (ODT: 10000). */
  warmupSteps: NonNegativeInt,
  /** Global gradient-norm clip (ODT: 0.25). */
  maxGradNorm: PositiveNumber,
  /** Factor on the returns-to-go (ODT MuJoCo: 1/1000). */
  rtgScale: PositiveNumber,
  /** Learning rate of log α (ODT: 1e-4). */
  temperatureLearningRate: PositiveNumber,
  /** Target entropy H̄; null: −|A| (ODT). */
  targetEntropy: t.union([FiniteNumber, t.null]),
};
export const DtSupervisedUpdateConfig = t.type(DtSupervisedUpdateProps, 'DtSupervisedUpdateConfig');
export type DtSupervisedUpdateConfig = t.TypeOf<typeof DtSupervisedUpdateConfig>;

export const DT_SUPERVISED_UPDATE_DEFAULTS: DtSupervisedUpdateConfig = {
  steps: 1,
  batchSize: 256,
  contextLength: 20,
  learningRate: 1e-4,
  weightDecay: 5e-4,
  warmupSteps: 10000,
  maxGradNorm: 0.25,
  rtgScale: 1e-3,
  temperatureLearningRate: 1e-4,
  targetEntropy: null,
};

/** Plain state of the learner besides the weights and the optimizer slots (checkpointable). */
export const DtLearnerStateC = t.type(
  {
    step: NonNegativeInt,
    version: NonNegativeInt,
    logTemperature: FiniteNumber,
    /** Adam moments and step count of log α. */
    temperatureAdam: t.type({ m: FiniteNumber, v: FiniteNumber, t: NonNegativeInt }),
    rng: t.type({ s: t.tuple([t.number, t.number, t.number, t.number]), spare: t.union([t.number, t.null]) }),
  },
  'DtLearnerState',
);
export type DtLearnerState = t.TypeOf<typeof DtLearnerStateC>;

/** What the update changes: the DT, its AdamW optimizer, the temperature, counters and the sampling stream. */
export interface DtLearner {
  readonly dt: DecisionTransformer;
  readonly optimizer: tf.Optimizer;
  logTemperature: number;
  temperatureAdam: { m: number; v: number; t: number };
  /** Window sampling and entropy noise. */
  readonly rng: Rng;
  /** Optimizer steps taken (drives the warm-up). */
  step: number;
  version: number;
}

/** A fresh learner: Adam(β 0.9, 0.999, ε 1e-8), log α = ln(initTemperature) (ODT: 0.1), counters at 0. */
export function dtLearner(dt: DecisionTransformer, opts: { seed?: number; initTemperature?: number } = {}): DtLearner {
  const a0 = opts.initTemperature ?? 0.1;
  if (!(a0 > 0) || !Number.isFinite(a0)) throw new RangeError(`dtLearner: initTemperature: expected a positive number, got ${a0}`);
  return {
    dt,
    optimizer: tf.train.adam(1e-4, 0.9, 0.999, 1e-8),
    logTemperature: Math.log(a0),
    temperatureAdam: { m: 0, v: 0, t: 0 },
    rng: new Rng(opts.seed ?? 0, 'dtSupervisedUpdate'),
    step: 0,
    version: 0,
  };
}

export function dtLearnerState(l: DtLearner): DtLearnerState {
  const r = l.rng.state();
  return {
    step: l.step,
    version: l.version,
    logTemperature: l.logTemperature,
    temperatureAdam: { ...l.temperatureAdam },
    rng: { s: [...r.s], spare: r.spare },
  };
}

export function restoreDtLearner(l: DtLearner, s: DtLearnerState): void {
  l.step = s.step;
  l.version = s.version;
  l.logTemperature = s.logTemperature;
  l.temperatureAdam = { ...s.temperatureAdam };
  l.rng.setState(s.rng as RngState);
}

export interface DtStepResult {
  nll: number;
  entropy: number;
  gradNorm: number;
  /** The value of the `extra` loss term (0 without one). */
  extra: number;
}

/**
 * An additional loss term on the step's batch (e.g. ODT+TD3's −α_Q·Q(s, ã)), added to L(θ)
 * inside the gradient tape; `mean` and `logStd` are the DT's pre-tanh outputs [B, K, A].
 */
export type DtExtraLoss = (dist: { mean: tf.Tensor3D; logStd: tf.Tensor3D }, batch: DtBatch) => tf.Scalar;

/** One optimizer step on `trajectories` (see the module doc); `extra` adds a loss term. */
export function dtSupervisedStep(
  learner: DtLearner,
  trajectories: readonly Trajectory[],
  cfg: DtSupervisedUpdateConfig,
  stateNorm?: StateNorm,
  extra?: DtExtraLoss,
): DtStepResult {
  const { dt } = learner;
  const K = cfg.contextLength;
  const windows = sampleWindows(trajectories, cfg.batchSize, K, learner.rng);
  const b = windowBatch(trajectories, windows, { K, rtgScale: cfg.rtgScale, maxTimestep: dt.maxEpisodeSteps - 1, ...(stateNorm ? { stateNorm } : {}) });
  const B = b.batchSize;
  const A = dt.actDim;
  const eps = Float32Array.from(learner.rng.normalArray(B * K * A));
  const alpha = Math.exp(learner.logTemperature);
  const vars = dt.variables.filter((v) => v.trainable);
  const lr = cfg.learningRate * Math.min(1, (learner.step + 1) / Math.max(1, cfg.warmupSteps));
  const res = tf.tidy(() => {
    const mask = tf.tensor2d(b.mask, [B, K]);
    const count = b.mask.reduce((s, x) => s + x, 0);
    let nllT: tf.Scalar = tf.scalar(0);
    let entT: tf.Scalar = tf.scalar(0);
    let extraT: tf.Scalar = tf.scalar(0);
    const { value, grads } = tf.variableGrads(() => {
      const { mean, logStd } = dt.dist(b);
      const logp = tanhGaussianLogProb(tf.tensor3d(b.actions, [B, K, A]), mean, logStd);
      const u = tf.add(mean, tf.mul(tf.exp(logStd), tf.tensor3d(eps, [B, K, A])));
      const sampled = tanhGaussianLogProbPre(u, mean, logStd);
      const nll = tf.div(tf.neg(tf.sum(tf.mul(logp, mask))), count) as tf.Scalar;
      const ent = tf.div(tf.neg(tf.sum(tf.mul(sampled, mask))), count) as tf.Scalar;
      nllT = tf.keep(nll);
      entT = tf.keep(ent);
      const base = tf.sub(nll, tf.mul(alpha, ent)) as tf.Scalar;
      if (!extra) return base;
      extraT = tf.keep(extra({ mean: mean as tf.Tensor3D, logStd: logStd as tf.Tensor3D }, b));
      return tf.add(base, extraT) as tf.Scalar;
    }, vars);
    const names = Object.keys(grads);
    const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!)))));
    const read = tf.stack([value, norm, nllT, entT, extraT]).dataSync();
    nllT.dispose();
    entT.dispose();
    extraT.dispose();
    const [loss, gradNorm, nll, entropy, extraV] = [read[0]!, read[1]!, read[2]!, read[3]!, read[4]!];
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteUpdateError(
        `dtSupervisedUpdate: non-finite ${Number.isFinite(loss) ? 'gradient norm' : 'loss'} (loss ${loss}, grad norm ${gradNorm}) at optimizer step ${learner.step}; this step changed no weights`,
      );
    }
    const scale = Math.min(1, cfg.maxGradNorm / (gradNorm + 1e-6));
    const applied: tf.NamedTensorMap = {};
    for (const n of names) applied[n] = scale < 1 ? tf.mul(grads[n]!, scale) : grads[n]!;
    // AdamW (PyTorch order): θ ← θ·(1 − η·λ) on matrices, then the Adam step at the warmed-up rate.
    if (cfg.weightDecay > 0) for (const v of vars) if (v.rank >= 2) v.assign(tf.mul(v, 1 - lr * cfg.weightDecay));
    (learner.optimizer as unknown as { learningRate: number }).learningRate = lr;
    learner.optimizer.applyGradients(applied);
    return { nll, entropy, gradNorm, extra: extraV };
  });
  // The temperature's dual step: ∂/∂log α [α (H − H̄)] = α (H − H̄), one scalar Adam step.
  const target = cfg.targetEntropy ?? -A;
  const g = alpha * (res.entropy - target);
  const s = learner.temperatureAdam;
  s.t++;
  s.m = 0.9 * s.m + 0.1 * g;
  s.v = 0.999 * s.v + 0.001 * g * g;
  const mHat = s.m / (1 - 0.9 ** s.t);
  const vHat = s.v / (1 - 0.999 ** s.t);
  learner.logTemperature -= (cfg.temperatureLearningRate * mHat) / (Math.sqrt(vHat) + 1e-8);
  learner.step++;
  return res;
}

/**
 * The supervised DT update as an operator (see the module doc).
 *
 * @param learner From `dtLearner`; mutated (weights, optimizer, temperature, counters, stream).
 * @param config Partial {@link DtSupervisedUpdateConfig} (defaults {@link DT_SUPERVISED_UPDATE_DEFAULTS}) plus the state normalisation and an optional extra loss term (`extraLoss`, e.g. ODT+TD3's −α_Q·Q).
 */
export function dtSupervisedUpdate<In extends { readonly trajectories: readonly Trajectory[]; readonly metrics?: Readonly<Record<string, number>> }>(
  learner: DtLearner,
  config: Partial<DtSupervisedUpdateConfig> & { stateNorm?: StateNorm; extraLoss?: DtExtraLoss | undefined } = {},
): OperatorFunction<In, In & { readonly metrics: Readonly<Record<string, number>> }> {
  const { stateNorm, extraLoss, ...rest } = config;
  const cfg = decodeOrThrow(DtSupervisedUpdateConfig, { ...DT_SUPERVISED_UPDATE_DEFAULTS, ...rest }, 'dtSupervisedUpdate config');
  return map((item) => {
    if (item.trajectories.length === 0) throw new RangeError('dtSupervisedUpdate: an item with no trajectories');
    let nll = 0;
    let ent = 0;
    let norm = 0;
    for (let k = 0; k < cfg.steps; k++) {
      const r = dtSupervisedStep(learner, item.trajectories, cfg, stateNorm, extraLoss);
      nll += r.nll;
      ent += r.entropy;
      norm += r.gradNorm;
    }
    learner.version++;
    const n = cfg.steps;
    return {
      ...item,
      metrics: {
        ...item.metrics,
        'dt/nll': nll / n,
        'dt/entropy': ent / n,
        'dt/temperature': Math.exp(learner.logTemperature),
        grad_norm: norm / n,
        policy_version: learner.version,
      },
    };
  });
}
