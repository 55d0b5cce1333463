// `primalDual`: Lagrange multipliers and the Lagrangian advantage — documented on the exported `primalDual` (hover it).
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { NonNegativeNumber, oneOf } from '../lib/codec.ts';
import type { AdvantagedGroup, Batch } from '../lib/data.ts';
import type { CostAdvantagedGroup } from './constraintCost.ts';
import { moments } from '../lib/stats.ts';
import type { LagrangeState, LagrangeStep } from '../lib/lagrange.ts';

function fail(msg: string): never {
  throw new RangeError(`primalDual: ${msg}`);
}

// ---------------------------------------------------------------------------------------------
// Combining.

export interface PrimalDualConfig {
  /** Default `'lagrangian'`. */
  combine: 'lagrangian' | 'normalized-lagrangian';
  /** Default `'one-plus-lambda'` (Safe RLHF / OmniSafe). */
  normalize: 'none' | 'one-plus-lambda';
  /** Default `'before-update'`: advantages use the current λ, then λ is updated. */
  timing: 'before-update' | 'after-update';
  /** ε of the batch standardisation in `normalized-lagrangian`. Default 1e-8. */
  eps: number;
}

export const PRIMAL_DUAL_DEFAULTS: PrimalDualConfig = {
  combine: 'lagrangian',
  normalize: 'one-plus-lambda',
  timing: 'before-update',
  eps: 1e-8,
};

function standardise(xs: readonly number[], eps: number): number[] {
  const { mean, std } = moments(xs);
  return xs.map((x) => (x - mean) / (std + eps));
}

/**
 * The pure scalarisation over a batch of N trajectories: `rewardAdv[i]`, `costAdv[i][k]`, λ_k.
 */
export function combineAdvantages(
  rewardAdv: readonly number[],
  costAdv: readonly (readonly number[])[],
  lambdas: readonly number[],
  config: Partial<Omit<PrimalDualConfig, 'timing'>> = {},
): number[] {
  const c = { ...PRIMAL_DUAL_DEFAULTS, ...config };
  const K = lambdas.length;
  const N = rewardAdv.length;
  if (costAdv.length !== N) fail(`combineAdvantages: ${N} reward advantages but ${costAdv.length} cost rows`);
  costAdv.forEach((row, i) => {
    if (row.length !== K) fail(`trajectory ${i} has ${row.length} cost advantages, expected ${K} (one per constraint)`);
  });
  let R: readonly number[] = rewardAdv;
  let C: number[][] = Array.from({ length: K }, (_, k) => costAdv.map((row) => row[k]!));
  if (c.combine === 'normalized-lagrangian') {
    R = standardise(R, c.eps);
    C = C.map((col) => standardise(col, c.eps));
  } else if (c.combine !== 'lagrangian') {
    fail(`combine must be 'lagrangian' or 'normalized-lagrangian', got ${String(c.combine)}`);
  }
  const sumLambda = lambdas.reduce((a, b) => a + b, 0);
  const div = c.normalize === 'one-plus-lambda' ? 1 + sumLambda : 1;
  if (c.normalize !== 'one-plus-lambda' && c.normalize !== 'none') fail(`normalize must be 'none' or 'one-plus-lambda', got ${String(c.normalize)}`);
  return R.map((r, i) => {
    let a = r;
    for (let k = 0; k < K; k++) a -= lambdas[k]! * C[k]![i]!;
    return a / div;
  });
}

