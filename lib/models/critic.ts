/**
 * The networks of TD3 (Fujimoto, van Hoof & Meger 2018, "Addressing Function Approximation Error
 * in Actor-Critic Methods"): a deterministic actor, twin Q critics, and target copies of both that
 * follow the learned networks by Polyak averaging.
 *
 *   actor:   π_φ(s) = a_mid + a_max ⊙ tanh(W_o relu(… relu(W_1 s + b_1) …) + b_o)
 *            with a_mid = (high + low)/2 and a_max = (high − low)/2 per action dimension
 *            (the paper's `max_action · tanh(·)` when the box is symmetric)
 *   critics: Q_θi(s, a) = w_o · relu(… relu(W_1 [s, a] + b_1) …) + b_o,  i = 1, 2
 *   targets: θ'_i ← τ θ_i + (1 − τ) θ'_i,  φ' ← τ φ + (1 − τ) φ'  (τ = 0.005)
 *
 * Init as the authors' PyTorch code (nn.Linear's default): weights and biases U(−1/√fan_in,
 * 1/√fan_in), drawn per parameter from the store's seed, so a network depends only on (seed, name).
 * Hidden widths default to the authors' [256, 256]. Parameter names: `pi.layers.{i}.weight|bias`,
 * `pi.out.weight|bias`; `q1.…`, `q2.…` (weights [in, out]). A target is a second network built with
 * the same shapes whose values are copied from the source (`copyFrom`), so it starts equal.
 *
 * ```ts
 * const actor = new DeterministicActor({ obsDim: 3, low: [-2], high: [2], hidden: [64, 64], seed: 0 });
 * const critic = new TwinCritic({ obsDim: 3, actDim: 1, hidden: [64, 64], seed: 1 });
 * const actorTarget = actor.cloneAsTarget();
 * const a = actor.act(new Float32Array([1, 0, 0]));          // Float32Array [1], in [−2, 2]
 * polyakUpdate(actorTarget.params, actor.params, 0.005);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParamStore, uniform } from './params.ts';
import { linear } from './transformer.ts';

/** Adds a relu MLP `prefix.layers.{i}` + `prefix.out` with PyTorch's default Linear init. */
function addMlp(ps: ParamStore, prefix: string, inDim: number, hidden: readonly number[], outDim: number): void {
  let d = inDim;
  const layer = (name: string, i: number, o: number) => {
    const k = 1 / Math.sqrt(i);
    ps.add(`${name}.weight`, [i, o], uniform(-k, k));
    ps.add(`${name}.bias`, [o], uniform(-k, k));
  };
  hidden.forEach((h, i) => {
    layer(`${prefix}.layers.${i}`, d, h);
    d = h;
  });
  layer(`${prefix}.out`, d, outDim);
}

function mlp(ps: ParamStore, prefix: string, depth: number, x: tf.Tensor2D): tf.Tensor2D {
  let h: tf.Tensor = x;
  for (let i = 0; i < depth; i++) h = tf.relu(linear(h, ps.get(`${prefix}.layers.${i}.weight`), ps.get(`${prefix}.layers.${i}.bias`)));
  return linear(h, ps.get(`${prefix}.out.weight`), ps.get(`${prefix}.out.bias`)) as tf.Tensor2D;
}

function checkHidden(hidden: readonly number[], what: string): void {
  if (hidden.length === 0 || hidden.some((h) => !Number.isInteger(h) || h <= 0)) {
    throw new RangeError(`${what}.hidden: expected a non-empty list of positive integers, got [${hidden.join(', ')}]`);
  }
}

