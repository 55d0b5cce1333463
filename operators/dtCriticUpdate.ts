// `dtCriticUpdate`: TD3 twin critics for a Decision Transformer actor — documented on the exported `dtCriticUpdate` (hover it).
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { NonNegativeInt, NonNegativeNumber, PositiveInt, UnitInterval, decodeOrThrow } from '../lib/codec.ts';
import { RngStateC, type Batch } from '../lib/data.ts';
import { TwinCritic, polyakUpdate } from '../lib/models/critic.ts';
import type { DecisionTransformer } from '../lib/models/decision-transformer.ts';
import { dtStepWindows, normalizeState, type DtBatchOptions, type TrajectoryStep } from '../lib/models/dt-batch.ts';
import { ParamRecordsC, PlainAdam, PlainAdamStateC } from '../lib/models/plain-adam.ts';
import { Rng } from '../lib/random.ts';
import type { Transitions } from '../lib/transitions.ts';
import { ReplayBuffer } from './replayBuffer.ts';
import { clippedDoubleQTarget, td3CriticStep } from './td3Update.ts';

/** The critic update's knobs, named after TD3's symbols. */
export const DtCriticUpdateConfig = t.type(
  {
    /** γ, the discount of the critic's target. */
    gamma: UnitInterval,
    /** τ of the Polyak target update (after every critic step). */
    tau: UnitInterval,
    /** σ̃ of the target policy smoothing noise (actions live in (−1, 1)). */
    policyNoise: NonNegativeNumber,
    /** c, the clip of that noise. */
    noiseClip: NonNegativeNumber,
    /** N, transitions per minibatch. */
    batchSize: PositiveInt,
    /** Critic steps per batch (per iteration). */
    steps: NonNegativeInt,
  },
  'DtCriticUpdateConfig',
);
export type DtCriticUpdateConfig = t.TypeOf<typeof DtCriticUpdateConfig>;

/** TD3's values (the authors' code) and 50 critic steps per iteration. */
export const DT_CRITIC_UPDATE_DEFAULTS: DtCriticUpdateConfig = { gamma: 0.99, tau: 0.005, policyNoise: 0.2, noiseClip: 0.5, batchSize: 256, steps: 50 };

/** Everything the critic update changes and a checkpoint must hold, around the DT it reads. */
export interface DtCriticLearner {
  /** The actor: read (its mean action at s′), never changed here. */
  readonly dt: DecisionTransformer;
  /** Q_θ1, Q_θ2 on (normalised state, action in (−1, 1)). */
  readonly critic: TwinCritic;
  /** θ′_1, θ′_2. */
  readonly target: TwinCritic;
  readonly optimizer: PlainAdam;
  /** Online trajectories (whole episodes with their intended targets), FIFO. */
  readonly buffer: ReplayBuffer;
  /** Minibatch draws and smoothing noise. */
  readonly rng: Rng;
  /** How the DT sees a trajectory (context K, return-to-go scale, state normalisation); the critic sees the same normalised states. */
  window: DtBatchOptions;
  /** Critic steps taken so far. */
  steps: number;
}

export interface DtCriticLearnerOptions {
  readonly dt: DecisionTransformer;
  readonly window: DtBatchOptions;
  /** Hidden widths of each critic. Default [256, 256]. */
  readonly hidden?: readonly number[];
  /** Adam step size. Default 3·10⁻⁴. */
  readonly learningRate?: number;
  /** Trajectories the buffer holds. Default 100. */
  readonly bufferSize?: number;
  /** Run seed: the critics' init uses `seed + 1` (as TD3's), the stream `Rng(seed, 'dtCritic')`. */
  readonly seed?: number;
}

/**
 * Builds the critic side of a DT actor: twin critics, their targets (copies), `PlainAdam`, an
 * empty trajectory buffer and the sampling stream.
 *
 * @param opts the DT, how it sees trajectories, widths, step size, buffer size, seed
 * @returns a fresh learner (free it with `disposeDtCriticLearner`)
 * @example
 * const learner = createDtCriticLearner({ dt, window: { K: 5, rtgScale: 1e-3, stateNorm }, hidden: [64, 64], seed: 0 });
 */
export function createDtCriticLearner(opts: DtCriticLearnerOptions): DtCriticLearner {
  const seed = opts.seed ?? 0;
  const critic = new TwinCritic({ obsDim: opts.dt.stateDim, actDim: opts.dt.actDim, hidden: opts.hidden ?? [256, 256], seed: (seed + 1) >>> 0 });
  return {
    dt: opts.dt,
    critic,
    target: critic.cloneAsTarget(),
    optimizer: new PlainAdam(critic.params, opts.learningRate ?? 3e-4),
    buffer: new ReplayBuffer(opts.bufferSize ?? 100),
    rng: new Rng(seed, 'dtCritic'),
    window: opts.window,
    steps: 0,
  };
}

