// `td3Update`: Twin Delayed DDPG updates — documented on the exported `td3Update` (hover it).
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { NonNegativeInt, NonNegativeNumber, PositiveInt, PositiveNumber, UnitInterval, decodeOrThrow } from '../lib/codec.ts';
import { DeterministicActor, TwinCritic, polyakUpdate } from '../lib/models/critic.ts';
import { Rng } from '../lib/random.ts';
import { TransitionBuffer, type Transitions } from '../lib/transitions.ts';
import type { TransitionBatch } from './collectTransitions.ts';
import { NonFiniteUpdateError } from './policyUpdate.ts';

/** The update's hyperparameters, named after the paper's symbols. */
export const Td3UpdateConfig = t.type(
  {
    /** γ, the discount. */
    gamma: UnitInterval,
    /** τ of the Polyak target updates. */
    tau: UnitInterval,
    /** σ̃ of the target policy smoothing noise, as a fraction of a_max. */
    policyNoise: NonNegativeNumber,
    /** c, the clip of that noise, as a fraction of a_max. */
    noiseClip: NonNegativeNumber,
    /** d: one actor (and target) update per d critic updates. */
    policyDelay: PositiveInt,
    /** N, the minibatch size. */
    batchSize: PositiveInt,
    /** Gradient steps per new transition (the update-to-data ratio); TD3: 1. */
    updatesPerStep: PositiveNumber,
    /** No update until the buffer has received this many transitions (TD3: the 25 000 random warm-up steps). */
    learningStarts: NonNegativeInt,
  },
  'Td3UpdateConfig',
);
export type Td3UpdateConfig = t.TypeOf<typeof Td3UpdateConfig>;

export const TD3_UPDATE_DEFAULTS: Td3UpdateConfig = {
  gamma: 0.99,
  tau: 0.005,
  policyNoise: 0.2,
  noiseClip: 0.5,
  policyDelay: 2,
  batchSize: 256,
  updatesPerStep: 1,
  learningStarts: 25_000,
};

/** The defaults overlaid with `partial`, validated; a bad key throws naming it. */
export function td3UpdateConfig(partial: Partial<Td3UpdateConfig> = {}): Td3UpdateConfig {
  return decodeOrThrow(Td3UpdateConfig, { ...TD3_UPDATE_DEFAULTS, ...partial }, 'td3Update config');
}

/** Everything a TD3 update changes, and so everything a checkpoint must hold. */
export interface Td3Learner {
  readonly actor: DeterministicActor;
  readonly critic: TwinCritic;
  readonly actorTarget: DeterministicActor;
  readonly criticTarget: TwinCritic;
  readonly actorOptimizer: tf.Optimizer;
  readonly criticOptimizer: tf.Optimizer;
  readonly buffer: TransitionBuffer;
  /** Minibatch indices and target-smoothing noise. */
  readonly rng: Rng;
  /** Critic steps taken so far (the policy delay counts these). */
  criticSteps: number;
  /** Actor updates so far (the policy version). */
  version: number;
}

export interface Td3LearnerOptions {
  readonly obsDim: number;
  readonly low: ArrayLike<number>;
  readonly high: ArrayLike<number>;
  /** Hidden widths of actor and critics; default [256, 256]. */
  readonly hidden?: readonly number[];
  /** Run seed: the actor's init uses `seed`, the critics' `seed + 1`, the sampling stream `Rng(seed, 'td3/update')`. */
  readonly seed?: number;
  /** Adam learning rates; default 3·10⁻⁴ each. */
  readonly actorLr?: number;
  readonly criticLr?: number;
  /** Replay capacity; default 10⁶. */
  readonly bufferCapacity?: number;
}

/**
 * Builds a TD3 learner: actor and twin critics, their targets (copies), Adam optimizers, a replay
 * buffer and the sampling stream.
 *
 * @param opts dimensions, action box, widths, seed, learning rates, capacity
 * @returns a fresh `Td3Learner` (free it with `disposeTd3Learner`)
 * @example
 * const learner = createTd3Learner({ obsDim: 3, low: [-2], high: [2], hidden: [64, 64], seed: 0 });
 */
