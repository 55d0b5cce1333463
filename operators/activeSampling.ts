// `activeSampling`: choose reset states where the policy is uncertain — documented on the exported `activeSampling` (hover it).
import { map, type OperatorFunction } from 'rxjs';
import type { SnapshotStart } from '../lib/data.ts';
import type { Rng } from '../lib/random.ts';
import type { StartsBatch } from './rollout.ts';
import { moments } from '../lib/stats.ts';

/** A FIFO pool of candidate reset states with a capacity. */
export class ResetPool {
  private items: SnapshotStart[] = [];
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ResetPool: capacity: expected a positive integer, got ${capacity}`);
  }
  add(starts: readonly SnapshotStart[]): void {
    this.items.push(...starts);
    if (this.items.length > this.capacity) this.items = this.items.slice(this.items.length - this.capacity);
  }
  /** Replaces the whole pool (a resumed run puts its checkpointed pool back). */
  replace(starts: readonly SnapshotStart[]): void {
    this.items = [];
    this.add(starts);
  }
  get size(): number {
    return this.items.length;
  }
  all(): readonly SnapshotStart[] {
    return this.items;
  }
  state(): SnapshotStart[] {
    return [...this.items];
  }
  static fromState(capacity: number, items: readonly SnapshotStart[]): ResetPool {
    const p = new ResetPool(capacity);
    p.add(items);
    return p;
  }
}

export interface ActiveSamplingConfig {
  /** M: starts per iteration. */
  count: number;
  /** ε: probability that a pick is uniform. Default 0.2. */
  epsilon: number;
  mode: 'greedy' | 'softmax';
  /** τ of `softmax`. Default 1. */
  temperature: number;
  /** u(s) for each candidate (entropy or action variance of the current policy). */
  uncertainty: (starts: readonly SnapshotStart[]) => ArrayLike<number>;
}

export const ACTIVE_SAMPLING_DEFAULTS = { epsilon: 0.2, mode: 'greedy' as const, temperature: 1 };

/** Indices of M picks and which of them were uniform. */
export function activePicks(
  u: ArrayLike<number>,
  cfg: Pick<ActiveSamplingConfig, 'count' | 'epsilon' | 'mode' | 'temperature'>,
  rng: Rng,
): { picks: number[]; uniform: boolean[] } {
  const n = u.length;
  if (cfg.count > n) throw new RangeError(`activeSampling: asked for ${cfg.count} starts from a pool of ${n}`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(u[i]!)) throw new RangeError(`activeSampling: uncertainty of candidate ${i} is ${u[i]}`);
  }
  const remaining = Array.from({ length: n }, (_, i) => i);
  const picks: number[] = [];
  const uniform: boolean[] = [];
  for (let m = 0; m < cfg.count; m++) {
    let k: number;
    const isUniform = rng.uniform() < cfg.epsilon;
    if (isUniform) k = rng.int(remaining.length);
    else if (cfg.mode === 'greedy') {
      k = 0;
      for (let j = 1; j < remaining.length; j++) if (u[remaining[j]!]! > u[remaining[k]!]!) k = j;
    } else {
      let max = -Infinity;
      for (const i of remaining) max = Math.max(max, u[i]! / cfg.temperature);
      k = rng.categorical(remaining.map((i) => Math.exp(u[i]! / cfg.temperature - max)));
    }
    picks.push(remaining[k]!);
    uniform.push(isUniform);
    remaining.splice(k, 1);
  }
  return { picks, uniform };
}

/**
 * `activeSampling` — choose reset states where the policy is uncertain.
 *
 * In: iteration numbers; out: `StartsBatch` of M starts drawn from a pool of candidate reset states
 * (`ResetPool`, explicit state: fill it with `resetPoints` along recent or offline trajectories).
 * Each candidate s gets an uncertainty u(s) from the policy — the entropy of π(·|s), or the
 * variance of its actions — through the `uncertainty` callback (one batched call per iteration).
 * Each of the M picks (without replacement) is, with probability ε, uniform over the remaining
 * candidates, and otherwise
 *   - `greedy`:  argmax_s u(s) among the remaining;
 *   - `softmax`: s ~ exp(u(s)/τ) / Σ exp(u(s')/τ).
 * Uncertain states are where a group of rollouts disagrees most, so they carry the most GRPO signal
 * per env step; the ε-uniform share keeps coverage of the rest. Emits `active/uncertainty_mean`
 * (over picks), `active/pool_uncertainty_mean`, `active/frac_uniform`, `active/pool_size`.
 *
 * @param pool The candidate reset states ({@link ResetPool}); explicit state, shared by every subscription and checkpointed with `pool.state()`.
 * @param config M = `count` and the `uncertainty` callback, plus optional ε = `epsilon`, `mode` and τ = `temperature` (fields described on {@link ActiveSamplingConfig}; defaults {@link ACTIVE_SAMPLING_DEFAULTS}).
 * @param rng The stream the picks are drawn from (part of the state a checkpoint carries).
 * @returns An operator from iteration numbers to `StartsBatch`es of M starts, with the `active/*` metrics.
 * @throws RangeError for a bad `epsilon`, `count` or `temperature`; as a stream error, an `uncertainty` result of the wrong length.
 * @example
 * ```ts
 * const pool = new ResetPool(2000);
 * pool.add(trajectories.flatMap((t) => resetPoints(env, t, 20)));
 * iterations$.pipe(
 *   activeSampling(pool, { count: 8, epsilon: 0.2, uncertainty: entropyAt }, rng),
 *   subTrajectories({ venv, actor, rng, length: 20, horizon: 50 }),
 * );
 * ```
 */
export function activeSampling(
  pool: ResetPool,
  config: Pick<ActiveSamplingConfig, 'count' | 'uncertainty'> & Partial<ActiveSamplingConfig>,
  rng: Rng,
): OperatorFunction<number, StartsBatch> {
  const cfg: ActiveSamplingConfig = { ...ACTIVE_SAMPLING_DEFAULTS, ...config };
  if (!(cfg.epsilon >= 0 && cfg.epsilon <= 1)) throw new RangeError(`activeSampling: epsilon: expected a number in [0, 1], got ${cfg.epsilon}`);
  if (!Number.isInteger(cfg.count) || cfg.count < 1) throw new RangeError(`activeSampling: count: expected a positive integer, got ${cfg.count}`);
  if (!(cfg.temperature > 0)) throw new RangeError(`activeSampling: temperature: expected a positive number, got ${cfg.temperature}`);
  return map((iteration) => {
    const candidates = pool.all();
    const u = cfg.uncertainty(candidates);
    if (u.length !== candidates.length) throw new RangeError(`activeSampling: uncertainty returned ${u.length} values for ${candidates.length} candidates`);
    const { picks, uniform } = activePicks(u, cfg, rng);
    return {
      iteration,
      starts: picks.map((i) => candidates[i]!),
      metrics: {
        'active/uncertainty_mean': moments(picks.map((i) => u[i]!)).mean,
        'active/pool_uncertainty_mean': moments(Array.from(u)).mean,
        'active/frac_uniform': uniform.filter(Boolean).length / picks.length,
        'active/pool_size': candidates.length,
      },
    };
  });
}
