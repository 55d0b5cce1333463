// `replayBuffer`: Online DT's trajectory replay buffer — documented on the exported `replayBuffer` (hover it).
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { decodeOrThrow } from '../lib/codec.ts';
import { ScoredTrajectory, type Batch, type ScoredGroup, type Trajectory } from '../lib/data.ts';
import type { Rng } from '../lib/random.ts';
import { discountedReturns } from './returns.ts';

export interface ReplayWindow {
  /** Index of the trajectory in the buffer (0 = oldest) at sampling time. */
  readonly index: number;
  /** First step of the window. */
  readonly start: number;
  /** Number of steps, ≤ K. */
  readonly length: number;
}

export interface ReplayBufferJSON {
  readonly version: 1;
  readonly capacity: number;
  /** Encoded `ScoredTrajectory` values, oldest first. */
  readonly trajectories: readonly unknown[];
}

export interface SampleOptions {
  /** Only windows of the full length K (when T ≥ K). Default false (ODT: any start). */
  readonly fullWindows?: boolean;
}

/** The property names a codec describes (type/partial/intersection/exact/readonly). */
function codecKeys(codec: t.Mixed): string[] {
  const c = codec as unknown as { _tag?: string; props?: Record<string, unknown>; types?: t.Mixed[]; type?: t.Mixed };
  if ((c._tag === 'InterfaceType' || c._tag === 'PartialType' || c._tag === 'StrictType') && c.props) return Object.keys(c.props);
  if (c._tag === 'IntersectionType' && c.types) return [...new Set(c.types.flatMap(codecKeys))];
  if ((c._tag === 'ExactType' || c._tag === 'ReadonlyType' || c._tag === 'RefinementType') && c.type) return codecKeys(c.type);
  return [];
}

const SCORED_KEYS = codecKeys(ScoredTrajectory);
const ScoredArray = t.array(ScoredTrajectory);

/** Just the `ScoredTrajectory` fields (drops `advantage` and other operator extras). */
function project(tr: ScoredTrajectory): ScoredTrajectory {
  const out: Record<string, unknown> = {};
  for (const k of SCORED_KEYS) {
    const v = (tr as unknown as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = v;
  }
  return out as ScoredTrajectory;
}

function isScored(tr: Trajectory | ScoredTrajectory): tr is ScoredTrajectory {
  return 'returns' in tr && 'totalReward' in tr && 'totalCost' in tr;
}

export class ReplayBuffer {
  private items: ScoredTrajectory[] = [];

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) {
      throw new RangeError(`ReplayBuffer: capacity must be a positive integer, got ${capacity}`);
    }
  }

  /**
   * ODT's initialisation: the top-`capacity` trajectories by return R = Σ_t r_t, lowest first.
   * Unscored trajectories are scored with γ = 1 (`returns`' `discountedReturns`).
   */
  static fromOffline(trajectories: readonly (Trajectory | ScoredTrajectory)[], capacity: number): ReplayBuffer {
    const buf = new ReplayBuffer(capacity);
    const scored = trajectories.map((tr) => (isScored(tr) ? tr : discountedReturns(tr, { gamma: 1 })));
    const ranked = scored.map((tr, i) => ({ tr, i, r: tr.totalReward })).sort((a, b) => a.r - b.r || a.i - b.i);
    buf.items = ranked.slice(Math.max(0, ranked.length - capacity)).map((x) => project(x.tr));
    return buf;
  }

  get size(): number {
    return this.items.length;
  }

  /** The trajectory at `index` (0 = oldest). */
  at(index: number): ScoredTrajectory {
    const tr = this.items[index];
    if (!tr) throw new RangeError(`ReplayBuffer.at: index ${index} out of range [0, ${this.items.length})`);
    return tr;
  }

  /** The stored trajectories, oldest first. */
  trajectories(): readonly ScoredTrajectory[] {
    return this.items;
  }

  /** Appends at the back, evicting from the front over capacity; returns how many were evicted. */
  add(trajectories: readonly ScoredTrajectory[]): number {
    for (const tr of trajectories) this.items.push(project(tr));
    const over = Math.max(0, this.items.length - this.capacity);
    if (over > 0) this.items.splice(0, over);
    return over;
  }

  /** Mean undiscounted return Σ_t r_t over the buffer (0 when empty). */
  returnMean(): number {
    if (this.items.length === 0) return 0;
    return this.items.reduce((s, tr) => s + tr.totalReward, 0) / this.items.length;
  }

  /** n windows of at most K steps: trajectory ∝ length, start uniform (see `replayBuffer`). */
  sample(n: number, rng: Rng, K: number, options: SampleOptions = {}): ReplayWindow[] {
    if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`ReplayBuffer.sample: n must be a non-negative integer, got ${n}`);
    if (!(Number.isInteger(K) && K >= 1)) throw new RangeError(`ReplayBuffer.sample: K must be a positive integer, got ${K}`);
    const cum = new Float64Array(this.items.length);
    let total = 0;
    this.items.forEach((tr, i) => (cum[i] = total += tr.length));
    if (n > 0 && !(total > 0)) throw new RangeError('ReplayBuffer.sample: the buffer holds no steps');
    const out: ReplayWindow[] = [];
    for (let s = 0; s < n; s++) {
      // Binary search of the first cumulative length above a uniform draw in [0, total).
      const x = rng.uniform() * total;
      let lo = 0;
      let hi = cum.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cum[mid]! > x) hi = mid;
        else lo = mid + 1;
      }
      const T = this.items[lo]!.length;
      const start = options.fullWindows ? rng.int(Math.max(1, T - K + 1)) : rng.int(T);
      out.push({ index: lo, start, length: Math.min(K, T - start) });
    }
    return out;
  }

  /** Plain JSON: typed arrays as `{ $typed, b64 }`. */
  state(): ReplayBufferJSON {
    return { version: 1, capacity: this.capacity, trajectories: ScoredArray.encode(this.items) };
  }

  /**
   * Replaces this buffer's trajectories with a saved state's, in place (an operator built around
   * this buffer keeps working on the restored contents); refuses a state of another capacity.
   */
  load(json: ReplayBufferJSON | unknown): void {
    const b = ReplayBuffer.fromState(json);
    if (b.capacity !== this.capacity) throw new RangeError(`ReplayBuffer.load: the state has capacity ${b.capacity}, this buffer ${this.capacity}`);
    this.items = b.items;
  }

  static fromState(json: ReplayBufferJSON | unknown): ReplayBuffer {
    const j = json as Partial<ReplayBufferJSON> | null;
    if (typeof j !== 'object' || j === null || j.version !== 1) {
      throw new RangeError('ReplayBuffer.fromState: expected a ReplayBuffer JSON with version 1');
    }
    const buf = new ReplayBuffer(j.capacity as number);
    const items = decodeOrThrow(ScoredArray, j.trajectories, 'replay buffer trajectories');
    if (items.length > buf.capacity) {
      throw new RangeError(`ReplayBuffer.fromState: ${items.length} trajectories exceed capacity ${buf.capacity}`);
    }
    buf.items = items;
    return buf;
  }
}

