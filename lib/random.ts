/**
 * Seeded randomness with independent streams keyed by purpose.
 *
 * One run seed fans out into named streams (`env/reset`, `init`, `action`, ...): the stream for
 * a key depends only on `(seed, key)`, so adding draws to one purpose never shifts another, and a
 * run is reproducible from its seed alone.
 *
 * The generator is xoshiro128** (Blackman & Vigna), 128 bits of state in four uint32 words,
 * seeded through SplitMix32 from a 32-bit FNV-1a hash of the key mixed with the seed. Its state is
 * plain data (`state()` / `Rng.fromState`) so checkpoints can carry it.
 *
 * ```ts
 * const streams = new RngStreams(42);
 * const init = streams.get('init');
 * const w = init.normalArray(16, 0, 0.02);
 * const a = streams.get('action').categorical([0.1, 0.9]);
 * ```
 */

/** FNV-1a over the UTF-16 code units of a string, 32 bits. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** SplitMix32 step: returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  const s = (state + 0x9e3779b9) >>> 0;
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return [s, z];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Serialisable generator state. */
export interface RngState {
  readonly s: readonly [number, number, number, number];
  /** A cached second Box–Muller normal, or null. */
  readonly spare: number | null;
}

function checkSeed(seed: number, what: string): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`${what}: expected an integer seed in [0, 2^32), got ${seed}`);
  }
}

/** A xoshiro128** generator with uniform, Gaussian and categorical sampling. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  /** A generator for `(seed, key)`; the same pair always gives the same sequence. */
  constructor(seed: number, key = '') {
    checkSeed(seed, 'Rng');
    let st = (seed ^ fnv1a(key)) >>> 0;
    // Mix the seed into the hashed key a second time so seed=0/key='' is not special.
    let out: number;
    [st, out] = splitmix32(st ^ 0x6a09e667);
    [st, out] = splitmix32((st + out) >>> 0);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      [st, out] = splitmix32(st);
      words.push(out);
    }
    this.s0 = words[0]!;
    this.s1 = words[1]!;
    this.s2 = words[2]!;
    this.s3 = words[3]!;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  state(): RngState {
    return { s: [this.s0, this.s1, this.s2, this.s3], spare: this.spare };
  }

  setState(state: RngState): void {
    const [a, b, c, d] = state.s;
    if ([a, b, c, d].some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new RangeError('Rng.setState: state words must be uint32');
    }
    if ((a | b | c | d) === 0) throw new RangeError('Rng.setState: the all-zero state is invalid');
    this.s0 = a;
    this.s1 = b;
    this.s2 = c;
    this.s3 = d;
    this.spare = state.spare;
  }

  /** A uniformly distributed uint32. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number;
  /** Uniform in [low, high). */
  uniform(low: number, high: number): number;
  uniform(low = 0, high = 1): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    const u = (hi * 67108864 + lo) / 9007199254740992;
    return low + (high - low) * u;
  }

  /** An integer uniform in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) {
      throw new RangeError(`Rng.int: expected a positive integer bound up to 2^32, got ${n}`);
    }
    const limit = Math.floor(0x100000000 / n) * n;
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** A standard normal draw (Box–Muller, caching the second value). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  uniformArray(n: number, low = 0, high = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(low, high);
    return out;
  }

  normalArray(n: number, mean = 0, std = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** An index drawn with probability proportional to `weights` (non-negative, not all zero). */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i]!;
      if (!(w >= 0) || !Number.isFinite(w)) {
        throw new RangeError(`Rng.categorical: weight ${i} must be finite and >= 0, got ${w}`);
      }
      total += w;
    }
    if (!(total > 0)) throw new RangeError('Rng.categorical: weights sum to zero');
    const x = this.uniform() * total;
    let acc = 0;
    for (let i = 0; i < weights.length; i++) {
      acc += weights[i]!;
      if (x < acc) return i;
    }
    // Rounding at the top end: return the last index with positive weight.
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
    return weights.length - 1;
  }

  /** An index drawn from softmax(logits) (Gumbel-free: normalised in float64). */
  categoricalLogits(logits: ArrayLike<number>): number {
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
    if (!Number.isFinite(max)) throw new RangeError('Rng.categoricalLogits: logits must be finite');
    const p = new Float64Array(logits.length);
    for (let i = 0; i < logits.length; i++) p[i] = Math.exp(logits[i]! - max);
    return this.categorical(p);
  }

  /** A fresh uint32 seed, for handing to something that takes a seed (an env reset). */
  seed(): number {
    return this.nextUint32();
  }
}

/** Named independent streams derived from one run seed. */
export class RngStreams {
  private readonly streams = new Map<string, Rng>();

  constructor(readonly seed: number) {
    checkSeed(seed, 'RngStreams');
  }

  /** The stream for `key`, created on first use; later calls return the same generator. */
  get(key: string): Rng {
    let r = this.streams.get(key);
    if (!r) {
      r = new Rng(this.seed, key);
      this.streams.set(key, r);
    }
    return r;
  }

  /** The state of every stream used so far, for a checkpoint. */
  state(): { seed: number; streams: Record<string, RngState> } {
    const streams: Record<string, RngState> = {};
    for (const [k, r] of this.streams) streams[k] = r.state();
    return { seed: this.seed, streams };
  }

  static fromState(state: { seed: number; streams: Record<string, RngState> }): RngStreams {
    const out = new RngStreams(state.seed);
    for (const [k, s] of Object.entries(state.streams)) out.streams.set(k, Rng.fromState(s));
    return out;
  }
}
