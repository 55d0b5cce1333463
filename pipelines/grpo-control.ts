/**
 * `grpo-control` — GRPO with reset-state groups for control envs and an MLP policy, optionally
 * constrained (Lagrangian GRPO), composed only of rxrl's operators:
 *
 *   starts → rollout (G copies from one reset state) → returns → groupAdvantages
 *          → [constraintCost → primalDual] → policyUpdate → evaluate → metrics
 *
 * One item per iteration; the loop is on-policy (the next rollout waits for the update). The same
 * typed config is what a pipeline file holds (`pipelines/examples/grpo-cartpole.yaml`,
 * `lagrangian-cartpole.yaml`) and what `runGrpoControl` takes; defaults live in
 * `GRPO_CONTROL_DEFAULTS` for both.
 *
 * ```ts
 * const { history } = await runGrpoControl({ env: { id: 'CartPole-v1' }, iterations: 30, seed: 1 });
 * console.log(history.at(-1)?.['reward/mean']);
 * ```
 */
import * as t from 'io-ts';
import * as tf from '@tensorflow/tfjs-core';
import { EMPTY, concatMap, of, range, lastValueFrom, map, toArray, takeWhile } from 'rxjs';
import { makeVectorEnv } from '../lib/envs/registry.ts';
import { Rng, RngStreams, type RngState } from '../lib/random.ts';
import type { MlpPolicy } from '../lib/models/mlp.ts';
import { makeModel } from '../lib/models/registry.ts';
import type { AdvantagedGroup, MetricsRecord } from '../lib/data.ts';
import { FiniteNumber, NonNegativeInt, PositiveInt, PositiveNumber, NonNegativeNumber, Uint32 } from '../lib/codec.ts';
import { rollout, type StartsBatch } from '../operators/rollout.ts';
import { policyActor } from '../lib/actor.ts';
import { returns } from '../operators/returns.ts';
import { groupAdvantages, type AdvantageEstimator, type StdScope } from '../operators/groupAdvantages.ts';
import { constraintCost } from '../operators/constraintCost.ts';
import { primalDual } from '../operators/primalDual.ts';
import { LagrangeState, type LagrangeStateJSON, type LagrangeUpdateRule } from '../lib/lagrange.ts';
import { policyUpdate, type Learner } from '../operators/policyUpdate.ts';
import { stepBatchOf } from '../lib/models/mlp.ts';
import { evaluate, runEvaluation } from '../operators/evaluate.ts';
import { metrics, type MetricsSink } from '../operators/metrics.ts';
import { oneOf, resolve, section, type DeepPartial } from './config.ts';
import type { PipelineContext, PipelineResult } from './context.ts';

export interface GrpoControlConfig {
  pipeline: 'grpo-control';
  seed: number;
  iterations: number;
  env: { id: string; options: Record<string, number | string | boolean> };
  /** The policy model; `kind` names it in the model registry (`rxrl list`). */
  policy: { kind: 'mlp'; hidden: number[]; activation: 'tanh' | 'relu' };
  algorithm: {
    /** Reset states per iteration. */
    startsPerIteration: number;
    /** G: rollouts per reset state. */
    groupSize: number;
    learningRate: number;
    advantages: { estimator: AdvantageEstimator; std?: StdScope; eps: number; dropZeroStd: boolean };
    update: {
      epochs: number;
      minibatches: number;
      clipEps: number;
      clipEpsHigh?: number;
      ratioLevel: 'token' | 'sequence' | 'subtrajectory';
      lossAggregation: 'token-mean' | 'sequence-mean' | 'constant';
      entropyCoef: number;
      maxGradNorm: number;
    };
    /** A cost constraint handled by primal-dual updates; null for unconstrained GRPO. */
    constraint: null | {
      /** d: the limit on the mean episode cost. */
      limit: number;
      update: LagrangeUpdateRule;
      /** η of the multiplier. */
      lr: number;
      lambdaInit?: number;
      lambdaMax: number;
      kP: number;
      kI: number;
      kD: number;
      window: number;
      combine: 'lagrangian' | 'normalized-lagrangian';
      normalize: 'none' | 'one-plus-lambda';
    };
  };
  evaluation: { every: number; episodes: number };
  /** Stop after the first iteration where `metric` ≥ `atLeast` (or ≤ `atMost`); null: run all iterations. */
  stop: null | { metric: string; atLeast?: number; atMost?: number };
  /** Write a checkpoint every this many iterations (0: only at the end). */
  checkpointEvery: number;
}

