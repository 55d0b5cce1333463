/**
 * `odt` — Online Decision Transformer (Zheng, Zhang & Grover 2022, arXiv 2202.05607), the baseline
 * of GRPO-DT, composed of rxrl's operators. Offline pretraining (pipelines/online-dt/pretrain.ts,
 * or a `base.checkpoint` written by `savePretrained`), then per online iteration i:
 *
 *   seed start → rollout (dtActor at R̂_online = targetFactor · R̂_eval, `envs` copies batched)
 *     → returns (γ = 1) → hindsightRelabel (targets := achieved RTG, raw) → replayBuffer
 *     → dtSupervisedUpdate on K-windows of the buffer (NLL − α·H) → evaluate (mean action, context 5)
 *
 * The buffer starts with the `bufferSize` best offline trajectories (ODT). Targets stay raw in the
 * trajectories; `update.rtgScale` is applied when a batch is built (so relabeling uses scale 1).
 * `odt-td3` (pipelines/online-dt/odt-td3.ts) is this pipeline with a TD3 critic's −α_Q·Q added to
 * the DT's loss; both share `runOnlineDt`.
 *
 * ```ts
 * const { history } = await runOdt({ data: { path: 'test/data/hopper-tiny.hdf5' }, iterations: 3, seed: 1 });
 * ```
 */
import * as t from 'io-ts';
import { map, of, tap } from 'rxjs';
import { RngStreamsStateC, type Batch, type MetricsRecord, type ScoredGroup } from '../../lib/data.ts';
import { FiniteNumber, NonNegativeInt, PositiveInt, PositiveNumber, Uint32, decodeOrThrow, oneOf, suggestion } from '../../lib/codec.ts';
import { D4rlError } from '../../lib/datasets/d4rl.ts';
import { CheckpointError } from '../../lib/io/checkpoint-codec.ts';
import { pathKind } from '#platform/files';
import { makeVectorEnv } from '../../lib/envs/registry.ts';
import { Rng, RngStreams } from '../../lib/random.ts';
import type { Actor } from '../../lib/actor.ts';
import { dtActor } from '../../lib/models/dt-actor.ts';
import { rollout, type StartsBatch } from '../../operators/rollout.ts';
import { returns } from '../../operators/returns.ts';
import { hindsightRelabel } from '../../operators/hindsightRelabel.ts';
import { ReplayBuffer, replayBuffer } from '../../operators/replayBuffer.ts';
import {
  DT_SUPERVISED_UPDATE_DEFAULTS,
  DtLearnerStateC,
  DtSupervisedUpdateProps,
  dtLearnerState,
  dtSupervisedUpdate,
  restoreDtLearner,
  type DtExtraLoss,
} from '../../operators/dtSupervisedUpdate.ts';
import { evaluate, runEvaluation, EvaluateProps } from '../../operators/evaluate.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import type { DecisionTransformer } from '../../lib/models/decision-transformer.ts';
import { deepPartial, pick, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext, PipelineResult } from '../context.ts';
import { runLoop, stopRule, StopRule, type PipelineState } from '../loop.ts';
import { DtModelConfig, loadPretrained, pretrainDt, type DtPretrainConfig, type PretrainedDt } from './pretrain.ts';

const UPDATE_KEYS = [
  'steps',
  'batchSize',
  'learningRate',
  'weightDecay',
  'warmupSteps',
  'maxGradNorm',
  'rtgScale',
  'temperatureLearningRate',
  'targetEntropy',
] as const;
const PRETRAIN_KEYS = ['batchSize', 'learningRate', 'warmupSteps'] as const;

