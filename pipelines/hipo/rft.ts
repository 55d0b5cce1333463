/**
 * `rft` — rejection-sampling fine-tuning, the imitation baseline of HIPO ("SFT on filtered
 * compliant-and-useful samples"), on the same base model, prompts and budget of sampled
 * completions as `hipo`. Per iteration i:
 *
 *   P train prompts → lmRollout (G completions each from the CURRENT model, one KV-cache batch)
 *   → keep, per group g, the completions y with
 *        compliance(x, y) = 1  and  U(x, y) ≥ τ_g  and  U(x, y) > 0,
 *        τ_g = `threshold`, or (null, the default) max{U(x, y') : y' in g, compliance(x, y') = 1}
 *   → sftUpdate on the kept (prompt, completion) pairs (completion-token NLL; no step when none is kept)
 *   → evaluation (greedy, as the others)
 *
 * With the default τ_g only the best compliant completions of each group are imitated (ties all
 * kept; duplicates kept, so a mode the model already samples often weighs more). Metrics:
 * `rft/kept_frac` (kept / (P·G)), `rft/kept`, `sft/loss`, `sft/tokens`, `grad_norm`, the rollout's
 * `score/utility/mean`, `score/compliance/mean`, and the evaluation.
 *
 * ```ts
 * const r = await runRft({ iterations: 20, algorithm: { promptsPerIteration: 8, groupSize: 8 } });
 * ```
 */
import * as t from 'io-ts';
import { map, of } from 'rxjs';
import { NonNegativeInt, PositiveInt, PositiveNumber, Uint32, UnitInterval, decodeOrThrow, oneOf, suggestion } from '../../lib/codec.ts';
import type { Batch, Group, MetricsRecord } from '../../lib/data.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { sftUpdate, type SftExample } from '../../operators/sftUpdate.ts';
import { deepPartial, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext } from '../context.ts';
import { StopRule, stopRule } from '../loop.ts';
import {
  BASE_DEFAULTS,
  BaseSection,
  EVALUATION_DEFAULTS,
  EvaluationSection,
  HIERARCHY_EVAL_METRICS,
  MODEL_DEFAULTS,
  ModelSection,
  SUITE_DEFAULTS,
  SuiteSection,
  checkShared,
} from './common.ts';
import { LM_RL_DEFAULTS, runLmRl, type LmRlResult } from './rl.ts';

/** The sampling knobs shared with `hipo` (P, G, the conflicting share, τ) and the learner's η. */
export const SampleProps = {
  promptsPerIteration: PositiveInt,
  groupSize: PositiveInt,
  conflictShare: UnitInterval,
  learningRate: PositiveNumber,
  temperature: PositiveNumber,
};

export const SAMPLE_DEFAULTS = {
  promptsPerIteration: LM_RL_DEFAULTS.promptsPerIteration,
  groupSize: LM_RL_DEFAULTS.groupSize,
  conflictShare: LM_RL_DEFAULTS.conflictShare,
  learningRate: LM_RL_DEFAULTS.learningRate,
  temperature: LM_RL_DEFAULTS.temperature,
};

export const RftConfig = t.strict(
  {
    pipeline: oneOf(['rft']),
    seed: Uint32,
    iterations: PositiveInt,
    suite: SuiteSection,
    model: ModelSection,
    base: BaseSection,
    algorithm: t.strict(
      {
        ...SampleProps,
        /** τ: keep compliant completions with utility ≥ τ; null: the group's best compliant utility. */
        threshold: t.union([UnitInterval, t.null]),
        epochs: PositiveInt,
        minibatches: PositiveInt,
        maxGradNorm: PositiveNumber,
      },
      'algorithm',
    ),
    evaluation: EvaluationSection,
    stop: t.union([t.null, StopRule]),
    checkpointEvery: NonNegativeInt,
  },
  'rft',
);
export type RftConfig = t.TypeOf<typeof RftConfig>;
export const RftFile = deepPartial(RftConfig);

export const RFT_DEFAULTS: RftConfig = {
  pipeline: 'rft',
  seed: 0,
  iterations: 40,
  suite: SUITE_DEFAULTS,
  model: MODEL_DEFAULTS,
  base: BASE_DEFAULTS,
  algorithm: { ...SAMPLE_DEFAULTS, threshold: null, epochs: 1, minibatches: 1, maxGradNorm: 1 },
  evaluation: EVALUATION_DEFAULTS,
  stop: null,
  checkpointEvery: 10,
};