export const GRPO_CONTROL_DEFAULTS: GrpoControlConfig = {
  pipeline: 'grpo-control',
  seed: 0,
  iterations: 30,
  env: { id: 'CartPole-v1', options: {} },
  policy: { kind: 'mlp', hidden: [64, 64], activation: 'tanh' },
  algorithm: {
    startsPerIteration: 4,
    groupSize: 16,
    learningRate: 0.02,
    advantages: { estimator: 'grpo', eps: 1e-4, dropZeroStd: false },
    update: { epochs: 4, minibatches: 4, clipEps: 0.2, ratioLevel: 'token', lossAggregation: 'token-mean', entropyCoef: 0, maxGradNorm: 0.5 },
    constraint: null,
  },
  evaluation: { every: 10, episodes: 5 },
  stop: null,
  checkpointEvery: 10,
};

export const CONSTRAINT_DEFAULTS: NonNullable<GrpoControlConfig['algorithm']['constraint']> = {
  limit: 25,
  update: 'projected',
  lr: 0.02,
  lambdaMax: 100,
  kP: 0.1,
  kI: 0.01,
  kD: 0.01,
  window: 1,
  combine: 'lagrangian',
  normalize: 'one-plus-lambda',
};

/** The pipeline file's codec: every key optional (defaults fill in), unknown keys rejected. */
export const GrpoControlFile = section(
  {
    pipeline: oneOf(['grpo-control']),
    seed: Uint32,
    iterations: PositiveInt,
    env: section({ id: t.string, options: t.record(t.string, t.union([t.number, t.string, t.boolean])) }, 'env'),
    policy: section({ kind: oneOf(['mlp']), hidden: t.array(PositiveInt), activation: oneOf(['tanh', 'relu']) }, 'policy'),
    algorithm: section(
      {
        startsPerIteration: PositiveInt,
        groupSize: PositiveInt,
        learningRate: PositiveNumber,
        advantages: section({ estimator: oneOf(['grpo', 'drgrpo', 'rloo']), std: oneOf(['group', 'batch', 'none']), eps: NonNegativeNumber, dropZeroStd: t.boolean }, 'advantages'),
        update: section(
          {
            epochs: PositiveInt,
            minibatches: PositiveInt,
            clipEps: PositiveNumber,
            clipEpsHigh: PositiveNumber,
            ratioLevel: oneOf(['token', 'sequence', 'subtrajectory']),
            lossAggregation: oneOf(['token-mean', 'sequence-mean', 'constant']),
            entropyCoef: NonNegativeNumber,
            maxGradNorm: PositiveNumber,
          },
          'update',
        ),
        constraint: t.union([
          t.null,
          section(
            {
              limit: FiniteNumber,
              update: oneOf(['projected', 'log', 'pid', 'fixed']),
              lr: PositiveNumber,
              lambdaInit: NonNegativeNumber,
              lambdaMax: PositiveNumber,
              kP: NonNegativeNumber,
              kI: NonNegativeNumber,
              kD: NonNegativeNumber,
              window: PositiveInt,
              combine: oneOf(['lagrangian', 'normalized-lagrangian']),
              normalize: oneOf(['none', 'one-plus-lambda']),
            },
            'constraint',
          ),
        ]),
      },
      'algorithm',
    ),
    evaluation: section({ every: PositiveInt, episodes: PositiveInt }, 'evaluation'),
    stop: t.union([t.null, section({ metric: t.string, atLeast: FiniteNumber, atMost: FiniteNumber }, 'stop')]),
    checkpointEvery: NonNegativeInt,
  },
  'grpo-control',
);