/**
 * `primalDual` — Lagrange multipliers for a constrained MDP (max J_R s.t. J_C,k ≤ d_k) and the
 * Lagrangian advantage the policy-gradient step maximises.
 *
 * In: `Batch<CostAdvantagedGroup>` (from `constraintCost`); out: `Batch<AdvantagedGroup>` whose
 * `advantage` is the combined one. The reward-only advantage is kept in
 * `scores['advantage/reward']` and the cost advantages stay in `costAdvantages`.
 *
 * **Combining** (per trajectory, λ_k ≥ 0):
 *
 *     lagrangian             A = A_R − Σ_k λ_k A_C,k
 *     normalized-lagrangian  A = Z(A_R) − Σ_k λ_k Z(A_C,k),   Z(x) = (x − mean_B x) / (std_B x + ε)
 *                            (each component standardised over the batch *before* scalarising,
 *                             Constrained GRPO, Girgis et al. 2026: keeps λ's meaning when the
 *                             components' spreads differ)
 *     normalize 'one-plus-lambda'  then divides by (1 + Σ_k λ_k) (Safe RLHF / OmniSafe PPO-Lag),
 *                                   which keeps the advantage's scale bounded as λ grows.
 *
 * **Updating** each λ_k from the cost estimate Ĵ_C = mean of the last W batch costs (`window`, W = 1:
 * this batch), where a batch cost is `metrics['cost/<name>/mean']` from `constraintCost`:
 *
 *     projected   λ ← clip(λ + η (Ĵ_C − d), 0, λ_max)                       (dual gradient ascent)
 *     log         ln λ ← ln λ + η λ (Ĵ_C − d), λ = min(exp(ln λ), λ_max)    (Safe RLHF, Eq. 31: the
 *                 gradient of −λ(Ĵ_C − d) w.r.t. ln λ; `logGradient: 'plain'` drops the λ factor)
 *     pid         Δ = Ĵ_C − d,  I ← (I + Δ)_+,  ∂ = (Ĵ_C − Ĵ_C,prev)_+,       (Stooke, Achiam & Abbeel
 *                 λ = clip(K_P Δ + K_I I + K_D ∂, 0, λ_max)                    2020, Algorithm 2)
 *                 Ĵ_C,prev starts at 0 as in the paper; the derivative is on the cost, not the error.
 *                 Optional smoothing as in their code/OmniSafe: Δ and Ĵ_C through EMAs (`emaP`,
 *                 `emaD`) and ∂ against the smoothed cost `derivativeDelay` updates back.
 *     fixed       λ never changes (fixed-weight scalarisation baseline).
 *
 * **Order of operations** (`timing`): by default (`'before-update'`, the standard primal-dual step)
 * the batch's advantages use the *current* λ_k, then λ_k is updated from this batch's cost, so the
 * new λ first acts on the next batch. `'after-update'` updates first and combines with the new λ
 * (what Safe RLHF's trainer does). The metric `lambda` is always the λ used for this batch's
 * advantages.
 *
 * All multiplier state lives in a `LagrangeState`, plain JSON through `state()` /
 * `LagrangeState.fromState()`; restoring it continues bit-identically.
 *
 * Emits `lambda` (Σ_k λ_k; λ with one constraint) and, with several, `lambda/<name>`; `cost/mean`
 * (this batch's constraint cost, one constraint), `constraint/estimate` (Ĵ_C), `constraint/violation`
 * (Ĵ_C − d; with several the max over k, plus `constraint/<name>/violation`), `constraint/limit`
 * (d; with several `constraint/<name>/limit`), and `advantage/mean` / `advantage/std` of the
 * combined advantage.
 *
 * @param state The multipliers λ_k and their update state, built once and mutated by every batch of every subscription (see "State" in docs/operators.md); `state.state()` is what a checkpoint stores.
 * @param config Partial {@link PrimalDualConfig} (`combine`, `normalize`, `timing`, `eps`, declared on {@link PrimalDualProps}); missing keys from {@link PRIMAL_DUAL_DEFAULTS}. The multiplier rule itself is configured on the `LagrangeState`.
 * @returns An operator from `Batch<CostAdvantagedGroup>` to `Batch<AdvantagedGroup>` whose `advantage` is the combined one, plus `lambda` and the constraint metrics.
 * @throws RangeError for a bad config; as a stream error, a batch without the `cost/<name>/mean` metric of a constraint.
 * @example
 * ```ts
 * const lagrange = new LagrangeState({ constraints: [{ name: 'compliance', limit: 0.1 }], update: 'pid' });
 * batches$.pipe(
 *   constraintCost({ costs: [{ name: 'compliance' }] }),
 *   primalDual(lagrange, { combine: 'lagrangian', normalize: 'one-plus-lambda' }),
 * ); // checkpoint: JSON.stringify(lagrange.state())
 * ```
 */
