/**
 * `VectorEnv`: N copies of an `Env` stepped together, with Gymnasium's batched API on plain typed
 * arrays (row i of every array belongs to copy i).
 *
 * - `reset(seeds?)` → `{ observations, infos }`. `seeds` is one number (copy i gets `seed + i`,
 *   as Gymnasium), an array with one seed (or `undefined`) per copy, or absent (every copy
 *   continues its own generator — so build the copies with different `seed` options, or they
 *   will all start alike). `reset(seeds, { mask })` resets only the masked copies; the other
 *   rows return their current observation unchanged.
 * - `step(actions)` → `{ observations, rewards, costs, terminated, truncated, stepped, infos }`.
 *   `actions` is flat, `n · actDim` numbers (for a discrete action space, `n` integers). All
 *   actions that will be applied are validated before any copy moves, so a bad action leaves
 *   every copy untouched. `stepped[i]` is 1 where copy i's action was applied this call (a real
 *   transition), 0 where the row was an autoreset or a finished copy.
 *
 * What happens to a copy whose episode ended (`autoreset` option):
 *
 * - `'next-step'` (default, Gymnasium 1.x): on the next `step` call the copy is reset instead of
 *   stepped; its action is ignored and its row returns the reset observation with reward 0,
 *   cost 0, both flags false and `stepped` 0. The episode's final observation is the one returned
 *   with the flag, so nothing is lost.
 * - `'disabled'`: the copy stays ended until `reset`. Its rows keep returning its last
 *   observation with reward 0, cost 0 and its flags still set; its actions are ignored (not even
 *   validated). `active` tells which copies are still live. This is what a group of rollouts from
 *   one reset state uses: `restoreAll(snapshot)`, step until `active` is all zero.
 *
 * `snapshot()` / `restore()` cover every copy plus the per-row bookkeeping; `restoreAll(s)` puts
 * every copy into the single-env state `s` (all live). Arrays returned are fresh on every call
 * and safe to keep.
 *
 * ```ts
 * const vec = VectorEnv.from(8, (i) => makeClassicEnv('CartPole-v1', { seed: i }), { autoreset: 'disabled' });
 * const start = makeClassicEnv('CartPole-v1');
 * const { observation } = start.reset(123);
 * vec.restoreAll(start.snapshot(), observation);   // 8 rollouts from the same reset state
 * let obs = vec.observations;                        // 8 copies of `observation`
 * while (vec.active.includes(1)) obs = vec.step(policy(obs)).observations;
 * ```
 * ```
 */

import { EnvStateError, InvalidActionError, spaceSize } from './types.ts';
import type { BoxSpace, Env, EnvSnapshot, Info, Space } from './types.ts';

export type AutoresetMode = 'next-step' | 'disabled';

export interface VectorEnvOptions {
  /** What happens to a copy whose episode ended; default `'next-step'`. */
  autoreset?: AutoresetMode;
}

export interface VectorResetResult {
  /** `n · obsDim`, row-major. */
  readonly observations: Float32Array;
  readonly infos: Info[];
}

export interface VectorStepResult {
  /** `n · obsDim`, row-major. */
  readonly observations: Float32Array;
  readonly rewards: Float64Array;
  readonly costs: Float64Array;
  readonly terminated: Uint8Array;
  readonly truncated: Uint8Array;
  /** 1 where the row's action was applied this call; 0 for autoreset rows and finished copies. */
  readonly stepped: Uint8Array;
  readonly infos: Info[];
}

/** Plain, serialisable state of a `VectorEnv`. */
export interface VectorEnvSnapshot {
  readonly envs: readonly EnvSnapshot[];
  /** The last observation of every row, `n · obsDim`. */
  readonly observations: Float32Array;
  /** The flags each row last reported (meaningful for ended rows). */
  readonly terminated: Uint8Array;
  readonly truncated: Uint8Array;
  /** 1 where the copy's episode ended and it awaits a reset (autoreset or `reset`). */
  readonly ended: Uint8Array;
  /** False until the first `reset` (or a restore): `step` then throws. */
  readonly started: boolean;
}

export type VectorActions = Float32Array | Float64Array | Int32Array | readonly number[];