function checkDim(n: number, what: string): void {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${what}: expected a positive integer, got ${n}`);
}

export interface DeterministicActorConfig {
  readonly obsDim: number;
  /** Lower bounds of the action box (one per action dimension). */
  readonly low: ArrayLike<number>;
  /** Upper bounds of the action box. */
  readonly high: ArrayLike<number>;
  /** Hidden widths; default [256, 256]. */
  readonly hidden?: readonly number[];
  /** Init seed; default 0. */
  readonly seed?: number;
}

/** π_φ(s) = a_mid + a_max ⊙ tanh(MLP(s)): a deterministic policy into the action box. */
export class DeterministicActor {
  readonly params: ParamStore;
  readonly obsDim: number;
  readonly actDim: number;
  /** (high + low)/2 and (high − low)/2, per action dimension. */
  readonly mid: Float32Array;
  readonly halfRange: Float32Array;
  readonly low: Float32Array;
  readonly high: Float32Array;
  readonly hidden: readonly number[];

  constructor(readonly config: DeterministicActorConfig) {
    checkDim(config.obsDim, 'DeterministicActor.obsDim');
    if (config.low.length !== config.high.length || config.low.length === 0) {
      throw new RangeError(`DeterministicActor: low and high must be non-empty and of equal length, got ${config.low.length} and ${config.high.length}`);
    }
    for (let i = 0; i < config.low.length; i++) {
      const lo = config.low[i]!;
      const hi = config.high[i]!;
      if (!Number.isFinite(lo) || !Number.isFinite(hi) || !(hi > lo)) {
        throw new RangeError(`DeterministicActor: action bound ${i} must be finite with low < high, got [${lo}, ${hi}]`);
      }
    }
    this.obsDim = config.obsDim;
    this.actDim = config.low.length;
    this.low = Float32Array.from(config.low);
    this.high = Float32Array.from(config.high);
    this.mid = this.low.map((lo, i) => (this.high[i]! + lo) / 2);
    this.halfRange = this.low.map((lo, i) => (this.high[i]! - lo) / 2);
    this.hidden = config.hidden ?? [256, 256];
    checkHidden(this.hidden, 'DeterministicActor');
    this.params = new ParamStore(config.seed ?? 0);
    addMlp(this.params, 'pi', this.obsDim, this.hidden, this.actDim);
  }

  get variables(): tf.Variable[] {
    return this.params.variables;
  }

  /** π(s) for observations [N, obsDim] → actions [N, actDim] (a tensor; call inside `tf.tidy`). */
  forward(obs: tf.Tensor2D): tf.Tensor2D {
    const z = tf.tanh(mlp(this.params, 'pi', this.hidden.length, obs));
    return tf.add(tf.mul(z, tf.tensor1d(this.halfRange)), tf.tensor1d(this.mid)) as tf.Tensor2D;
  }

  /** π(s) on plain data: observations `N · obsDim` → actions `N · actDim`; no tensor survives. */
  act(obs: Float32Array): Float32Array {
    if (obs.length % this.obsDim !== 0) {
      throw new RangeError(`DeterministicActor.act: observations of length ${obs.length} are not a multiple of obsDim ${this.obsDim}`);
    }
    const n = obs.length / this.obsDim;
    return tf.tidy(() => this.forward(tf.tensor2d(obs, [n, this.obsDim])).dataSync() as Float32Array);
  }

  /** A network of the same shape whose parameters equal this one's now (a target network φ'). */
  cloneAsTarget(): DeterministicActor {
    const t = new DeterministicActor(this.config);
    t.params.copyFrom(this.params);
    return t;
  }

  dispose(): void {
    this.params.dispose();
  }
}

export interface TwinCriticConfig {
  readonly obsDim: number;
  readonly actDim: number;
  /** Hidden widths of each critic; default [256, 256]. */
  readonly hidden?: readonly number[];
  /** Init seed; default 0. The two critics differ because their parameter names differ. */
  readonly seed?: number;
}

/** Two independent Q networks Q_θ1, Q_θ2 over the concatenation [s, a]. */
export class TwinCritic {
  readonly params: ParamStore;
  readonly obsDim: number;
  readonly actDim: number;
  readonly hidden: readonly number[];

  constructor(readonly config: TwinCriticConfig) {
    checkDim(config.obsDim, 'TwinCritic.obsDim');
    checkDim(config.actDim, 'TwinCritic.actDim');
    this.obsDim = config.obsDim;
    this.actDim = config.actDim;
    this.hidden = config.hidden ?? [256, 256];
    checkHidden(this.hidden, 'TwinCritic');
    this.params = new ParamStore(config.seed ?? 0);
    addMlp(this.params, 'q1', this.obsDim + this.actDim, this.hidden, 1);
    addMlp(this.params, 'q2', this.obsDim + this.actDim, this.hidden, 1);
  }

  get variables(): tf.Variable[] {
    return this.params.variables;
  }

  /** Q_θi(s, a) for i = 1 or 2: [N] (a tensor; call inside `tf.tidy`). */
  q(which: 1 | 2, obs: tf.Tensor2D, actions: tf.Tensor2D): tf.Tensor1D {
    const x = tf.concat([obs, actions], 1) as tf.Tensor2D;
    return tf.reshape(mlp(this.params, `q${which}`, this.hidden.length, x), [-1]) as tf.Tensor1D;
  }

  /** [Q_θ1(s, a), Q_θ2(s, a)], each [N]. */
  both(obs: tf.Tensor2D, actions: tf.Tensor2D): [tf.Tensor1D, tf.Tensor1D] {
    const x = tf.concat([obs, actions], 1) as tf.Tensor2D;
    const d = this.hidden.length;
    return [tf.reshape(mlp(this.params, 'q1', d, x), [-1]) as tf.Tensor1D, tf.reshape(mlp(this.params, 'q2', d, x), [-1]) as tf.Tensor1D];
  }

  /** A network of the same shape whose parameters equal this one's now (target critics θ'_1, θ'_2). */
  cloneAsTarget(): TwinCritic {
    const t = new TwinCritic(this.config);
    t.params.copyFrom(this.params);
    return t;
  }

  dispose(): void {
    this.params.dispose();
  }
}

/**
 * Polyak averaging of a target network towards its source: θ' ← τ θ + (1 − τ) θ' for every
 * parameter (same names and shapes in both stores).
 *
 * @param target the target store θ' (changed in place)
 * @param source the learned store θ (read only)
 * @param tau τ ∈ [0, 1]; TD3's default 0.005. τ = 1 copies, τ = 0 leaves θ' unchanged.
 * @returns nothing; no tensor survives the call.
 * @example
 * polyakUpdate(criticTarget.params, critic.params, 0.005);
 */
export function polyakUpdate(target: ParamStore, source: ParamStore, tau: number): void {
  if (!(tau >= 0 && tau <= 1)) throw new RangeError(`polyakUpdate: tau must be in [0, 1], got ${tau}`);
  const names = target.names();
  // Check every pair before changing anything, so a mismatch leaves the target as it was.
  for (const name of names) {
    const t = target.get(name);
    const s = source.maybe(name);
    if (!s) throw new RangeError(`polyakUpdate: the source has no parameter ${name}`);
    if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      throw new RangeError(`polyakUpdate: ${name} has shape [${t.shape.join(', ')}] in the target but [${s.shape.join(', ')}] in the source`);
    }
  }
  tf.tidy(() => {
    for (const name of names) {
      const t = target.get(name);
      t.assign(tf.add(tf.mul(source.get(name), tau), tf.mul(t, 1 - tau)));
    }
  });
}
