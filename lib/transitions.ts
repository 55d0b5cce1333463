/**
 * Transitions (s, a, r, s', d) as plain data, and the ring-buffer replay memory of off-policy
 * learners (TD3, SAC, DQN): a fixed `capacity`; once full, each new transition overwrites the
 * oldest; uniform sampling with replacement from a seeded `Rng`.
 *
 * `done` is 1 only where the episode *terminated* (a true terminal state): a time-limit
 * truncation is not a terminal, so the critic still bootstraps from s' there (as TD3's code does
 * with `done_bool = 0` at the time limit).
 *
 * Layout: row i of `obs` / `nextObs` is `obsDim` floats at `i · obsDim`, of `actions` `actDim`
 * floats at `i · actDim`. The buffer is checkpointable: `state()` is plain JSON (typed arrays as
 * base64 through the data-model codecs, only the filled rows), `TransitionBuffer.fromState`
 * restores it exactly, write position included.
 *
 * ```ts
 * const buf = new TransitionBuffer({ capacity: 1_000_000, obsDim: 3, actDim: 1 });
 * buf.add(batch.transitions);                      // from collectTransitions
 * const mb = buf.sample(256, rng);                 // Transitions of 256 rows
 * const saved = JSON.stringify(buf.state());       // → TransitionBuffer.fromState(JSON.parse(saved))
 * ```
 */
import * as t from 'io-ts';
import { Float32, NonNegativeInt, PositiveInt, decodeOrThrow } from './codec.ts';
import type { Rng } from './random.ts';

/** n transitions, row-major: `obs`/`nextObs` n·obsDim, `actions` n·actDim, `rewards`/`dones` n. */
export const Transitions = t.type(
  {
    n: NonNegativeInt,
    obsDim: PositiveInt,
    actDim: PositiveInt,
    obs: Float32,
    actions: Float32,
    rewards: Float32,
    nextObs: Float32,
    /** 1 where s' is terminal (not on truncation), else 0. */
    dones: Float32,
  },
  'Transitions',
);
export type Transitions = t.TypeOf<typeof Transitions>;

/** The shape errors of a `Transitions` value, as `path: message` lines (empty when consistent). */
export function transitionShapeErrors(tr: Transitions, path = 'transitions'): string[] {
  const errs: string[] = [];
  const want = (k: string, got: number, exp: number) => {
    if (got !== exp) errs.push(`${path}.${k}: expected length ${exp}, got ${got}`);
  };
  want('obs', tr.obs.length, tr.n * tr.obsDim);
  want('nextObs', tr.nextObs.length, tr.n * tr.obsDim);
  want('actions', tr.actions.length, tr.n * tr.actDim);
  want('rewards', tr.rewards.length, tr.n);
  want('dones', tr.dones.length, tr.n);
  return errs;
}

/** An empty `Transitions` of the given dimensions. */
export function emptyTransitions(obsDim: number, actDim: number): Transitions {
  return {
    n: 0,
    obsDim,
    actDim,
    obs: new Float32Array(0),
    actions: new Float32Array(0),
    rewards: new Float32Array(0),
    nextObs: new Float32Array(0),
    dones: new Float32Array(0),
  };
}

export const TransitionBufferState = t.type(
  {
    version: t.literal(1),
    capacity: PositiveInt,
    /** Next row to write. */
    ptr: NonNegativeInt,
    /** Transitions ever added (≥ size). */
    added: NonNegativeInt,
    /** The filled rows 0..size−1 in storage order (not age order). */
    rows: Transitions,
  },
  'TransitionBufferState',
);
export type TransitionBufferState = t.TypeOf<typeof TransitionBufferState>;

export interface TransitionBufferConfig {
  readonly capacity: number;
  readonly obsDim: number;
  readonly actDim: number;
}