export function createTd3Learner(opts: Td3LearnerOptions): Td3Learner {
  const seed = opts.seed ?? 0;
  const hidden = opts.hidden ?? [256, 256];
  const actor = new DeterministicActor({ obsDim: opts.obsDim, low: opts.low, high: opts.high, hidden, seed });
  const critic = new TwinCritic({ obsDim: opts.obsDim, actDim: actor.actDim, hidden, seed: (seed + 1) >>> 0 });
  for (const k of ['actorLr', 'criticLr'] as const) {
    const v = opts[k];
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new RangeError(`createTd3Learner.${k}: expected a positive number, got ${v}`);
  }
  return {
    actor,
    critic,
    actorTarget: actor.cloneAsTarget(),
    criticTarget: critic.cloneAsTarget(),
    actorOptimizer: tf.train.adam(opts.actorLr ?? 3e-4),
    criticOptimizer: tf.train.adam(opts.criticLr ?? 3e-4),
    buffer: new TransitionBuffer({ capacity: opts.bufferCapacity ?? 1_000_000, obsDim: opts.obsDim, actDim: actor.actDim }),
    rng: new Rng(seed, 'td3/update'),
    criticSteps: 0,
    version: 0,
  };
}

/** Frees every tensor of a learner (networks, targets, optimizer moments). */
export function disposeTd3Learner(l: Td3Learner): void {
  l.actor.dispose();
  l.critic.dispose();
  l.actorTarget.dispose();
  l.criticTarget.dispose();
  l.actorOptimizer.dispose();
  l.criticOptimizer.dispose();
}

/**
 * The clipped target-policy noise ε = clip(σ̃·a_max·z, −c·a_max, c·a_max), z ~ N(0, 1), for n rows.
 *
 * @param actor gives a_max per dimension
 * @param n rows
 * @param cfg σ̃ (`policyNoise`) and c (`noiseClip`)
 * @param rng the learner's stream
 * @returns n · actDim values
 * @example
 * const eps = targetNoise(learner.actor, 256, cfg, learner.rng);
 */
export function targetNoise(actor: DeterministicActor, n: number, cfg: Pick<Td3UpdateConfig, 'policyNoise' | 'noiseClip'>, rng: Rng): Float32Array {
  const A = actor.actDim;
  const out = new Float32Array(n * A);
  for (let k = 0; k < out.length; k++) {
    const m = actor.halfRange[k % A]!;
    const lim = cfg.noiseClip * m;
    out[k] = Math.min(lim, Math.max(-lim, rng.normal(0, cfg.policyNoise * m)));
  }
  return out;
}

/**
 * The critic target y = r + γ(1 − d) min_i Q_θ'_i(s', clip(π_φ'(s') + ε, low, high)) for a
 * minibatch, with the noise ε given (a tensor [N]; call inside `tf.tidy`).
 *
 * @param learner its target networks are read
 * @param mb the minibatch
 * @param noise ε, mb.n · actDim values (from `targetNoise`)
 * @param gamma γ
 * @returns y, a tensor of shape [N]
 * @example
 * const y = tf.tidy(() => criticTarget(learner, mb, targetNoise(learner.actor, mb.n, cfg, rng), 0.99).dataSync());
 */
export function criticTarget(learner: Pick<Td3Learner, 'actorTarget' | 'criticTarget'>, mb: Transitions, noise: Float32Array, gamma: number): tf.Tensor1D {
  const { actorTarget, criticTarget: qt } = learner;
  const s2 = tf.tensor2d(mb.nextObs, [mb.n, mb.obsDim]);
  const a2 = tf.minimum(
    tf.maximum(tf.add(actorTarget.forward(s2), tf.tensor2d(noise, [mb.n, mb.actDim])), tf.tensor1d(actorTarget.low)),
    tf.tensor1d(actorTarget.high),
  ) as tf.Tensor2D;
  return clippedDoubleQTarget(qt, mb, a2, gamma);
}