/** Frees the critics, their targets and the optimizer's moments (not the DT). */
export function disposeDtCriticLearner(l: DtCriticLearner): void {
  l.critic.dispose();
  l.target.dispose();
  l.optimizer.dispose();
}

/** The learner's checkpointed state: critics, targets, optimizer, buffer, stream, step count. */
export const DtCriticStateC = t.type(
  {
    critic: ParamRecordsC,
    target: ParamRecordsC,
    optimizer: PlainAdamStateC,
    /** `ReplayBuffer` state (its trajectories as typed arrays). */
    buffer: t.unknown,
    rng: RngStateC,
    steps: NonNegativeInt,
  },
  'DtCriticState',
);
export type DtCriticState = t.TypeOf<typeof DtCriticStateC>;

/**
 * The learner's state as plain data (typed arrays; a checkpoint stores the large ones as tensors).
 *
 * @param l the learner
 * @returns its state
 * @example
 * const saved = dtCriticLearnerState(learner); // → restoreDtCriticLearner(learner, saved)
 */
export function dtCriticLearnerState(l: DtCriticLearner): DtCriticState {
  return {
    critic: l.critic.params.toRecord(),
    target: l.target.params.toRecord(),
    optimizer: l.optimizer.state(),
    buffer: { version: 1, capacity: l.buffer.capacity, trajectories: [...l.buffer.trajectories()] },
    rng: l.rng.state(),
    steps: l.steps,
  };
}

/**
 * Puts a saved state back in place (the operators built around the learner continue from it).
 *
 * @param l the learner (its shapes must match the state's)
 * @param s a state from `dtCriticLearnerState` (decoded with `DtCriticStateC`)
 * @returns nothing
 * @example
 * restoreDtCriticLearner(learner, decodeOrThrow(DtCriticStateC, raw, 'critic state'));
 */
export function restoreDtCriticLearner(l: DtCriticLearner, s: DtCriticState): void {
  l.critic.params.load(s.critic);
  l.target.params.load(s.target);
  l.optimizer.load(s.optimizer);
  l.buffer.load(s.buffer);
  l.rng.setState(s.rng);
  l.steps = s.steps;
}

/** The numbers of one critic step. */
export interface DtCriticStepStats {
  criticLoss: number;
  qMean: number;
  criticGradNorm: number;
}

/**
 * One TD3 critic step on `batchSize` transitions drawn from the buffer (every step of every stored
 * trajectory equally likely): the target actions are the DT's mean actions at s′ from its acting
 * context there, smoothed and clipped, then the clipped double-Q step and the Polyak update.
 *
 * @param l the learner (critics, targets, optimizer, stream and counter change)
 * @param cfg the full config
 * @returns the step's loss, mean Q_θ1(s, a) and gradient norm
 * @throws NonFiniteUpdateError before changing any weight when the loss or gradient is not finite
 * @example
 * const st = dtCriticStep(learner, { ...DT_CRITIC_UPDATE_DEFAULTS, batchSize: 64 });
 */
export function dtCriticStep(l: DtCriticLearner, cfg: DtCriticUpdateConfig): DtCriticStepStats {
  const n = cfg.batchSize;
  const { dt } = l;
  const S = dt.stateDim;
  const A = dt.actDim;
  const picks = l.buffer.sample(n, l.rng, 1);
  const mb: Transitions = {
    n,
    obsDim: S,
    actDim: A,
    obs: new Float32Array(n * S),
    actions: new Float32Array(n * A),
    rewards: new Float32Array(n),
    nextObs: new Float32Array(n * S),
    dones: new Float32Array(n),
  };
  const next: TrajectoryStep[] = [];
  const tmp = new Float64Array(S);
  picks.forEach((p, k) => {
    const tr = l.buffer.at(p.index);
    const s = p.start;
    mb.obs.set(normalizeState(tr.observations.subarray(s * S, (s + 1) * S), l.window.stateNorm, tmp), k * S);
    mb.nextObs.set(normalizeState(tr.observations.subarray((s + 1) * S, (s + 2) * S), l.window.stateNorm, tmp), k * S);
    mb.actions.set(tr.actions.subarray(s * A, (s + 1) * A), k * A);
    mb.rewards[k] = tr.rewards[s]!;
    // A terminal only where the env ended the episode; a cut (time limit, maxSteps) bootstraps.
    mb.dones[k] = tr.terminated && s === tr.length - 1 ? 1 : 0;
    next.push({ trajectory: tr, step: s + 1 });
  });
  // ã = clip(tanh μ_θ(ctx_{t+1}) + clip(N(0, σ̃²), −c, c), −1, 1): the DT is the (target) actor.
  const a2 = dt.act(dtStepWindows(next, { ...l.window, maxTimestep: dt.maxEpisodeSteps - 1 }), l.rng, { deterministic: true }).action;
  for (let j = 0; j < a2.length; j++) {
    const eps = Math.min(cfg.noiseClip, Math.max(-cfg.noiseClip, l.rng.normal(0, cfg.policyNoise)));
    a2[j] = Math.min(1, Math.max(-1, a2[j]! + eps));
  }
  const where = () => `at dtCriticUpdate critic step ${l.steps}`;
  const st = tf.tidy(() => td3CriticStep(l.critic, l.optimizer, mb, clippedDoubleQTarget(l.target, mb, tf.tensor2d(a2, [n, A]), cfg.gamma), where));
  polyakUpdate(l.target.params, l.critic.params, cfg.tau);
  l.steps++;
  return st;
}