export function primalDual(state: LagrangeState, config: Partial<PrimalDualConfig> = {}): OperatorFunction<Batch<CostAdvantagedGroup>, Batch<AdvantagedGroup>> {
  const cfg: PrimalDualConfig = { ...PRIMAL_DUAL_DEFAULTS, ...config };
  if (!['before-update', 'after-update'].includes(cfg.timing)) fail(`timing must be 'before-update' or 'after-update', got ${String(cfg.timing)}`);
  combineAdvantages([], [], [], cfg); // validates combine / normalize at construction
  const names = state.names;
  const K = names.length;
  return map((batch) => {
    const trajs = batch.groups.flatMap((g) => g.trajectories);
    const costKeys = names.map((n) => `cost/${n}/mean`);
    const haveCosts = costKeys.every((key) => key in batch.metrics);
    if (!haveCosts && trajs.length > 0) {
      const missing = costKeys.filter((key) => !(key in batch.metrics));
      fail(
        `batch ${batch.iteration} lacks metrics ${missing.map((m) => `'${m}'`).join(', ')}: put constraintCost with the constraints [${names.join(', ')}] upstream`,
      );
    }
    batch.groups.forEach((g) =>
      g.trajectories.forEach((tr, i) => {
        if (!Array.isArray(tr.costAdvantages) || tr.costAdvantages.length !== K) {
          fail(`group '${g.groupId}', trajectory ${i} has ${tr.costAdvantages?.length ?? 'no'} cost advantages, expected ${K} (${names.join(', ')})`);
        }
      }),
    );
    const batchCosts = costKeys.map((key) => batch.metrics[key]!);
    // An empty batch (every group dropped) carries no cost information: λ is left as it is.
    let step: LagrangeStep | undefined;
    if (cfg.timing === 'after-update' && haveCosts) step = state.update(batchCosts);
    const lambdas = state.lambdas;
    const combined = combineAdvantages(
      trajs.map((t) => t.advantage),
      trajs.map((t) => t.costAdvantages),
      lambdas,
      cfg,
    );
    if (cfg.timing === 'before-update' && haveCosts) step = state.update(batchCosts);
    let n = 0;
    const groups: AdvantagedGroup[] = batch.groups.map((g) => ({
      ...g,
      trajectories: g.trajectories.map((tr) => ({
        ...tr,
        advantage: combined[n++]!,
        scores: { ...tr.scores, 'advantage/reward': tr.advantage },
      })),
    }));
    const metrics: Record<string, number> = { ...batch.metrics };
    metrics['lambda'] = lambdas.reduce((a, b) => a + b, 0);
    if (K > 1) names.forEach((nm, k) => (metrics[`lambda/${nm}`] = lambdas[k]!));
    if (step) {
      const limits = state.config.constraints.map((c) => c.limit);
      if (K === 1) {
        metrics['cost/mean'] = batchCosts[0]!;
        metrics['constraint/estimate'] = step.estimate[0]!;
        metrics['constraint/violation'] = step.violation[0]!;
        metrics['constraint/limit'] = limits[0]!;
      } else {
        names.forEach((nm, k) => {
          metrics[`constraint/${nm}/estimate`] = step!.estimate[k]!;
          metrics[`constraint/${nm}/violation`] = step!.violation[k]!;
          metrics[`constraint/${nm}/limit`] = limits[k]!;
        });
        metrics['constraint/violation'] = Math.max(...step.violation);
      }
    }
    const a = moments(combined);
    metrics['advantage/mean'] = a.mean;
    metrics['advantage/std'] = a.std;
    return { ...batch, groups, metrics };
  });
}

// ---------------------------------------------------------------------------------------------
// The config codec (pipeline configs compose it); tsc fails if it and the interface drift apart.

/** `primalDual`'s combine/normalize options. */
export const PrimalDualProps = {
  combine: oneOf(['lagrangian', 'normalized-lagrangian']),
  normalize: oneOf(['none', 'one-plus-lambda']),
  timing: oneOf(['before-update', 'after-update']),
  eps: NonNegativeNumber,
};
export const PrimalDualOptions = t.type(PrimalDualProps, 'PrimalDualOptions');

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _codecMatches: Same<t.TypeOf<typeof PrimalDualOptions>, PrimalDualConfig> = true;
void _codecMatches;
