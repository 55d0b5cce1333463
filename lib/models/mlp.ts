/**
 * MLP policies (CleanRL's PPO agent): a categorical policy for Discrete action spaces, a diagonal
 * Gaussian with state-independent log σ for Box spaces, and an optional separate value network.
 *
 *   trunk:        h = act(W_L … act(W_1 s + b_1) … + b_L)       act = tanh (default) or relu
 *   categorical:  π(a|s) = softmax(W_o h + b_o)_a                 H = −Σ_a π log π
 *   Gaussian:     a ~ N(μ = W_o h + b_o, diag σ²), σ = exp(log_std) (a learned vector)
 *                 log π(a|s) = Σ_i [−½((a_i − μ_i)/σ_i)² − log σ_i − ½ log 2π]
 *                 H = Σ_i (log σ_i + ½ log 2πe)
 *   value:        V(s) = w_v · trunk_v(s) + b_v                   (its own trunk, as CleanRL)
 *
 * Init as CleanRL: hidden layers orthogonal(√2), policy output orthogonal(0.01), value output
 * orthogonal(1), biases 0, log_std = logStdInit (0). Continuous actions are not clipped to the
 * box (clip in the env wrapper, as CleanRL does); the behaviour log-prob is of the unclipped
 * sample. Parameter names: `pi.layers.{i}.weight|bias`, `pi.out.weight|bias`, `pi.log_std`,
 * `v.layers.{i}.weight|bias`, `v.out.weight|bias` (weights [in, out]).
 *
 * ```ts
 * const pi = new MlpPolicy({ obsDim: 4, actionSpace: { kind: 'discrete', n: 2 }, valueHead: true, seed: 1 });
 * const { action, logProb, value } = pi.act(new Float32Array([0, 0.1, 0, -0.1]), new Rng(0, 'act'));
 * const batch = { obs: new Float32Array(8), actions: new Int32Array([0, 1]) };
 * const lp = tf.tidy(() => pi.logProb(batch).arraySync());  // [log π(0|s₀), log π(1|s₁)]
 * const { grads } = tf.variableGrads(() => tf.neg(tf.mean(pi.logProb(batch))), pi.variables);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Trajectory } from '../data.ts';
import type { Rng } from '../random.ts';
import { ParamStore, constant, orthogonal, zeros } from './params.ts';
import type { ActOptions, ActResult, Policy } from './policy.ts';
import { linear } from './transformer.ts';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** The action space an MLP policy acts in (structurally compatible with `lib/envs` spaces). */
export type MlpActionSpace = { readonly kind: 'discrete'; readonly n: number } | { readonly kind: 'box'; readonly shape: readonly number[] };

export interface MlpPolicyConfig {
  readonly obsDim: number;
  readonly actionSpace: MlpActionSpace;
  /** Hidden widths; default [64, 64]. */
  readonly hidden?: readonly number[];
  readonly activation?: 'tanh' | 'relu';
  /** Build a separate value network V(s). Default false. */
  readonly valueHead?: boolean;
  /** Initial log σ of the Gaussian policy. Default 0. */
  readonly logStdInit?: number;
  /** Init seed. Default 0. */
  readonly seed?: number;
}

/** Observations [N·obsDim] (or a tensor [N, obsDim]) with the actions taken. */
export interface MlpBatch {
  readonly obs: Float32Array | tf.Tensor2D;
  /** Int32Array [N] for discrete, Float32Array [N·A] for Box (or tensors of those shapes). */
  readonly actions: Int32Array | Float32Array | tf.Tensor;
}

/** The policy's distribution at some observations. */
export type MlpDist =
  | { readonly kind: 'categorical'; readonly logits: tf.Tensor2D }
  | { readonly kind: 'gaussian'; readonly mean: tf.Tensor2D; readonly logStd: tf.Tensor1D };

export class MlpPolicy implements Policy<MlpBatch, Float32Array, Int32Array | Float32Array> {
  readonly params: ParamStore;
  readonly obsDim: number;
  /** Number of discrete actions, or the continuous action dimension. */
  readonly actionDim: number;
  readonly discrete: boolean;
  readonly hasValue: boolean;
  private readonly hidden: readonly number[];
  private readonly act_: 'tanh' | 'relu';

