/**
 * `grpo-dt` — online finetuning of a pretrained Decision Transformer with pure RL gradients
 * (GRPO adapted to DTs, arXiv 2601.00167), composed of rxrl's operators. Per iteration i:
 *
 *   activeSampling (M reset points by action variance, ε-uniform)
 *     → subTrajectories (G rollouts from each: L on-policy steps + H mean-action tail steps; the
 *       *intended* returns-to-go kept; all M·G rows one batched DT forward per env step)
 *     → returns (tail bootstrap, γ = 1) → groupAdvantages (outcome: first-step return)
 *     → [hindsightRelabel: ablation only] → policyUpdate (ratio per sub-trajectory, clipped,
 *       optional KL to the pretrained DT) → new reset points along the rollouts → evaluate
 *
 * The DT comes from a checkpoint (`base.checkpoint`, e.g. one `odt` or `pretrain` wrote) or is
 * pretrained here on `dataset.path` with the shared ODT recipe (`pretrainDt`). Reset points come
 * from the dataset (its `infos/qpos`, `infos/qvel`, when present) and from online trajectories
 * (the pretrained DT's episodes, then the sub-trajectories themselves).
 *
 * `algorithm.scoring: 'critic'` (QGRPO, for envs without snapshots; no `snapshot`/`restore` is used):
 *
 *   rollout (E on-policy episodes from ordinary resets, intended returns-to-go kept, one batched
 *     DT forward per env step) → returns (γ = 1) → replayBuffer (FIFO of episodes)
 *     → dtCriticUpdate (TD3 twin critics; target action: the DT's mean action at s′, smoothed)
 *     → criticGroups (M visited states of this iteration, G actions sampled from the DT at each,
 *       scored by min(Q_θ1, Q_θ2)) → groupAdvantages (outcome: the score)
 *     → policyUpdate (one clipped ratio per action) → evaluate
 *
 * with no DT update in the first `critic.warmupIterations` iterations (docs/pipelines/grpo-dt.md).
 *
 * This module is the pipeline's three parts: the config (`GrpoDtConfig`), the construction of its
 * parts, and `iteration(i)`; resume, checkpoints and the stop rule are the shared loop's.
 *
 * ```ts
 * const { history } = await runGrpoDt({ env: { id: 'Hopper-v4' }, dataset: { path: 'data/hopper-medium.hdf5' }, iterations: 50 });
 * console.log(history.at(-1)?.['eval/normalized_score']);
 * ```
 */
import * as t from 'io-ts';
import * as tf from '@tensorflow/tfjs-core';
import { of, map, pipe, tap, type Observable, type OperatorFunction } from 'rxjs';
import { makeEnv, makeVectorEnv } from '../../lib/envs/registry.ts';
import type { Env } from '../../lib/envs/types.ts';
import { Rng, RngStreams } from '../../lib/random.ts';
import {
  Float32,
  FiniteNumber,
  NonNegativeInt,
  PositiveInt,
  PositiveIntAtMost,
  PositiveNumber,
  Uint32,
  decodeOrThrow,
  oneOf,
  suggestion,
} from '../../lib/codec.ts';
import {
  RngStateC,
  RngStreamsStateC,
  SnapshotStart,
  type AdvantagedGroup,
  type Batch,
  type MetricsRecord,
  type ScoredGroup,
  type Trajectory,
} from '../../lib/data.ts';
import type { DecisionTransformer } from '../../lib/models/decision-transformer.ts';
import { dtActor } from '../../lib/models/dt-actor.ts';
import { dtBatchOf, dtPolicy, dtWindowBatchOf, dtWindowPolicy, normalizeState, type StateNorm } from '../../lib/models/dt-batch.ts';
import type { DtBatch } from '../../lib/models/decision-transformer.ts';
import { activeSampling, ResetPool } from '../../operators/activeSampling.ts';
import { subTrajectories, resetPoints, datasetResetPoints, tailBootstrap } from '../../operators/subTrajectories.ts';
import { rollout, rolloutGroups, type StartsBatch } from '../../operators/rollout.ts';
import { replayBuffer } from '../../operators/replayBuffer.ts';
import {
  DT_CRITIC_UPDATE_DEFAULTS,
  DtCriticStateC,
  DtCriticUpdateConfig,
  createDtCriticLearner,
  disposeDtCriticLearner,
  dtCriticLearnerState,
  dtCriticUpdate,
  restoreDtCriticLearner,
  type DtCriticLearner,
} from '../../operators/dtCriticUpdate.ts';
import { criticGroups, criticOutcome } from '../../operators/criticGroups.ts';
import { returns } from '../../operators/returns.ts';
import { groupAdvantages, AdvantageEstimatorProps, ADVANTAGE_ESTIMATOR_DEFAULTS } from '../../operators/groupAdvantages.ts';
import { hindsightRelabel } from '../../operators/hindsightRelabel.ts';
import { policyUpdate, PolicyUpdateProps, POLICY_UPDATE_DEFAULTS, type Learner } from '../../operators/policyUpdate.ts';
import { evaluate, runEvaluation, EvaluateProps } from '../../operators/evaluate.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { ConfigError, deepPartial, pick, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext, PipelineResult } from '../context.ts';
import { runLoop, stopRule, StopRule, type PipelineState } from '../loop.ts';
import { loadBaseDt, type BaseDt } from './grpo-dt-base.ts';
import { MAX_HIDDEN } from '../grpo-control.ts';
import { DtModelConfig, DT_PRETRAIN_DEFAULTS, DtPretrainConfig } from './pretrain.ts';

