// `constraintCost`: per-trajectory constraint costs and their group advantages — documented on the exported `constraintCost` (hover it).
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import type { AdvantagedGroup, AdvantagedTrajectory, Batch, ScoredTrajectory, UNCOMBINED_COST } from '../lib/data.ts';
import { checkConstraintNames } from '../lib/lagrange.ts';
import {
  ADVANTAGE_ESTIMATOR_DEFAULTS,
  AdvantageEstimatorOptions,
  groupAdvantageValues,
  resolveEstimatorConfig,
  type AdvantageEstimatorConfig,
} from './groupAdvantages.ts';

/**
 * An advantaged trajectory whose `costAdvantages` are present (one per constraint) and not yet
 * combined into `advantage` (the type-only `UNCOMBINED_COST` brand; `primalDual` removes it).
 */
export type CostAdvantagedTrajectory = AdvantagedTrajectory & { costAdvantages: number[]; readonly [UNCOMBINED_COST]?: true };

/** A group of trajectories with reward *and* cost advantages: what `primalDual` needs. */
export interface CostAdvantagedGroup extends Omit<AdvantagedGroup, 'trajectories'> {
  trajectories: CostAdvantagedTrajectory[];
}

export interface CostSpec {
  /** Metric/score name: `cost/<name>/mean`, `scores['cost/<name>']`. Letters, digits, `_ . -`. */
  readonly name: string;
  /** The trajectory's cost C(τ). Default: `totalCost` (Σ_t c_t from the env). */
  readonly fn?: (trajectory: ScoredTrajectory) => number;
}

export interface ConstraintCostConfig extends AdvantageEstimatorConfig {
  /** The constraints, in order. Default: one constraint `env` on `totalCost`. */
  costs: readonly CostSpec[];
}

/**
 * The plain-data part of the config as a codec: the estimator's knobs for the cost advantages
 * (`AdvantageEstimatorOptions`) and the constraints by name (a cost function `fn` is code, not data).
 */
export const ConstraintCostOptions = t.intersection(
  [AdvantageEstimatorOptions, t.type({ costs: t.array(t.type({ name: t.string })) })],
  'ConstraintCostOptions',
);
// The codec's type is the config's plain part: a change to one that the other misses fails tsc.
const _constraintCostOptionsMatch: t.TypeOf<typeof ConstraintCostOptions> extends Omit<ConstraintCostConfig, 'costs'> & { costs: readonly { name: string }[] }
  ? true
  : never = true;
void _constraintCostOptionsMatch;

export const CONSTRAINT_COST_DEFAULTS: ConstraintCostConfig = {
  ...ADVANTAGE_ESTIMATOR_DEFAULTS,
  costs: [{ name: 'env' }],
};

/** C_k(τ) for every constraint, checked finite. */
export function trajectoryCosts(tr: ScoredTrajectory, costs: readonly CostSpec[], where = ''): number[] {
  return costs.map((c) => {
    const v = c.fn ? c.fn(tr) : tr.totalCost;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new RangeError(`constraintCost: cost '${c.name}' of ${where || 'a trajectory'} is ${String(v)}`);
    }
    return v;
  });
}

/**
 * `constraintCost` — per-trajectory constraint costs and their group advantages, alongside the
 * reward advantages, for primal-dual (Lagrangian) training of a constrained MDP.
 *
 * In: `Batch<AdvantagedGroup>` (after `groupAdvantages`); out: `Batch<CostAdvantagedGroup>`. For
 * every constraint k (in the order of `costs`) each trajectory i gains
 *
 *     C_k,i = fn_k(τ_i)          or  Σ_t c_t  (`totalCost`, the env's summed costs) without fn
 *     A_C,k,i = estimator(C_k,1..C_k,G)_i      — the same estimators as `groupAdvantages`
 *               (grpo: (C_k,i − mean) / (std + ε), drgrpo: C_k,i − mean, rloo: leave-one-out)
 *
 * written as `costAdvantages[k]` (higher = more cost, so the Lagrangian *subtracts* it:
 * A = A_R − Σ_k λ_k A_C,k, see `primalDual`), and the raw cost as `scores['cost/<name>']`. The math is
 * `groupAdvantageValues` from `groupAdvantages.ts`, not a copy.
 *
 * `dropZeroStd` (DAPO) drops only groups with no signal in *any* objective: every reward advantage
 * 0 and every cost constant. In a constrained pipeline drop here rather than in `groupAdvantages`,
 * which would also discard groups whose rewards tie but whose costs differ. `cost/<name>/mean` is
 * the mean over *all* trajectories of the input batch (before dropping), so the cost estimate that
 * `primalDual` reads from it is not biased by dropping.
 *
 * Emits `cost/<name>/mean` (left out for a batch without trajectories) and `cost/<name>/frac_zero_std`
 * per constraint, and updates `groups/kept` when dropping.
 *
 * @param config Partial {@link ConstraintCostConfig}: the constraints `costs` ({@link CostSpec}) and the cost-advantage estimator knobs (declared on {@link AdvantageEstimatorProps}); missing keys from {@link CONSTRAINT_COST_DEFAULTS}.
 * @returns An operator from `Batch<AdvantagedGroup>` to `Batch<CostAdvantagedGroup>` with `costAdvantages` and `scores['cost/<name>']` on every trajectory, plus the cost metrics.
 * @throws RangeError for a bad config or a non-finite cost, naming the constraint and trajectory.
 * @example
 * ```ts
 * rollouts$.pipe(
 *   returns(), groupAdvantages({ estimator: 'grpo' }),
 *   constraintCost({ costs: [{ name: 'compliance', fn: (t) => 1 - (t.scores?.compliance ?? 0) }] }),
 *   primalDual(lagrange), // A = A_R − λ A_C
 * );
 * ```
 */
