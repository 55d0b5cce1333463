/**
 * The environment interface, after Gymnasium's conventions, plus what group rollouts need.
 *
 * - `reset(seed?)` → `{ observation, info }`. With a seed the episode is reproducible; without
 *   one the env continues its own generator (seeded from the constructor's `seed` option).
 * - `step(action)` → `{ observation, reward, cost, terminated, truncated, info }`. `terminated`
 *   is the MDP's own end (pole fell, robot unhealthy); `truncated` is the time limit
 *   (`maxEpisodeSteps`, Gymnasium's TimeLimit folded into the env). `cost` is 0 unless a
 *   constrained variant defines it.
 * - `snapshot()` / `restore(s)`: the full simulator state, including the env's generator and the
 *   elapsed-step counter, as plain serialisable data. `snapshot → k steps → restore → the same k
 *   steps` reproduces bit-identically.
 *
 * Observations are `Float32Array` (what the policy consumes); the simulators integrate in float64
 * internally. Bad actions (wrong length, NaN, out of a discrete range) throw `InvalidActionError`
 * before the state changes.
 */

export interface BoxSpace {
  readonly kind: 'box';
  readonly shape: readonly number[];
  readonly low: Float32Array;
  readonly high: Float32Array;
}

export interface DiscreteSpace {
  readonly kind: 'discrete';
  readonly n: number;
}

export type Space = BoxSpace | DiscreteSpace;

/** A discrete action is an integer; a continuous one a vector of the action space's length. */
export type Action = number | Float32Array | Float64Array | readonly number[];

export type Info = Record<string, number | boolean | string>;

export interface ResetResult {
  readonly observation: Float32Array;
  readonly info: Info;
}

export interface StepResult {
  readonly observation: Float32Array;
  readonly reward: number;
  readonly cost: number;
  readonly terminated: boolean;
  readonly truncated: boolean;
  readonly info: Info;
}

/** Plain, serialisable env state. `state` holds the simulator's numbers in float64. */
export interface EnvSnapshot {
  readonly id: string;
  readonly state: Float64Array;
  readonly elapsedSteps: number;
  /** The env's own generator state (xoshiro128** words + cached normal), see `lib/random.ts`. */
  readonly rng: { readonly s: readonly [number, number, number, number]; readonly spare: number | null };
  /** True once the episode ended; stepping then requires a reset. */
  readonly done: boolean;
}

export interface Env {
  readonly id: string;
  readonly observationSpace: BoxSpace;
  readonly actionSpace: Space;
  /** Steps after which `truncated` is set (Gymnasium's registered max_episode_steps). */
  readonly maxEpisodeSteps: number;
  reset(seed?: number): ResetResult;
  step(action: Action): StepResult;
  snapshot(): EnvSnapshot;
  restore(snapshot: EnvSnapshot): void;
  /** Frees native memory (MuJoCo); the env is unusable afterwards. Idempotent. */
  close(): void;
  /**
   * The current pose seen from the side (the x–z plane), for drawing: one capsule per body geom,
   * five numbers each — the two end points (x0, z0, x1, z1) and the radius, in metres. MuJoCo envs
   * have it; a classic env is drawn from its observation instead.
   */
  sideView?(): Float32Array;
}

export interface EnvOptions {
  /** Seed of the env's own generator, used by `reset()` without a seed. Default 0. */
  seed?: number;
  /** Overrides the registered time limit. */
  maxEpisodeSteps?: number;
  /** Env-specific options (reward weights, cost band, ...). */
  [key: string]: unknown;
}

export class InvalidActionError extends Error {
  override readonly name = 'InvalidActionError';
}

export class EnvStateError extends Error {
  override readonly name = 'EnvStateError';
}

/** The error for stepping an env that has no live episode (never reset, or ended). */
export function noEpisodeError(envId: string, elapsedSteps: number): EnvStateError {
  return new EnvStateError(
    elapsedSteps === 0
      ? `${envId}: step() before reset(); call reset() first`
      : `${envId}: step() after the episode ended (terminated or truncated); call reset() first`,
  );
}

/** A short description of a bad action for an error message. */
function describeAction(a: unknown): string {
  if (a === null || a === undefined) return String(a);
  if (ArrayBuffer.isView(a)) return `a ${a.constructor.name}`;
  if (Array.isArray(a)) return `a list of length ${a.length}`;
  if (typeof a === 'object') return 'an object';
  return `${typeof a} ${JSON.stringify(a) ?? String(a)}`.slice(0, 60);
}