function sameSpace(a: Space, b: Space): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'discrete') return a.n === (b as typeof a).n;
  const bb = b as BoxSpace;
  return (
    a.shape.length === bb.shape.length &&
    a.shape.every((d, i) => d === bb.shape[i]) &&
    a.low.every((v, i) => Object.is(v, bb.low[i])) &&
    a.high.every((v, i) => Object.is(v, bb.high[i]))
  );
}

export class VectorEnv {
  readonly numEnvs: number;
  readonly id: string;
  /** The space of one copy's observation / action. */
  readonly observationSpace: BoxSpace;
  readonly actionSpace: Space;
  readonly obsDim: number;
  /** Numbers per copy in the flat action array (1 for discrete). */
  readonly actDim: number;
  readonly autoreset: AutoresetMode;

  private readonly envs: readonly Env[];
  private readonly obs: Float32Array;
  private readonly lastTerminated: Uint8Array;
  private readonly lastTruncated: Uint8Array;
  private readonly ended: Uint8Array;
  private started = false;
  private closed = false;

  constructor(envs: readonly Env[], options: VectorEnvOptions = {}) {
    if (envs.length === 0) throw new RangeError('VectorEnv: needs at least one env');
    const first = envs[0]!;
    for (let i = 1; i < envs.length; i++) {
      const e = envs[i]!;
      if (e.id !== first.id || !sameSpace(e.observationSpace, first.observationSpace) || !sameSpace(e.actionSpace, first.actionSpace)) {
        throw new TypeError(`VectorEnv: env ${i} (${e.id}) does not match env 0 (${first.id}) in id or spaces`);
      }
      if (envs.indexOf(e) !== i) throw new TypeError(`VectorEnv: env ${i} is the same object as env ${envs.indexOf(e)}`);
    }
    const mode = options.autoreset ?? 'next-step';
    if (mode !== 'next-step' && mode !== 'disabled') {
      throw new RangeError(`VectorEnv: autoreset must be 'next-step' or 'disabled', got ${String(mode)}`);
    }
    this.envs = [...envs];
    this.numEnvs = envs.length;
    this.id = first.id;
    this.observationSpace = first.observationSpace;
    this.actionSpace = first.actionSpace;
    this.obsDim = spaceSize(first.observationSpace);
    this.actDim = spaceSize(first.actionSpace);
    this.autoreset = mode;
    this.obs = new Float32Array(this.numEnvs * this.obsDim);
    this.lastTerminated = new Uint8Array(this.numEnvs);
    this.lastTruncated = new Uint8Array(this.numEnvs);
    this.ended = new Uint8Array(this.numEnvs).fill(1);
  }

