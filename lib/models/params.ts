/**
 * A parameter store: named, trainable `tf.Variable`s, initialised deterministically from a seed.
 *
 * Each parameter draws from its own stream `new Rng(seed, 'init/' + name)`, so its initial value
 * depends only on (seed, name): adding a parameter never shifts another's init, and the same
 * seed gives bit-identical parameters on every backend (values are built as Float32Arrays on
 * the JS side, then uploaded).
 *
 * Inits: `normal(std)` N(0, std²); `zeros`; `ones`; `constant(c)`; `uniform(lo, hi)`;
 * `orthogonal(gain)` (Saxe et al. 2014, as torch.nn.init.orthogonal_: Gram–Schmidt on a
 * Gaussian matrix; orthonormal columns if rows ≥ cols, else orthonormal rows; times gain).
 *
 * Naming scheme (the contract for checkpoint files and a Hugging Face loader) — dots separate
 * modules, weights of linear maps are stored **[in, out]** (y = x·W + b; HF's torch `Linear`
 * stores [out, in], so a loader transposes; GPT-2's `Conv1D` is already [in, out]):
 *
 *   embed.weight [V, D]            pos_embed.weight [P, D]        norm.weight / norm.bias [D]
 *   layers.{i}.ln1.weight|bias     layers.{i}.ln2.weight|bias     (phi: ln1 only)
 *   layers.{i}.attn.{q,k,v,o}.weight|bias
 *   layers.{i}.mlp.{up,gate,down}.weight|bias                      (gate only for gated MLPs)
 *   lm_head.weight [D, V]          lm_head.bias [V]               (absent when tied / no bias)
 *
 * ```ts
 * const ps = new ParamStore(42);
 * const w = ps.add('layers.0.attn.q.weight', [64, 64], normal(0.02));
 * const b = ps.add('layers.0.attn.q.bias', [64], zeros());
 * ps.variables.length;         // 2
 * const saved = ps.toRecord(); // { name: { shape, data: Float32Array } }
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../random.ts';

export type Init =
  | { readonly kind: 'normal'; readonly std: number; readonly mean?: number }
  | { readonly kind: 'zeros' }
  | { readonly kind: 'ones' }
  | { readonly kind: 'constant'; readonly value: number }
  | { readonly kind: 'uniform'; readonly low: number; readonly high: number }
  | { readonly kind: 'orthogonal'; readonly gain: number }
  | { readonly kind: 'values'; readonly values: ArrayLike<number> };

export const normal = (std: number, mean = 0): Init => ({ kind: 'normal', std, mean });
export const zeros = (): Init => ({ kind: 'zeros' });
export const ones = (): Init => ({ kind: 'ones' });
export const constant = (value: number): Init => ({ kind: 'constant', value });
export const uniform = (low: number, high: number): Init => ({ kind: 'uniform', low, high });
export const orthogonal = (gain = 1): Init => ({ kind: 'orthogonal', gain });
export const values = (v: ArrayLike<number>): Init => ({ kind: 'values', values: v });

/** The init helpers under one name (`init.normal(0.02)`), as the package index exports them. */
export const init = { normal, zeros, ones, constant, uniform, orthogonal, values } as const;

