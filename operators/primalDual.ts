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
 * ```ts
 * const lagrange = new LagrangeState({ constraints: [{ name: 'compliance', limit: 0.1 }], update: 'pid' });
 * batches$.pipe(
 *   constraintCost({ costs: [{ name: 'compliance', fn: (t) => 1 - t.scores!.compliance! }] }),
 *   primalDual(lagrange, { combine: 'lagrangian', normalize: 'one-plus-lambda' }),
 * );  // checkpoint: JSON.stringify(lagrange.state())
 * ```
 */
import { map, type OperatorFunction } from 'rxjs';
import type { AdvantagedGroup, Batch } from '../lib/data.ts';
import { checkConstraintNames, type CostAdvantagedGroup } from './constraintCost.ts';
import { moments } from '../lib/stats.ts';

export type LagrangeUpdateRule = 'projected' | 'log' | 'pid' | 'fixed';

export interface ConstraintSpec {
  /** Must match the `constraintCost` cost of the same position. */
  readonly name: string;
  /** The limit d: the constraint is Ĵ_C ≤ d. */
  readonly limit: number;
  /** Overrides the config's λ_0 for this constraint. */
  readonly lambdaInit?: number;
  /** Overrides the config's λ_max for this constraint (null: unbounded). */
  readonly lambdaMax?: number | null;
}

export interface LagrangeConfig {
  readonly constraints: readonly ConstraintSpec[];
  /** Default `'projected'`. */
  readonly update: LagrangeUpdateRule;
  /** η for `projected` and `log`. Default 0.1 (Safe RLHF's lambda_lr). */
  readonly lr: number;
  /**
   * λ_0. Default 1 for `log` (Safe RLHF's lambda_init; ln λ needs λ > 0), 0 otherwise; required for
   * `fixed`. For `pid` the integral starts at I_0 = λ_0 / K_I so λ does not jump (with K_I = 0 it
   * cannot hold λ_0 and the first update replaces it).
   */
  readonly lambdaInit?: number;
  /** λ_max, or null for none. Default 100 (OmniSafe's penalty_max). */
  readonly lambdaMax: number | null;
  /** `log` rule: `'lambda-scaled'` (Safe RLHF Eq. 31, default) or `'plain'` (ln λ ← ln λ + η(Ĵ_C − d)). */
  readonly logGradient: 'lambda-scaled' | 'plain';
  /** PID gains. Defaults K_P 0.1, K_I 0.01, K_D 0.01 (OmniSafe CPPOPID). */
  readonly kP: number;
  readonly kI: number;
  readonly kD: number;
  /** EMA factor of the proportional error, 0 = none (paper's Algorithm 2, default; OmniSafe 0.95). */
  readonly emaP: number;
  /** EMA factor of the cost for the derivative, 0 = none (default; OmniSafe 0.95). */
  readonly emaD: number;
  /** Derivative against the smoothed cost this many updates back. Default 1 (OmniSafe 10). */
  readonly derivativeDelay: number;
  /** W: Ĵ_C averages the last W batch costs (each batch weighs the same). Default 1. */
  readonly window: number;
}

export const LAGRANGE_DEFAULTS: Omit<LagrangeConfig, 'constraints'> = {
  update: 'projected',
  lr: 0.1,
  lambdaMax: 100,
  logGradient: 'lambda-scaled',
  kP: 0.1,
  kI: 0.01,
  kD: 0.01,
  emaP: 0,
  emaD: 0,
  derivativeDelay: 1,
  window: 1,
};

/** The per-constraint dynamic state; plain JSON. */
export interface ConstraintState {
  readonly name: string;
  /** Current λ_k. */
  readonly lambda: number;
  /** ln λ_k (the `log` rule's parameter), else null. */
  readonly logLambda: number | null;
  /** PID integral I. */
  readonly integral: number;
  /** PID proportional input (EMA of Δ; Δ itself without smoothing). */
  readonly deltaP: number;
  /** PID smoothed cost (Ĵ_C itself without smoothing). */
  readonly costD: number;
  /** PID: smoothed costs of the last `derivativeDelay` updates, oldest first (starts [0]). */
  readonly costHistory: readonly number[];
  /** Δ = Ĵ_C − d of the last update, or null before the first. */
  readonly prevError: number | null;
  /** The last ≤ W batch costs, oldest first. */
  readonly window: readonly number[];
}

export interface LagrangeStateJSON {
  readonly version: 1;
  readonly config: LagrangeConfig;
  readonly updates: number;
  readonly constraints: readonly ConstraintState[];
}

