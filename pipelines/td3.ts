/**
 * `td3` — Twin Delayed DDPG (Fujimoto, van Hoof & Meger 2018) on a Box-action env, composed of
 * rxrl's off-policy operators. Per iteration i:
 *
 *   collectTransitions (N envs × k steps; uniform random actions for the first `startSteps`,
 *   then clip(π_φ(s) + ε, low, high)) → td3Update (buffer B ← B ∪ new; `updatesPerStep` TD3
 *   steps per new transition: twin critics, delayed actor, Polyak targets) → evaluate (every
 *   `evaluation.every` iterations: `episodes` deterministic episodes, π_φ(s) without noise)
 *
 * The module is the pipeline's three parts, as `grpo-control`: the config (`Td3Config`, composed
 * of the `td3Update` codec; the file codec `Td3File` derived from it; one default per knob in
 * `TD3_DEFAULTS`, the authors' values), the construction of its parts, and `iteration(i)`. The
 * shared loop (pipelines/loop.ts) does resume, checkpoints, the stop rule and Ctrl-C. A
 * checkpoint holds the four networks (`actor/…`, `critic/…`, `actorTarget/…`, `criticTarget/…`),
 * both Adam optimizers (`optimizer/actor/…`, `optimizer/critic/…`), and as plain state the RNG
 * streams, the learner's counters and sampling stream, the collector's episode bookkeeping, the
 * training envs' snapshot (mid-episode simulator state) and the replay buffer — its filled rows
 * as tensors inside the same checkpoint file (`state/<k>`; ~108 bytes a row for Hopper).
 *
 * ```ts
 * const { history } = await runTd3({ env: { id: 'Pendulum-v1' }, iterations: 40, seed: 1 });
 * console.log(history.at(-1)?.['eval/return']);
 * ```
 */
import * as t from 'io-ts';
import { map, of } from 'rxjs';
import {
  Float64,
  Int32,
  NonNegativeInt,
  NonNegativeNumber,
  PositiveInt,
  PositiveIntAtMost,
  PositiveNumber,
  Uint32,
  decodeOrThrow,
  oneOf,
  suggestion,
} from '../lib/codec.ts';
import { RngStateC, RngStreamsStateC, VectorEnvSnapshotC, type Batch, type MetricsRecord } from '../lib/data.ts';
import { makeVectorEnv } from '../lib/envs/registry.ts';
import { DeterministicActor } from '../lib/models/critic.ts';
import { RngStreams } from '../lib/random.ts';
import { TransitionBufferState } from '../lib/transitions.ts';
import { collectTransitions, collectorState, deterministicActor } from '../operators/collectTransitions.ts';
import { evaluate, runEvaluation, EvaluateProps } from '../operators/evaluate.ts';
import type { MetricsSink } from '../operators/metrics.ts';
import { TD3_UPDATE_DEFAULTS, Td3UpdateConfig, createTd3Learner, disposeTd3Learner, td3Update, type Td3Learner } from '../operators/td3Update.ts';
import { loadCheckpointBytes, type CheckpointSource } from '../lib/io/checkpoint-codec.ts';
import { deepPartial, resolve, type DeepPartial } from './config.ts';
import type { PipelineContext, PipelineResult } from './context.ts';
import { runLoop, stopRule, StopRule, type PipelineState } from './loop.ts';
import { MAX_HIDDEN } from './grpo-control.ts';

/** The full config: every knob required (a pipeline file states only what differs from the defaults). */
export const Td3Config = t.strict(
  {
    pipeline: oneOf(['td3']),
    seed: Uint32,
    iterations: PositiveInt,
    env: t.strict({ id: t.string, options: t.record(t.string, t.union([t.number, t.string, t.boolean])) }),
    /** Hidden widths of the actor and of each critic (relu MLPs). */
    networks: t.strict({ hidden: t.array(PositiveIntAtMost(MAX_HIDDEN)) }),
    algorithm: t.strict({
      /** N: env copies stepped together. */
      numEnvs: PositiveInt,
      /** k: vector steps per iteration (an iteration collects up to N·k transitions). */
      stepsPerIteration: PositiveInt,
      /** Uniform random actions until this many transitions were collected. */
      startSteps: NonNegativeInt,
      /** σ of the Gaussian exploration noise, as a fraction of a_max. */
      explorationNoise: NonNegativeNumber,
      actorLr: PositiveNumber,
      criticLr: PositiveNumber,
      /** Replay capacity (transitions). */
      bufferCapacity: PositiveInt,
      update: t.strict(Td3UpdateConfig.props),
    }),
    evaluation: t.strict({ every: EvaluateProps.every, episodes: PositiveInt }),
    /** null: run all iterations. */
    stop: t.union([t.null, StopRule]),
    /** Write a checkpoint every this many iterations (0: only at the end). */
    checkpointEvery: NonNegativeInt,
  },
  'td3',
);
export type Td3Config = t.TypeOf<typeof Td3Config>;

/** The pipeline file's codec, derived: every key optional, unknown keys refused with the nearest name. */
export const Td3File = deepPartial(Td3Config);