const ADVANTAGE_KEYS = ['estimator', 'std', 'eps', 'dropZeroStd'] as const;
const UPDATE_KEYS = [
  'epochs',
  'minibatches',
  'clipEps',
  'clipEpsHigh',
  'ratioLevel',
  'klCoef',
  'klEstimator',
  'lossAggregation',
  'entropyCoef',
  'maxGradNorm',
] as const;

/** The full config: every knob required (a pipeline file states only what differs from the defaults). */
export const GrpoDtConfig = t.strict(
  {
    pipeline: oneOf(['grpo-dt']),
    seed: Uint32,
    iterations: PositiveInt,
    env: t.strict({ id: t.string, options: t.record(t.string, t.union([t.number, t.string, t.boolean])) }),
    /** D4RL-layout HDF5: pretraining data and reset points (null: the one `base.checkpoint` was pretrained on). */
    dataset: t.strict({ path: t.union([t.string, t.null]) }),
    /** The pretrained DT: a `savePretrained` checkpoint (its model shape wins), or null: pretrain here. */
    base: t.strict({ checkpoint: t.union([t.string, t.null]) }),
    /** Offline pretraining with the shared ODT recipe (when `base.checkpoint` is null). */
    pretrain: t.strict({ model: DtModelConfig, steps: DtPretrainConfig.type.props.steps, update: DtPretrainConfig.type.props.update }),
    algorithm: t.strict({
      /** R̂_0: the return-to-go the DT is conditioned on at an episode start (raw env return units). */
      targetReturn: FiniteNumber,
      /** Factor on returns-to-go at the DT's input (ODT MuJoCo: 1/1000). */
      rtgScale: PositiveNumber,
      /** Context length the DT acts (and is trained here) with; ODT evaluation context 5. */
      contextLength: PositiveInt,
      /** M: reset points per iteration. */
      startsPerIteration: PositiveInt,
      /** G: rollouts per reset point. */
      groupSize: PositiveInt,
      /** L: on-policy steps per sub-trajectory. */
      length: PositiveInt,
      /** H: mean-action steps that score it (the paper: ≈ 400 on MuJoCo). */
      horizon: NonNegativeInt,
      /** Reset points every this many steps along dataset and online trajectories. */
      resetEvery: PositiveInt,
      /** Capacity of the reset-point pool (FIFO). */
      poolSize: PositiveInt,
      /** Episodes of the pretrained DT that seed the pool with online reset points. */
      seedEpisodes: NonNegativeInt,
      /** Dataset episodes whose states seed the pool (0: none). */
      datasetEpisodes: NonNegativeInt,
      active: t.strict({ enabled: t.boolean, epsilon: t.number, mode: oneOf(['greedy', 'softmax']), temperature: PositiveNumber }),
      /** `reset`: score sub-trajectories by rollouts from reset states; `critic` (QGRPO): score single actions by a TD3 critic, no env snapshots. */
      scoring: oneOf(['reset', 'critic']),
      /** QGRPO (`scoring: critic`): its on-policy episodes, the twin critic and its training. */
      critic: t.strict({
        /** On-policy episodes per iteration from ordinary env resets (one batched DT forward per env step). */
        episodes: PositiveInt,
        /** Cut those episodes at this many steps (null: the env's time limit); a cut bootstraps. */
        maxSteps: t.union([PositiveInt, t.null]),
        /** Hidden widths of each critic. */
        hidden: t.array(PositiveIntAtMost(MAX_HIDDEN)),
        /** Adam step size of the critics. */
        learningRate: PositiveNumber,
        /** γ of the critic's TD target. */
        gamma: DtCriticUpdateConfig.props.gamma,
        /** τ of the Polyak target update. */
        tau: DtCriticUpdateConfig.props.tau,
        /** σ̃ and c of the target policy smoothing. */
        policyNoise: DtCriticUpdateConfig.props.policyNoise,
        noiseClip: DtCriticUpdateConfig.props.noiseClip,
        /** Transitions per critic step. */
        batchSize: PositiveInt,
        /** Critic steps per iteration. */
        steps: PositiveInt,
        /** Replay capacity in episodes (FIFO). */
        bufferSize: PositiveInt,
        /** First iterations that only collect and train the critic (no DT update). */
        warmupIterations: NonNegativeInt,
        /** Q of an action: `min` (min of the twins) or `q1`. */
        score: oneOf(['min', 'q1']),
      }),
      /** Ablation: hindsight-relabel the targets before the update (what ODT does; unsound with importance ratios). */
      relabel: t.boolean,
      learningRate: PositiveNumber,
      advantages: t.strict(pick(AdvantageEstimatorProps, ADVANTAGE_KEYS)),
      update: t.strict(pick(PolicyUpdateProps, UPDATE_KEYS)),
    }),
    evaluation: t.strict({ every: EvaluateProps.every, episodes: PositiveInt, maxSteps: t.union([PositiveInt, t.null]) }),
    stop: t.union([t.null, StopRule]),
    checkpointEvery: NonNegativeInt,
  },
  'grpo-dt',
);
export type GrpoDtConfig = t.TypeOf<typeof GrpoDtConfig>;