/**
 * The clipped double-Q target y = r + γ(1 − d) min_i Q_θ'_i(s', a') for given next actions a'
 * (a tensor [N, actDim]; call inside `tf.tidy`): `criticTarget` with the target actor left out,
 * for critics whose actor is not a `DeterministicActor` (ODT+TD3's Decision Transformer).
 *
 * @param qt the target critics θ'
 * @param mb the minibatch (its `nextObs`, `rewards`, `dones`)
 * @param nextActions a'
 * @param gamma γ
 * @returns y, a tensor of shape [N]
 * @example
 * const y = tf.tidy(() => clippedDoubleQTarget(criticTarget, mb, tf.tensor2d(a2, [mb.n, A]), 0.99));
 */
export function clippedDoubleQTarget(qt: TwinCritic, mb: Transitions, nextActions: tf.Tensor2D, gamma: number): tf.Tensor1D {
  const [q1, q2] = qt.both(tf.tensor2d(mb.nextObs, [mb.n, mb.obsDim]), nextActions);
  const notDone = tf.sub(1, tf.tensor1d(mb.dones));
  return tf.add(tf.tensor1d(mb.rewards), tf.mul(tf.mul(notDone, gamma), tf.minimum(q1, q2))) as tf.Tensor1D;
}

function gradNorm(grads: tf.NamedTensorMap): tf.Scalar {
  return tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
}

/**
 * TD3's critic step alone: Adam on L(θ_1, θ_2) = N⁻¹ Σ (y − Q_θ1(s, a))² + N⁻¹ Σ (y − Q_θ2(s, a))²
 * for a given target y (call inside `tf.tidy`). A NaN or ±Inf loss or gradient norm throws
 * `NonFiniteUpdateError` before the optimizer step.
 *
 * @param critic the twin critics θ_1, θ_2 (changed in place)
 * @param optimizer their optimizer
 * @param batch the minibatch (its `obs`, `actions`)
 * @param y the target, a tensor [N] (from `criticTarget` or `clippedDoubleQTarget`)
 * @param where what the error message says about the step's position
 * @returns the loss, mean Q_θ1(s, a) and the gradient norm
 * @example
 * const st = tf.tidy(() => td3CriticStep(critic, opt, mb, clippedDoubleQTarget(target, mb, a2, 0.99)));
 */
export function td3CriticStep(
  critic: TwinCritic,
  optimizer: Pick<tf.Optimizer, 'applyGradients'>,
  batch: Transitions,
  y: tf.Tensor1D,
  where: () => string = () => '',
): Pick<Td3StepStats, 'criticLoss' | 'qMean' | 'criticGradNorm'> {
  const s = tf.tensor2d(batch.obs, [batch.n, batch.obsDim]);
  const a = tf.tensor2d(batch.actions, [batch.n, batch.actDim]);
  let qMean: tf.Scalar | undefined;
  const { value: loss, grads } = tf.variableGrads(() => {
    const [q1, q2] = critic.both(s, a);
    qMean = tf.keep(tf.mean(q1)) as tf.Scalar;
    return tf.add(tf.mean(tf.squaredDifference(q1, y)), tf.mean(tf.squaredDifference(q2, y))) as tf.Scalar;
  }, critic.variables);
  const norm = gradNorm(grads);
  const [lossV, normV, qV] = tf.stack([loss, norm, qMean!]).dataSync();
  qMean!.dispose();
  if (!Number.isFinite(lossV!) || !Number.isFinite(normV!)) {
    throw new NonFiniteUpdateError(
      `td3Update: non-finite critic ${Number.isFinite(lossV!) ? 'gradient norm' : 'loss'} (loss ${lossV}, grad norm ${normV}) ${where()}; this step changed no weights`,
    );
  }
  optimizer.applyGradients(grads);
  return { criticLoss: lossV!, criticGradNorm: normV!, qMean: qV! };
}

/** The numbers of one TD3 step. */
export interface Td3StepStats {
  criticLoss: number;
  qMean: number;
  criticGradNorm: number;
  /** Present when this step also updated the actor (and the targets). */
  actorLoss?: number;
  actorGradNorm?: number;
}