/** Every default, once: the authors' code (github.com/sfujim/TD3) — one env, one step per iteration. */
export const TD3_DEFAULTS: Td3Config = {
  pipeline: 'td3',
  seed: 0,
  iterations: 1_000_000,
  env: { id: 'Hopper-v4', options: {} },
  networks: { hidden: [256, 256] },
  algorithm: {
    numEnvs: 1,
    stepsPerIteration: 1000,
    startSteps: 25_000,
    explorationNoise: 0.1,
    actorLr: 3e-4,
    criticLr: 3e-4,
    bufferCapacity: 1_000_000,
    update: { ...TD3_UPDATE_DEFAULTS },
  },
  evaluation: { every: 5, episodes: 10 },
  stop: null,
  checkpointEvery: 5,
};

/** The metrics this pipeline emits (docs/metrics.md); `stop.metric` must be one of them. */
export const TD3_METRICS: readonly string[] = [
  ...['rollout/env_steps', 'rollout/total_env_steps', 'rollout/episodes', 'rollout/episode_return', 'rollout/episode_length'],
  ...['td3/updates', 'td3/critic_loss', 'td3/actor_loss', 'td3/q_mean', 'td3/critic_grad_norm', 'grad_norm', 'buffer/size', 'policy_version'],
  ...['eval/return', 'eval/return_std', 'eval/length', 'eval/cost', 'eval/normalized_score'],
];

/** Fills the defaults in and checks the result. */
export function resolveTd3(partial: DeepPartial<Td3Config> = {}): Td3Config {
  return decodeOrThrow(Td3Config, resolve(TD3_DEFAULTS, partial), 'td3 config');
}

/** Cross-field checks (what the codec cannot say), as `path: problem` lines; `rxrl validate` reports them. */
export function checkTd3(cfg: Td3Config): string[] {
  const out: string[] = [];
  if (cfg.networks.hidden.length === 0) out.push('networks.hidden: needs at least one hidden layer, got []');
  const a = cfg.algorithm;
  if (a.update.batchSize > a.bufferCapacity) out.push(`algorithm.update.batchSize: must be ≤ bufferCapacity (${a.bufferCapacity}), got ${a.update.batchSize}`);
  const s = cfg.stop;
  if (s) {
    if (!TD3_METRICS.includes(s.metric))
      out.push(`stop.metric: unknown metric '${s.metric}'; ${suggestion(s.metric, TD3_METRICS)}(td3 emits: ${TD3_METRICS.join(', ')})`);
    if (s.atLeast === undefined && s.atMost === undefined) out.push(`stop: needs atLeast or atMost (a bound on ${s.metric}), got neither`);
  }
  return out;
}

/** What a checkpoint of this pipeline holds besides the weights and both optimizers' slots (and `iteration`). */
export const Td3State = t.type(
  {
    rng: RngStreamsStateC,
    learner: t.type({ rng: RngStateC, criticSteps: NonNegativeInt, version: NonNegativeInt }),
    collector: t.type({ envSteps: NonNegativeInt, episodes: NonNegativeInt, episodeReturn: Float64, episodeLength: Int32, started: t.boolean }),
    /** The training envs' `VectorEnv.snapshot()` (checked by `VectorEnv.restore`). */
    envs: VectorEnvSnapshotC,
    buffer: TransitionBufferState,
  },
  'Td3State',
);
export type Td3State = t.TypeOf<typeof Td3State>;

export interface Td3Result extends PipelineResult {
  learner: Td3Learner;
}

/** The learner's networks and optimizers as the loop checkpoints them (names `actor/…`, `critic/…`, …). */
export function td3Checkpointed(l: Td3Learner) {
  return {
    params: { actor: l.actor.params, critic: l.critic.params, actorTarget: l.actorTarget.params, criticTarget: l.criticTarget.params },
    optimizer: { actor: l.actorOptimizer, critic: l.criticOptimizer },
  };
}

/**
 * Runs TD3. The returned learner is live (the caller disposes it with `disposeTd3Learner`), so a
 * script can roll out or save its actor; envs are closed.
 */