/** The pipeline file's codec, derived: every key optional, unknown keys refused with the nearest name. */
export const GrpoDtFile = deepPartial(GrpoDtConfig);

/** Every default, once (the paper's recipe scaled to this machine: see docs/pipelines/online-dt.md). */
export const GRPO_DT_DEFAULTS: GrpoDtConfig = {
  pipeline: 'grpo-dt',
  seed: 0,
  iterations: 50,
  env: { id: 'Hopper-v4', options: {} },
  dataset: { path: null },
  base: { checkpoint: null },
  pretrain: { model: DT_PRETRAIN_DEFAULTS.model, steps: 2000, update: DT_PRETRAIN_DEFAULTS.update },
  algorithm: {
    targetReturn: 3600,
    rtgScale: 1e-3,
    contextLength: 5,
    startsPerIteration: 8,
    groupSize: 8,
    length: 20,
    horizon: 200,
    resetEvery: 20,
    poolSize: 2000,
    seedEpisodes: 4,
    datasetEpisodes: 20,
    active: { enabled: true, epsilon: 0.2, mode: 'greedy', temperature: 1 },
    scoring: 'reset',
    critic: {
      episodes: 8,
      maxSteps: null,
      hidden: [256, 256],
      learningRate: 3e-4,
      gamma: DT_CRITIC_UPDATE_DEFAULTS.gamma,
      tau: DT_CRITIC_UPDATE_DEFAULTS.tau,
      policyNoise: DT_CRITIC_UPDATE_DEFAULTS.policyNoise,
      noiseClip: DT_CRITIC_UPDATE_DEFAULTS.noiseClip,
      batchSize: DT_CRITIC_UPDATE_DEFAULTS.batchSize,
      steps: 200,
      bufferSize: 40,
      warmupIterations: 5,
      score: 'min',
    },
    relabel: false,
    learningRate: 1e-5,
    advantages: pick(ADVANTAGE_ESTIMATOR_DEFAULTS, ADVANTAGE_KEYS),
    update: { ...pick(POLICY_UPDATE_DEFAULTS, UPDATE_KEYS), ratioLevel: 'subtrajectory', lossAggregation: 'sequence-mean', maxGradNorm: 0.25 },
  },
  evaluation: { every: 5, episodes: 10, maxSteps: null },
  stop: null,
  checkpointEvery: 10,
};

