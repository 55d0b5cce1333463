/**
 * Lagrange multipliers λ_k of a constrained MDP (max J_R s.t. J_C,k ≤ d_k) and their dynamics — the
 * pure part of the `primalDual` operator (operators/primalDual.ts), which combines advantages with
 * them. Each λ_k is updated from the cost estimate Ĵ_C (mean of the last W batch costs):
 *
 *     projected   λ ← clip(λ + η (Ĵ_C − d), 0, λ_max)
 *     log         ln λ ← ln λ + η λ (Ĵ_C − d), λ = min(exp(ln λ), λ_max)    (Safe RLHF Eq. 31)
 *     pid         λ = clip(K_P Δ + K_I I + K_D ∂, 0, λ_max)                   (Stooke et al. 2020)
 *     fixed       λ never changes
 *
 * All state is plain JSON (`state()` / `LagrangeState.fromState()`); restoring continues
 * bit-identically. The operator's doc comment gives the rules in full.
 *
 * ```ts
 * const lagrange = new LagrangeState({ constraints: [{ name: 'cost', limit: 25 }], update: 'pid' });
 * lagrange.update([31.5]);  // → { estimate: [31.5], violation: [6.5], lambdaBefore, lambdaAfter }
 * ```
 */

const NAME = /^[A-Za-z0-9_.-]+$/;

/** Checks a list of constraint names: non-empty, unique, metric-safe. */
import * as t from 'io-ts';
import { FiniteNumber, NonNegativeInt, NonNegativeNumber, PositiveInt, PositiveNumber, oneOf } from './codec.ts';

export function checkConstraintNames(names: readonly string[], who: string): void {
  if (names.length === 0) throw new RangeError(`${who}: at least one constraint is needed`);
  const seen = new Set<string>();
  for (const n of names) {
    if (!NAME.test(n)) throw new RangeError(`${who}: constraint name must match ${NAME}, got ${JSON.stringify(n)}`);
    if (seen.has(n)) throw new RangeError(`${who}: duplicate constraint name ${JSON.stringify(n)}`);
    seen.add(n);
  }
}

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
  /**
   * η for `projected` and `log`. Default 0.02 (rxrl's one default, also grpo-control's: costs on the
   * scale of episode costs; Safe RLHF's lambda_lr is 0.1 with its normalised costs).
   */
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
  lr: 0.02,
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
// Config and state codecs: the plain-data forms of `LagrangeConfig` and `LagrangeStateJSON`
// (pipeline configs compose them; checkpoints are decoded with them). The compile-time checks
// below fail tsc if a codec and its interface drift apart.

/** The multiplier dynamics' knobs (`LagrangeConfig` without `constraints`); defaults in `LAGRANGE_DEFAULTS`. */
export const LagrangeRuleProps = {
  update: oneOf(['projected', 'log', 'pid', 'fixed']),
  lr: NonNegativeNumber,
  lambdaMax: t.union([PositiveNumber, t.null]),
  logGradient: oneOf(['lambda-scaled', 'plain']),
  kP: NonNegativeNumber,
  kI: NonNegativeNumber,
  kD: NonNegativeNumber,
  emaP: NonNegativeNumber,
  emaD: NonNegativeNumber,
  derivativeDelay: PositiveInt,
  window: PositiveInt,
};
export const ConstraintSpecC = t.intersection([
  t.type({ name: t.string, limit: FiniteNumber }),
  t.partial({ lambdaInit: NonNegativeNumber, lambdaMax: t.union([PositiveNumber, t.null]) }),
]);
/** `LagrangeState`'s constructor options, fully resolved. */
export const LagrangeOptions = t.intersection(
  [t.type({ ...LagrangeRuleProps, constraints: t.readonlyArray(ConstraintSpecC) }), t.partial({ lambdaInit: NonNegativeNumber })],
  'LagrangeOptions',
);
const NullableFinite = t.union([FiniteNumber, t.null]);
export const ConstraintStateC = t.type({
  name: t.string,
  lambda: NonNegativeNumber,
  logLambda: NullableFinite,
  integral: FiniteNumber,
  deltaP: FiniteNumber,
  costD: FiniteNumber,
  costHistory: t.readonlyArray(FiniteNumber),
  prevError: NullableFinite,
  window: t.readonlyArray(FiniteNumber),
});
/** A checkpointed `LagrangeState` (`state()` / `fromState`). */
export const LagrangeStateC = t.type(
  { version: t.literal(1), config: LagrangeOptions, updates: NonNegativeInt, constraints: t.readonlyArray(ConstraintStateC) },
  'LagrangeState',
);

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends readonly (infer E)[] ? Mutable<E>[] : T[K] extends object ? Mutable<T[K]> : T[K] };
const _codecsMatch: [
  t.TypeOf<typeof LagrangeOptions> extends LagrangeConfig ? true : never,
  t.TypeOf<typeof LagrangeStateC> extends LagrangeStateJSON ? true : never,
  Mutable<LagrangeStateJSON> extends t.TypeOf<typeof LagrangeStateC> ? true : never,
] = [true, true, true];
void _codecsMatch;