/** A serialisable parameter: shape and row-major float32 data. */
export interface ParamRecord {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** Builds the initial values of a parameter (plain JS, deterministic). */
export function initValues(shape: readonly number[], init: Init, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  switch (init.kind) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'constant':
      return out.fill(init.value);
    case 'normal': {
      const m = init.mean ?? 0;
      for (let i = 0; i < n; i++) out[i] = rng.normal(m, init.std);
      return out;
    }
    case 'uniform':
      for (let i = 0; i < n; i++) out[i] = rng.uniform(init.low, init.high);
      return out;
    case 'values':
      if (init.values.length !== n) {
        throw new RangeError(`initValues: expected ${n} values for shape [${shape.join(', ')}], got ${init.values.length}`);
      }
      out.set(Array.from(init.values));
      return out;
    case 'orthogonal': {
      if (shape.length < 2) throw new RangeError('initValues: orthogonal init needs a rank >= 2 shape');
      const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const cols = shape[shape.length - 1]!;
      const m = Math.max(rows, cols);
      const k = Math.min(rows, cols);
      // Columns of an m×k Gaussian matrix, orthonormalised by modified Gram–Schmidt.
      const q: Float64Array[] = [];
      for (let j = 0; j < k; j++) q.push(Float64Array.from(rng.normalArray(m)));
      for (let j = 0; j < k; j++) {
        const v = q[j]!;
        for (let p = 0; p < j; p++) {
          const u = q[p]!;
          let d = 0;
          for (let i = 0; i < m; i++) d += u[i]! * v[i]!;
          for (let i = 0; i < m; i++) v[i] = v[i]! - d * u[i]!;
        }
        let norm = 0;
        for (let i = 0; i < m; i++) norm += v[i]! * v[i]!;
        norm = Math.sqrt(norm) || 1;
        for (let i = 0; i < m; i++) v[i] = v[i]! / norm;
      }
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          // rows >= cols: column c is q[c]; else row r is q[r].
          const val = rows >= cols ? q[c]![r]! : q[r]![c]!;
          out[r * cols + c] = init.gain * val;
        }
      }
      return out;
    }
  }
}

/** Named trainable variables, in insertion order. */
export class ParamStore {
  private readonly vars = new Map<string, tf.Variable>();

  constructor(readonly seed: number) {}

  /** Creates the parameter `name` (throws if it exists), initialised from `Rng(seed, 'init/' + name)`. */
  add(name: string, shape: readonly number[], init: Init, trainable = true): tf.Variable {
    if (this.vars.has(name)) throw new Error(`ParamStore.add: parameter ${name} already exists`);
    const data = initValues(shape, init, new Rng(this.seed, `init/${name}`));
    // tfjs variable names are process-global; ours live in this map, so let tfjs pick unique ones.
    const initial = tf.tensor(data, [...shape], 'float32');
    const v = tf.variable(initial, trainable);
    // The variable holds its own reference to the data; the initial tensor would otherwise leak.
    initial.dispose();
    this.vars.set(name, v);
    return v;
  }

  /** The parameter `name`; throws naming the missing key. */
  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`ParamStore.get: no parameter ${name}`);
    return v;
  }

  /** The parameter `name`, or null when absent (optional biases). */
  maybe(name: string): tf.Variable | null {
    return this.vars.get(name) ?? null;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  /** The trainable variables, in insertion order (what an optimizer's varList wants). */
  get variables(): tf.Variable[] {
    return [...this.vars.values()].filter((v) => v.trainable);
  }

  /** Total number of scalars. */
  numParams(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  /** A plain-data copy of every parameter (for checkpoints). */
  toRecord(): Record<string, ParamRecord> {
    const out: Record<string, ParamRecord> = {};
    for (const [k, v] of this.vars) out[k] = { shape: [...v.shape], data: v.dataSync() as Float32Array };
    return out;
  }

  /**
   * Assigns values from a record. With `strict` (default) the key sets must match exactly;
   * shapes must always match.
   */
  load(record: Readonly<Record<string, ParamRecord>>, strict = true): void {
    if (strict) {
      const missing = this.names().filter((k) => !(k in record));
      const extra = Object.keys(record).filter((k) => !this.vars.has(k));
      if (missing.length || extra.length) {
        throw new Error(`ParamStore.load: missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]`);
      }
    }
    for (const [k, r] of Object.entries(record)) {
      const v = this.vars.get(k);
      if (!v) continue;
      if (r.shape.length !== v.shape.length || r.shape.some((d, i) => d !== v.shape[i])) {
        throw new Error(`ParamStore.load: ${k} has shape [${r.shape.join(', ')}], expected [${v.shape.join(', ')}]`);
      }
      tf.tidy(() => v.assign(tf.tensor(r.data, [...r.shape], 'float32')));
    }
  }

  /** Copies every value from another store with the same names and shapes (target networks). */
  copyFrom(other: ParamStore): void {
    for (const [k, v] of this.vars) v.assign(other.get(k));
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}