/** The metrics this pipeline emits (docs/metrics.md); `stop.metric` must be one of them. */
export const GRPO_DT_METRICS: readonly string[] = [
  ...['rollout/env_steps', 'rollout/episodes', 'policy_version', 'reward/mean', 'reward/std', 'reward/min', 'reward/max', 'cost/mean', 'length/mean'],
  ...[
    'td3/updates',
    'td3/critic_loss',
    'td3/q_mean',
    'td3/critic_grad_norm',
    'buffer/size',
    'buffer/return_mean',
    'qgrpo/states',
    'qgrpo/q_mean',
    'qgrpo/q_std',
  ],
  ...['subtraj/tail_return', 'active/uncertainty_mean', 'active/pool_uncertainty_mean', 'active/frac_uniform', 'active/pool_size', 'relabel/target_shift'],
  ...[
    'frac_zero_std',
    'advantage/mean',
    'advantage/std',
    'groups/kept',
    'loss',
    'kl',
    'clip_frac',
    'ratio/mean',
    'ratio/max',
    'entropy',
    'grad_norm',
    'staleness',
  ],
  ...['env_steps/total', 'time/rollout_s', 'time/update_s', 'eval/return', 'eval/return_std', 'eval/length', 'eval/cost', 'eval/normalized_score'],
];

/** Fills the defaults in and checks the result. */
export function resolveGrpoDt(partial: DeepPartial<GrpoDtConfig> = {}): GrpoDtConfig {
  return decodeOrThrow(GrpoDtConfig, resolve(GRPO_DT_DEFAULTS, partial), 'grpo-dt config');
}

/** Cross-field checks, as `path: problem` lines; `rxrl validate` reports them. */
export function checkGrpoDt(cfg: GrpoDtConfig): string[] {
  const out: string[] = [];
  const a = cfg.algorithm;
  const critic = a.scoring === 'critic';
  if (cfg.dataset.path === null && cfg.base.checkpoint === null) out.push('dataset.path: needed to pretrain the DT when base.checkpoint is null');
  if (a.contextLength > cfg.pretrain.model.contextLength)
    out.push(`algorithm.contextLength: must be ≤ pretrain.model.contextLength (${cfg.pretrain.model.contextLength}), got ${a.contextLength}`);
  if (!(a.active.epsilon >= 0 && a.active.epsilon <= 1)) out.push(`algorithm.active.epsilon: expected a number in [0, 1], got ${a.active.epsilon}`);
  if (!critic && a.poolSize < a.startsPerIteration) out.push(`algorithm.poolSize: must be ≥ startsPerIteration (${a.startsPerIteration}), got ${a.poolSize}`);
  if (!critic && a.seedEpisodes === 0 && (a.datasetEpisodes === 0 || cfg.dataset.path === null))
    out.push('algorithm.seedEpisodes: reset points need seed episodes or dataset episodes (datasetEpisodes with dataset.path)');
  if (critic && a.relabel)
    out.push(
      "algorithm.relabel: the hindsight-relabeling ablation needs scoring 'reset' (QGRPO's groups are single actions scored by the critic: nothing to relabel)",
    );
  if (a.critic.hidden.length === 0) out.push('algorithm.critic.hidden: expected at least one hidden layer, got []');
  const u = a.update;
  if (u.clipEpsHigh !== null && u.clipEpsHigh < u.clipEps) out.push(`algorithm.update.clipEpsHigh: must be ≥ clipEps (${u.clipEps}), got ${u.clipEpsHigh}`);
  if (a.advantages.estimator === 'rloo' && a.groupSize < 2) out.push(`algorithm.groupSize: rloo needs groupSize ≥ 2, got ${a.groupSize}`);
  const s = cfg.stop;
  if (s) {
    if (!GRPO_DT_METRICS.includes(s.metric))
      out.push(`stop.metric: unknown metric '${s.metric}'; ${suggestion(s.metric, GRPO_DT_METRICS)}(grpo-dt emits: ${GRPO_DT_METRICS.join(', ')})`);
    if (s.atLeast === undefined && s.atMost === undefined) out.push(`stop: needs atLeast or atMost (a bound on ${s.metric}), got neither`);
  }
  return out;
}

