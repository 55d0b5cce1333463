// `groupAdvantages`: critic-free group advantages (GRPO, Dr. GRPO, RLOO) — documented on the exported `groupAdvantages` (hover it).
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { NonNegativeNumber, PositiveInt, oneOf } from '../lib/codec.ts';
import type { AdvantagedGroup, Batch, ScoredGroup, ScoredTrajectory } from '../lib/data.ts';
import { meanStd, moments } from '../lib/stats.ts';

export type AdvantageEstimator = 'grpo' | 'drgrpo' | 'rloo';
export type StdScope = 'group' | 'batch' | 'none';

/**
 * The estimator's plain-data knobs, shared with `constraintCost` (cost advantages) and composed
 * into pipeline configs; `AdvantageEstimatorConfig` is its type.
 *
 * - `estimator`: `'grpo'` (default), `'drgrpo'`, `'rloo'`.
 * - `std`: divisor scope; `'auto'` (default) is per estimator: grpo → `'group'`, drgrpo and rloo → `'none'`.
 * - `eps`: ε added to the std. Default 1e-4 (TRL's GRPOTrainer).
 * - `ddof`: delta degrees of freedom of the std: 1 (unbiased, torch.std; default) or 0 (population).
 * - `zeroStdTol`: a group with max − min ≤ this counts as zero-variance. Default 1e-8 (torch.isclose's atol).
 * - `dropZeroStd`: DAPO dynamic sampling: remove zero-variance groups from the batch. Default false.
 * - `groupSize` (optional): expected trajectories per group, checked at construction (rloo needs ≥ 2).
 */
export const AdvantageEstimatorProps = {
  estimator: oneOf(['grpo', 'drgrpo', 'rloo']),
  std: oneOf(['auto', 'group', 'batch', 'none']),
  eps: NonNegativeNumber,
  ddof: t.union([t.literal(0), t.literal(1)]),
  zeroStdTol: NonNegativeNumber,
  dropZeroStd: t.boolean,
};
export const AdvantageEstimatorOptions = t.intersection([t.type(AdvantageEstimatorProps), t.partial({ groupSize: PositiveInt })], 'AdvantageEstimatorOptions');
export type AdvantageEstimatorConfig = t.TypeOf<typeof AdvantageEstimatorOptions>;

export type Outcome = 'total-reward' | 'first-step-return' | ((trajectory: ScoredTrajectory) => number);

export interface GroupAdvantagesConfig extends AdvantageEstimatorConfig {
  /**
   * The per-trajectory scalar R_i: `'total-reward'` (Σ_t r_t, default — outcome rewards, GRPO),
   * `'first-step-return'` (G_0 = returns[0], discounted with `returns`' γ and bootstrap), or a
   * function (e.g. `(t) => t.scores!.utility`).
   */
  outcome: Outcome;
}

/** The defaults the estimator settings fall back to (no outcome: shared with constraintCost). */
export const ADVANTAGE_ESTIMATOR_DEFAULTS: AdvantageEstimatorConfig = {
  estimator: 'grpo',
  std: 'auto',
  eps: 1e-4,
  ddof: 1,
  zeroStdTol: 1e-8,
  dropZeroStd: false,
};

export const GROUP_ADVANTAGES_DEFAULTS: GroupAdvantagesConfig = { ...ADVANTAGE_ESTIMATOR_DEFAULTS, outcome: 'total-reward' };

export type ResolvedEstimatorConfig = Omit<AdvantageEstimatorConfig, 'std'> & { std: StdScope };

