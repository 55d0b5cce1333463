/**
 * `grpo-control` — GRPO with reset-state groups for control envs and an MLP policy, optionally
 * constrained (Lagrangian GRPO), composed only of rxrl's operators. Per iteration i:
 *
 *   starts (reset seeds) → rollout (G copies from each reset state) → returns → groupAdvantages
 *          → [constraintCost → primalDual] → policyUpdate → evaluate
 *
 * This module is the pipeline's three parts and nothing else: its config (`GrpoControlConfig`, a
 * codec composed of the operators' codecs; the type is `t.TypeOf` of it, the pipeline-file codec
 * `GrpoControlFile` is derived from it, each knob has one default in `GRPO_CONTROL_DEFAULTS`), the
 * construction of its parts, and `iteration(i)`. Resume, checkpoints, the stop rule, Ctrl-C, sinks
 * and the summary are the shared loop's (pipelines/loop.ts); the checkpointed plain state is
 * `GrpoControlState`, decoded with its codec on resume.
 *
 * ```ts
 * const { history } = await runGrpoControl({ env: { id: 'CartPole-v1' }, iterations: 30, seed: 1 });
 * console.log(history.at(-1)?.['reward/mean']);
 * ```
 */
import * as t from 'io-ts';
import * as tf from '@tensorflow/tfjs-core';
import { of, map, type Observable } from 'rxjs';
import { makeVectorEnv } from '../lib/envs/registry.ts';
import type { VectorEnv } from '../lib/envs/vector.ts';
import { Rng, RngStreams } from '../lib/random.ts';
import type { MlpPolicy } from '../lib/models/mlp.ts';
import { makeModel } from '../lib/models/registry.ts';
import { RngStateC, RngStreamsStateC, type AdvantagedGroup, type Batch, type Group, type MetricsRecord } from '../lib/data.ts';
import { taskGroupId, type AsyncTask } from '../lib/async/messages.ts';
import type { ActorPart } from '../lib/async/transport.ts';
import {
  FiniteNumber,
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
import { rollout, rolloutGroups, type StartsBatch } from '../operators/rollout.ts';
import { consumeGroups } from '../operators/consumeGroups.ts';
import { maxStaleness } from '../operators/maxStaleness.ts';
import { policyActor, type Actor } from '../lib/actor.ts';
import { returns } from '../operators/returns.ts';
import { groupAdvantages, AdvantageEstimatorProps, ADVANTAGE_ESTIMATOR_DEFAULTS } from '../operators/groupAdvantages.ts';
import { constraintCost } from '../operators/constraintCost.ts';
import { primalDual, PrimalDualProps, PRIMAL_DUAL_DEFAULTS } from '../operators/primalDual.ts';
import { LagrangeState, LagrangeStateC, LagrangeRuleProps, LAGRANGE_DEFAULTS } from '../lib/lagrange.ts';
import { policyUpdate, PolicyUpdateProps, POLICY_UPDATE_DEFAULTS, type Learner } from '../operators/policyUpdate.ts';
import { stepBatchOf } from '../lib/models/mlp.ts';
import { evaluate, runEvaluation, EvaluateProps } from '../operators/evaluate.ts';
import type { MetricsSink } from '../operators/metrics.ts';
import { loadCheckpointBytes, type CheckpointSource } from '../lib/io/checkpoint-codec.ts';
import { deepPartial, pick, resolve, type DeepPartial } from './config.ts';
import type { PipelineContext, PipelineResult } from './context.ts';
import { runLoop, stopRule, StopRule, type PipelineState } from './loop.ts';

/** Largest width of a hidden layer (a larger one is a typo, not an experiment). */
export const MAX_HIDDEN = 65536;

const ADVANTAGE_KEYS = ['estimator', 'std', 'eps', 'dropZeroStd'] as const;
const UPDATE_KEYS = ['epochs', 'minibatches', 'clipEps', 'clipEpsHigh', 'ratioLevel', 'lossAggregation', 'entropyCoef', 'maxGradNorm'] as const;
const RULE_KEYS = ['update', 'lr', 'lambdaMax', 'kP', 'kI', 'kD', 'window'] as const;
const COMBINE_KEYS = ['combine', 'normalize'] as const;

/** A cost constraint handled by primal-dual updates (`limit` d on the mean episode cost). */
export const GrpoControlConstraint = t.strict(
  { limit: FiniteNumber, lambdaInit: t.union([NonNegativeNumber, t.null]), ...pick(LagrangeRuleProps, RULE_KEYS), ...pick(PrimalDualProps, COMBINE_KEYS) },
  'constraint',
);

/** The full config: every knob required (a pipeline file states only what differs from the defaults). */
export const GrpoControlConfig = t.strict(
  {
    pipeline: oneOf(['grpo-control']),
    seed: Uint32,
    iterations: PositiveInt,
    env: t.strict({ id: t.string, options: t.record(t.string, t.union([t.number, t.string, t.boolean])) }),
    /** The policy model; `kind` names it in the model registry (`rxrl list`). */
    policy: t.strict({ kind: oneOf(['mlp']), hidden: t.array(PositiveIntAtMost(MAX_HIDDEN)), activation: oneOf(['tanh', 'relu']) }),
    algorithm: t.strict({
      /** Reset states per iteration. */
      startsPerIteration: PositiveInt,
      /** G: rollouts per reset state. */
      groupSize: PositiveInt,
      /**
       * Step the iteration's starts together (M·G env copies, one policy call per env step) rather
       * than one group after another. Faster where the per-step overhead of the policy and the
       * vector env dominates (small MLPs); the actions are drawn in another order, so a seed gives
       * other (equally valid) samples than with `false`, the default that earlier runs used.
       */
      batchStarts: t.boolean,
      learningRate: PositiveNumber,
      advantages: t.strict(pick(AdvantageEstimatorProps, ADVANTAGE_KEYS)),
      update: t.strict(pick(PolicyUpdateProps, UPDATE_KEYS)),
      /** null: unconstrained GRPO. */
      constraint: t.union([t.null, GrpoControlConstraint]),
    }),
    evaluation: t.strict({ every: EvaluateProps.every, episodes: PositiveInt }),
    /** null: run all iterations. */
    stop: t.union([t.null, StopRule]),
    /** Write a checkpoint every this many iterations (0: only at the end). */
    checkpointEvery: NonNegativeInt,
  },
  'grpo-control',
);
export type GrpoControlConfig = t.TypeOf<typeof GrpoControlConfig>;
export type GrpoControlConstraint = t.TypeOf<typeof GrpoControlConstraint>;

/** The pipeline file's codec, derived: every key optional, unknown keys refused with the nearest name. */
export const GrpoControlFile = deepPartial(GrpoControlConfig);

/**
 * Every default, once. Operator knobs take the operator's default; the pipeline's own choices
 * (a tuned CartPole recipe) override only `epochs` 4, `minibatches` 4, `maxGradNorm` 0.5.
 */
export const GRPO_CONTROL_DEFAULTS: GrpoControlConfig = {
  pipeline: 'grpo-control',
  seed: 0,
  iterations: 30,
  env: { id: 'CartPole-v1', options: {} },
  policy: { kind: 'mlp', hidden: [64, 64], activation: 'tanh' },
  algorithm: {
    startsPerIteration: 4,
    groupSize: 16,
    batchStarts: false,
    learningRate: 0.02,
    advantages: pick(ADVANTAGE_ESTIMATOR_DEFAULTS, ADVANTAGE_KEYS),
    update: { ...pick(POLICY_UPDATE_DEFAULTS, UPDATE_KEYS), epochs: 4, minibatches: 4, maxGradNorm: 0.5 },
    constraint: null,
  },
  evaluation: { every: 10, episodes: 5 },
  stop: null,
  checkpointEvery: 10,
};

/** The defaults of a `constraint` section (its default is null: unconstrained). */
export const CONSTRAINT_DEFAULTS: GrpoControlConstraint = {
  limit: 25,
  lambdaInit: null,
  ...pick(LAGRANGE_DEFAULTS, RULE_KEYS),
  ...pick(PRIMAL_DUAL_DEFAULTS, COMBINE_KEYS),
};

/** The metrics this pipeline emits (docs/metrics.md); `stop.metric` must be one of them. */
export const GRPO_CONTROL_METRICS: readonly string[] = [
  ...['rollout/env_steps', 'rollout/episodes', 'policy_version', 'reward/mean', 'reward/std', 'reward/min', 'reward/max', 'cost/mean', 'length/mean'],
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
  ...['cost/cost/mean', 'cost/cost/frac_zero_std', 'lambda', 'constraint/estimate', 'constraint/violation', 'constraint/limit'],
  ...['eval/return', 'eval/return_std', 'eval/length', 'eval/cost', 'eval/normalized_score'],
];

/** Fills the defaults in (a constraint section gets the constraint defaults) and checks the result. */
export function resolveGrpoControl(partial: DeepPartial<GrpoControlConfig> = {}): GrpoControlConfig {
  const merged = resolve(GRPO_CONTROL_DEFAULTS, partial);
  const c = partial.algorithm?.constraint;
  const full = c ? { ...merged, algorithm: { ...merged.algorithm, constraint: resolve(CONSTRAINT_DEFAULTS, c) } } : merged;
  return decodeOrThrow(GrpoControlConfig, full, 'grpo-control config');
}

/** Cross-field checks (what the codec cannot say), as `path: problem` lines; `rxrl validate` reports them. */
export function checkGrpoControl(cfg: GrpoControlConfig): string[] {
  const out: string[] = [];
  const u = cfg.algorithm.update;
  if (u.clipEpsHigh !== null && u.clipEpsHigh < u.clipEps) out.push(`algorithm.update.clipEpsHigh: must be ≥ clipEps (${u.clipEps}), got ${u.clipEpsHigh}`);
  const a = cfg.algorithm.advantages;
  if (a.estimator === 'drgrpo' && a.std !== 'none' && a.std !== 'auto')
    out.push(`algorithm.advantages.std: drgrpo is GRPO without the std division; use 'none' (or estimator 'grpo' with std '${a.std}'), got '${a.std}'`);
  if (a.estimator === 'rloo' && cfg.algorithm.groupSize < 2) out.push(`algorithm.groupSize: rloo needs groupSize ≥ 2, got ${cfg.algorithm.groupSize}`);
  const c = cfg.algorithm.constraint;
  if (c) {
    if (c.limit < 0) out.push(`algorithm.constraint.limit: must be ≥ 0 (episode costs are non-negative), got ${c.limit}`);
    if (c.lambdaInit !== null && c.lambdaMax !== null && c.lambdaInit > c.lambdaMax)
      out.push(`algorithm.constraint.lambdaInit: must be ≤ lambdaMax (${c.lambdaMax}), got ${c.lambdaInit}`);
    if (c.update === 'fixed' && c.lambdaInit === null) out.push(`algorithm.constraint.lambdaInit: the 'fixed' rule needs lambdaInit (the fixed weight)`);
    if (c.update === 'log' && c.lambdaInit === 0) out.push(`algorithm.constraint.lambdaInit: the 'log' rule needs lambdaInit > 0 (it updates ln λ), got 0`);
    if (c.update === 'log' && c.lambdaMax !== null && c.lambdaInit === null && c.lambdaMax < 1)
      out.push(`algorithm.constraint.lambdaMax: the 'log' rule starts at λ = 1 unless lambdaInit is set; lambdaMax ${c.lambdaMax} is below it`);
  }
  const s = cfg.stop;
  if (s) {
    if (!GRPO_CONTROL_METRICS.includes(s.metric))
      out.push(
        `stop.metric: unknown metric '${s.metric}'; ${suggestion(s.metric, GRPO_CONTROL_METRICS)}(grpo-control emits: ${GRPO_CONTROL_METRICS.join(', ')})`,
      );
    if (s.atLeast === undefined && s.atMost === undefined) out.push(`stop: needs atLeast or atMost (a bound on ${s.metric}), got neither`);
  }
  return out;
}

/** What a checkpoint of this pipeline holds besides the weights and optimizer slots (and `iteration`). */
export const GrpoControlState = t.intersection(
  [t.type({ version: NonNegativeInt, rng: RngStreamsStateC, minibatchRng: RngStateC }), t.partial({ lagrange: LagrangeStateC })],
  'GrpoControlState',
);
export type GrpoControlState = t.TypeOf<typeof GrpoControlState>;

export interface GrpoControlResult extends PipelineResult {
  policy: MlpPolicy;
  lagrange?: LagrangeState;
}

export async function runGrpoControl(
  partial: DeepPartial<GrpoControlConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<GrpoControlResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveGrpoControl(rest);
  const alg = cfg.algorithm;
  const c = alg.constraint;

  // The parts: envs, policy, learner, multiplier, RNG streams.
  const streams = new RngStreams(cfg.seed);
  const copies = alg.batchStarts ? alg.startsPerIteration * alg.groupSize : alg.groupSize;
  const venv = await makeVectorEnv(cfg.env.id, copies, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'disabled' });
  const evalEnv = await makeVectorEnv(cfg.env.id, cfg.evaluation.episodes, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'disabled' });
  const policy = makeModel(cfg.policy.kind, {
    obsDim: venv.obsDim,
    actionSpace: venv.actionSpace,
    hidden: cfg.policy.hidden,
    activation: cfg.policy.activation,
    seed: streams.get('init').seed(),
  });
  const learner: Learner<ReturnType<typeof stepBatchOf>> & { rng: Rng } = {
    policy,
    optimizer: tf.train.adam(alg.learningRate),
    version: 0,
    batchOf: stepBatchOf,
    rng: new Rng(cfg.seed, 'policyUpdate/minibatch'),
  };
  let lagrange = c
    ? new LagrangeState({
        constraints: [{ name: 'cost', limit: c.limit }],
        ...pick(c, RULE_KEYS),
        ...(c.lambdaInit !== null ? { lambdaInit: c.lambdaInit } : {}),
      })
    : undefined;

  const starts = (iteration: number): StartsBatch => {
    const resets = streams.get('env/reset');
    return { iteration, starts: Array.from({ length: alg.startsPerIteration }, () => ({ kind: 'seed' as const, envId: cfg.env.id, seed: resets.seed() })) };
  };
  const actor = policyActor(policy, () => learner.version);
  const evalActor = policyActor(policy, () => learner.version, true);
  const act = rollout({ venv, actor, rng: streams.get('action'), groupSize: alg.groupSize });
  // With a constraint, zero-variance groups are dropped by constraintCost (only when neither reward
  // nor cost varies), never before it: dropping on reward alone would bias the cost estimate Ĵ_C.
  const advantages = groupAdvantages(lagrange ? { ...alg.advantages, dropZeroStd: false } : alg.advantages);
  const costs = constraintCost({ ...alg.advantages, costs: [{ name: 'cost' }] });
  const update = policyUpdate(learner, alg.update);
  const evaluation = evaluate<AdvantagedGroup>({ venv: evalEnv, actor: evalActor, every: cfg.evaluation.every });

  // With actors (ctx.async), the groups come from them: task n is the n-th reset seed and action
  // seed of the run's streams, rolled out by whichever actor takes it.
  const asyncCtx = ctx.async;
  const source = asyncCtx
    ? consumeGroups({
        transport: asyncCtx.transport,
        info: asyncCtx.info,
        groupsPerBatch: alg.startsPerIteration,
        queue: asyncCtx.queue ?? alg.startsPerIteration,
        nextTask: (n): AsyncTask => ({
          task: n,
          groupId: taskGroupId(n),
          start: { kind: 'seed', envId: cfg.env.id, seed: streams.get('env/reset').seed() },
          seed: streams.get('action').seed(),
        }),
        learner,
        params: policy.params,
        resuming: asyncCtx.resuming,
        log: asyncCtx.log,
        archive: asyncCtx.archive,
      })
    : undefined;
  /** Iteration i's groups: rolled out here (on-policy), or taken from the actors within the staleness bound. */
  const groups = (i: number): Observable<Batch<Group>> =>
    source && asyncCtx ? source.batch(i).pipe(maxStaleness(learner, asyncCtx.staleness)) : of(i).pipe(map(starts), act);
  const shareWeights = (b: Observable<Batch<AdvantagedGroup>>) => (source ? b.pipe(source.publishWeights()) : b);

  /** One iteration. */
  const iteration = (i: number) =>
    groups(i).pipe(
      returns(),
      advantages,
      (scored) => (lagrange && c ? scored.pipe(costs, primalDual(lagrange, pick(c, COMBINE_KEYS)), update) : scored.pipe(update)),
      shareWeights,
      evaluation,
    );

  const state: PipelineState<GrpoControlState> = {
    codec: GrpoControlState,
    params: policy.params,
    optimizer: learner.optimizer,
    capture: () => ({ version: learner.version, rng: streams.state(), minibatchRng: learner.rng.state(), ...(lagrange ? { lagrange: lagrange.state() } : {}) }),
    restore: (s) => {
      learner.version = s.version;
      for (const [name, st] of Object.entries(s.rng.streams)) streams.get(name).setState(st);
      learner.rng.setState(s.minibatchRng);
      if (lagrange && s.lagrange) lagrange = LagrangeState.fromState(s.lagrange);
    },
  };
  /** The last iteration's training metrics and a final evaluation (outside metrics.jsonl). */
  const summary = (last: MetricsRecord | undefined): Record<string, number> => {
    const out: Record<string, number> = {};
    if (last) for (const k of ['reward/mean', 'cost/mean', 'lambda']) if (last[k] !== undefined) out[k] = last[k]!;
    return Object.assign(out, runEvaluation({ venv: evalEnv, actor: evalActor }));
  };

  try {
    const result = await runLoop(
      { iterations: cfg.iterations, checkpointEvery: cfg.checkpointEvery, stop: stopWhen ?? stopRule(cfg.stop), state, iteration, summary, attachment: source },
      sinks,
      ctx,
    );
    return lagrange ? { ...result, policy, lagrange } : { ...result, policy };
  } finally {
    venv.close();
    evalEnv.close();
    learner.optimizer.dispose();
  }
}