/** A reset point with the intended return-to-go the DT is conditioned on there. */
const ResetPoint = t.intersection([SnapshotStart, t.type({ rtg: t.number })], 'ResetPoint');
type ResetPoint = t.TypeOf<typeof ResetPoint>;

/** What a checkpoint holds besides the weights and optimizer slots (and `iteration`). */
export const GrpoDtState = t.intersection(
  [
    t.type({
      version: NonNegativeInt,
      envSteps: NonNegativeInt,
      rng: RngStreamsStateC,
      minibatchRng: RngStateC,
      entropyRng: RngStateC,
      pool: t.array(ResetPoint),
      stateMean: Float32,
      stateStd: Float32,
    }),
    /** QGRPO's critics, targets, optimizer moments, replay buffer and stream (scoring 'critic' only). */
    t.partial({ critic: DtCriticStateC }),
  ],
  'GrpoDtState',
);
export type GrpoDtState = t.TypeOf<typeof GrpoDtState>;

export interface GrpoDtResult extends PipelineResult {
  dt: DecisionTransformer;
  /** The evaluation of the pretrained DT before any online update. */
  pretrained: Record<string, number>;
}

/** A pool point with the return-to-go target it was recorded with (every point of the pool has one). */
function resetPointOf(p: SnapshotStart): ResetPoint {
  const rtg: unknown = (p as Partial<ResetPoint>).rtg;
  if (typeof rtg !== 'number') throw new Error(`grpo-dt: reset point at t=${p.t} carries no return-to-go target`);
  return { ...p, rtg };
}

/** u(s) = mean_i σ_i² of the DT's action distribution at each reset point, from a fresh context. */
function actionVariance(dt: DecisionTransformer, norm: StateNorm, rtgScale: number) {
  return (points: readonly SnapshotStart[]): Float64Array => {
    const out = new Float64Array(points.length);
    const S = dt.stateDim;
    const A = dt.actDim;
    for (let c = 0; c < points.length; c += 256) {
      const chunk = points.slice(c, c + 256).map(resetPointOf);
      const B = chunk.length;
      const states = new Float32Array(B * S);
      chunk.forEach((p, i) => states.set(normalizeState(p.observation, norm), i * S));
      const batch: DtBatch = {
        batchSize: B,
        length: 1,
        states,
        actions: new Float32Array(B * A),
        returnsToGo: Float32Array.from(chunk, (p) => Math.fround(p.rtg) * rtgScale),
        timesteps: Int32Array.from(chunk, (p) => Math.min(p.t, dt.maxEpisodeSteps - 1)),
        mask: new Float32Array(B).fill(1),
      };
      const v = tf.tidy(() => tf.mean(tf.exp(tf.mul(dt.dist(batch).logStd, 2)), -1).dataSync());
      for (let i = 0; i < B; i++) out[c + i] = v[i]!;
    }
    return out;
  };
}

