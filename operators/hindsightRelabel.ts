// `hindsightRelabel`: Online DT's hindsight return relabeling — documented on the exported `hindsightRelabel` (hover it).
import { map, type OperatorFunction } from 'rxjs';
import type { Batch, Group, Trajectory } from '../lib/data.ts';

export interface HindsightRelabelConfig {
  /** Multiplies the achieved return-to-go. Default 1 (ODT MuJoCo stores RTG · 1/1000). */
  scale: number;
}

export const HINDSIGHT_RELABEL_DEFAULTS: HindsightRelabelConfig = { scale: 1 };

/** g_t = scale · Σ_{k≥t} r_k (accumulated in float64, stored as float32). */
export function achievedReturnToGo(rewards: ArrayLike<number>, scale = 1, where = 'a trajectory'): Float32Array {
  const out = new Float32Array(rewards.length);
  let g = 0;
  for (let t = rewards.length - 1; t >= 0; t--) {
    const r = rewards[t]!;
    if (!Number.isFinite(r)) throw new RangeError(`hindsightRelabel: reward of ${where} at step ${t} is ${r}`);
    g += r;
    out[t] = scale * g;
  }
  return out;
}

/** A copy of `tr` with `targets` relabeled; `shift` sums |new − old| over the `count` old targets. */
export function relabelTrajectory<T extends Trajectory>(
  tr: T,
  config: HindsightRelabelConfig = HINDSIGHT_RELABEL_DEFAULTS,
  where = `a trajectory of group '${tr.groupId}'`,
): { trajectory: T; shift: number; count: number } {
  const targets = achievedReturnToGo(tr.rewards, config.scale, where);
  let shift = 0;
  let count = 0;
  const old = tr.targets;
  if (old) {
    const n = Math.min(old.length, targets.length);
    for (let t = 0; t < n; t++) {
      shift += Math.abs(targets[t]! - old[t]!);
      count++;
    }
  }
  return { trajectory: { ...tr, targets }, shift, count };
}

/**
 * `hindsightRelabel` — Online Decision Transformer's hindsight return relabeling: the return-to-go
 * targets a trajectory was conditioned on are replaced by the returns it actually achieved.
 *
 * In: `Batch<G>` for any group type `G` (typically `ScoredGroup`); out: the same type. Each
 * trajectory's `targets` become
 *
 *     g_t = scale · Σ_{k ≥ t} r_k          (undiscounted return-to-go, t = 0 … T−1)
 *
 * computed from `rewards` (not from `returns`, which may be discounted or bootstrapped). `scale`
 * must put g_t in the units the pipeline stores targets in: 1 (default) when targets hold raw
 * returns and the Decision Transformer scales its RTG input itself; 1/1000 when targets are stored
 * already scaled as in ODT / DT on MuJoCo (`reward_scale = 0.001`, i.e. `rtg / 1000`).
 * A sub-trajectory or a truncated episode gets the return-to-go of the rewards it contains
 * (no bootstrap), as ODT does.
 *
 * This is the **only** operator that rewrites `targets`; relabel-free pipelines (GRPO for DTs) simply
 * leave it out, so a pipeline shows whether it relabels. Emits `relabel/target_shift`:
 * mean |g_new − g_old| over the steps that had a target before (left out when none had one).
 *
 * @param config Partial {@link HindsightRelabelConfig} (`scale`); missing keys from {@link HINDSIGHT_RELABEL_DEFAULTS}.
 * @returns An operator from `Batch<G>` to `Batch<G>` whose trajectories carry the relabeled `targets`, plus `relabel/target_shift`.
 * @example
 * ```ts
 * rollouts$.pipe(
 *   returns(),
 *   hindsightRelabel({ scale: 1 / 1000 }), // ODT on MuJoCo
 *   replayBuffer(buffer),
 * );
 * ```
 */
export function hindsightRelabel<G extends Group>(config: Partial<HindsightRelabelConfig> = {}): OperatorFunction<Batch<G>, Batch<G>> {
  const cfg: HindsightRelabelConfig = { ...HINDSIGHT_RELABEL_DEFAULTS, ...config };
  if (!(Number.isFinite(cfg.scale) && cfg.scale > 0)) {
    throw new RangeError(`hindsightRelabel: scale must be a finite number > 0, got ${cfg.scale}`);
  }
  return map((batch) => {
    let shift = 0;
    let count = 0;
    const groups = batch.groups.map((g) => ({
      ...g,
      trajectories: g.trajectories.map((tr, i) => {
        const r = relabelTrajectory(tr, cfg, `group '${g.groupId}', trajectory ${i}`);
        shift += r.shift;
        count += r.count;
        return r.trajectory;
      }),
    })) as G[];
    const metrics = count > 0 ? { ...batch.metrics, 'relabel/target_shift': shift / count } : batch.metrics;
    return { ...batch, groups, metrics };
  });
}