function fail(msg: string): never {
  throw new RangeError(`primalDual: ${msg}`);
}
const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** λ_max of constraint k (per-constraint override, else the config's). */
function lambdaMaxOf(cfg: LagrangeConfig, spec: ConstraintSpec): number {
  const m = spec.lambdaMax !== undefined ? spec.lambdaMax : cfg.lambdaMax;
  return m === null ? Infinity : m;
}

function lambdaInitOf(cfg: LagrangeConfig, spec: ConstraintSpec): number {
  const l = spec.lambdaInit ?? cfg.lambdaInit ?? (cfg.update === 'log' ? 1 : cfg.update === 'fixed' ? undefined : 0);
  if (l === undefined) fail(`the 'fixed' rule needs lambdaInit (the fixed weight) for constraint '${spec.name}'`);
  return l;
}

/** Fills in defaults and validates a multiplier configuration. */
export function resolveLagrangeConfig(config: Partial<LagrangeConfig> & Pick<LagrangeConfig, 'constraints'>): LagrangeConfig {
  const defined = Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
  const c = { ...LAGRANGE_DEFAULTS, ...defined } as LagrangeConfig;
  if (!Array.isArray(c.constraints)) fail('constraints must be an array of { name, limit }');
  checkConstraintNames(
    c.constraints.map((s) => s.name),
    'primalDual',
  );
  if (!['projected', 'log', 'pid', 'fixed'].includes(c.update)) fail(`update must be 'projected', 'log', 'pid' or 'fixed', got ${String(c.update)}`);
  if (!['lambda-scaled', 'plain'].includes(c.logGradient)) fail(`logGradient must be 'lambda-scaled' or 'plain', got ${String(c.logGradient)}`);
  for (const k of ['lr', 'kP', 'kI', 'kD'] as const) if (!(finite(c[k]) && c[k] >= 0)) fail(`${k} must be a finite number ≥ 0, got ${c[k]}`);
  for (const k of ['emaP', 'emaD'] as const) if (!(finite(c[k]) && c[k] >= 0 && c[k] < 1)) fail(`${k} must be in [0, 1), got ${c[k]}`);
  for (const k of ['derivativeDelay', 'window'] as const) {
    if (!(Number.isInteger(c[k]) && c[k] >= 1)) fail(`${k} must be a positive integer, got ${c[k]}`);
  }
  const checkMax = (m: unknown, what: string) => {
    if (m !== null && !(finite(m) && m >= 0)) fail(`${what} must be a finite number ≥ 0 or null, got ${String(m)}`);
  };
  checkMax(c.lambdaMax, 'lambdaMax');
  if (c.lambdaInit !== undefined && !(finite(c.lambdaInit) && c.lambdaInit >= 0)) fail(`lambdaInit must be a finite number ≥ 0, got ${c.lambdaInit}`);
  for (const s of c.constraints) {
    if (!finite(s.limit)) fail(`limit of constraint '${s.name}' must be a finite number, got ${String(s.limit)}`);
    if (s.lambdaMax !== undefined) checkMax(s.lambdaMax, `lambdaMax of constraint '${s.name}'`);
    const l0 = lambdaInitOf(c, s);
    if (!(finite(l0) && l0 >= 0)) fail(`lambdaInit of constraint '${s.name}' must be a finite number ≥ 0, got ${l0}`);
    if (c.update === 'log' && !(l0 > 0)) fail(`the 'log' rule needs lambdaInit > 0 (ln λ), constraint '${s.name}' has ${l0}`);
    if (l0 > lambdaMaxOf(c, s)) fail(`lambdaInit ${l0} of constraint '${s.name}' exceeds its lambdaMax ${lambdaMaxOf(c, s)}`);
  }
  // A structural copy so the state never aliases the caller's objects.
  return JSON.parse(JSON.stringify(c)) as LagrangeConfig;
}

/** The state of constraint `spec` before any update. */
export function initialConstraintState(cfg: LagrangeConfig, spec: ConstraintSpec): ConstraintState {
  const l0 = lambdaInitOf(cfg, spec);
  return {
    name: spec.name,
    lambda: l0,
    logLambda: cfg.update === 'log' ? Math.log(l0) : null,
    // PID: start the integral where K_I·I = λ_0, so λ does not jump at the first update.
    integral: cfg.update === 'pid' && cfg.kI > 0 ? l0 / cfg.kI : 0,
    deltaP: 0,
    costD: 0,
    costHistory: [0],
    prevError: null,
    window: [],
  };
}

/**
 * One multiplier update (pure): pushes `batchCost` into the window, forms Ĵ_C and applies the rule.
 * Returns the new state and the estimate it used.
 */
export function updateMultiplier(
  cfg: LagrangeConfig,
  spec: ConstraintSpec,
  s: ConstraintState,
  batchCost: number,
): { state: ConstraintState; estimate: number; violation: number } {
  if (!finite(batchCost)) fail(`cost of constraint '${spec.name}' is ${batchCost}`);
  const window = [...s.window, batchCost].slice(-cfg.window);
  const J = window.reduce((a, b) => a + b, 0) / window.length;
  const delta = J - spec.limit;
  const max = lambdaMaxOf(cfg, spec);
  const clip = (x: number) => Math.min(Math.max(x, 0), max);
  let next: ConstraintState = { ...s, window, prevError: delta };
  switch (cfg.update) {
    case 'fixed':
      break;
    case 'projected':
      next = { ...next, lambda: clip(s.lambda + cfg.lr * delta) };
      break;
    case 'log': {
      const step = cfg.logGradient === 'lambda-scaled' ? cfg.lr * s.lambda * delta : cfg.lr * delta;
      const logLambda = Math.min(s.logLambda! + step, Math.log(max));
      next = { ...next, logLambda, lambda: Math.exp(logLambda) };
      break;
    }
    case 'pid': {
      const integral = Math.max(0, s.integral + delta);
      const deltaP = cfg.emaP * s.deltaP + (1 - cfg.emaP) * delta;
      const costD = cfg.emaD * s.costD + (1 - cfg.emaD) * J;
      const derivative = Math.max(0, costD - s.costHistory[0]!);
      const lambda = clip(cfg.kP * deltaP + cfg.kI * integral + cfg.kD * derivative);
      const costHistory = [...s.costHistory, costD].slice(-cfg.derivativeDelay);
      next = { ...next, integral, deltaP, costD, costHistory, lambda };
      break;
    }
  }
  return { state: next, estimate: J, violation: delta };
}

export interface LagrangeStep {
  readonly estimate: number[];
  readonly violation: number[];
  readonly lambdaBefore: number[];
  readonly lambdaAfter: number[];
}

/** The multipliers λ_k with their update state: checkpointable as plain JSON. */
export class LagrangeState {
  readonly config: LagrangeConfig;
  private states: ConstraintState[];
  private count: number;

  constructor(config: Partial<LagrangeConfig> & Pick<LagrangeConfig, 'constraints'>) {
    this.config = resolveLagrangeConfig(config);
    this.states = this.config.constraints.map((s) => initialConstraintState(this.config, s));
    this.count = 0;
  }

  get names(): string[] {
    return this.config.constraints.map((c) => c.name);
  }

  get lambdas(): number[] {
    return this.states.map((s) => s.lambda);
  }

  /** Number of updates applied so far. */
  get updates(): number {
    return this.count;
  }

  lambda(name: string): number {
    const s = this.states.find((c) => c.name === name);
    if (!s) fail(`no constraint named '${name}' (have ${this.names.join(', ')})`);
    return s.lambda;
  }

  constraintState(name: string): ConstraintState {
    const s = this.states.find((c) => c.name === name);
    if (!s) fail(`no constraint named '${name}' (have ${this.names.join(', ')})`);
    return structuredClone(s);
  }

  /** Applies one batch's costs (one per constraint, in order). */
  update(batchCosts: readonly number[]): LagrangeStep {
    if (batchCosts.length !== this.states.length) {
      fail(`expected ${this.states.length} constraint costs (${this.names.join(', ')}), got ${batchCosts.length}`);
    }
    const lambdaBefore = this.lambdas;
    const results = this.config.constraints.map((spec, k) => updateMultiplier(this.config, spec, this.states[k]!, batchCosts[k]!));
    this.states = results.map((r) => r.state);
    this.count++;
    return {
      estimate: results.map((r) => r.estimate),
      violation: results.map((r) => r.violation),
      lambdaBefore,
      lambdaAfter: this.lambdas,
    };
  }

  /** Plain JSON (deep copy): `JSON.stringify(state.state())`. */
  state(): LagrangeStateJSON {
    return JSON.parse(JSON.stringify({ version: 1, config: this.config, updates: this.count, constraints: this.states }));
  }

  static fromState(json: LagrangeStateJSON | unknown): LagrangeState {
    const j = json as Partial<LagrangeStateJSON> | null;
    if (typeof j !== 'object' || j === null || j.version !== 1) fail('fromState: expected a LagrangeState JSON with version 1');
    const out = new LagrangeState(j.config as LagrangeConfig);
    const cs = j.constraints;
    if (!Array.isArray(cs) || cs.length !== out.states.length) fail('fromState: constraint states do not match the config');
    cs.forEach((s: ConstraintState, k: number) => {
      const name = out.config.constraints[k]!.name;
      if (s.name !== name) fail(`fromState: constraint ${k} is '${String(s.name)}', config says '${name}'`);
      const nums = [s.lambda, s.integral, s.deltaP, s.costD, ...s.costHistory, ...s.window];
      if (!nums.every(finite) || (s.logLambda !== null && !finite(s.logLambda)) || (s.prevError !== null && !finite(s.prevError))) {
        fail(`fromState: non-finite values in constraint '${name}'`);
      }
    });
    if (!(Number.isInteger(j.updates) && j.updates! >= 0)) fail('fromState: updates must be a non-negative integer');
    out.states = structuredClone(cs as ConstraintState[]);
    out.count = j.updates!;
    return out;
  }
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

export function primalDual(
  state: LagrangeState,
  config: Partial<PrimalDualConfig> = {},
): OperatorFunction<Batch<CostAdvantagedGroup>, Batch<AdvantagedGroup>> {
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
      fail(`batch ${batch.iteration} lacks metrics ${missing.map((m) => `'${m}'`).join(', ')}: put constraintCost with the constraints [${names.join(', ')}] upstream`);
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
