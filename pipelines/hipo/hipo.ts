/**
 * `hipo` — instruction hierarchy as a constrained MDP (HIPO, arXiv 2603.16152): a language-model
 * policy maximises the user's utility subject to compliance with the system prompt,
 *
 *   max_θ E[U(x, y)]   s.t.   E[C(x, y)] ≤ d,     C = 1 − compliance (the system rules broken: 0/1),
 *
 * by primal-dual RL on the Lagrangian U − λ·C, λ raised by dual ascent while the constraint is
 * violated. Per iteration i:
 *
 *   P train prompts (aligned and conflicting mixed) → lmRollout (G completions each, all G × P in
 *   one KV-cache batch; r = utility, c = non-compliance) → returns → groupAdvantages (A_R)
 *   → constraintCost (A_C, Ĵ_C) → primalDual (A = (A_R − λ A_C)/(1 + λ); λ ← clip(λ + η(Ĵ_C − d), 0, λ_max))
 *   → policyUpdate (clipped surrogate, optional β·KL to the base model) → evaluation
 *
 * The base model is an `sft` run (`base.checkpoint`) or, without one, trained in-process first.
 * The default multiplier rule is projected dual ascent (`update: projected`): the cost is a rate
 * in [0, 1], so η(Ĵ_C − d) has a known scale and λ moves by at most η per iteration, with one knob
 * (η) and a bound; `log` (Safe RLHF) starts at λ = 1 and moves multiplicatively, `pid` needs three
 * gains; both remain selectable.
 *
 * ```ts
 * const { history, base, summary } = await runHipo({ iterations: 40, base: { iterations: 300 } });
 * console.log(base['eval/compliance/conflict'], summary['eval/compliance/conflict']);
 * ```
 */
import * as t from 'io-ts';
import { FiniteNumber, NonNegativeInt, NonNegativeNumber, PositiveInt, Uint32, decodeOrThrow, oneOf } from '../../lib/codec.ts';
import type { MetricsRecord } from '../../lib/data.ts';
import { LAGRANGE_DEFAULTS, LagrangeRuleProps, LagrangeState } from '../../lib/lagrange.ts';
import { constraintCost } from '../../operators/constraintCost.ts';
import { groupAdvantages } from '../../operators/groupAdvantages.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { policyUpdate } from '../../operators/policyUpdate.ts';
import { PRIMAL_DUAL_DEFAULTS, PrimalDualProps, primalDual } from '../../operators/primalDual.ts';
import { returns } from '../../operators/returns.ts';
import { deepPartial, pick, resolve, type DeepPartial } from '../config.ts';
import type { PipelineContext } from '../context.ts';
import { StopRule, stopRule } from '../loop.ts';
import { BASE_DEFAULTS, BaseSection, EVALUATION_DEFAULTS, EvaluationSection, MODEL_DEFAULTS, ModelSection, SUITE_DEFAULTS, SuiteSection } from './common.ts';
import { LM_RL_DEFAULTS, LM_RL_METRICS, LmRlProps, checkLmRl, lmRlActor, runLmRl, type LmRlResult, type LmScore } from './rl.ts';
import type { ActorPart } from '../../lib/async/transport.ts';

const RULE_KEYS = ['update', 'lr', 'lambdaMax', 'kP', 'kI', 'kD', 'window'] as const;
const COMBINE_KEYS = ['combine', 'normalize'] as const;

/** The compliance constraint E[1 − compliance] ≤ `limit` (d) and its multiplier's dynamics. */
export const HipoConstraint = t.strict(
  { limit: FiniteNumber, lambdaInit: t.union([NonNegativeNumber, t.null]), ...pick(LagrangeRuleProps, RULE_KEYS), ...pick(PrimalDualProps, COMBINE_KEYS) },
  'constraint',
);

export const HipoConfig = t.strict(
  {
    pipeline: oneOf(['hipo']),
    seed: Uint32,
    iterations: PositiveInt,
    suite: SuiteSection,
    model: ModelSection,
    base: BaseSection,
    algorithm: t.strict({ ...LmRlProps, constraint: HipoConstraint }, 'algorithm'),
    evaluation: EvaluationSection,
    stop: t.union([t.null, StopRule]),
    checkpointEvery: NonNegativeInt,
  },
  'hipo',
);
export type HipoConfig = t.TypeOf<typeof HipoConfig>;
export const HipoFile = deepPartial(HipoConfig);