/** Fills in defaults and validates; throws a `RangeError` naming the bad field. */
export function resolveEstimatorConfig(config: Partial<AdvantageEstimatorConfig> = {}, who = 'groupAdvantages'): ResolvedEstimatorConfig {
  const c = { ...ADVANTAGE_ESTIMATOR_DEFAULTS, ...stripUndefined(config) };
  if (!['grpo', 'drgrpo', 'rloo'].includes(c.estimator)) {
    throw new RangeError(`${who}: estimator must be 'grpo', 'drgrpo' or 'rloo', got ${String(c.estimator)}`);
  }
  const std: StdScope = c.std === undefined || c.std === 'auto' ? (c.estimator === 'grpo' ? 'group' : 'none') : c.std;
  if (!['group', 'batch', 'none'].includes(std)) {
    throw new RangeError(`${who}: std must be 'group', 'batch' or 'none', got ${String(std)}`);
  }
  if (c.estimator === 'drgrpo' && std !== 'none') {
    throw new RangeError(`${who}: drgrpo is GRPO without the std division; use estimator 'grpo' with std '${std}'`);
  }
  if (!(Number.isFinite(c.eps) && c.eps >= 0)) throw new RangeError(`${who}: eps must be a finite number ≥ 0, got ${c.eps}`);
  if (c.ddof !== 0 && c.ddof !== 1) throw new RangeError(`${who}: ddof must be 0 or 1, got ${String(c.ddof)}`);
  if (!(Number.isFinite(c.zeroStdTol) && c.zeroStdTol >= 0)) {
    throw new RangeError(`${who}: zeroStdTol must be a finite number ≥ 0, got ${c.zeroStdTol}`);
  }
  if (c.groupSize !== undefined) {
    if (!(Number.isInteger(c.groupSize) && c.groupSize >= 1)) {
      throw new RangeError(`${who}: groupSize must be a positive integer, got ${c.groupSize}`);
    }
    if (c.estimator === 'rloo' && c.groupSize < 2) throw new RangeError(`${who}: rloo needs groupSize ≥ 2, got ${c.groupSize}`);
  }
  return { ...c, std };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface GroupAdvantageValues {
  /** A_i per group and trajectory (0 for every trajectory of a zero-variance group). */
  readonly advantages: number[][];
  /** Whether each group's outcomes are all equal (within `zeroStdTol`). */
  readonly zeroStd: boolean[];
  /** Whether each group survives `dropZeroStd` (all true without it). */
  readonly kept: boolean[];
  /** mean(R) and std(R) (with `ddof`) per group. */
  readonly groupMean: number[];
  readonly groupStd: number[];
  /** The divisor actually used per group (std + ε, or 1). */
  readonly scale: number[];
}

/**
 * The pure estimator: advantages of `outcomes[g][i]` (group g, trajectory i). `groupIds` only names
 * groups in error messages (`group 'a', trajectory 2`); `who` prefixes them.
 */
export function groupAdvantageValues(
  outcomes: readonly (readonly number[])[],
  config: Partial<AdvantageEstimatorConfig> = {},
  groupIds?: readonly string[],
  who = 'groupAdvantages',
): GroupAdvantageValues {
  const c = resolveEstimatorConfig(config, who);
  const name = (g: number) => (groupIds?.[g] !== undefined ? `'${groupIds[g]}'` : String(g));
  outcomes.forEach((grp, g) => {
    grp.forEach((r, i) => {
      if (!Number.isFinite(r)) throw new RangeError(`${who}: outcome of group ${name(g)}, trajectory ${i} is ${r}`);
    });
    if (c.estimator === 'rloo' && grp.length < 2) {
      throw new RangeError(`${who}: rloo needs groupSize ≥ 2, group ${name(g)} has ${grp.length} trajectory`);
    }
  });
  const stats = outcomes.map((grp) => meanStd(grp, c.ddof));
  const zeroStd = outcomes.map((grp) => grp.length === 0 || Math.max(...grp) - Math.min(...grp) <= c.zeroStdTol);
  const kept = zeroStd.map((z) => !(c.dropZeroStd && z));
  let batchScale = 1;
  if (c.std === 'batch') batchScale = meanStd(outcomes.filter((_, g) => kept[g]).flat(), c.ddof).std + c.eps;
  const scale = stats.map((s) => (c.std === 'group' ? s.std + c.eps : c.std === 'batch' ? batchScale : 1));
  const advantages = outcomes.map((grp, g) => {
    if (zeroStd[g]) return grp.map(() => 0);
    const { mean } = stats[g]!;
    const n = grp.length;
    let sum = 0;
    for (const r of grp) sum += r;
    return grp.map((r) => {
      const centred = c.estimator === 'rloo' ? r - (sum - r) / (n - 1) : r - mean;
      return centred / scale[g]!;
    });
  });
  return {
    advantages,
    zeroStd,
    kept,
    groupMean: stats.map((s) => s.mean),
    groupStd: stats.map((s) => s.std),
    scale,
  };
}

/** R_i of one trajectory under an `Outcome` choice. */
export function outcomeOf(tr: ScoredTrajectory, outcome: Outcome): number {
  if (typeof outcome === 'function') return outcome(tr);
  if (outcome === 'total-reward') return tr.totalReward;
  if (outcome === 'first-step-return') return tr.length > 0 ? tr.returns[0]! : 0;
  throw new RangeError(`groupAdvantages: outcome must be 'total-reward', 'first-step-return' or a function, got ${String(outcome)}`);
}

/**
 * `groupAdvantages` — critic-free advantages from the outcomes of a group of trajectories that share
 * a start (one reset state, one prompt): GRPO, Dr. GRPO and RLOO.
 *
 * In: `Batch<ScoredGroup>`; out: `Batch<AdvantagedGroup>`. Every trajectory i of a group of G gains
 * one scalar `advantage` computed from the outcomes R_1..R_G of its group (by default the episode
 * return R_i = Σ_t r_t, i.e. `totalReward`):
 *
 *     grpo    (Shao et al. 2024, DeepSeekMath)   A_i = (R_i − mean(R)) / (std(R) + ε)
 *     drgrpo  (Liu et al. 2025, Dr. GRPO)        A_i =  R_i − mean(R)
 *     rloo    (Ahmadian et al. 2024, RLOO)       A_i =  R_i − 1/(G−1) Σ_{j≠i} R_j
 *
 * `std` chooses the divisor: `'group'` (std of the group's outcomes, GRPO), `'batch'` (std of every
 * outcome in the batch with the per-group mean kept, TRL's `scale_rewards="batch"`), or `'none'`.
 * The default follows the estimator (grpo → group, drgrpo/rloo → none); Dr. GRPO *is* "no std", so
 * `drgrpo` with a std is rejected. std uses `ddof` (default 1, the unbiased estimator, as
 * `torch.std` in TRL / verl compute it) and ε = 1e-4 (TRL's GRPO).
 *
 * A group whose outcomes are all equal (max − min ≤ `zeroStdTol`) carries no learning signal: every
 * one of its advantages is exactly 0. DAPO's dynamic sampling (Yu et al. 2025) removes such groups
 * from the batch; `dropZeroStd: true` does that here (the pipeline refills the batch if it wants a
 * fixed size). With `std: 'batch'` the batch std is taken over the kept groups.
 *
 * Emits `frac_zero_std` (fraction of groups with zero std, before dropping), `advantage/mean`,
 * `advantage/std` (population, over the kept trajectories) and `groups/kept`.
 *
 * Errors (as stream errors): `rloo needs groupSize ≥ 2` (at construction when `groupSize` is given,
 * otherwise at the first group of 1), a non-finite outcome (naming the group and trajectory).
 *
 * @param config Partial {@link GroupAdvantagesConfig}: the estimator knobs declared on {@link AdvantageEstimatorProps} and the `outcome`; missing keys from {@link GROUP_ADVANTAGES_DEFAULTS}.
 * @returns An operator from `Batch<ScoredGroup>` to `Batch<AdvantagedGroup>` (one `advantage` per trajectory; zero-std groups dropped with `dropZeroStd`), plus the advantage metrics.
 * @throws RangeError for a bad config (naming the field); as stream errors, an RLOO group of 1 or a non-finite outcome.
 * @example
 * ```ts
 * rollouts$.pipe(
 *   returns({ gamma: 1 }),
 *   groupAdvantages({ estimator: 'grpo', dropZeroStd: true }), // A_i = (R_i − R̄) / (σ + 1e-4)
 *   tap((b) => console.log(b.metrics['frac_zero_std'])),
 * );
 * ```
 */
export function groupAdvantages(config: Partial<GroupAdvantagesConfig> = {}): OperatorFunction<Batch<ScoredGroup>, Batch<AdvantagedGroup>> {
  const cfg = { ...GROUP_ADVANTAGES_DEFAULTS, ...stripUndefined(config) };
  resolveEstimatorConfig(cfg); // fail at construction on a bad config (rloo with groupSize 1, ...)
  if (typeof cfg.outcome !== 'function' && !['total-reward', 'first-step-return'].includes(cfg.outcome)) {
    throw new RangeError(`groupAdvantages: outcome must be 'total-reward', 'first-step-return' or a function, got ${String(cfg.outcome)}`);
  }
  return map((batch) => {
    const outcomes = batch.groups.map((g) => g.trajectories.map((tr) => outcomeOf(tr, cfg.outcome)));
    const v = groupAdvantageValues(
      outcomes,
      cfg,
      batch.groups.map((g) => g.groupId),
    );
    const groups: AdvantagedGroup[] = [];
    batch.groups.forEach((g, gi) => {
      if (!v.kept[gi]) return;
      groups.push({ ...g, trajectories: g.trajectories.map((tr, i) => ({ ...tr, advantage: v.advantages[gi]![i]! })) });
    });
    const adv = moments(groups.flatMap((g) => g.trajectories.map((t) => t.advantage)));
    const nGroups = batch.groups.length;
    return {
      ...batch,
      groups,
      metrics: {
        ...batch.metrics,
        frac_zero_std: nGroups === 0 ? 0 : v.zeroStd.filter(Boolean).length / nGroups,
        'advantage/mean': adv.mean,
        'advantage/std': adv.std,
        'groups/kept': groups.length,
      },
    };
  });
}
