// `maxStaleness`: the bound on policy lag of asynchronous rollouts — documented on the exported `maxStaleness` (hover it).
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { NonNegativeInt, oneOf } from '../lib/codec.ts';
import type { Batch } from '../lib/data.ts';

/**
 * The knobs as a codec:
 * - `maxStaleness`: k, the largest accepted lag in policy versions (learner version − the group's). Default 2.
 * - `stale`: `'drop'` (default) discards older groups; `'keep'` trains on them, the clipped ratio
 *   against their recorded behaviour log-probs correcting for the lag (IMPALA-style off-policy use).
 */
export const MaxStalenessProps = { maxStaleness: NonNegativeInt, stale: oneOf(['drop', 'keep']) };
export const MaxStalenessOptions = t.type(MaxStalenessProps, 'MaxStalenessOptions');
export type MaxStalenessConfig = t.TypeOf<typeof MaxStalenessOptions>;

export const MAX_STALENESS_DEFAULTS: MaxStalenessConfig = { maxStaleness: 2, stale: 'drop' };

interface Versioned {
  readonly trajectories: readonly { readonly policyVersion: number }[];
}

/** A group's lag behind the learner: the learner's version minus the oldest version among its trajectories. */
function lagOf(g: Versioned, version: number): number {
  let v = Number.POSITIVE_INFINITY;
  for (const tr of g.trajectories) v = Math.min(v, tr.policyVersion);
  return Number.isFinite(v) ? version - v : 0;
}

/**
 * `maxStaleness` — the policy-lag bound of asynchronous rollouts.
 *
 * In and out: `Batch<G>` of groups whose trajectories carry `policyVersion`. With the learner at
 * version V, a group sampled by version v lags by s = V − v updates. Groups with s > k are
 * dropped (`stale: 'drop'`) or kept (`'keep'`: `policyUpdate`'s ratio π_θ / π_behaviour uses the
 * behaviour log-probs recorded at sampling, so the clipped surrogate corrects for the lag, as in
 * IMPALA / asynchronous PPO). Emits `async/staleness_mean` (mean s over the batch's groups, before
 * dropping), `async/staleness_max`, `async/dropped` (groups dropped from this batch) and
 * `async/stale_kept` (groups over the bound kept).
 *
 * @param learner The learner whose `version` is V (read when each batch passes).
 * @param config Partial {@link MaxStalenessConfig}: `maxStaleness` k and `stale`; defaults {@link MAX_STALENESS_DEFAULTS}.
 * @returns An operator from `Batch<G>` to `Batch<G>` without the dropped groups, with the staleness metrics added.
 * @throws RangeError for k that is not a non-negative integer or an unknown `stale` mode.
 * @example
 * ```ts
 * source.batch(i).pipe(maxStaleness(learner, { maxStaleness: 2, stale: 'drop' }), returns(), groupAdvantages(), policyUpdate(learner));
 * ```
 */
export function maxStaleness<G extends Versioned>(
  learner: { readonly version: number },
  config: Partial<MaxStalenessConfig> = {},
): OperatorFunction<Batch<G>, Batch<G>> {
  const cfg: MaxStalenessConfig = { ...MAX_STALENESS_DEFAULTS, ...config };
  if (!Number.isInteger(cfg.maxStaleness) || cfg.maxStaleness < 0)
    throw new RangeError(`maxStaleness: maxStaleness: expected a non-negative integer, got ${cfg.maxStaleness}`);
  if (cfg.stale !== 'drop' && cfg.stale !== 'keep') throw new RangeError(`maxStaleness: stale: expected 'drop' | 'keep', got ${String(cfg.stale)}`);
  return map((batch) => {
    const lags = batch.groups.map((g) => lagOf(g, learner.version));
    const over = lags.filter((s) => s > cfg.maxStaleness).length;
    const groups = cfg.stale === 'drop' ? batch.groups.filter((_, i) => lags[i]! <= cfg.maxStaleness) : batch.groups;
    return {
      ...batch,
      groups,
      metrics: {
        ...batch.metrics,
        'async/staleness_mean': lags.length > 0 ? lags.reduce((a, b) => a + b, 0) / lags.length : 0,
        'async/staleness_max': lags.length > 0 ? Math.max(...lags) : 0,
        'async/dropped': cfg.stale === 'drop' ? over : 0,
        'async/stale_kept': cfg.stale === 'keep' ? over : 0,
      },
    };
  });
}