/**
 * `replayBuffer` — Online Decision Transformer's trajectory replay buffer (Zheng, Zhang & Grover 2022).
 *
 * A FIFO of whole trajectories with a capacity counted in trajectories:
 *
 * - **init** (`ReplayBuffer.fromOffline`): the `capacity` offline trajectories with the highest
 *   returns R = Σ_t r_t, ordered from lowest to highest return, so the weakest offline data is
 *   evicted first;
 * - **add**: new trajectories go in at the back; when over capacity the oldest leave from the front;
 * - **sample(n, rng, K)**: n windows, each drawn by picking trajectory j with probability
 *   P(j) = T_j / Σ_i T_i (proportional to its length, so every *step* is equally likely), then a
 *   start s uniform in [0, T_j − 1] and the window [s, min(s + K, T_j)) (ODT/DT: windows near the
 *   end are shorter, the model pads them; `fullWindows: true` keeps s ≤ T_j − K instead).
 *
 * The buffer is checkpointable: `state()` is plain JSON (typed arrays as base64 through the
 * data-model codecs), `ReplayBuffer.fromState()` restores it exactly.
 *
 * The operator form, `Batch<G>` → `Batch<G>` for any scored group type, pushes every trajectory of
 * the batch into the buffer (in group order) and passes the batch on with `buffer/size` and
 * `buffer/return_mean` (mean R over the buffer).
 *
 * @param buffer The {@link ReplayBuffer} the trajectories go into; built once, shared by every subscription, checkpointed with `buffer.state()` and restored with `ReplayBuffer.fromState()`.
 * @returns An operator from `Batch<G>` to the same `Batch<G>` with `buffer/size` and `buffer/return_mean` added.
 * @example
 * ```ts
 * const buffer = ReplayBuffer.fromOffline(d4rlTrajectories, 1000);
 * online$.pipe(returns(), hindsightRelabel({ scale: 1 / 1000 }), replayBuffer(buffer));
 * const windows = buffer.sample(256, rng, 20); // [{ index, start, length }, ...]
 * const first = buffer.at(windows[0]!.index);
 * ```
 */
export function replayBuffer<G extends ScoredGroup>(buffer: ReplayBuffer): OperatorFunction<Batch<G>, Batch<G>> {
  return map((batch) => {
    buffer.add(batch.groups.flatMap((g) => g.trajectories));
    return {
      ...batch,
      metrics: { ...batch.metrics, 'buffer/size': buffer.size, 'buffer/return_mean': buffer.returnMean() },
    };
  });
}