/**
 * Deterministic evaluation of a checkpoint's policy (`rxrl eval`; the playground's downloads).
 * @param config The run's resolved config.
 * @param checkpoint The checkpoint file's bytes and its name (for errors).
 * @param episodes Episodes to run (default `evaluation.episodes`).
 * @returns `eval/*` metrics, the checkpoint's `iteration` and `policy_version`.
 */
export async function evaluateGrpoControl(config: GrpoControlConfig, checkpoint: CheckpointSource, episodes?: number): Promise<Record<string, number>> {
  const n = episodes ?? config.evaluation.episodes;
  const venv = await makeVectorEnv(config.env.id, n, { ...config.env.options, seed: config.seed }, { autoreset: 'disabled' });
  const policy = makeModel(config.policy.kind, {
    obsDim: venv.obsDim,
    actionSpace: venv.actionSpace,
    hidden: config.policy.hidden,
    activation: config.policy.activation,
    seed: 0,
  });
  try {
    const { state } = await loadCheckpointBytes(checkpoint.bytes, { label: checkpoint.label, params: policy.params.map, strict: false });
    const result = runEvaluation({ venv, actor: policyActor(policy, () => Number(state['version'] ?? 0), true) });
    return { ...result, iteration: Number(state['iteration'] ?? -1), policy_version: Number(state['version'] ?? 0) } as Record<string, number>;
  } finally {
    venv.close();
    policy.dispose();
  }
}