/** The sections every online-DT pipeline shares (ODT, ODT+TD3). */
export const ONLINE_DT_PROPS = {
  seed: Uint32,
  iterations: PositiveInt,
  env: t.strict({ id: t.string, options: t.record(t.string, t.union([t.number, t.string, t.boolean])) }),
  /** The offline dataset (D4RL-layout HDF5) that pretraining and the buffer's seed come from. */
  data: t.strict({ path: t.string }),
  /** null: pretrain in-process; `{ checkpoint }`: load a DT written by `savePretrained` (its config must match). */
  base: t.union([t.null, t.strict({ checkpoint: t.string })]),
  model: DtModelConfig,
  /** Offline pretraining (the other update knobs are `update`'s). */
  pretrain: t.strict({ steps: NonNegativeInt, ...pick(DtSupervisedUpdateProps, PRETRAIN_KEYS) }),
  online: t.strict({
    /** Rollouts per iteration: copies of the env stepped as one batch through the DT from one reset seed. */
    envs: PositiveInt,
    /** R̂ of evaluation (ODT Hopper: 3600); online rollouts act at `targetFactor` times it (ODT: 2). */
    targetReturn: FiniteNumber,
    targetFactor: PositiveNumber,
    /** Replay buffer capacity in trajectories (ODT: 1000). */
    bufferSize: PositiveInt,
    /** Context of acting, online and in evaluation (ODT: 5). */
    contextLength: PositiveInt,
    /** Cut online episodes at this many steps (null: the env's time limit). */
    maxSteps: t.union([PositiveInt, t.null]),
  }),
  /** The online supervised update (`steps` optimizer steps per iteration, K = model.contextLength). */
  update: t.strict(pick(DtSupervisedUpdateProps, UPDATE_KEYS)),
  evaluation: t.strict({ every: EvaluateProps.every, episodes: PositiveInt }),
  stop: t.union([t.null, StopRule]),
  checkpointEvery: NonNegativeInt,
};

export const OdtConfig = t.strict({ pipeline: oneOf(['odt']), ...ONLINE_DT_PROPS }, 'odt');
export type OdtConfig = t.TypeOf<typeof OdtConfig>;
/** The shared part of the online-DT configs. */
export type OnlineDtConfig = Omit<OdtConfig, 'pipeline'> & { pipeline: string };

/** The pipeline file's codec: every key optional, unknown keys refused with the nearest name. */
export const OdtFile = deepPartial(OdtConfig);

/**
 * Every default, once: the update's from `dtSupervisedUpdate` (ODT's), sized down where ODT's
 * recipe does not fit a 2-core machine (batch 64, 20 steps per iteration, a 128 × 3 DT).
 */
export const ODT_DEFAULTS: OdtConfig = {
  pipeline: 'odt',
  seed: 0,
  iterations: 100,
  env: { id: 'Hopper-v4', options: {} },
  data: { path: 'data/hopper-medium.hdf5' },
  base: null,
  model: { dModel: 128, nLayers: 3, nHeads: 1, contextLength: 20, maxEpisodeSteps: 1000 },
  pretrain: { steps: 2000, batchSize: 64, learningRate: 1e-4, warmupSteps: 1000 },
  online: { envs: 4, targetReturn: 3600, targetFactor: 2, bufferSize: 1000, contextLength: 5, maxSteps: null },
  update: { ...pick(DT_SUPERVISED_UPDATE_DEFAULTS, UPDATE_KEYS), steps: 20, batchSize: 64, warmupSteps: 1000 },
  evaluation: { every: 10, episodes: 10 },
  stop: null,
  checkpointEvery: 10,
};

/** The metrics of the online-DT pipelines (docs/metrics.md); `stop.metric` must be one of them. */
export const ODT_METRICS: readonly string[] = [
  ...['rollout/env_steps', 'rollout/total_env_steps', 'rollout/episodes', 'policy_version', 'reward/mean', 'reward/std', 'reward/min', 'reward/max'],
  ...['relabel/target_shift', 'buffer/size', 'buffer/return_mean', 'dt/nll', 'dt/entropy', 'dt/temperature', 'grad_norm', 'time/rollout_s', 'time/update_s'],
  ...['eval/return', 'eval/return_std', 'eval/length', 'eval/cost', 'eval/normalized_score'],
];

export function resolveOdt(partial: DeepPartial<OdtConfig> = {}): OdtConfig {
  return decodeOrThrow(OdtConfig, resolve(ODT_DEFAULTS, partial), 'odt config');
}

/** Cross-field checks shared by the online-DT pipelines, as `path: problem` lines. */
export function checkOnlineDt(cfg: OnlineDtConfig, metrics: readonly string[]): string[] {
  const out: string[] = [];
  if (cfg.online.contextLength > cfg.model.contextLength)
    out.push(`online.contextLength: must be ≤ model.contextLength (${cfg.model.contextLength}), got ${cfg.online.contextLength}`);
  const s = cfg.stop;
  if (s) {
    if (!metrics.includes(s.metric))
      out.push(`stop.metric: unknown metric '${s.metric}'; ${suggestion(s.metric, metrics)}(${cfg.pipeline} emits: ${metrics.join(', ')})`);
    if (s.atLeast === undefined && s.atMost === undefined) out.push(`stop: needs atLeast or atMost (a bound on ${s.metric}), got neither`);
  }
  return out;
}

