/**
 * The parts `hipo` and `grpo-lm` share: the RL config sections (prompts, groups, sampling,
 * advantages, update with its optional KL to the base model), and `runLmRl`, which builds the task
 * suite, the base model (loaded or trained in-process), the policy (a copy of the base), the
 * learner, the frozen reference, the batched KV-cache rollout and the evaluation, then runs the
 * pipeline's own `iteration(i)` on the shared loop. The checkpoint holds the policy, Adam's moments
 * and `LmRlState` (policy version, RNG streams, the multiplier if any).
 *
 * With actors (`ctx.async`), `parts.groups(i)` takes the groups from them instead: task n is the
 * n-th train prompt of the `prompts` stream and the n-th seed of the `sample` stream; an actor
 * (`lmRlActor`) samples its G completions with the weights the learner published and scores them.
 */
import * as t from 'io-ts';
import * as tf from '@tensorflow/tfjs-core';
import { map, of, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import { NonNegativeInt, PositiveInt, PositiveNumber, UnitInterval, suggestion } from '../../lib/codec.ts';
import { RngStateC, RngStreamsStateC, type Batch, type Group, type MetricsRecord } from '../../lib/data.ts';
import { taskGroupId, type AsyncTask } from '../../lib/async/messages.ts';
import { AsyncError, type ActorPart } from '../../lib/async/transport.ts';
import { LagrangeState, LagrangeStateC } from '../../lib/lagrange.ts';
import { lmBatchOf, lmPolicy } from '../../lib/models/lm-policy.ts';
import type { CausalLM } from '../../lib/models/lm.ts';
import { Rng, RngStreams } from '../../lib/random.ts';
import type { LmLearner } from '../../operators/sftUpdate.ts';
import { ADVANTAGE_ESTIMATOR_DEFAULTS, AdvantageEstimatorProps } from '../../operators/groupAdvantages.ts';
import { completionMetrics, lmRollout, lmRolloutGroup, lmRolloutGroups, type LmRolloutConfig } from '../../operators/lmRollout.ts';
import { consumeGroups } from '../../operators/consumeGroups.ts';
import { maxStaleness } from '../../operators/maxStaleness.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { POLICY_UPDATE_DEFAULTS, PolicyUpdateProps, type Learner } from '../../operators/policyUpdate.ts';
import type { LmBatch } from '../../lib/models/lm-policy.ts';
import { pick } from '../config.ts';
import type { PipelineContext, PipelineResult } from '../context.ts';
import { runLoop, type PipelineState } from '../loop.ts';
import {
  type BaseSection,
  type EvaluationSection,
  HIERARCHY_EVAL_METRICS,
  type ModelSection,
  type SuiteSection,
  checkShared,
  cloneLm,
  evaluateHierarchy,
  hierarchyEvaluation,
  makeTaskAndBase,
  promptPicker,
  promptStarts,
  type HierarchyTask,
} from './common.ts';

const ADVANTAGE_KEYS = ['estimator', 'std', 'eps', 'dropZeroStd'] as const;
const UPDATE_KEYS = ['epochs', 'minibatches', 'clipEps', 'clipEpsHigh', 'lossAggregation', 'klCoef', 'klEstimator', 'entropyCoef', 'maxGradNorm'] as const;

/** The RL knobs both pipelines have (`hipo` adds `constraint`, `grpo-lm` `mode` and `weight`). */
export const LmRlProps = {
  /** P: prompts per iteration. */
  promptsPerIteration: PositiveInt,
  /** G: completions per prompt. */
  groupSize: PositiveInt,
  /** Share of the iteration's prompts drawn from the conflicting train prompts (the rest aligned). */
  conflictShare: UnitInterval,
  learningRate: PositiveNumber,
  /** Sampling temperature τ of the rollouts (1: the policy itself). */
  temperature: PositiveNumber,
  advantages: t.strict(pick(AdvantageEstimatorProps, ADVANTAGE_KEYS)),
  /** `klCoef` > 0 adds β·KL to the frozen base model (policyUpdate's `learner.ref`). */
  update: t.strict(pick(PolicyUpdateProps, UPDATE_KEYS)),
};

export const LM_RL_DEFAULTS = {
  promptsPerIteration: 16,
  groupSize: 8,
  conflictShare: 0.5,
  learningRate: 1e-3,
  temperature: 1,
  advantages: pick(ADVANTAGE_ESTIMATOR_DEFAULTS, ADVANTAGE_KEYS),
  update: { ...pick(POLICY_UPDATE_DEFAULTS, UPDATE_KEYS), epochs: 2, minibatches: 2 },
};

/** The metrics of both RL pipelines before their own (lmRollout, returns, groupAdvantages, policyUpdate, evaluation). */
export const LM_RL_METRICS: readonly string[] = [
  ...['rollout/tokens', 'rollout/episodes', 'length/mean', 'policy_version', 'score/utility/mean', 'score/compliance/mean'],
  ...['reward/mean', 'reward/std', 'reward/min', 'reward/max', 'cost/mean'],
  ...['frac_zero_std', 'advantage/mean', 'advantage/std', 'groups/kept'],
  ...['loss', 'kl', 'clip_frac', 'ratio/mean', 'ratio/max', 'entropy', 'grad_norm', 'staleness'],
  ...HIERARCHY_EVAL_METRICS,
];

interface LmRlConfig {
  seed: number;
  iterations: number;
  suite: SuiteSection;
  model: ModelSection;
  base: BaseSection;
  algorithm: { promptsPerIteration: number; groupSize: number; conflictShare: number; learningRate: number; temperature: number; update?: { klCoef: number } };
  evaluation: EvaluationSection;
  checkpointEvery: number;
}

/** Cross-field checks of both RL pipelines, plus the stop metric against `metrics`. */
export function checkLmRl(
  name: string,
  cfg: LmRlConfig & {
    stop: { metric: string; atLeast?: number; atMost?: number } | null;
    algorithm: { update: { clipEps: number; clipEpsHigh: number | null } };
  },
  metrics: readonly string[],
): string[] {
  const out = checkShared(cfg);
  const u = cfg.algorithm.update;
  if (u.clipEpsHigh !== null && u.clipEpsHigh < u.clipEps) out.push(`algorithm.update.clipEpsHigh: must be ≥ clipEps (${u.clipEps}), got ${u.clipEpsHigh}`);
  const s = cfg.stop;
  if (s) {
    if (!metrics.includes(s.metric))
      out.push(`stop.metric: unknown metric '${s.metric}'; ${suggestion(s.metric, metrics)}(${name} emits: ${metrics.join(', ')})`);
    if (s.atLeast === undefined && s.atMost === undefined) out.push(`stop: needs atLeast or atMost (a bound on ${s.metric}), got neither`);
  }
  return out;
}

export const LmRlState = t.intersection(
  [t.type({ version: NonNegativeInt, rng: RngStreamsStateC, minibatchRng: RngStateC }), t.partial({ lagrange: LagrangeStateC, step: NonNegativeInt })],
  'LmRlState',
);
export type LmRlState = t.TypeOf<typeof LmRlState>;

/** What a pipeline's `iteration` is built from. */
export interface LmRlParts {
  task: HierarchyTask;
  lm: CausalLM;
  /** policyUpdate's learner, and sftUpdate's (`lm`, `step`): the same optimizer, counters and minibatch stream. */
  learner: Learner<LmBatch> & LmLearner;
  /** The frozen base model (when `klCoef` > 0 or the spec asks for `reference`). */
  ref: CausalLM | undefined;
  /** The iteration's prompt starts. */
  starts: ReturnType<typeof promptStarts>;
  /** G completions per prompt, all G × P in one KV-cache `generate`; reward and cost from `score`. */
  rollout: ReturnType<typeof lmRollout>;
  /**
   * Iteration i's groups: `starts` → `rollout` here, or (with actors) the next P groups they
   * published, within the staleness bound, with `rollout`'s metrics.
   */
  groups(i: number): Observable<Batch<Group>>;
  /** Publishes the weights of each new version to the actors (identity without actors); put it right after the update. */
  shareWeights<T>(): MonoTypeOperatorFunction<T>;
  /** The same rollout sampled from another model (e.g. the frozen base), on the same sampling stream. */
  rolloutOf: (lm: CausalLM) => ReturnType<typeof lmRollout>;
  /** The periodic greedy evaluation (pass-through). */
  evaluation: ReturnType<typeof hierarchyEvaluation<Batch<unknown>>>;
}

export interface LmRlResult extends PipelineResult {
  /** The greedy evaluation of the base model before RL. */
  base: Record<string, number>;
  lagrange?: LagrangeState;
}

/** A completion's reward and cost from its (utility, compliance): what distinguishes hipo and grpo-lm's modes. */
export type LmScore = (s: { utility: number; compliance: number }) => { reward: number; cost: number };

/** The sampling of the rollouts (learner and actors alike). */
function samplingOf(task: HierarchyTask, alg: LmRlConfig['algorithm']): LmRolloutConfig['sampling'] {
  return { maxNewTokens: task.maxAnswerTokens, temperature: alg.temperature, stopTokens: [...task.stopTokens], padToken: task.padToken };
}

/** `lmRollout`'s score: the prompt's verifier, then `score`; utility and compliance kept as named scores. */
function scoreWith(task: HierarchyTask, score: LmScore): LmRolloutConfig['score'] {
  return (start, y) => {
    const s = task.byId(start.promptId).score(y);
    const { reward, cost } = score(s);
    return { reward, cost, scores: { utility: s.utility, compliance: s.compliance } };
  };
}

/**
 * Builds the parts and runs `iteration` on the shared loop. `score` maps a completion's (utility,
 * compliance) to its reward and cost. `lagrange` (hipo) is checkpointed with the run.
 */
export async function runLmRl<G>(
  cfg: LmRlConfig,
  spec: {
    score: LmScore;
    lagrange?: () => LagrangeState;
    /** Keep a frozen copy of the base model as `parts.ref` even without KL. */
    reference?: boolean;
    /** Keys copied from the last metrics record into the summary (besides reward, cost, λ and the scores). */
    summaryKeys?: readonly string[];
    iteration: (parts: LmRlParts, lagrange: () => LagrangeState | undefined) => (i: number) => Observable<Batch<G>>;
    stop?: ((m: MetricsRecord) => boolean) | undefined;
  },
  sinks: MetricsSink[],
  ctx: PipelineContext,
): Promise<LmRlResult> {
  const alg = cfg.algorithm;
  const made = await makeTaskAndBase(cfg);
  const task = made.task;
  let baseLm: CausalLM | undefined = made.base;
  let lm: CausalLM | undefined;
  let ref: CausalLM | undefined;
  let optimizer: tf.Optimizer | undefined;
  try {
    const base = evaluateHierarchy(baseLm, task, cfg.evaluation);
    lm = cloneLm(baseLm);
    if ((alg.update?.klCoef ?? 0) > 0 || spec.reference) ref = cloneLm(baseLm);
    baseLm.dispose();
    baseLm = undefined;
    const policyLm = lm;
    const streams = new RngStreams(cfg.seed);
    optimizer = tf.train.adam(alg.learningRate);
    const learner: Learner<LmBatch> & LmLearner = {
      policy: lmPolicy(policyLm),
      lm: policyLm,
      optimizer,
      version: 0,
      step: 0,
      batchOf: lmBatchOf,
      rng: new Rng(cfg.seed, 'policyUpdate/minibatch'),
      ...(ref && (alg.update?.klCoef ?? 0) > 0 ? { ref: lmPolicy(ref) } : {}),
    };
    const sample = streams.get('sample');
    const rolloutOf = (from: CausalLM) =>
      lmRollout({
        lm: from,
        groupSize: alg.groupSize,
        rng: sample,
        sampling: samplingOf(task, alg),
        version: () => learner.version,
        batchPrompts: true,
        score: scoreWith(task, spec.score),
      });
    let lagrange = spec.lagrange?.();
    const starts = promptStarts(task, streams.get('prompts'), alg.promptsPerIteration, alg.conflictShare);
    const rollout = rolloutOf(policyLm);
    // With actors, task n is the n-th prompt of the same stream and a seed of the sampling stream.
    const asyncCtx = ctx.async;
    const nextPrompt = promptPicker(task, streams.get('prompts'), alg.conflictShare);
    const source = asyncCtx
      ? consumeGroups({
          transport: asyncCtx.transport,
          info: asyncCtx.info,
          groupsPerBatch: alg.promptsPerIteration,
          queue: asyncCtx.queue ?? alg.promptsPerIteration,
          nextTask: (n): AsyncTask => ({ task: n, groupId: taskGroupId(n), start: nextPrompt(), seed: sample.seed() }),
          learner,
          params: policyLm.params,
          resuming: asyncCtx.resuming,
          log: asyncCtx.log,
          archive: asyncCtx.archive,
        })
      : undefined;
    const parts: LmRlParts = {
      task,
      lm: policyLm,
      learner,
      ref,
      starts,
      rollout,
      groups: (i) =>
        source && asyncCtx
          ? source.batch(i).pipe(
              map((b) => ({ ...b, metrics: { ...b.metrics, ...completionMetrics(b.groups) } })),
              maxStaleness(learner, asyncCtx.staleness),
            )
          : of(i).pipe(map(starts), rollout),
      shareWeights: () => (source ? source.publishWeights() : (x) => x),
      rolloutOf,
      evaluation: hierarchyEvaluation(policyLm, task, cfg.evaluation),
    };
    const iteration = spec.iteration(parts, () => lagrange);

    const state: PipelineState<LmRlState> = {
      codec: LmRlState,
      params: policyLm.params,
      optimizer,
      capture: () => ({
        version: learner.version,
        rng: streams.state(),
        minibatchRng: learner.rng.state(),
        step: learner.step,
        ...(lagrange ? { lagrange: lagrange.state() } : {}),
      }),
      restore: (s) => {
        learner.version = s.version;
        learner.step = s.step ?? 0;
        for (const [name, st] of Object.entries(s.rng.streams)) streams.get(name).setState(st);
        learner.rng.setState(s.minibatchRng);
        if (lagrange && s.lagrange) lagrange = LagrangeState.fromState(s.lagrange);
      },
    };
    const summary = (last: MetricsRecord | undefined): Record<string, number> => {
      const out: Record<string, number> = {};
      if (last)
        for (const k of ['reward/mean', 'cost/mean', 'lambda', 'score/utility/mean', 'score/compliance/mean', ...(spec.summaryKeys ?? [])])
          if (last[k] !== undefined) out[k] = last[k]!;
      for (const [k, v] of Object.entries(base)) out[`base/${k}`] = v;
      return Object.assign(out, evaluateHierarchy(policyLm, task, cfg.evaluation));
    };
    const result = await runLoop(
      { iterations: cfg.iterations, checkpointEvery: cfg.checkpointEvery, stop: spec.stop, state, iteration, summary, attachment: source },
      sinks,
      ctx,
    );
    return { ...result, base, ...(lagrange ? { lagrange } : {}) };
  } finally {
    baseLm?.dispose();
    lm?.dispose();
    ref?.dispose();
    optimizer?.dispose();
  }
}

/**
 * The actor side of an asynchronous `hipo` / `grpo-lm` run: the task suite and a policy LM of the
 * config's shape (untrained: the learner publishes its weights); each task is one group of G
 * completions of its prompt, sampled with the task's seed by the weights loaded, scored by the
 * prompt's verifier and `score`.
 */
export async function lmRlActor(cfg: LmRlConfig, score: LmScore): Promise<ActorPart> {
  const { task, base: lm } = await makeTaskAndBase(cfg, { untrained: true });
  const sampling = samplingOf(task, cfg.algorithm);
  const scored = scoreWith(task, score);
  const promptOf = (t: AsyncTask) => {
    if (t.start.kind !== 'prompt') throw new AsyncError(`task ${t.task}: start: expected a prompt start, got a ${t.start.kind} start`);
    return t.start;
  };
  return {
    params: lm.params,
    rollout: (t, version) => {
      const rng = new Rng(t.seed, 'sample');
      return lmRolloutGroup({ lm, groupSize: cfg.algorithm.groupSize, rng, sampling, version: () => version, score: scored }, promptOf(t), t.groupId);
    },
    // The tasks this actor holds, sampled in one `generate` call (one KV cache, one forward per token
    // for all their rows), each group from its own task's stream: what each gives alone.
    maxTasks: cfg.algorithm.promptsPerIteration,
    rolloutMany: (tasks, version) =>
      lmRolloutGroups(
        { lm, groupSize: cfg.algorithm.groupSize, sampling, version: () => version, score: scored },
        tasks.map((t) => ({ start: promptOf(t), groupId: t.groupId, rng: new Rng(t.seed, 'sample') })),
      ),
    close: () => lm.dispose(),
  };
}
