/**
 * Shared machinery of the classic-control envs: option parsing, the env's own generator, the
 * episode bookkeeping (elapsed steps, the time limit, "stepping after the end needs a reset"),
 * and snapshot/restore of the whole state.
 *
 * A concrete env extends `ClassicEnv` and supplies three pieces: how a reset draws the initial
 * float64 state from the generator (`resetState`), one step of the dynamics on that state
 * (`advance`, which validates the action before touching anything), and the observation of the
 * current state (`observe`). Everything else — seeding, truncation at `maxEpisodeSteps`,
 * `EnvStateError` after the end, snapshots — lives here once.
 *
 * ```ts
 * class Toy extends ClassicEnv {
 *   constructor(o: EnvOptions = {}) { super('Toy-v0', 1, 10, boxSpace([-1], [1]), { kind: 'discrete', n: 2 }, o, {}); }
 *   protected resetState(rng: Rng): void { this.state[0] = rng.uniform(-1, 1); }
 *   protected advance(a: Action) { ...; return { reward: 1, cost: 0, terminated: false }; }
 *   protected observe(): Float32Array { return Float32Array.of(this.state[0]!); }
 * }
 * ```
 */

import { Rng } from '../../random.ts';
import { EnvStateError, checkSnapshot, noEpisodeError } from '../types.ts';
import type { Action, BoxSpace, Env, EnvOptions, EnvSnapshot, Info, ResetResult, Space, StepResult } from '../types.ts';

/** The generator key of every classic env: `reset(seed)` ≡ a fresh `new Rng(seed, 'env')`. */
export const ENV_RNG_KEY = 'env';

/** What one step of the dynamics reports; the base class adds the time limit. */
export interface Transition {
  readonly reward: number;
  readonly cost: number;
  readonly terminated: boolean;
}

/** Parsers of the env-specific options: each receives the raw value (never undefined). */
export type OptionParsers = Record<string, (value: unknown, envId: string) => unknown>;

/** A finite number option. */
export function finiteOption(name: string, check?: (v: number) => boolean, what = 'a finite number') {
  return (value: unknown, envId: string): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || (check !== undefined && !check(value))) {
      throw new RangeError(`${envId}: option ${name} must be ${what}, got ${String(value)}`);
    }
    return value;
  };
}

const COMMON_OPTIONS = ['seed', 'maxEpisodeSteps'] as const;

/**
 * Checks `options` against the common keys plus `specific`; returns the parsed env-specific
 * values (keys whose value is `undefined` are treated as absent).
 */
function parseOptions(
  envId: string,
  options: EnvOptions,
  specific: OptionParsers,
): { seed: number; maxEpisodeSteps: number | undefined; values: Record<string, unknown> } {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${envId}: options must be an object, got ${String(options)}`);
  }
  const valid = [...COMMON_OPTIONS, ...Object.keys(specific)];
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (!valid.includes(key)) {
      throw new TypeError(`${envId}: unknown option "${key}"; valid options are ${valid.join(', ')}`);
    }
    if (value === undefined || key === 'seed' || key === 'maxEpisodeSteps') continue;
    values[key] = specific[key]!(value, envId);
  }
  const seed = options.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`${envId}: option seed must be an integer in [0, 2^32), got ${String(seed)}`);
  }
  const max = options.maxEpisodeSteps;
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 1)) {
    throw new RangeError(`${envId}: option maxEpisodeSteps must be a positive integer, got ${String(max)}`);
  }
  return { seed, maxEpisodeSteps: max, values };
}

export abstract class ClassicEnv implements Env {
  readonly maxEpisodeSteps: number;
  /** The simulator's numbers, float64. Subclasses read and write it in place. */
  protected readonly state: Float64Array;
  /** The options this env declares: `seed`, `maxEpisodeSteps` and its own (see `envOptionNames`). */
  readonly optionNames: readonly string[];
  /** Parsed env-specific options (defaults not filled in: subclasses do that). */
  protected readonly optionValues: Record<string, unknown>;
  private rng: Rng;
  private elapsedSteps = 0;
  /** True before the first reset and once an episode ended. */
  private done = true;
  private closed = false;

  protected constructor(
    readonly id: string,
    stateSize: number,
    registeredMaxSteps: number,
    readonly observationSpace: BoxSpace,
    readonly actionSpace: Space,
    options: EnvOptions,
    specific: OptionParsers,
  ) {
    this.optionNames = [...COMMON_OPTIONS, ...Object.keys(specific)];
    const parsed = parseOptions(id, options, specific);
    this.maxEpisodeSteps = parsed.maxEpisodeSteps ?? registeredMaxSteps;
    this.optionValues = parsed.values;
    this.rng = new Rng(parsed.seed, ENV_RNG_KEY);
    this.state = new Float64Array(stateSize);
  }

  /** Draws the initial state into `this.state`. */
  protected abstract resetState(rng: Rng): void;
  /** Validates `action` (throwing `InvalidActionError` before any change), then advances `this.state`. */
  protected abstract advance(action: Action): Transition;
  /** The observation of `this.state`, a fresh array. */
  protected abstract observe(): Float32Array;

  reset(seed?: number): ResetResult {
    this.checkOpen();
    if (seed !== undefined) {
      if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
        throw new RangeError(`${this.id}: reset seed must be an integer in [0, 2^32), got ${seed}`);
      }
      this.rng = new Rng(seed, ENV_RNG_KEY);
    }
    this.resetState(this.rng);
    this.elapsedSteps = 0;
    this.done = false;
    return { observation: this.observe(), info: {} };
  }

  step(action: Action): StepResult {
    if (this.done) {
      this.checkOpen();
      throw noEpisodeError(this.id, this.elapsedSteps);
    }
    const t = this.advance(action);
    const steps = ++this.elapsedSteps;
    const truncated = steps >= this.maxEpisodeSteps;
    if (t.terminated || truncated) this.done = true;
    const info: Info = {};
    return { observation: this.observe(), reward: t.reward, cost: t.cost, terminated: t.terminated, truncated, info };
  }

  snapshot(): EnvSnapshot {
    this.checkOpen();
    return {
      id: this.id,
      state: Float64Array.from(this.state),
      elapsedSteps: this.elapsedSteps,
      rng: this.rng.state(),
      done: this.done,
    };
  }

  restore(snapshot: EnvSnapshot): void {
    this.checkOpen();
    checkSnapshot(this.id, snapshot, this.state.length);
    // Validate the generator state before changing anything.
    const rng = Rng.fromState(snapshot.rng);
    this.rng = rng;
    this.state.set(snapshot.state);
    this.elapsedSteps = snapshot.elapsedSteps;
    this.done = snapshot.done;
  }

  close(): void {
    this.closed = true;
    this.done = true; // so step() reaches the closed check without a per-step test
  }

  private checkOpen(): void {
    if (this.closed) throw new EnvStateError(`${this.id}: the env is closed`);
  }
}
