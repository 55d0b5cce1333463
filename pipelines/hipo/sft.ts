/**
 * `sft` — the HIPO base model: a Llama-, Qwen2- or Phi-style causal LM trained from scratch by
 * supervised fine-tuning on the instruction-hierarchy suite's train prompts with USER-FOLLOWING
 * targets (the full answer to the user request, whatever the system prompt says). The model is
 * helpful but hierarchy-unaware: on a conflicting prompt it obeys the user, so the RL pipelines
 * (`hipo`, `grpo-lm`) start from the real problem. Per iteration i:
 *
 *   `batch` train prompts → (prompt, user-following answer) examples → sftUpdate → evaluation
 *
 * Its checkpoint (model + optimizer) is what `base: { checkpoint: RUN_DIR }` of `hipo` and
 * `grpo-lm` loads. Metrics: `sft/loss`, `sft/tokens`, `grad_norm`, `policy_version` and the greedy
 * evaluation (`eval/compliance/conflict`, …; pipelines/hipo/common.ts).
 *
 * ```ts
 * const { history } = await runSft({ iterations: 200, model: { arch: 'qwen2', width: 64 } });
 * ```
 */
import * as t from 'io-ts';
import type { Batch, MetricsRecord } from '../../lib/data.ts';
import { NonNegativeInt, PositiveInt, Uint32, decodeOrThrow, oneOf, suggestion } from '../../lib/codec.ts';
import { RngStateC, RngStreamsStateC } from '../../lib/data.ts';
import { RngStreams } from '../../lib/random.ts';
import type { CausalLM } from '../../lib/models/lm.ts';
import { lmLearner } from '../../operators/sftUpdate.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { deepPartial, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext, PipelineResult } from '../context.ts';
import { runLoop, stopRule, StopRule, type PipelineState } from '../loop.ts';
import {
  EVALUATION_DEFAULTS,
  EvaluationSection,
  HIERARCHY_EVAL_METRICS,
  MODEL_DEFAULTS,
  ModelSection,
  SUITE_DEFAULTS,
  SftRecipe,
  SuiteSection,
  checkShared,
  evaluateHierarchy,
  hierarchyEvaluation,
  makeLm,
  makeSuite,
  sftStep,
  taskOfSuite,
} from './common.ts';

export const SftConfig = t.strict(
  {
    pipeline: oneOf(['sft']),
    seed: Uint32,
    iterations: PositiveInt,
    suite: SuiteSection,
    model: ModelSection,
    algorithm: t.strict(SftRecipe, 'algorithm'),
    evaluation: EvaluationSection,
    stop: t.union([t.null, StopRule]),
    checkpointEvery: NonNegativeInt,
  },
  'sft',
);
export type SftConfig = t.TypeOf<typeof SftConfig>;
export const SftFile = deepPartial(SftConfig);

export const SFT_DEFAULTS: SftConfig = {
  pipeline: 'sft',
  seed: 0,
  iterations: 300,
  suite: SUITE_DEFAULTS,
  model: MODEL_DEFAULTS,
  algorithm: { batch: 32, learningRate: 3e-3, maxGradNorm: 1, targets: 'user-following', userRules: 0 },
  evaluation: { ...EVALUATION_DEFAULTS, every: 50 },
  stop: null,
  checkpointEvery: 50,
};

export const SFT_METRICS: readonly string[] = ['sft/loss', 'sft/tokens', 'grad_norm', 'policy_version', ...HIERARCHY_EVAL_METRICS];

export function resolveSft(partial: DeepPartial<SftConfig> = {}): SftConfig {
  return decodeOrThrow(SftConfig, resolve(SFT_DEFAULTS, partial), 'sft config');
}

/** Cross-field checks, as `path: problem` lines. */
export function checkSft(cfg: SftConfig): string[] {
  const out = checkShared(cfg);
  if (cfg.suite.kind !== 'synthetic')
    out.push(
      `suite.kind: sft trains the synthetic suite's base model; a 'text' suite's base is the model at suite.model (run hipo, grpo-lm, rft or dpo on it)`,
    );
  const s = cfg.stop;
  if (s) {
    if (!SFT_METRICS.includes(s.metric))
      out.push(`stop.metric: unknown metric '${s.metric}'; ${suggestion(s.metric, SFT_METRICS)}(sft emits: ${SFT_METRICS.join(', ')})`);
    if (s.atLeast === undefined && s.atMost === undefined) out.push(`stop: needs atLeast or atMost (a bound on ${s.metric}), got neither`);
  }
  return out;
}

export const SftState = t.type({ version: NonNegativeInt, step: NonNegativeInt, rng: RngStreamsStateC, minibatchRng: RngStateC }, 'SftState');
export type SftState = t.TypeOf<typeof SftState>;

export interface SftResult extends PipelineResult {
  lm: CausalLM;
}

/** Runs the `sft` pipeline; the caller owns (and disposes) the returned `lm`. */
export async function runSft(
  partial: DeepPartial<SftConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<SftResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveSft(rest);
  const problems = checkSft(cfg);
  if (problems.length > 0) throw new RangeError(`sft config: ${problems.join('; ')}`);

  // The parts: task suite, model, learner, RNG streams.
  const suite = makeSuite(cfg.suite);
  const streams = new RngStreams(cfg.seed);
  const lm = makeLm(cfg.model, suite, cfg.seed);
  const learner = lmLearner(lm, { learningRate: cfg.algorithm.learningRate, seed: cfg.seed, key: 'sft/minibatch' });
  const train = sftStep(suite, learner, streams.get('sft/prompts'), cfg.algorithm);
  const task = taskOfSuite(suite);
  const evaluation = hierarchyEvaluation<Batch<never>>(lm, task, cfg.evaluation);
  // The untrained model's attention (the "before" of the attention analysis), before any resume restores weights.
  const init = evaluateHierarchy(lm, task, cfg.evaluation);

  /** One SFT step on user-following targets, then (periodically) the greedy evaluation. */
  const iteration = (i: number) => train(i).pipe(evaluation);

  const state: PipelineState<SftState> = {
    codec: SftState,
    params: lm.params,
    optimizer: learner.optimizer,
    capture: () => ({ version: learner.version, step: learner.step, rng: streams.state(), minibatchRng: learner.rng.state() }),
    restore: (s) => {
      learner.version = s.version;
      learner.step = s.step;
      for (const [name, st] of Object.entries(s.rng.streams)) streams.get(name).setState(st);
      learner.rng.setState(s.minibatchRng);
    },
  };
  const summary = (last: MetricsRecord | undefined): Record<string, number> => {
    const out: Record<string, number> = {};
    if (last?.['sft/loss'] !== undefined) out['sft/loss'] = last['sft/loss'];
    for (const [k, v] of Object.entries(init)) if (k.startsWith('eval/attention/')) out[`init/${k}`] = v;
    return Object.assign(out, evaluateHierarchy(lm, task, cfg.evaluation));
  };
  try {
    const result = await runLoop(
      { iterations: cfg.iterations, checkpointEvery: cfg.checkpointEvery, stop: stopWhen ?? stopRule(cfg.stop), state, iteration, summary },
      sinks,
      ctx,
    );
    return { ...result, lm };
  } catch (e) {
    lm.dispose();
    throw e;
  } finally {
    learner.optimizer.dispose();
  }
}