/**
 * One TD3 step on a minibatch: the critic step, and — when `learner.criticSteps` (after counting
 * this one) is a multiple of d — the actor step and the Polyak target updates.
 *
 * @param learner changed in place (weights, optimizer moments, counters)
 * @param mb the minibatch (default: `batchSize` rows sampled from the learner's buffer)
 * @param cfg the full config
 * @param noise the target noise ε (default: `targetNoise` from the learner's stream)
 * @returns the step's losses, mean Q and gradient norms
 * @example
 * const stats = td3Step(learner, td3UpdateConfig({ batchSize: 64 }));
 */
export function td3Step(learner: Td3Learner, cfg: Td3UpdateConfig, mb?: Transitions, noise?: Float32Array, done = 0): Td3StepStats {
  const batch = mb ?? learner.buffer.sample(cfg.batchSize, learner.rng);
  const eps = noise ?? targetNoise(learner.actor, batch.n, cfg, learner.rng);
  const { critic, actor } = learner;
  const where = () =>
    `at critic step ${learner.criticSteps}${done > 0 ? ` (${done} earlier step${done === 1 ? ' was' : 's were'} applied in this batch)` : ''}`;
  const stats: Td3StepStats = tf.tidy(() => td3CriticStep(critic, learner.criticOptimizer, batch, criticTarget(learner, batch, eps, cfg.gamma), where));
  learner.criticSteps++;
  if (learner.criticSteps % cfg.policyDelay !== 0) return stats;
  const actorStats = tf.tidy(() => {
    const s = tf.tensor2d(batch.obs, [batch.n, batch.obsDim]);
    const { value: loss, grads } = tf.variableGrads(() => tf.neg(tf.mean(critic.q(1, s, actor.forward(s)))) as tf.Scalar, actor.variables);
    const norm = gradNorm(grads);
    const [lossV, normV] = tf.stack([loss, norm]).dataSync();
    if (!Number.isFinite(lossV!) || !Number.isFinite(normV!)) {
      throw new NonFiniteUpdateError(
        `td3Update: non-finite actor ${Number.isFinite(lossV!) ? 'gradient norm' : 'loss'} (loss ${lossV}, grad norm ${normV}) ${where()}; the actor and the targets were not changed (this step's critic update was applied)`,
      );
    }
    learner.actorOptimizer.applyGradients(grads);
    return { actorLoss: lossV!, actorGradNorm: normV! };
  });
  polyakUpdate(learner.criticTarget.params, critic.params, cfg.tau);
  polyakUpdate(learner.actorTarget.params, actor.params, cfg.tau);
  learner.version++;
  return { ...stats, ...actorStats };
}