/**
 * `dtCriticUpdate` — TD3's twin critics (Fujimoto, van Hoof & Meger 2018) for a Decision
 * Transformer actor, trained on its online trajectories: the value side of QGRPO (`criticGroups`).
 *
 * In and out: `Batch<G>` (passed through with metrics). The batch's trajectories are expected in
 * `learner.buffer` already (`replayBuffer(learner.buffer)` before this operator); then `steps`
 * critic steps, each on N transitions (s, a, r, s′, d) drawn uniformly over the buffer's steps:
 *
 *   ã  = clip(tanh μ_θ(R̂_{≤t+1}, s_{≤t+1}, a_{≤t}) + ε, −1, 1),  ε = clip(N(0, σ̃²), −c, c)
 *   y  = r + γ (1 − d) min_{i=1,2} Q_θ′_i(ŝ′, ã)
 *   θ_i ← Adam on  N⁻¹ Σ (y − Q_θ1(ŝ, a))² + N⁻¹ Σ (y − Q_θ2(ŝ, a))²
 *   θ′_i ← τ θ_i + (1 − τ) θ′_i                                   (after every step)
 *
 * ŝ is the state normalised as the DT sees it. The DT is the actor and has no target copy: the
 * target action is the current DT's mean action at s′, read from its acting context there (the
 * trajectory's last K steps with their *intended* returns-to-go, as `dtActor` fed them), so Q
 * estimates the value of acting with a, then following the DT's mean action — TD3's target with
 * the DT in place of the target actor (TD3's delayed actor is the DT's own, clipped, update). d is 1
 * only where the env terminated the episode; a cut trajectory bootstraps from s′. Each step is a
 * DT forward of N windows (its acting forward) plus the critics' step.
 *
 * A NaN or ±Inf loss or gradient norm throws `NonFiniteUpdateError` before that step's optimizer
 * step (earlier steps of the batch stay applied). Emits `td3/updates`, and when it stepped
 * `td3/critic_loss`, `td3/q_mean` (mean Q_θ1(ŝ, a) over the minibatches), `td3/critic_grad_norm`.
 *
 * @param learner The persisting state ({@link DtCriticLearner}: the DT it reads, critics, targets, `PlainAdam`, trajectory buffer, stream, step count); built once with `createDtCriticLearner`, checkpointed with `dtCriticLearnerState`.
 * @param config Partial {@link DtCriticUpdateConfig}; missing keys from {@link DT_CRITIC_UPDATE_DEFAULTS}, validated.
 * @returns An operator from `Batch<G>` to the same batch with the `td3/*` metrics added.
 * @throws DecodeError for a bad config key; `NonFiniteUpdateError` (stream error) for a NaN/Inf loss or gradient.
 * @example
 * ```ts
 * const critic = createDtCriticLearner({ dt, window: { K: 5, rtgScale: 1e-3, stateNorm }, seed: 0 });
 * episodes$.pipe(returns(), replayBuffer(critic.buffer), dtCriticUpdate(critic, { steps: 50 }));
 * ```
 */
export function dtCriticUpdate<G>(learner: DtCriticLearner, config: Partial<DtCriticUpdateConfig> = {}): OperatorFunction<Batch<G>, Batch<G>> {
  const cfg = decodeOrThrow(DtCriticUpdateConfig, { ...DT_CRITIC_UPDATE_DEFAULTS, ...config }, 'dtCriticUpdate config');
  return map((batch) => {
    const steps = learner.buffer.size > 0 ? cfg.steps : 0;
    let loss = 0;
    let q = 0;
    let gn = 0;
    for (let k = 0; k < steps; k++) {
      const st = dtCriticStep(learner, cfg);
      loss += st.criticLoss;
      q += st.qMean;
      gn += st.criticGradNorm;
    }
    const metrics: Record<string, number> = { ...batch.metrics, 'td3/updates': steps };
    if (steps > 0) Object.assign(metrics, { 'td3/critic_loss': loss / steps, 'td3/q_mean': q / steps, 'td3/critic_grad_norm': gn / steps });
    return { ...batch, metrics };
  });
}