  constructor(readonly config: MlpPolicyConfig) {
    const { obsDim, actionSpace } = config;
    if (!Number.isInteger(obsDim) || obsDim <= 0) throw new RangeError(`MlpPolicy.obsDim: expected a positive integer, got ${obsDim}`);
    this.obsDim = obsDim;
    this.discrete = actionSpace.kind === 'discrete';
    this.actionDim = actionSpace.kind === 'discrete' ? actionSpace.n : actionSpace.shape.reduce((a, b) => a * b, 1);
    if (!Number.isInteger(this.actionDim) || this.actionDim <= 0) {
      throw new RangeError(`MlpPolicy.actionSpace: expected a positive action count/size, got ${this.actionDim}`);
    }
    this.hidden = config.hidden ?? [64, 64];
    this.act_ = config.activation ?? 'tanh';
    this.hasValue = config.valueHead ?? false;
    this.params = new ParamStore(config.seed ?? 0);
    this.addTrunk('pi', this.actionDim, 0.01);
    if (!this.discrete) this.params.add('pi.log_std', [this.actionDim], constant(config.logStdInit ?? 0));
    if (this.hasValue) this.addTrunk('v', 1, 1);
  }

  private addTrunk(prefix: string, outDim: number, outGain: number): void {
    let inDim = this.obsDim;
    this.hidden.forEach((h, i) => {
      this.params.add(`${prefix}.layers.${i}.weight`, [inDim, h], orthogonal(Math.SQRT2));
      this.params.add(`${prefix}.layers.${i}.bias`, [h], zeros());
      inDim = h;
    });
    this.params.add(`${prefix}.out.weight`, [inDim, outDim], orthogonal(outGain));
    this.params.add(`${prefix}.out.bias`, [outDim], zeros());
  }

  get variables(): tf.Variable[] {
    return this.params.variables;
  }

  private trunk(prefix: string, x: tf.Tensor2D): tf.Tensor2D {
    let h: tf.Tensor = x;
    for (let i = 0; i < this.hidden.length; i++) {
      const z = linear(h, this.params.get(`${prefix}.layers.${i}.weight`), this.params.get(`${prefix}.layers.${i}.bias`));
      h = this.act_ === 'tanh' ? tf.tanh(z) : tf.relu(z);
    }
    return linear(h, this.params.get(`${prefix}.out.weight`), this.params.get(`${prefix}.out.bias`)) as tf.Tensor2D;
  }

  private obsTensor(obs: Float32Array | tf.Tensor2D): tf.Tensor2D {
    if (obs instanceof Float32Array) {
      if (obs.length % this.obsDim !== 0) {
        throw new RangeError(`MlpPolicy: observations of length ${obs.length} are not a multiple of obsDim ${this.obsDim}`);
      }
      return tf.tensor2d(obs, [obs.length / this.obsDim, this.obsDim]);
    }
    return obs;
  }

  /** The action distribution at observations [N, obsDim]. */
  dist(obs: Float32Array | tf.Tensor2D): MlpDist {
    const out = this.trunk('pi', this.obsTensor(obs));
    if (this.discrete) return { kind: 'categorical', logits: out };
    return { kind: 'gaussian', mean: out, logStd: this.params.get('pi.log_std') as tf.Tensor1D };
  }

  /** log π(a|s) per row: [N]. */
  logProb(batch: MlpBatch): tf.Tensor1D {
    const d = this.dist(batch.obs);
    if (d.kind === 'categorical') {
      const a = batch.actions instanceof tf.Tensor ? tf.cast(batch.actions, 'int32') : tf.tensor1d(Int32Array.from(batch.actions), 'int32');
      return tf.sum(tf.mul(tf.logSoftmax(d.logits), tf.oneHot(tf.reshape(a, [-1]) as tf.Tensor1D, this.actionDim)), 1) as tf.Tensor1D;
    }
    const N = d.mean.shape[0];
    const a =
      batch.actions instanceof tf.Tensor ? tf.reshape(batch.actions, [N, this.actionDim]) : tf.tensor2d(Float32Array.from(batch.actions), [N, this.actionDim]);
    return gaussianLogProb(a, d.mean, d.logStd) as tf.Tensor1D;
  }