export class TransitionBuffer {
  readonly capacity: number;
  readonly obsDim: number;
  readonly actDim: number;
  private readonly obs: Float32Array;
  private readonly nextObs: Float32Array;
  private readonly actions: Float32Array;
  private readonly rewards: Float32Array;
  private readonly dones: Float32Array;
  private ptr = 0;
  private count = 0;
  private total = 0;

  constructor(cfg: TransitionBufferConfig) {
    const pos = (k: keyof TransitionBufferConfig) => {
      const v = cfg[k];
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`TransitionBuffer.${k}: expected a positive integer, got ${v}`);
    };
    pos('capacity');
    pos('obsDim');
    pos('actDim');
    this.capacity = cfg.capacity;
    this.obsDim = cfg.obsDim;
    this.actDim = cfg.actDim;
    this.obs = new Float32Array(cfg.capacity * cfg.obsDim);
    this.nextObs = new Float32Array(cfg.capacity * cfg.obsDim);
    this.actions = new Float32Array(cfg.capacity * cfg.actDim);
    this.rewards = new Float32Array(cfg.capacity);
    this.dones = new Float32Array(cfg.capacity);
  }

  /** Transitions held now (≤ capacity). */
  get size(): number {
    return this.count;
  }

  /** Transitions ever added (counts the overwritten ones). */
  get added(): number {
    return this.total;
  }

  /**
   * Appends the rows of `tr` at the write position, wrapping around and overwriting the oldest
   * rows once full. Refuses (before writing anything) rows of the wrong dimensions or with a
   * non-finite value, naming the field and the row.
   *
   * @param tr transitions with this buffer's obsDim and actDim
   * @returns the number of rows overwritten
   * @example
   * buf.add({ n: 1, obsDim: 3, actDim: 1, obs, actions, rewards, nextObs, dones });
   */
  add(tr: Transitions): number {
    if (tr.obsDim !== this.obsDim || tr.actDim !== this.actDim) {
      throw new RangeError(
        `TransitionBuffer.add: transitions have obsDim ${tr.obsDim}, actDim ${tr.actDim}; the buffer holds obsDim ${this.obsDim}, actDim ${this.actDim}`,
      );
    }
    const errs = transitionShapeErrors(tr);
    if (errs.length) throw new RangeError(`TransitionBuffer.add: ${errs.join('; ')}`);
    for (const k of ['obs', 'actions', 'rewards', 'nextObs', 'dones'] as const) {
      const a = tr[k];
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i]!)) {
          const width = k === 'obs' || k === 'nextObs' ? this.obsDim : k === 'actions' ? this.actDim : 1;
          throw new RangeError(`TransitionBuffer.add: transitions.${k}[${i}] (row ${Math.floor(i / width)}) is ${a[i]}; expected finite numbers`);
        }
      }
    }
    const O = this.obsDim;
    const A = this.actDim;
    let over = 0;
    for (let i = 0; i < tr.n; i++) {
      const p = this.ptr;
      this.obs.set(tr.obs.subarray(i * O, (i + 1) * O), p * O);
      this.nextObs.set(tr.nextObs.subarray(i * O, (i + 1) * O), p * O);
      this.actions.set(tr.actions.subarray(i * A, (i + 1) * A), p * A);
      this.rewards[p] = tr.rewards[i]!;
      this.dones[p] = tr.dones[i]!;
      this.ptr = (p + 1) % this.capacity;
      if (this.count < this.capacity) this.count++;
      else over++;
    }
    this.total += tr.n;
    return over;
  }

  /** The rows at the given storage indices (each in [0, size)), copied out. */
  gather(indices: ArrayLike<number>): Transitions {
    const n = indices.length;
    const O = this.obsDim;
    const A = this.actDim;
    const out: Transitions = {
      n,
      obsDim: O,
      actDim: A,
      obs: new Float32Array(n * O),
      actions: new Float32Array(n * A),
      rewards: new Float32Array(n),
      nextObs: new Float32Array(n * O),
      dones: new Float32Array(n),
    };
    for (let k = 0; k < n; k++) {
      const j = indices[k]!;
      if (!Number.isInteger(j) || j < 0 || j >= this.count) throw new RangeError(`TransitionBuffer.gather: index ${j} out of range [0, ${this.count})`);
      out.obs.set(this.obs.subarray(j * O, (j + 1) * O), k * O);
      out.nextObs.set(this.nextObs.subarray(j * O, (j + 1) * O), k * O);
      out.actions.set(this.actions.subarray(j * A, (j + 1) * A), k * A);
      out.rewards[k] = this.rewards[j]!;
      out.dones[k] = this.dones[j]!;
    }
    return out;
  }

  /**
   * n rows drawn uniformly with replacement: index_k = rng.int(size). The same generator state
   * gives the same rows.
   *
   * @param n the minibatch size (TD3: 256)
   * @param rng the learner's sampling stream
   * @returns a fresh `Transitions` of n rows
   * @example
   * const mb = buf.sample(256, learner.rng);
   */
  sample(n: number, rng: Rng): Transitions {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`TransitionBuffer.sample: n must be a non-negative integer, got ${n}`);
    if (n > 0 && this.count === 0) throw new RangeError('TransitionBuffer.sample: the buffer is empty');
    const idx = new Int32Array(n);
    for (let k = 0; k < n; k++) idx[k] = rng.int(this.count);
    return this.gather(idx);
  }

  /** Plain, JSON-safe state (typed arrays as base64); only the filled rows are written. */
  state(): unknown {
    return TransitionBufferState.encode(this.plainState());
  }

  /** The same state with its rows as typed arrays (for a checkpoint that stores them as tensors). */
  plainState(): TransitionBufferState {
    const all = this.gather(Int32Array.from({ length: this.count }, (_, i) => i));
    return { version: 1, capacity: this.capacity, ptr: this.ptr, added: this.total, rows: all };
  }

  /**
   * Replaces this buffer's contents with a saved state (`state()` or `plainState()`), write
   * position and count included; refuses a state of another capacity or other dimensions.
   */
  load(json: unknown): void {
    const b = TransitionBuffer.fromState(json);
    if (b.capacity !== this.capacity || b.obsDim !== this.obsDim || b.actDim !== this.actDim) {
      throw new RangeError(
        `TransitionBuffer.load: the state has capacity ${b.capacity}, obsDim ${b.obsDim}, actDim ${b.actDim}; this buffer ${this.capacity}, ${this.obsDim}, ${this.actDim}`,
      );
    }
    this.obs.set(b.obs);
    this.nextObs.set(b.nextObs);
    this.actions.set(b.actions);
    this.rewards.set(b.rewards);
    this.dones.set(b.dones);
    this.ptr = b.ptr;
    this.count = b.count;
    this.total = b.total;
  }

  /** Restores a buffer from `state()`, its JSON round trip or `plainState()`; refuses an inconsistent state naming the field. */
  static fromState(json: unknown): TransitionBuffer {
    const s = decodeOrThrow(TransitionBufferState, json, 'transition buffer state');
    const errs = transitionShapeErrors(s.rows, 'rows');
    if (s.rows.n > s.capacity) errs.push(`rows.n: ${s.rows.n} rows exceed capacity ${s.capacity}`);
    if (s.ptr >= s.capacity || (s.rows.n < s.capacity && s.ptr !== s.rows.n))
      errs.push(`ptr: ${s.ptr} is inconsistent with ${s.rows.n} rows of capacity ${s.capacity}`);
    if (s.added < s.rows.n) errs.push(`added: ${s.added} is less than the ${s.rows.n} rows held`);
    if (errs.length) throw new RangeError(`TransitionBuffer.fromState: ${errs.join('; ')}`);
    const buf = new TransitionBuffer({ capacity: s.capacity, obsDim: s.rows.obsDim, actDim: s.rows.actDim });
    buf.add(s.rows);
    buf.ptr = s.ptr;
    buf.total = s.added;
    return buf;
  }
}