export function constraintCost(config: Partial<ConstraintCostConfig> = {}): OperatorFunction<Batch<AdvantagedGroup>, Batch<CostAdvantagedGroup>> {
  const cfg: ConstraintCostConfig = { ...CONSTRAINT_COST_DEFAULTS, ...config, costs: config.costs ?? CONSTRAINT_COST_DEFAULTS.costs };
  const est = resolveEstimatorConfig(cfg, 'constraintCost');
  checkConstraintNames(
    cfg.costs.map((c) => c.name),
    'constraintCost',
  );
  const K = cfg.costs.length;
  return map((batch) => {
    const ids = batch.groups.map((g) => g.groupId);
    // costs[g][i][k]
    const costs = batch.groups.map((g) => g.trajectories.map((tr, i) => trajectoryCosts(tr, cfg.costs, `group '${g.groupId}', trajectory ${i}`)));
    const perConstraint = (k: number, keep?: readonly boolean[]) => costs.filter((_, g) => !keep || keep[g]).map((grp) => grp.map((c) => c[k]!));
    // Zero-variance flags per constraint over all groups (no dropping yet).
    const first = Array.from({ length: K }, (_, k) => groupAdvantageValues(perConstraint(k), { ...est, dropZeroStd: false }, ids, 'constraintCost'));
    const kept = batch.groups.map((g, gi) => !(est.dropZeroStd && g.trajectories.every((t) => t.advantage === 0) && first.every((v) => v.zeroStd[gi])));
    const anyDropped = kept.some((k) => !k);
    // With a batch-wide std and dropped groups, the std must come from the kept groups only.
    const keptIds = ids.filter((_, g) => kept[g]);
    const values =
      anyDropped && est.std === 'batch'
        ? Array.from({ length: K }, (_, k) => groupAdvantageValues(perConstraint(k, kept), { ...est, dropZeroStd: false }, keptIds, 'constraintCost'))
        : first.map((v) => ({ ...v, advantages: v.advantages.filter((_, g) => kept[g]) }));
    const groups: CostAdvantagedGroup[] = [];
    let out = 0;
    batch.groups.forEach((g, gi) => {
      if (!kept[gi]) return;
      const go = out++;
      groups.push({
        ...g,
        trajectories: g.trajectories.map((tr, i) => {
          const c = costs[gi]![i]!;
          const scores: Record<string, number> = { ...tr.scores };
          cfg.costs.forEach((spec, k) => (scores[`cost/${spec.name}`] = c[k]!));
          return { ...tr, scores, costAdvantages: values.map((v) => v.advantages[go]![i]!) } as CostAdvantagedTrajectory;
        }),
      });
    });
    const metrics: Record<string, number> = { ...batch.metrics };
    const all = costs.flat();
    cfg.costs.forEach((spec, k) => {
      // No trajectories, no estimate: the metric is left out (primalDual then leaves λ alone).
      if (all.length > 0) metrics[`cost/${spec.name}/mean`] = all.reduce((s, c) => s + c[k]!, 0) / all.length;
      metrics[`cost/${spec.name}/frac_zero_std`] = batch.groups.length === 0 ? 0 : first[k]!.zeroStd.filter(Boolean).length / batch.groups.length;
    });
    if (est.dropZeroStd) metrics['groups/kept'] = groups.length;
    return { ...batch, groups, metrics };
  });
}
