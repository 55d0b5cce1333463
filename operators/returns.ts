// `returns`: discounted returns and returns-to-go, relabel-free — documented on the exported `returns` (hover it).
import { map, type OperatorFunction } from 'rxjs';
import type { Batch, Group, ScoredGroup, ScoredTrajectory, Trajectory } from '../lib/data.ts';
import { moments } from '../lib/stats.ts';

export interface ReturnsConfig {
  /** Discount γ ∈ [0, 1]. Default 1 (undiscounted episode returns, as GRPO and Decision Transformers use). */
  gamma: number;
  /** Value of the state after a truncated trajectory's last step, given γ. Default: 0 (no bootstrap). */
  bootstrap?: (trajectory: Trajectory, gamma: number) => number;
}

export const RETURNS_DEFAULTS: ReturnsConfig = { gamma: 1 };

/** G_t for one trajectory, plus its reward and cost totals. */
export function discountedReturns(tr: Trajectory, config: ReturnsConfig = RETURNS_DEFAULTS): ScoredTrajectory {
  const { gamma } = config;
  if (!(gamma >= 0 && gamma <= 1)) throw new RangeError(`returns: gamma must be in [0, 1], got ${gamma}`);
  const T = tr.length;
  const out = new Float32Array(T);
  let g = tr.terminated || !config.bootstrap ? 0 : config.bootstrap(tr, gamma);
  if (!Number.isFinite(g)) throw new RangeError(`returns: bootstrap value of group ${tr.groupId} is ${g}`);
  let total = 0;
  let cost = 0;
  // Accumulate in float64, store float32.
  for (let t = T - 1; t >= 0; t--) {
    const r = tr.rewards[t]!;
    g = r + gamma * g;
    out[t] = g;
    total += r;
    cost += tr.costs[t]!;
  }
  return { ...tr, returns: out, totalReward: total, totalCost: cost };
}

/**
 * `returns` — discounted returns and returns-to-go from rewards, relabel-free.
 *
 * In: `Batch<Group>`; out: `Batch<ScoredGroup>`. Each trajectory gains
 *
 *     G_t = r_t + γ · G_{t+1},    G_T = 0                 if the episode terminated,
 *                                 G_T = bootstrap(traj)    if it was truncated (default 0),
 *
 * `totalReward = Σ_t r_t` and `totalCost = Σ_t c_t`. The intended return-to-go targets the policy
 * was conditioned on (`targets`) are left exactly as they were: rewriting them from achieved
 * returns is `hindsightRelabel`'s job, so a pipeline shows explicitly whether it relabels.
 * Emits `reward/mean`, `reward/std`, `reward/min`, `reward/max`, `cost/mean`, `length/mean`.
 *
 * @param config Partial {@link ReturnsConfig} (γ and the optional truncation `bootstrap`); missing keys from {@link RETURNS_DEFAULTS}.
 * @returns An operator from `Batch<Group>` to `Batch<ScoredGroup>`: every trajectory with `returns`, `totalReward` and `totalCost`, plus the reward metrics.
 * @throws RangeError (as a stream error) for γ outside [0, 1] or a non-finite bootstrap value, naming the group.
 * @example
 * ```ts
 * rollouts$.pipe(returns({ gamma: 0.99 }), groupAdvantages({ estimator: 'grpo' }));
 * ```
 */
export function returns(config: Partial<ReturnsConfig> = {}): OperatorFunction<Batch<Group>, Batch<ScoredGroup>> {
  const cfg: ReturnsConfig = { ...RETURNS_DEFAULTS, ...config };
  return map((batch) => {
    const groups = batch.groups.map((g) => ({
      ...g,
      trajectories: g.trajectories.map((tr) => discountedReturns(tr, cfg)),
    }));
    const all = groups.flatMap((g) => g.trajectories);
    const r = moments(all.map((t) => t.totalReward));
    return {
      ...batch,
      groups,
      metrics: {
        ...batch.metrics,
        'reward/mean': r.mean,
        'reward/std': r.std,
        'reward/min': r.min,
        'reward/max': r.max,
        'cost/mean': moments(all.map((t) => t.totalCost)).mean,
        'length/mean': moments(all.map((t) => t.length)).mean,
      },
    };
  });
}