/**
 * `td3Update` — Twin Delayed DDPG (Fujimoto, van Hoof & Meger 2018, Algorithm 1).
 *
 * In and out: `TransitionBatch` (passed through with metrics). The batch's transitions go into the
 * learner's replay buffer B; then, once B has received `learningStarts` transitions, the learner
 * takes `updatesPerStep` gradient steps per new transition. One step, on a minibatch of N
 * transitions (s, a, r, s', d) drawn uniformly from B:
 *
 *   ã  = clip(π_φ'(s') + ε, low, high),   ε = clip(N(0, (σ̃·a_max)²), −c·a_max, c·a_max)
 *   y  = r + γ (1 − d) min_{i=1,2} Q_θ'_i(s', ã)                      (target policy smoothing,
 *                                                                       clipped double Q)
 *   θ_i ← Adam on  L(θ_1, θ_2) = N⁻¹ Σ (y − Q_θ1(s, a))² + N⁻¹ Σ (y − Q_θ2(s, a))²
 *   every d-th step (`policyDelay`, delayed policy updates):
 *     φ  ← Adam on  J(φ) = −N⁻¹ Σ Q_θ1(s, π_φ(s))
 *     θ'_i ← τ θ_i + (1 − τ) θ'_i,   φ' ← τ φ + (1 − τ) φ'
 *
 * with a_max = (high − low)/2 per dimension (the authors' code scales σ̃ and c by max_action).
 * Defaults are the authors' published code (github.com/sfujim/TD3): γ = 0.99, τ = 0.005,
 * σ̃ = 0.2, c = 0.5, d = 2, N = 256, Adam lr 3·10⁻⁴, 256×256 relu networks, 25 000 warm-up steps
 * (the paper's Table 3 lists 400×300 networks, lr 10⁻³, N = 100 and 10⁴ warm-up steps for its
 * first version). The target noise ε is drawn on the JS side from `learner.rng`, as are the
 * minibatch indices, so a run is reproducible from its seed on every backend.
 *
 * The loss and gradient norm of each step are read before its optimizer step: a NaN or ±Inf throws
 * `NonFiniteUpdateError` and that step changes no weight (earlier steps of the batch stay applied;
 * the message says how many).
 *
 * Emits `td3/critic_loss` (mean L over the batch's steps), `td3/actor_loss` (mean J over its actor
 * steps; absent when there were none), `td3/q_mean` (mean Q_θ1(s, a) over the minibatches),
 * `td3/updates` (critic steps), `td3/critic_grad_norm`, `grad_norm` (the actor's gradient norm),
 * `buffer/size` and `policy_version` (actor updates so far).
 *
 * @param learner The persisting state ({@link Td3Learner}: networks, targets, optimizers, replay buffer, sampling stream, counters); built once with `createTd3Learner`, mutated by every batch of every subscription.
 * @param config Partial {@link Td3UpdateConfig} (fields described on the codec); missing keys from {@link TD3_UPDATE_DEFAULTS}, validated.
 * @returns An operator from `TransitionBatch` to the same `TransitionBatch` with the `td3/*` metrics added.
 * @throws DecodeError for a bad config key; `NonFiniteUpdateError` (stream error) for a NaN/Inf loss or gradient.
 * @example
 * ```ts
 * const learner = createTd3Learner({ obsDim: 3, low: [-2], high: [2], hidden: [64, 64], seed: 0 });
 * iterations$.pipe(
 *   collectTransitions({ venv, actor: learner.actor, rng: streams.get('action'), startSteps: 1000 }),
 *   td3Update(learner, { learningStarts: 1000 }),
 *   metrics({ sinks }),
 * ).subscribe();
 * ```
 */
export function td3Update(learner: Td3Learner, config: Partial<Td3UpdateConfig> = {}): OperatorFunction<TransitionBatch, TransitionBatch> {
  const cfg = td3UpdateConfig(config);
  return map((batch) => {
    const buf = learner.buffer;
    const before = buf.added;
    buf.add(batch.transitions);
    const start = Math.max(cfg.learningStarts, cfg.batchSize);
    const eligible = Math.max(0, buf.added - Math.max(before, start));
    const updates = Math.round(eligible * cfg.updatesPerStep);
    let cl = 0;
    let q = 0;
    let cg = 0;
    let al = 0;
    let ag = 0;
    let actorSteps = 0;
    for (let u = 0; u < updates; u++) {
      const st = td3Step(learner, cfg, undefined, undefined, u);
      cl += st.criticLoss;
      q += st.qMean;
      cg += st.criticGradNorm;
      if (st.actorLoss !== undefined) {
        al += st.actorLoss;
        ag += st.actorGradNorm!;
        actorSteps++;
      }
    }
    const metrics: Record<string, number> = { ...batch.metrics, 'td3/updates': updates, 'buffer/size': buf.size, policy_version: learner.version };
    if (updates > 0) {
      metrics['td3/critic_loss'] = cl / updates;
      metrics['td3/q_mean'] = q / updates;
      metrics['td3/critic_grad_norm'] = cg / updates;
    }
    if (actorSteps > 0) {
      metrics['td3/actor_loss'] = al / actorSteps;
      metrics.grad_norm = ag / actorSteps;
    }
    return { ...batch, metrics };
  });
}
