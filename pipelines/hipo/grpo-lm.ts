/**
 * `grpo-lm` — the single-objective baselines of HIPO on the same base model, prompts and budget:
 *
 *   mode `utility`        r = U(x, y)                 (utility-only GRPO: the RLHF stand-in that
 *                                                      ignores the system prompt's priority)
 *   mode `fixed-weight`   r = U(x, y) − w · C(x, y)   (fixed scalarisation, C = 1 − compliance)
 *
 * Per iteration i: P train prompts → lmRollout (G completions each, one KV-cache batch) → returns
 * → groupAdvantages → policyUpdate (optional β·KL to the base model) → evaluation. `hipo` is this
 * with w replaced by a multiplier λ that dual ascent raises while E[C] > d.
 *
 * ```ts
 * const utilityOnly = await runGrpoLm({ algorithm: { mode: 'utility' } });
 * const scalarised = await runGrpoLm({ algorithm: { mode: 'fixed-weight', weight: 1 } });
 * ```
 */
import * as t from 'io-ts';
import { NonNegativeInt, NonNegativeNumber, PositiveInt, Uint32, decodeOrThrow, oneOf } from '../../lib/codec.ts';
import type { MetricsRecord } from '../../lib/data.ts';
import { groupAdvantages } from '../../operators/groupAdvantages.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { policyUpdate } from '../../operators/policyUpdate.ts';
import { returns } from '../../operators/returns.ts';
import { deepPartial, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext } from '../context.ts';
import { StopRule, stopRule } from '../loop.ts';
import { BASE_DEFAULTS, BaseSection, EVALUATION_DEFAULTS, EvaluationSection, MODEL_DEFAULTS, ModelSection, SUITE_DEFAULTS, SuiteSection } from './common.ts';
import { LM_RL_DEFAULTS, LM_RL_METRICS, LmRlProps, checkLmRl, lmRlActor, runLmRl, type LmRlResult, type LmScore } from './rl.ts';
import type { ActorPart } from '../../lib/async/transport.ts';

export const GrpoLmConfig = t.strict(
  {
    pipeline: oneOf(['grpo-lm']),
    seed: Uint32,
    iterations: PositiveInt,
    suite: SuiteSection,
    model: ModelSection,
    base: BaseSection,
    algorithm: t.strict(
      {
        ...LmRlProps,
        /** `utility`: r = U; `fixed-weight`: r = U − weight · (1 − compliance). */
        mode: oneOf(['utility', 'fixed-weight']),
        /** w of `fixed-weight` (ignored by `utility`). */
        weight: NonNegativeNumber,
      },
      'algorithm',
    ),
    evaluation: EvaluationSection,
    stop: t.union([t.null, StopRule]),
    checkpointEvery: NonNegativeInt,
  },
  'grpo-lm',
);
export type GrpoLmConfig = t.TypeOf<typeof GrpoLmConfig>;
export const GrpoLmFile = deepPartial(GrpoLmConfig);

export const GRPO_LM_DEFAULTS: GrpoLmConfig = {
  pipeline: 'grpo-lm',
  seed: 0,
  iterations: 40,
  suite: SUITE_DEFAULTS,
  model: MODEL_DEFAULTS,
  base: BASE_DEFAULTS,
  algorithm: { ...LM_RL_DEFAULTS, mode: 'utility', weight: 1 },
  evaluation: EVALUATION_DEFAULTS,
  stop: null,
  checkpointEvery: 10,
};

export const GRPO_LM_METRICS: readonly string[] = LM_RL_METRICS;

export function resolveGrpoLm(partial: DeepPartial<GrpoLmConfig> = {}): GrpoLmConfig {
  return decodeOrThrow(GrpoLmConfig, resolve(GRPO_LM_DEFAULTS, partial), 'grpo-lm config');
}

export function checkGrpoLm(cfg: GrpoLmConfig): string[] {
  return checkLmRl('grpo-lm', cfg, GRPO_LM_METRICS);
}

/** The mode's reward; the cost is recorded either way (`cost/mean`), and enters the reward only with a weight. */
function grpoLmScore(cfg: GrpoLmConfig): LmScore {
  const w = cfg.algorithm.mode === 'fixed-weight' ? cfg.algorithm.weight : 0;
  return ({ utility, compliance }) => ({ reward: utility - w * (1 - compliance), cost: 1 - compliance });
}

/** The actor side of an asynchronous `grpo-lm` run. */
export function grpoLmActor(config: GrpoLmConfig): Promise<ActorPart> {
  return lmRlActor(config, grpoLmScore(config));
}

/** Runs the `grpo-lm` pipeline (see the module comment). */
export async function runGrpoLm(
  partial: DeepPartial<GrpoLmConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<LmRlResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveGrpoLm(rest);
  const problems = checkGrpoLm(cfg);
  if (problems.length > 0) throw new RangeError(`grpo-lm config: ${problems.join('; ')}`);
  const alg = cfg.algorithm;
  return runLmRl(
    cfg,
    {
      score: grpoLmScore(cfg),
      iteration: ({ groups, shareWeights, learner, evaluation }) => {
        const advantages = groupAdvantages(alg.advantages);
        const update = policyUpdate(learner, alg.update);
        /** One GRPO iteration on the (scalarised) reward (its groups rolled out here, or by actors). */
        return (i: number) => groups(i).pipe(returns(), advantages, update, shareWeights(), evaluation);
      },
      stop: stopWhen ?? stopRule(cfg.stop),
    },
    sinks,
    ctx,
  );
}