/**
 * Checks a snapshot's shape before `restore` touches anything: an object of this env, a Float64Array
 * state of `stateSize` finite numbers, a non-negative integer step count, a boolean `done`.
 */
export function checkSnapshot(envId: string, snapshot: unknown, stateSize: number): asserts snapshot is EnvSnapshot {
  if (typeof snapshot !== 'object' || snapshot === null) {
    throw new EnvStateError(`${envId}: restore() expects a snapshot object (from snapshot()), got ${describeAction(snapshot)}`);
  }
  const s = snapshot as Partial<Record<keyof EnvSnapshot, unknown>>;
  if (s.id !== envId) throw new EnvStateError(`${envId}: cannot restore a snapshot of ${String(s.id)}`);
  const st = s.state;
  if (!(st instanceof Float64Array) || st.length !== stateSize) {
    throw new EnvStateError(`${envId}: snapshot state must be a Float64Array of length ${stateSize}`);
  }
  for (let i = 0; i < st.length; i++) {
    if (!Number.isFinite(st[i]!)) throw new EnvStateError(`${envId}: snapshot state[${i}] is ${st[i]}; expected finite numbers`);
  }
  if (typeof s.elapsedSteps !== 'number' || !Number.isInteger(s.elapsedSteps) || s.elapsedSteps < 0) {
    throw new EnvStateError(`${envId}: snapshot elapsedSteps must be a non-negative integer`);
  }
  if (typeof s.done !== 'boolean') throw new EnvStateError(`${envId}: snapshot done must be a boolean`);
  if (typeof s.rng !== 'object' || s.rng === null) throw new EnvStateError(`${envId}: snapshot rng must be a generator state object`);
}

/** Validates a continuous action against a box: length and finiteness. Returns it as float64. */
export function checkBoxAction(envId: string, action: Action, space: BoxSpace): Float64Array {
  const dim = space.shape.reduce((a, b) => a * b, 1);
  if (typeof action !== 'number' && !(action instanceof Float32Array) && !(action instanceof Float64Array) && !Array.isArray(action)) {
    throw new InvalidActionError(`${envId}: expected a Float32Array action of length ${dim} (or a number[]), got ${describeAction(action)}`);
  }
  if (typeof action === 'number') {
    // As in Gymnasium, a Box action is an array of the space's shape, even of length 1: a bare
    // number is almost always a discrete action sent to the wrong env.
    throw new InvalidActionError(`${envId}: expected an action array of length ${dim} (e.g. [${action}]), got the number ${action}`);
  }
  if (action.length !== dim) {
    throw new InvalidActionError(`${envId}: expected an action of length ${dim}, got length ${action.length}`);
  }
  const out = new Float64Array(dim);
  for (let i = 0; i < dim; i++) {
    const a = action[i]!;
    if (typeof a !== 'number') {
      throw new InvalidActionError(`${envId}: action[${i}] is ${describeAction(a)}; actions must be finite numbers`);
    }
    if (!Number.isFinite(a)) {
      throw new InvalidActionError(`${envId}: action[${i}] is ${a}; actions must be finite numbers`);
    }
    out[i] = a;
  }
  return out;
}

/** Validates a discrete action: an integer in [0, n). */
export function checkDiscreteAction(envId: string, action: Action, space: DiscreteSpace): number {
  let a: number | undefined;
  if (typeof action !== 'number' && !ArrayBuffer.isView(action) && !Array.isArray(action)) {
    throw new InvalidActionError(`${envId}: expected an integer action in [0, ${space.n}), got ${describeAction(action)}`);
  }
  if (typeof action === 'number') a = action;
  else if (action.length === 1) a = action[0];
  else {
    throw new InvalidActionError(`${envId}: expected one integer action, got length ${action.length}`);
  }
  if (a === undefined || !Number.isInteger(a) || a < 0 || a >= space.n) {
    throw new InvalidActionError(`${envId}: expected an integer action in [0, ${space.n}), got ${a}`);
  }
  return a;
}

export function boxSpace(low: ArrayLike<number>, high: ArrayLike<number>): BoxSpace {
  return { kind: 'box', shape: [low.length], low: Float32Array.from(low), high: Float32Array.from(high) };
}

export function spaceSize(space: Space): number {
  return space.kind === 'discrete' ? 1 : space.shape.reduce((a, b) => a * b, 1);
}