/** The rollout metrics every sampling pipeline of the family emits, and the evaluation's. */
export const SAMPLE_METRICS: readonly string[] = [
  'rollout/tokens',
  'rollout/episodes',
  'length/mean',
  'policy_version',
  'score/utility/mean',
  'score/compliance/mean',
];

export const RFT_METRICS: readonly string[] = [
  ...SAMPLE_METRICS,
  'rft/kept_frac',
  'rft/kept',
  'sft/loss',
  'sft/tokens',
  'grad_norm',
  ...HIERARCHY_EVAL_METRICS,
];

export function resolveRft(partial: DeepPartial<RftConfig> = {}): RftConfig {
  return decodeOrThrow(RftConfig, resolve(RFT_DEFAULTS, partial), 'rft config');
}

/** Cross-field checks and the stop metric against `metrics`, for `rft` and `dpo`. */
export function checkSampling(
  name: string,
  cfg: Parameters<typeof checkShared>[0] & { stop: { metric: string; atLeast?: number; atMost?: number } | null },
  metrics: readonly string[],
): string[] {
  const out = checkShared(cfg);
  const s = cfg.stop;
  if (s) {
    if (!metrics.includes(s.metric))
      out.push(`stop.metric: unknown metric '${s.metric}'; ${suggestion(s.metric, metrics)}(${name} emits: ${metrics.join(', ')})`);
    if (s.atLeast === undefined && s.atMost === undefined) out.push(`stop: needs atLeast or atMost (a bound on ${s.metric}), got neither`);
  }
  return out;
}

export function checkRft(cfg: RftConfig): string[] {
  return checkSampling('rft', cfg, RFT_METRICS);
}

/** (compliance, utility) of a sampled completion (lmRollout's named scores). */
export const scoresOf = (tr: Group['trajectories'][number]): { compliance: number; utility: number } => ({
  compliance: tr.scores?.['compliance'] ?? 0,
  utility: tr.scores?.['utility'] ?? 0,
});

/** The prompt tokens of a group of sampled completions. */
export function promptTokens(group: Group): Int32Array {
  if (group.start.kind !== 'prompt') throw new RangeError(`group ${group.groupId}: expected a prompt start, got a ${group.start.kind} start`);
  return group.start.tokens;
}

/** The kept completions of one group as SFT examples (see the module comment). */
export function keptExamples(group: Group, threshold: number | null): SftExample[] {
  const prompt = promptTokens(group);
  const compliant = group.trajectories.filter((tr) => scoresOf(tr).compliance === 1 && tr.length > 0);
  if (compliant.length === 0) return [];
  const tau = threshold ?? Math.max(...compliant.map((tr) => scoresOf(tr).utility));
  return compliant
    .filter((tr) => {
      const u = scoresOf(tr).utility;
      return u >= tau && u > 0;
    })
    .map((tr) => ({ prompt, completion: Int32Array.from(tr.actions) }));
}

/** Runs the `rft` pipeline (see the module comment). */
export async function runRft(
  partial: DeepPartial<RftConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<LmRlResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveRft(rest);
  const problems = checkRft(cfg);
  if (problems.length > 0) throw new RangeError(`rft config: ${problems.join('; ')}`);
  const alg = cfg.algorithm;
  return runLmRl(
    cfg,
    {
      score: ({ utility, compliance }) => ({ reward: utility, cost: 1 - compliance }),
      summaryKeys: ['rft/kept_frac', 'sft/loss'],
      iteration: ({ starts, rollout, learner, evaluation }) => {
        const update = sftUpdate(learner, { epochs: alg.epochs, minibatches: alg.minibatches, maxGradNorm: alg.maxGradNorm });
        /** One rejection-sampling round: sample, filter, imitate. */
        return (i: number) =>
          of(i).pipe(
            map(starts),
            rollout,
            map((b) => {
              const examples = b.groups.flatMap((g) => keptExamples(g, alg.threshold));
              const sampled = b.groups.reduce((s, g) => s + g.trajectories.length, 0);
              const metrics = { ...b.metrics, 'rft/kept': examples.length, 'rft/kept_frac': examples.length / Math.max(1, sampled) };
              return { iteration: b.iteration, examples, metrics };
            }),
            update,
            map((b): Batch<never> => ({ iteration: b.iteration, groups: [], metrics: b.metrics })),
            evaluation,
          );
      },
      stop: stopWhen ?? stopRule(cfg.stop),
    },
    sinks,
    ctx,
  );
}