/** Fills the defaults in (a constraint section gets the constraint defaults). */
export function resolveGrpoControl(partial: DeepPartial<GrpoControlConfig> = {}): GrpoControlConfig {
  const cfg = resolve<GrpoControlConfig>(GRPO_CONTROL_DEFAULTS, partial);
  const c = partial.algorithm?.constraint;
  if (c) cfg.algorithm.constraint = resolve<NonNullable<GrpoControlConfig['algorithm']['constraint']>>(CONSTRAINT_DEFAULTS, c);
  return cfg;
}

/** What a checkpoint of this pipeline holds besides the weights and optimizer slots. */
export interface GrpoControlState {
  iteration: number;
  version: number;
  rng: ReturnType<RngStreams['state']>;
  minibatchRng: RngState;
  lagrange?: LagrangeStateJSON;
}

export interface GrpoControlResult extends PipelineResult {
  policy: MlpPolicy;
  lagrange?: LagrangeState;
}

export async function runGrpoControl(
  partial: DeepPartial<GrpoControlConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<GrpoControlResult> {
  const cfg = resolveGrpoControl(partial);
  const alg = cfg.algorithm;
  let streams = new RngStreams(cfg.seed);
  const venv = await makeVectorEnv(cfg.env.id, alg.groupSize, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'disabled' });
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
  const c = alg.constraint;
  let lagrange = c
    ? new LagrangeState({
        constraints: [{ name: 'cost', limit: c.limit }],
        update: c.update,
        lr: c.lr,
        lambdaMax: c.lambdaMax,
        kP: c.kP,
        kI: c.kI,
        kD: c.kD,
        window: c.window,
        ...(c.lambdaInit !== undefined ? { lambdaInit: c.lambdaInit } : {}),
      })
    : undefined;

  // Resume: weights, optimizer slots and every piece of state that shapes what comes next.
  let first = 0;
  if (ctx.resume) {
    const s = (await ctx.resume.load(policy.params, learner.optimizer)) as unknown as GrpoControlState;
    first = s.iteration + 1;
    learner.version = s.version;
    streams = RngStreams.fromState(s.rng);
    learner.rng.setState(s.minibatchRng);
    if (lagrange && s.lagrange) lagrange = LagrangeState.fromState(s.lagrange);
  }
  const capture = (iteration: number): GrpoControlState => ({
    iteration,
    version: learner.version,
    rng: streams.state(),
    minibatchRng: learner.rng.state(),
    ...(lagrange ? { lagrange: lagrange.state() } : {}),
  });
  const checkpoint = async (iteration: number) => {
    await ctx.checkpoint?.save({ params: policy.params, optimizer: learner.optimizer, state: capture(iteration) as unknown as Record<string, unknown>, iteration });
  };

  const stopWhen =
    partial.stopWhen ??
    (cfg.stop
      ? (m: MetricsRecord) => {
          const v = m[cfg.stop!.metric];
          if (v === undefined) return false;
          return (cfg.stop!.atLeast !== undefined && v >= cfg.stop!.atLeast) || (cfg.stop!.atMost !== undefined && v <= cfg.stop!.atMost);
        }
      : undefined);

  const starts = (iteration: number): StartsBatch => {
    const resets = streams.get('env/reset');
    return {
      iteration,
      starts: Array.from({ length: alg.startsPerIteration }, () => ({ kind: 'seed' as const, envId: cfg.env.id, seed: resets.seed() })),
    };
  };
  const actor = policyActor(policy, () => learner.version);
  const rng = streams.get('action');
  const update = policyUpdate(learner, alg.update);
  const evalActor = policyActor(policy, () => learner.version, true);
  const evaluation = evaluate<AdvantagedGroup>({ venv: evalEnv, actor: evalActor, every: cfg.evaluation.every });
  const estimator = { ...alg.advantages, ...(alg.advantages.std ? { std: alg.advantages.std } : {}) };
  // With a constraint, zero-variance groups are dropped by constraintCost (only when neither reward
  // nor cost varies), never before it: dropping on reward alone would bias the cost estimate Ĵ_C.
  const advantages = groupAdvantages(lagrange ? { ...estimator, dropZeroStd: false } : estimator);
  const sinksOnce = metrics<AdvantagedGroup>({ sinks, close: false });
  /** One on-policy iteration: rollout → … → update → evaluation → metrics, as its own finite stream. */
  const iteration = (i: number) => {
    const scored = of(i).pipe(map(starts), rollout({ venv, actor, rng }), returns(), advantages);
    const updated = lagrange
      ? scored.pipe(constraintCost({ ...estimator, costs: [{ name: 'cost' }] }), primalDual(lagrange, { combine: c!.combine, normalize: c!.normalize }), update)
      : scored.pipe(update);
    return updated.pipe(evaluation, sinksOnce);
  };
  let lastIteration = first - 1;
  try {
    const history = await lastValueFrom(
      range(first, Math.max(0, cfg.iterations - first)).pipe(
        // concatMap: iteration i + 1 starts only after iteration i's update and checkpoint.
        concatMap((i) =>
          ctx.shouldStop?.()
            ? EMPTY
            : iteration(i).pipe(
                // The metrics line of iteration i is written (sinksOnce) before checkpoint i, so a
                // kill between the two resumes from an earlier checkpoint and loses no line.
                concatMap(async (b) => {
                  lastIteration = b.iteration;
                  if (cfg.checkpointEvery > 0 && (b.iteration + 1) % cfg.checkpointEvery === 0 && b.iteration < cfg.iterations - 1) await checkpoint(b.iteration);
                  // A macrotask between iterations lets signals (Ctrl-C) and progress output through.
                  await new Promise((r) => setImmediate(r));
                  return b;
                }),
              ),
        ),
        map((b) => ({ iteration: b.iteration, ...b.metrics }) as MetricsRecord),
        takeWhile((m) => !stopWhen?.(m), true),
        toArray(),
      ),
      { defaultValue: [] as MetricsRecord[] },
    );
    if (lastIteration >= first) await checkpoint(lastIteration);
    // The summary: the last iteration's training metrics and a final evaluation of the policy
    // (outside metrics.jsonl, so a resumed run's metrics equal an uninterrupted one's).
    const summary: Record<string, number> = {};
    const last = history.at(-1);
    if (last) for (const k of ['reward/mean', 'cost/mean', 'lambda']) if (last[k] !== undefined) summary[k] = last[k]!;
    Object.assign(summary, runEvaluation({ venv: evalEnv, actor: evalActor }));
    return lagrange ? { history, summary, policy, lagrange, lastIteration } : { history, summary, policy, lastIteration };
  } finally {
    for (const sink of sinks) sink.close?.();
    venv.close();
    evalEnv.close();
    learner.optimizer.dispose();
  }
}

/** Deterministic evaluation of a checkpoint's policy (`rxrl eval`). */
export async function evaluateGrpoControl(config: GrpoControlConfig, checkpoint: string, episodes?: number): Promise<Record<string, number>> {
  const n = episodes ?? config.evaluation.episodes;
  const venv = await makeVectorEnv(config.env.id, n, { ...config.env.options, seed: config.seed }, { autoreset: 'disabled' });
  const policy = makeModel(config.policy.kind, { obsDim: venv.obsDim, actionSpace: venv.actionSpace, hidden: config.policy.hidden, activation: config.policy.activation, seed: 0 });
  try {
    const { loadCheckpoint } = await import('../lib/io/checkpoint.ts');
    const { state } = await loadCheckpoint(checkpoint, { params: policy.params.map, strict: false });
    const result = runEvaluation({ venv, actor: policyActor(policy, () => Number(state['version'] ?? 0), true) });
    return { ...result, iteration: Number(state['iteration'] ?? -1), policy_version: Number(state['version'] ?? 0) } as Record<string, number>;
  } finally {
    venv.close();
    policy.dispose();
  }
}