export function checkOdt(cfg: OdtConfig): string[] {
  return checkOnlineDt(cfg, ODT_METRICS);
}

/** What a checkpoint of an online-DT pipeline holds besides the DT's weights and optimizer slots. */
export const OnlineDtState = t.type(
  { learner: DtLearnerStateC, rng: RngStreamsStateC, buffer: t.unknown, totalEnvSteps: NonNegativeInt, extra: t.unknown },
  'OnlineDtState',
);
export type OnlineDtState = t.TypeOf<typeof OnlineDtState>;

/** The pretraining config an online-DT config implies (what a `base.checkpoint` must have been written with). */
export function pretrainConfigOf(cfg: OnlineDtConfig): DtPretrainConfig {
  const u = cfg.update;
  return {
    dataset: cfg.data.path,
    envId: cfg.env.id,
    seed: cfg.seed,
    model: cfg.model,
    steps: cfg.pretrain.steps,
    update: {
      batchSize: cfg.pretrain.batchSize,
      learningRate: cfg.pretrain.learningRate,
      weightDecay: u.weightDecay,
      warmupSteps: cfg.pretrain.warmupSteps,
      maxGradNorm: u.maxGradNorm,
      rtgScale: u.rtgScale,
      temperatureLearningRate: u.temperatureLearningRate,
      targetEntropy: u.targetEntropy,
    },
  };
}

/** A missing dataset or base checkpoint, named before anything is built. */
function checkFiles(cfg: OnlineDtConfig): void {
  if (cfg.base && pathKind(cfg.base.checkpoint) === 'missing') throw new CheckpointError(cfg.base.checkpoint, 'base.checkpoint: no such file');
  if (pathKind(cfg.data.path) === 'missing')
    throw new D4rlError(`data.path: ${cfg.data.path}: no such file (a D4RL-layout HDF5 file; see docs/pipelines/online-dt.md for how to make one)`);
}

/**
 * Pretrains (or loads) the DT; on resume the weights come from the checkpoint, so no step is taken.
 * The online update samples from its own stream (`Rng(seed, 'odt/update')`), so a loaded
 * pretraining continues exactly as an in-process one.
 */
async function pretrained(cfg: OnlineDtConfig, resuming: boolean): Promise<PretrainedDt> {
  const pc = pretrainConfigOf(cfg);
  const pre = cfg.base ? await loadPretrained(cfg.base.checkpoint, pc) : await pretrainDt(resuming ? { ...pc, steps: 0 } : pc);
  pre.learner.rng.setState(new Rng(cfg.seed, 'odt/update').state());
  return pre;
}

/** What a variant (ODT+TD3) adds to the online loop. */
export interface OnlineDtExtension {
  /** An extra loss term on each DT update step (called once per step). */
  readonly loss?: DtExtraLoss;
  /** Runs after the buffer took the new trajectories and before the DT update (e.g. critic steps); returns metrics. */
  beforeUpdate?(buffer: ReplayBuffer): Record<string, number>;
  /** Metrics after the DT update (e.g. the mean Q term). */
  afterUpdate?(): Record<string, number>;
  capture(): unknown;
  restore(state: unknown): void;
  dispose(): void;
}

export interface OnlineDtResult extends PipelineResult {
  dt: DecisionTransformer;
}