  /** `n` copies made by `factory(i)`; give each copy its own `seed` option. */
  static from(n: number, factory: (index: number) => Env, options: VectorEnvOptions = {}): VectorEnv {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`VectorEnv.from: n must be a positive integer, got ${n}`);
    const envs: Env[] = [];
    for (let i = 0; i < n; i++) envs.push(factory(i));
    return new VectorEnv(envs, options);
  }

  /** 1 where the copy is live (reset and not ended), 0 otherwise. A fresh array. */
  get active(): Uint8Array {
    const out = new Uint8Array(this.numEnvs);
    if (this.started) for (let i = 0; i < this.numEnvs; i++) out[i] = this.ended[i]! ^ 1;
    return out;
  }

  /** The current observation of every row (`n · obsDim`), as the last call left it. A fresh array. */
  get observations(): Float32Array {
    return this.obs.slice();
  }

  /** The copies themselves (for inspection; stepping them directly desynchronises the rows). */
  get envList(): readonly Env[] {
    return this.envs;
  }

  reset(seeds?: number | readonly (number | undefined)[], options: { mask?: ArrayLike<number | boolean> } = {}): VectorResetResult {
    this.checkOpen();
    const n = this.numEnvs;
    if (Array.isArray(seeds) && seeds.length !== n) {
      throw new RangeError(`VectorEnv(${this.id}): expected ${n} seeds, got ${seeds.length}`);
    }
    if (typeof seeds === 'number' && (!Number.isInteger(seeds) || seeds < 0 || seeds + n - 1 > 0xffffffff)) {
      throw new RangeError(`VectorEnv(${this.id}): seed must be an integer with seed + ${n - 1} < 2^32, got ${seeds}`);
    }
    const mask = options.mask;
    if (mask !== undefined && mask.length !== n) {
      throw new RangeError(`VectorEnv(${this.id}): reset mask must have length ${n}, got ${mask.length}`);
    }
    if (mask !== undefined && !this.started) {
      for (let i = 0; i < n; i++) {
        if (!mask[i]) throw new EnvStateError(`VectorEnv(${this.id}): the first reset must reset every copy (mask[${i}] is off)`);
      }
    }
    const infos: Info[] = [];
    for (let i = 0; i < n; i++) {
      if (mask !== undefined && !mask[i]) {
        infos.push({});
        continue;
      }
      const seed = typeof seeds === 'number' ? seeds + i : (seeds as readonly (number | undefined)[] | undefined)?.[i];
      const r = this.envs[i]!.reset(seed);
      this.obs.set(r.observation, i * this.obsDim);
      this.ended[i] = 0;
      this.lastTerminated[i] = 0;
      this.lastTruncated[i] = 0;
      infos.push(r.info);
    }
    this.started = true;
    return { observations: this.obs.slice(), infos };
  }

  step(actions: VectorActions): VectorStepResult {
    this.checkOpen();
    if (!this.started) throw new EnvStateError(`VectorEnv(${this.id}): step() before reset(); call reset() first`);
    const n = this.numEnvs;
    const d = this.actDim;
    if (actions.length !== n * d) {
      throw new InvalidActionError(`VectorEnv(${this.id}): expected ${n * d} actions (${n} envs × ${d}), got ${actions.length}`);
    }
    this.validate(actions);

    const observations = new Float32Array(n * this.obsDim);
    const rewards = new Float64Array(n);
    const costs = new Float64Array(n);
    const terminated = new Uint8Array(n);
    const truncated = new Uint8Array(n);
    const stepped = new Uint8Array(n);
    const infos: Info[] = [];
    const discrete = this.actionSpace.kind === 'discrete';
    const nextStep = this.autoreset === 'next-step';

    for (let i = 0; i < n; i++) {
      const env = this.envs[i]!;
      if (this.ended[i]) {
        if (nextStep) {
          const r = env.reset();
          this.obs.set(r.observation, i * this.obsDim);
          this.ended[i] = 0;
          this.lastTerminated[i] = 0;
          this.lastTruncated[i] = 0;
          infos.push(r.info);
        } else {
          terminated[i] = this.lastTerminated[i]!;
          truncated[i] = this.lastTruncated[i]!;
          infos.push({});
        }
        continue;
      }
      const a = discrete ? actions[i]! : this.rowAction(actions, i);
      const r = env.step(a);
      this.obs.set(r.observation, i * this.obsDim);
      rewards[i] = r.reward;
      costs[i] = r.cost;
      const te = r.terminated ? 1 : 0;
      const tr = r.truncated ? 1 : 0;
      terminated[i] = te;
      truncated[i] = tr;
      stepped[i] = 1;
      this.lastTerminated[i] = te;
      this.lastTruncated[i] = tr;
      this.ended[i] = te | tr;
      infos.push(r.info);
    }
    observations.set(this.obs);
    return { observations, rewards, costs, terminated, truncated, stepped, infos };
  }

  snapshot(): VectorEnvSnapshot {
    this.checkOpen();
    return {
      envs: this.envs.map((e) => e.snapshot()),
      observations: this.obs.slice(),
      terminated: this.lastTerminated.slice(),
      truncated: this.lastTruncated.slice(),
      ended: this.ended.slice(),
      started: this.started,
    };
  }

  restore(snapshot: VectorEnvSnapshot): void {
    this.checkOpen();
    const n = this.numEnvs;
    if (
      snapshot.envs.length !== n ||
      snapshot.observations.length !== n * this.obsDim ||
      snapshot.terminated.length !== n ||
      snapshot.truncated.length !== n ||
      snapshot.ended.length !== n
    ) {
      throw new EnvStateError(`VectorEnv(${this.id}): snapshot is not of ${n} copies with obsDim ${this.obsDim}`);
    }
    for (const s of snapshot.envs) {
      if (s.id !== this.id) throw new EnvStateError(`VectorEnv(${this.id}): cannot restore a snapshot of ${s.id}`);
    }
    for (let i = 0; i < n; i++) this.envs[i]!.restore(snapshot.envs[i]!);
    this.obs.set(snapshot.observations);
    this.lastTerminated.set(snapshot.terminated);
    this.lastTruncated.set(snapshot.truncated);
    this.ended.set(snapshot.ended);
    this.started = snapshot.started;
  }

  /**
   * Puts every copy into the same single-env state (a group of rollouts from one reset state);
   * every copy becomes live. `observation`, if given, becomes every row's current observation
   * (the state's observation, which a snapshot does not carry). The snapshot must be of a live
   * episode.
   */
  restoreAll(snapshot: EnvSnapshot, observation?: Float32Array): void {
    this.checkOpen();
    if (snapshot.id !== this.id) {
      throw new EnvStateError(`VectorEnv(${this.id}): cannot restore a snapshot of ${snapshot.id}`);
    }
    if (snapshot.done) {
      throw new EnvStateError(`VectorEnv(${this.id}): restoreAll needs a snapshot of a live episode, got an ended one`);
    }
    if (observation !== undefined && observation.length !== this.obsDim) {
      throw new RangeError(`VectorEnv(${this.id}): observation must have length ${this.obsDim}, got ${observation.length}`);
    }
    for (let i = 0; i < this.numEnvs; i++) {
      this.envs[i]!.restore(snapshot);
      if (observation !== undefined) this.obs.set(observation, i * this.obsDim);
    }
    this.ended.fill(0);
    this.lastTerminated.fill(0);
    this.lastTruncated.fill(0);
    this.started = true;
  }

  /**
   * Puts row i into single-env state `snapshots[i]` (several groups of rollouts from their own
   * reset states, stepped as one batch); every row becomes live. `observations` (numEnvs × obsDim)
   * become the rows' current observations.
   */
  restoreRows(snapshots: readonly EnvSnapshot[], observations: Float32Array): void {
    this.checkOpen();
    const n = this.numEnvs;
    if (snapshots.length !== n) throw new RangeError(`VectorEnv(${this.id}): restoreRows needs ${n} snapshots, got ${snapshots.length}`);
    if (observations.length !== n * this.obsDim) {
      throw new RangeError(`VectorEnv(${this.id}): observations must have length ${n * this.obsDim}, got ${observations.length}`);
    }
    snapshots.forEach((s, i) => {
      if (s.id !== this.id) throw new EnvStateError(`VectorEnv(${this.id}): row ${i}: cannot restore a snapshot of ${s.id}`);
      if (s.done) throw new EnvStateError(`VectorEnv(${this.id}): row ${i}: restoreRows needs snapshots of live episodes, got an ended one`);
    });
    for (let i = 0; i < n; i++) this.envs[i]!.restore(snapshots[i]!);
    this.obs.set(observations);
    this.ended.fill(0);
    this.lastTerminated.fill(0);
    this.lastTruncated.fill(0);
    this.started = true;
  }

  /** Closes every copy; the vector is unusable afterwards. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.envs) e.close();
  }

  /** Checks the actions that will be applied (live rows) before anything moves. */
  private validate(actions: VectorActions): void {
    const n = this.numEnvs;
    const d = this.actDim;
    const space = this.actionSpace;
    for (let i = 0; i < n; i++) {
      // Ended rows are reset (next-step) or frozen (disabled): their actions are never read.
      if (this.ended[i]) continue;
      if (space.kind === 'discrete') {
        const a = actions[i]!;
        if (!Number.isInteger(a) || a < 0 || a >= space.n) {
          throw new InvalidActionError(`VectorEnv(${this.id}): action ${i} must be an integer in [0, ${space.n}), got ${a}`);
        }
      } else {
        for (let j = 0; j < d; j++) {
          const a = actions[i * d + j]!;
          if (!Number.isFinite(a)) {
            throw new InvalidActionError(`VectorEnv(${this.id}): action ${i}[${j}] (flat index ${i * d + j}) is ${a}; actions must be finite numbers`);
          }
        }
      }
    }
  }

  private rowAction(actions: VectorActions, i: number): Float32Array | Float64Array | readonly number[] {
    const d = this.actDim;
    if (actions instanceof Float32Array || actions instanceof Float64Array) return actions.subarray(i * d, (i + 1) * d);
    const row = new Float64Array(d);
    for (let j = 0; j < d; j++) row[j] = actions[i * d + j]!;
    return row;
  }

  private checkOpen(): void {
    if (this.closed) throw new EnvStateError(`VectorEnv(${this.id}): closed`);
  }
}