export const HIPO_DEFAULTS: HipoConfig = {
  pipeline: 'hipo',
  seed: 0,
  iterations: 40,
  suite: SUITE_DEFAULTS,
  model: MODEL_DEFAULTS,
  base: BASE_DEFAULTS,
  algorithm: {
    ...LM_RL_DEFAULTS,
    constraint: {
      limit: 0.05,
      lambdaInit: null,
      update: 'projected',
      lr: 0.5,
      lambdaMax: 20,
      kP: LAGRANGE_DEFAULTS.kP,
      kI: LAGRANGE_DEFAULTS.kI,
      kD: LAGRANGE_DEFAULTS.kD,
      window: LAGRANGE_DEFAULTS.window,
      combine: PRIMAL_DUAL_DEFAULTS.combine,
      normalize: PRIMAL_DUAL_DEFAULTS.normalize,
    },
  },
  evaluation: EVALUATION_DEFAULTS,
  stop: null,
  checkpointEvery: 10,
};

export const HIPO_METRICS: readonly string[] = [
  ...LM_RL_METRICS,
  ...['cost/noncompliance/mean', 'cost/noncompliance/frac_zero_std', 'lambda', 'constraint/estimate', 'constraint/violation', 'constraint/limit'],
];

export function resolveHipo(partial: DeepPartial<HipoConfig> = {}): HipoConfig {
  return decodeOrThrow(HipoConfig, resolve(HIPO_DEFAULTS, partial), 'hipo config');
}

export function checkHipo(cfg: HipoConfig): string[] {
  const out = checkLmRl('hipo', cfg, HIPO_METRICS);
  const c = cfg.algorithm.constraint;
  if (c.limit < 0 || c.limit > 1) out.push(`algorithm.constraint.limit: the cost is a non-compliance rate in [0, 1], got ${c.limit}`);
  if (c.lambdaInit !== null && c.lambdaMax !== null && c.lambdaInit > c.lambdaMax)
    out.push(`algorithm.constraint.lambdaInit: must be ≤ lambdaMax (${c.lambdaMax}), got ${c.lambdaInit}`);
  if (c.update === 'fixed' && c.lambdaInit === null) out.push(`algorithm.constraint.lambdaInit: the 'fixed' rule needs lambdaInit (the fixed weight)`);
  if (c.update === 'log' && c.lambdaInit === 0) out.push(`algorithm.constraint.lambdaInit: the 'log' rule needs lambdaInit > 0 (it updates ln λ), got 0`);
  return out;
}

/** HIPO's reward and cost: r = utility, c = 1 − compliance. */
const hipoScore: LmScore = ({ utility, compliance }) => ({ reward: utility, cost: 1 - compliance });

/** The actor side of an asynchronous `hipo` run (`rxrl run hipo.yaml --actors N | --broker URL`, `rxrl actor`). */
export function hipoActor(config: HipoConfig): Promise<ActorPart> {
  return lmRlActor(config, hipoScore);
}

/** Runs the `hipo` pipeline (see the module comment). */
export async function runHipo(
  partial: DeepPartial<HipoConfig> & { stopWhen?: (m: MetricsRecord) => boolean } = {},
  sinks: MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<LmRlResult> {
  const { stopWhen, ...rest } = partial;
  const cfg = resolveHipo(rest);
  const problems = checkHipo(cfg);
  if (problems.length > 0) throw new RangeError(`hipo config: ${problems.join('; ')}`);
  const alg = cfg.algorithm;
  const c = alg.constraint;
  const combine = { combine: c.combine, normalize: c.normalize };
  return runLmRl(
    cfg,
    {
      score: hipoScore,
      lagrange: () =>
        new LagrangeState({
          constraints: [{ name: 'noncompliance', limit: c.limit }],
          update: c.update,
          lr: c.lr,
          lambdaMax: c.lambdaMax,
          kP: c.kP,
          kI: c.kI,
          kD: c.kD,
          window: c.window,
          ...(c.lambdaInit !== null ? { lambdaInit: c.lambdaInit } : {}),
        }),
      iteration: ({ groups, shareWeights, learner, evaluation }, lagrange) => {
        // Zero-variance groups are dropped by constraintCost (only when neither reward nor cost
        // varies), never before it: dropping on reward alone would bias the cost estimate Ĵ_C.
        const advantages = groupAdvantages({ ...alg.advantages, dropZeroStd: false });
        const costs = constraintCost({ ...alg.advantages, costs: [{ name: 'noncompliance' }] });
        const update = policyUpdate(learner, alg.update);
        /** One primal-dual iteration (its groups rolled out here, or by actors). */
        return (i: number) => groups(i).pipe(returns(), advantages, costs, (b) => b.pipe(primalDual(lagrange()!, combine)), update, shareWeights(), evaluation);
      },
      stop: stopWhen ?? stopRule(cfg.stop),
    },
    sinks,
    ctx,
  );
}