/** The online loop of ODT and its variants (see the module doc). */
export async function runOnlineDt(
  cfg: OnlineDtConfig,
  sinks: MetricsSink[],
  ctx: PipelineContext,
  extend?: (pre: PretrainedDt) => OnlineDtExtension,
  stopWhen?: (m: MetricsRecord) => boolean,
): Promise<OnlineDtResult> {
  checkFiles(cfg);
  const pre = await pretrained(cfg, ctx.resume !== undefined);
  const { dt, learner, stateNorm } = pre;
  const ext = extend?.(pre);
  const streams = new RngStreams(cfg.seed);
  const on = cfg.online;
  const maxSteps = on.maxSteps === null ? {} : { maxSteps: on.maxSteps };
  const venv = await makeVectorEnv(cfg.env.id, on.envs, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'disabled' });
  const evalEnv = await makeVectorEnv(cfg.env.id, cfg.evaluation.episodes, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'disabled' });
  let buffer = ReplayBuffer.fromOffline(pre.trajectories, on.bufferSize);
  let totalEnvSteps = 0;
  const version = () => learner.version;
  const acting = { scale: cfg.update.rtgScale, contextLength: on.contextLength, stateNorm, version };
  const actor = dtActor(dt, { ...acting, targetReturn: on.targetFactor * on.targetReturn });
  const evalActor = deterministic(dtActor(dt, { ...acting, targetReturn: on.targetReturn }));
  const act = rollout({ venv, actor, rng: streams.get('action'), ...maxSteps });
  const upd = { ...cfg.update, contextLength: cfg.model.contextLength };
  const evaluation = evaluate<ScoredGroup>({ venv: evalEnv, actor: evalActor, every: cfg.evaluation.every });
  const time: Record<string, number> = {};
  let t0 = 0;

  const starts = (iteration: number): StartsBatch => ({ iteration, starts: [{ kind: 'seed', envId: cfg.env.id, seed: streams.get('env/reset').seed() }] });
  /** One online iteration. */
  const iteration = (i: number) =>
    of(i).pipe(
      map(starts),
      (s$) =>
        s$.pipe(
          tap(() => (t0 = performance.now())),
          act,
          tap(() => (time['time/rollout_s'] = (performance.now() - t0) / 1000)),
        ),
      map((b) => {
        totalEnvSteps += b.metrics?.['rollout/env_steps'] ?? 0;
        return { ...b, metrics: { ...b.metrics, 'rollout/total_env_steps': totalEnvSteps } };
      }),
      returns({ gamma: 1 }),
      hindsightRelabel({ scale: 1 }),
      replayBuffer(buffer),
      (b$) =>
        b$.pipe(
          tap(() => (t0 = performance.now())),
          map((b) => ({ ...b, trajectories: buffer.trajectories(), metrics: { ...b.metrics, ...ext?.beforeUpdate?.(buffer) } })),
          dtSupervisedUpdate(learner, { ...upd, stateNorm, extraLoss: ext?.loss }),
          map(({ trajectories: _, ...b }): Batch<ScoredGroup> => ({ ...b, metrics: { ...b.metrics, ...ext?.afterUpdate?.() } })),
          tap(() => (time['time/update_s'] = (performance.now() - t0) / 1000)),
        ),
      evaluation,
      map((b) => ({ ...b, metrics: { ...b.metrics, ...time } })),
    );

  const state: PipelineState<OnlineDtState> = {
    codec: OnlineDtState,
    params: dt.params,
    optimizer: learner.optimizer,
    capture: () => ({ learner: dtLearnerState(learner), rng: streams.state(), buffer: bufferState(buffer), totalEnvSteps, extra: ext?.capture() ?? null }),
    restore: (s) => {
      restoreDtLearner(learner, s.learner);
      for (const [name, st] of Object.entries(s.rng.streams)) streams.get(name).setState(st);
      buffer = ReplayBuffer.fromState(s.buffer);
      totalEnvSteps = s.totalEnvSteps;
      ext?.restore(s.extra);
    },
  };
  const summary = (last: MetricsRecord | undefined): Record<string, number> => {
    const out: Record<string, number> = {};
    if (last) for (const k of ['reward/mean', 'rollout/total_env_steps']) if (last[k] !== undefined) out[k] = last[k]!;
    return Object.assign(out, runEvaluation({ venv: evalEnv, actor: evalActor }));
  };

  let done = false;
  try {
    const result = await runLoop(
      { iterations: cfg.iterations, checkpointEvery: cfg.checkpointEvery, stop: stopWhen ?? stopRule(cfg.stop), state, iteration, summary },
      sinks,
      ctx,
    );
    done = true;
    return { ...result, dt };
  } finally {
    if (!done) dt.dispose(); // on success the caller owns it
    venv.close();
    evalEnv.close();
    learner.optimizer.dispose();
    ext?.dispose();
  }
}

/**
 * The buffer as `ReplayBuffer.fromState` reads it, its typed arrays left as they are, so the
 * checkpoint stores the large ones as tensors instead of base64 text in its JSON header.
 */
function bufferState(buffer: ReplayBuffer): unknown {
  return { version: 1, capacity: buffer.capacity, trajectories: [...buffer.trajectories()] };
}

/** The same actor, always taking its mean action (ODT's evaluation). */
function deterministic(a: Actor): Actor {
  return { ...a, act: (obs, n, rng) => a.act(obs, n, rng, true) };
}

/** Runs `odt` (see the module doc); the DT is the caller's to dispose. */
export async function runOdt(
  partial: DeepPartial<OdtConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<OnlineDtResult> {
  const { stopWhen, ...rest } = partial;
  return runOnlineDt(resolveOdt(rest), sinks, ctx, undefined, stopWhen);
}