export async function runGrpoDt(
  partial: DeepPartial<GrpoDtConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<GrpoDtResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveGrpoDt(rest);
  const problems = checkGrpoDt(cfg);
  if (problems.length > 0) throw new ConfigError(`grpo-dt config:\n  ${problems.join('\n  ')}`);
  const alg = cfg.algorithm;
  const M = alg.startsPerIteration;
  const G = alg.groupSize;
  /** QGRPO: a critic scores single actions; no env state is ever snapshotted or restored. */
  const byCritic = alg.scoring === 'critic';

  // The parts: the pretrained DT (and a frozen copy for the KL), envs, learner, reset points or critic.
  const streams = new RngStreams(cfg.seed);
  const envOptions = { ...cfg.env.options, seed: cfg.seed };
  const venv = await makeVectorEnv(cfg.env.id, byCritic ? alg.critic.episodes : M * G, envOptions, { autoreset: 'disabled' });
  const evalEnv = await makeVectorEnv(cfg.env.id, cfg.evaluation.episodes, envOptions, { autoreset: 'disabled' });
  const replayEnv: Env | undefined = byCritic ? undefined : await makeEnv(cfg.env.id, envOptions);
  let base: BaseDt | undefined;
  let ref: DecisionTransformer | undefined;
  let qc: DtCriticLearner | undefined;
  try {
    base = await loadBaseDt(cfg, cfg.pretrain);
    const dt = base.dt;
    if (alg.contextLength > dt.contextLength) {
      throw new ConfigError(`algorithm.contextLength: must be ≤ the pretrained DT's context length ${dt.contextLength}, got ${alg.contextLength}`);
    }
    let norm: StateNorm = base.stateNorm;
    if (alg.update.klCoef > 0) {
      ref = base.copy();
    }
    const entropyRng = new Rng(cfg.seed, 'policyUpdate/entropy');
    const window = () => ({ K: alg.contextLength, rtgScale: alg.rtgScale, stateNorm: norm });
    // Reset scoring trains on sub-trajectories (one window per step); QGRPO on one-action windows (one row each).
    const batchOf = (trs: readonly Trajectory[]) => (byCritic ? dtWindowBatchOf(trs, window()) : dtBatchOf(trs, window()));
    const policyOf = byCritic ? dtWindowPolicy : dtPolicy;
    const learner: Learner<DtBatch> & { rng: Rng } = {
      policy: policyOf(dt, { rng: entropyRng }),
      optimizer: tf.train.adam(alg.learningRate),
      version: 0,
      batchOf,
      rng: new Rng(cfg.seed, 'policyUpdate/minibatch'),
      ...(ref ? { ref: policyOf(ref) } : {}),
    };
    const actorCfg = { scale: alg.rtgScale, contextLength: alg.contextLength, version: () => learner.version };
    const rtgAt = (start: { kind: string }): number => ('rtg' in start && typeof start.rtg === 'number' ? start.rtg : alg.targetReturn);
    const actor = dtActor(dt, { ...actorCfg, stateNorm: norm, targetReturn: rtgAt });
    const evalActor = dtActor(dt, { ...actorCfg, stateNorm: norm, targetReturn: alg.targetReturn });
    const deterministicEval = { ...evalActor, act: (o: Float32Array, n: number, r: Rng) => evalActor.act(o, n, r, true) };
    const evalCfg = { venv: evalEnv, actor: deterministicEval, ...(cfg.evaluation.maxSteps !== null ? { maxSteps: cfg.evaluation.maxSteps } : {}) };
    const update = policyUpdate(learner, alg.update);
    const evaluation = evaluate<ScoredGroup>({ ...evalCfg, every: cfg.evaluation.every });

    /** Wall time of the rollout and of the update (QGRPO: critic steps included), per iteration. */
    const time: Record<string, number> = {};
    let t0 = 0;
    const timed = <A, B>(key: string, body: OperatorFunction<A, B>): OperatorFunction<A, B> =>
      pipe(
        tap(() => (t0 = performance.now())),
        body,
        tap(() => (time[key] = (performance.now() - t0) / 1000)),
      );
    const pool = new ResetPool(alg.poolSize);
    let envSteps = 0;
    let iteration: (i: number) => Observable<Batch<ScoredGroup>>;

    if (!byCritic) {
      const env = replayEnv!;
      // Reset points: dataset states, then the pretrained DT's own episodes.
      const online = (trs: readonly Trajectory[]): ResetPoint[] =>
        trs.flatMap((tr) => {
          const t0 = tr.start.kind === 'snapshot' ? tr.start.t : 0;
          return resetPoints(env, tr, alg.resetEvery).map((p) => ({ ...p, rtg: tr.targets?.[p.t - t0] ?? alg.targetReturn }));
        });
      pool.add(
        base.datasetEpisodes.slice(0, alg.datasetEpisodes).flatMap((ep, e) => {
          const cum = new Float64Array(ep.length + 1);
          for (let k = 0; k < ep.length; k++) cum[k + 1] = cum[k]! + ep.rewards[k]!;
          return datasetResetPoints(env, ep, alg.resetEvery, `dataset episode ${e} (group d/${e})`).map((p) => ({
            ...p,
            rtg: alg.targetReturn - cum[p.t]!,
          }));
        }),
      );
      if (alg.seedEpisodes > 0) {
        const seeds = streams.get('env/seed-episodes');
        const seedVenv = await makeVectorEnv(cfg.env.id, alg.seedEpisodes, envOptions, { autoreset: 'disabled' });
        try {
          const starts = Array.from({ length: alg.seedEpisodes }, () => ({ kind: 'seed' as const, envId: cfg.env.id, seed: seeds.seed() }));
          const groups = rolloutGroups(
            { venv: seedVenv, actor, rng: streams.get('action/seed-episodes') },
            starts,
            starts.map((_, j) => `seed/${j}`),
          );
          const trs = groups.flatMap((g) => g.trajectories);
          for (const tr of trs) envSteps += tr.length;
          pool.add(online(trs));
        } finally {
          seedVenv.close();
        }
      }
      if (pool.size < M)
        throw new ConfigError(`algorithm.startsPerIteration: only ${pool.size} reset points to choose ${M} from (lower resetEvery or add seedEpisodes)`);

      const uniformU = (pts: readonly SnapshotStart[]) => new Float64Array(pts.length);
      const pick$ = activeSampling(
        pool,
        {
          count: M,
          ...(alg.active.enabled ? { ...alg.active, uncertainty: actionVariance(dt, norm, alg.rtgScale) } : { epsilon: 1, uncertainty: uniformU }),
        },
        streams.get('active'),
      );
      const roll = subTrajectories({ venv, actor, rng: streams.get('action'), groupSize: G, length: alg.length, horizon: alg.horizon });
      const advantages = groupAdvantages({ ...alg.advantages, outcome: 'first-step-return' });
      const relabel = hindsightRelabel<AdvantagedGroup>({ scale: 1 });
      /** The new frontier: reset points along this iteration's rollouts (a group's first row). */
      const grow = (b: Batch<ScoredGroup>): void => {
        for (const g of b.groups) for (const tr of g.trajectories) envSteps += tr.length + (tr.scores?.['tail_steps'] ?? 0);
        pool.add(online(b.groups.map((g) => g.trajectories[0]!)));
      };

      /** One on-policy iteration. */
      iteration = (i: number) =>
        of(i).pipe(
          timed('time/rollout_s', pipe(pick$, roll)),
          returns({ bootstrap: tailBootstrap }),
          tap(grow),
          advantages,
          (scored) => (alg.relabel ? scored.pipe(relabel) : scored),
          timed('time/update_s', update),
          map((b) => ({ ...b, metrics: { ...b.metrics, 'env_steps/total': envSteps, ...time } })),
          evaluation,
        );
    } else {
      const c = alg.critic;
      const critic = (qc = createDtCriticLearner({
        dt,
        window: window(),
        hidden: c.hidden,
        learningRate: c.learningRate,
        bufferSize: c.bufferSize,
        seed: cfg.seed,
      }));
      const resets = streams.get('env/reset');
      const startsOf = (i: number): StartsBatch => ({
        iteration: i,
        starts: Array.from({ length: c.episodes }, () => ({ kind: 'seed' as const, envId: cfg.env.id, seed: resets.seed() })),
      });
      const roll = rollout({ venv, actor, rng: streams.get('action'), groupSize: 1, ...(c.maxSteps !== null ? { maxSteps: c.maxSteps } : {}) });
      const criticStep = dtCriticUpdate<ScoredGroup>(critic, c);
      const score = criticGroups(critic, { count: M, groupSize: G, score: c.score, rng: streams.get('qgrpo'), version: () => learner.version });
      const advantages = groupAdvantages({ ...alg.advantages, outcome: criticOutcome });
      const count = (b: Batch<ScoredGroup>): void => {
        for (const g of b.groups) for (const tr of g.trajectories) envSteps += tr.length;
      };
      /** The DT update of QGRPO (none in the warm-up iterations: the critic only learns). */
      const improve = (i: number): OperatorFunction<Batch<ScoredGroup>, Batch<ScoredGroup>> =>
        i < c.warmupIterations ? pipe() : pipe(score, advantages, update);

      /** One on-policy iteration: episodes → buffer → critic steps → Q-scored action groups → clipped update. */
      iteration = (i: number) =>
        of(i).pipe(
          timed('time/rollout_s', pipe(map(startsOf), roll)),
          returns({ gamma: 1 }),
          tap(count),
          timed('time/update_s', pipe(replayBuffer<ScoredGroup>(critic.buffer), criticStep, improve(i))),
          map((b) => ({ ...b, metrics: { ...b.metrics, 'env_steps/total': envSteps, ...time } })),
          evaluation,
        );
    }

    const pretrained: Record<string, number> = {};
    for (const [k, v] of Object.entries(runEvaluation(evalCfg))) if (v !== undefined) pretrained[k] = v;

    const state: PipelineState<GrpoDtState> = {
      codec: GrpoDtState,
      params: dt.params,
      optimizer: learner.optimizer,
      capture: () => ({
        version: learner.version,
        envSteps,
        rng: streams.state(),
        minibatchRng: learner.rng.state(),
        entropyRng: entropyRng.state(),
        pool: pool.state() as ResetPoint[],
        stateMean: norm.mean,
        stateStd: norm.std,
        ...(qc ? { critic: dtCriticLearnerState(qc) } : {}),
      }),
      restore: (s) => {
        learner.version = s.version;
        envSteps = s.envSteps;
        for (const [name, st] of Object.entries(s.rng.streams)) streams.get(name).setState(st);
        learner.rng.setState(s.minibatchRng);
        entropyRng.setState(s.entropyRng);
        pool.replace(s.pool);
        norm = { mean: s.stateMean, std: s.stateStd };
        if (qc) {
          if (!s.critic) throw new ConfigError("checkpoint: no critic state (a run with scoring 'reset' wrote it); resume it with scoring 'reset'");
          restoreDtCriticLearner(qc, s.critic);
          qc.window = window();
        }
      },
    };
    const summary = (last: MetricsRecord | undefined): Record<string, number> => {
      const out: Record<string, number> = {};
      if (last) for (const k of ['reward/mean', 'env_steps/total']) if (last[k] !== undefined) out[k] = last[k]!;
      for (const [k, v] of Object.entries(pretrained)) out[`pretrained/${k.replace(/^eval\//, '')}`] = v;
      return Object.assign(out, runEvaluation(evalCfg));
    };
    try {
      const result = await runLoop(
        { iterations: cfg.iterations, checkpointEvery: cfg.checkpointEvery, stop: stopWhen ?? stopRule(cfg.stop), state, iteration, summary },
        sinks,
        ctx,
      );
      return { ...result, dt, pretrained };
    } finally {
      learner.optimizer.dispose();
    }
  } finally {
    if (qc) disposeDtCriticLearner(qc);
    ref?.dispose();
    venv.close();
    evalEnv.close();
    replayEnv?.close();
  }
}