  /** Exact entropy per row: [N]. */
  entropy(batch: Pick<MlpBatch, 'obs'>): tf.Tensor1D {
    const d = this.dist(batch.obs);
    if (d.kind === 'categorical') {
      const logp = tf.logSoftmax(d.logits);
      return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)) as tf.Tensor1D;
    }
    const h = tf.sum(tf.add(d.logStd, 0.5 + HALF_LOG_2PI));
    return tf.mul(tf.ones([d.mean.shape[0]]), h) as tf.Tensor1D;
  }

  /** V(s): [N]. Throws without a value head. */
  value(obs: Float32Array | tf.Tensor2D): tf.Tensor1D {
    if (!this.hasValue) throw new Error('MlpPolicy.value: built without valueHead');
    return tf.reshape(this.trunk('v', this.obsTensor(obs)), [-1]) as tf.Tensor1D;
  }

  /** Samples one action per observation row (obs: [N·obsDim]); every tensor is disposed inside. */
  act(obs: Float32Array, rng: Rng, opts: ActOptions = {}): ActResult<Int32Array | Float32Array> {
    const det = opts.deterministic ?? false;
    const { params, value } = tf.tidy(() => {
      const d = this.dist(obs);
      const v = this.hasValue ? (this.value(obs).dataSync() as Float32Array) : undefined;
      if (d.kind === 'categorical') return { params: [tf.logSoftmax(d.logits).dataSync() as Float32Array], value: v };
      return { params: [d.mean.dataSync() as Float32Array, d.logStd.dataSync() as Float32Array], value: v };
    });
    const N = obs.length / this.obsDim;
    const logProb = new Float32Array(N);
    const A = this.actionDim;
    if (this.discrete) {
      const logp = params[0]!;
      const action = new Int32Array(N);
      const w = new Float64Array(A);
      for (let n = 0; n < N; n++) {
        let best = 0;
        for (let i = 0; i < A; i++) {
          w[i] = Math.exp(logp[n * A + i]!);
          if (logp[n * A + i]! > logp[n * A + best]!) best = i;
        }
        action[n] = det ? best : (opts.rowRng?.(n) ?? rng).categorical(w);
        logProb[n] = logp[n * A + action[n]!]!;
      }
      return value ? { action, logProb, value } : { action, logProb };
    }
    const mean = params[0]!;
    const logStd = params[1]!;
    const action = new Float32Array(N * A);
    for (let n = 0; n < N; n++) {
      const r = opts.rowRng?.(n) ?? rng;
      let lp = 0;
      for (let i = 0; i < A; i++) {
        const mu = mean[n * A + i]!;
        const ls = logStd[i]!;
        const a = Math.fround(det ? mu : mu + Math.exp(ls) * r.normal());
        action[n * A + i] = a;
        const z = (a - mu) / Math.exp(ls);
        lp += -0.5 * z * z - ls - HALF_LOG_2PI;
      }
      logProb[n] = lp;
    }
    return value ? { action, logProb, value } : { action, logProb };
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** Σ_i log N(a_i; μ_i, σ_i²) over the last axis. */
export function gaussianLogProb(a: tf.Tensor, mean: tf.Tensor, logStd: tf.Tensor): tf.Tensor {
  const z = tf.mul(tf.sub(a, mean), tf.exp(tf.neg(logStd)));
  return tf.sum(tf.sub(tf.sub(tf.mul(tf.square(z), -0.5), logStd), HALF_LOG_2PI), -1);
}

/**
 * The per-step batch of a policy that acts on the current observation alone (`MlpPolicy`): every
 * trajectory's observations before each action (rows 0..T−1) and its actions, concatenated.
 */
export function stepBatchOf(trajectories: readonly Trajectory[]): { obs: Float32Array; actions: Int32Array | Float32Array } {
  const first = trajectories[0];
  if (!first) return { obs: new Float32Array(0), actions: new Int32Array(0) };
  const { obsDim } = first;
  let S = 0;
  for (const t of trajectories) S += t.length;
  const obs = new Float32Array(S * obsDim);
  const discrete = first.actions instanceof Int32Array;
  const actions = discrete ? new Int32Array(S) : new Float32Array(S * first.actDim);
  let o = 0;
  let a = 0;
  for (const t of trajectories) {
    if (t.obsDim !== obsDim || t.actions instanceof Int32Array !== discrete) {
      throw new TypeError(`stepBatchOf: trajectory of group ${t.groupId} does not match the first one's shapes`);
    }
    obs.set(t.observations.subarray(0, t.length * obsDim), o);
    actions.set(t.actions, a);
    o += t.length * obsDim;
    a += t.actions.length;
  }
  return { obs, actions };
}