/**
 * The actor side of an asynchronous run: the G-copy env and a policy of the config's shape; each
 * task is one group from its reset seed, sampled with its own action seed by the weights loaded.
 * Tasks an actor holds together step as one batch (k·G copies, one policy call per env step), each
 * group drawing its noise from its own seed's stream: the same actions as alone, given the same
 * policy outputs (test/async-actor-batch.test.ts checks it group by group).
 */
export async function grpoControlActor(config: GrpoControlConfig): Promise<ActorPart> {
  const G = config.algorithm.groupSize;
  const make = (copies: number) => makeVectorEnv(config.env.id, copies, { ...config.env.options, seed: config.seed }, { autoreset: 'disabled' });
  const venv = await make(G);
  const policy = makeModel(config.policy.kind, {
    obsDim: venv.obsDim,
    actionSpace: venv.actionSpace,
    hidden: config.policy.hidden,
    activation: config.policy.activation,
    seed: 0,
  });
  const maxTasks = config.algorithm.startsPerIteration;
  /** k·G-copy envs for batches of k tasks (k = 1 … maxTasks). */
  const batched = new Map<number, VectorEnv>([[1, venv]]);
  for (let k = 2; k <= maxTasks; k++) batched.set(k, await make(k * G));
  return {
    params: policy.params,
    maxTasks,
    rollout: (task, version) =>
      rolloutGroups({ venv, actor: policyActor(policy, () => version), rng: new Rng(task.seed, 'action') }, [task.start], [task.groupId])[0]!,
    rolloutMany: (tasks, version) => {
      const env = batched.get(tasks.length);
      if (!env) throw new RangeError(`grpo-control actor: ${tasks.length} tasks at once, at most ${maxTasks}`);
      const rngs = tasks.map((t) => new Rng(t.seed, 'action'));
      const rowRng = (row: number) => rngs[Math.floor(row / G)]!;
      const actor: Actor = {
        version: () => version,
        beginRows: () => {},
        act: (obs, _n, rng, det) => policy.act(obs, rng, { deterministic: det ?? false, rowRng }),
      };
      return rolloutGroups(
        { venv: env, actor, rng: rngs[0]! },
        tasks.map((t) => t.start),
        tasks.map((t) => t.groupId),
      );
    },
    close: () => {
      for (const e of batched.values()) e.close();
      policy.dispose();
    },
  };
}