export async function runTd3(
  partial: DeepPartial<Td3Config> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<Td3Result> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveTd3(rest);
  const alg = cfg.algorithm;

  // The parts: envs, learner (networks, targets, optimizers, buffer), collector state, RNG streams.
  const streams = new RngStreams(cfg.seed);
  const venv = await makeVectorEnv(cfg.env.id, alg.numEnvs, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'next-step' });
  const evalEnv = await makeVectorEnv(cfg.env.id, cfg.evaluation.episodes, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'disabled' });
  if (venv.actionSpace.kind !== 'box') {
    venv.close();
    evalEnv.close();
    throw new Error(`td3: env.id ${cfg.env.id} has a discrete action space; TD3 needs a Box`);
  }
  const learner = createTd3Learner({
    obsDim: venv.obsDim,
    low: venv.actionSpace.low,
    high: venv.actionSpace.high,
    hidden: cfg.networks.hidden,
    seed: cfg.seed,
    actorLr: alg.actorLr,
    criticLr: alg.criticLr,
    bufferCapacity: alg.bufferCapacity,
  });
  const collector = collectorState(alg.numEnvs);
  const collect = collectTransitions({
    venv,
    actor: learner.actor,
    rng: streams.get('action'),
    steps: alg.stepsPerIteration,
    startSteps: alg.startSteps,
    explorationNoise: alg.explorationNoise,
    seed: cfg.seed,
    state: collector,
  });
  const update = td3Update(learner, alg.update);
  const evalActor = deterministicActor(learner.actor, () => learner.version);
  const evaluation = evaluate<never>({ venv: evalEnv, actor: evalActor, every: cfg.evaluation.every });

  /** One iteration: collect → update → (evaluate). */
  const iteration = (i: number) =>
    of({ iteration: i }).pipe(
      collect,
      update,
      map((b): Batch<never> => ({ iteration: b.iteration, groups: [], metrics: b.metrics })),
      evaluation,
    );

  const state: PipelineState<Td3State> = {
    codec: Td3State,
    ...td3Checkpointed(learner),
    capture: () => ({
      rng: streams.state(),
      learner: { rng: learner.rng.state(), criticSteps: learner.criticSteps, version: learner.version },
      collector: {
        envSteps: collector.envSteps,
        episodes: collector.episodes,
        episodeReturn: collector.episodeReturn.slice(),
        episodeLength: collector.episodeLength.slice(),
        started: collector.started,
      },
      envs: venv.snapshot(),
      buffer: learner.buffer.plainState(),
    }),
    restore: (s) => {
      for (const [name, st] of Object.entries(s.rng.streams)) streams.get(name).setState(st);
      learner.rng.setState(s.learner.rng);
      learner.criticSteps = s.learner.criticSteps;
      learner.version = s.learner.version;
      if (s.collector.episodeReturn.length !== alg.numEnvs || s.collector.episodeLength.length !== alg.numEnvs) {
        throw new Error(`td3: checkpoint collector state is for ${s.collector.episodeReturn.length} envs, this run has numEnvs ${alg.numEnvs}`);
      }
      Object.assign(collector, { envSteps: s.collector.envSteps, episodes: s.collector.episodes, started: s.collector.started });
      collector.episodeReturn.set(s.collector.episodeReturn);
      collector.episodeLength.set(s.collector.episodeLength);
      if (s.collector.started) venv.restore(s.envs);
      learner.buffer.load(s.buffer);
    },
  };
  /** The last iteration's training numbers and a final deterministic evaluation (outside metrics.jsonl). */
  const summary = (last: MetricsRecord | undefined): Record<string, number> => {
    const out: Record<string, number> = {};
    if (last) for (const k of ['rollout/total_env_steps', 'policy_version']) if (last[k] !== undefined) out[k] = last[k]!;
    return Object.assign(out, runEvaluation({ venv: evalEnv, actor: evalActor }));
  };

  let ok = false;
  try {
    const result = await runLoop(
      { iterations: cfg.iterations, checkpointEvery: cfg.checkpointEvery, stop: stopWhen ?? stopRule(cfg.stop), state, iteration, summary },
      sinks,
      ctx,
    );
    ok = true;
    return { ...result, learner };
  } finally {
    venv.close();
    evalEnv.close();
    if (!ok) disposeTd3Learner(learner);
  }
}

/**
 * Deterministic evaluation of a checkpoint's actor (`rxrl eval`).
 * @param config The run's resolved config.
 * @param checkpoint The checkpoint file's bytes and its name (for errors).
 * @param episodes Episodes to run (default `evaluation.episodes`).
 * @returns `eval/*` metrics, the checkpoint's `iteration` and `policy_version`.
 */
export async function evaluateTd3(config: Td3Config, checkpoint: CheckpointSource, episodes?: number): Promise<Record<string, number>> {
  const n = episodes ?? config.evaluation.episodes;
  const venv = await makeVectorEnv(config.env.id, n, { ...config.env.options, seed: config.seed }, { autoreset: 'disabled' });
  if (venv.actionSpace.kind !== 'box') {
    venv.close();
    throw new Error(`td3: env.id ${config.env.id} has a discrete action space`);
  }
  const actor = new DeterministicActor({ obsDim: venv.obsDim, low: venv.actionSpace.low, high: venv.actionSpace.high, hidden: config.networks.hidden });
  try {
    const target = new Map([...actor.params.map].map(([k, v]) => [`actor/${k}`, v] as const));
    const { state } = await loadCheckpointBytes(checkpoint.bytes, { label: checkpoint.label, params: target, strict: false });
    const version = Number((state['learner'] as { version?: number } | undefined)?.version ?? 0);
    const result = runEvaluation({ venv, actor: deterministicActor(actor, () => version) });
    return { ...result, iteration: Number(state['iteration'] ?? -1), policy_version: version } as Record<string, number>;
  } finally {
    venv.close();
    actor.dispose();
  }
}
