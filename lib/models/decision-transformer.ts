/**
 * Decision Transformer with the stochastic action head of Online DT (Zheng, Zhang & Grover 2022).
 *
 * Input: the last K steps of (return-to-go R̂_t, state s_t, action a_t), each embedded by a linear
 * map, plus a learned timestep embedding ω(t) added to all three (DT's replacement of positions):
 *
 *   x = LN_embed([R̂_1+ω_1, s_1+ω_1, a_1+ω_1, …, R̂_K+ω_K, s_K+ω_K, a_K+ω_K])      [B, 3K, D]
 *   h = GPT-2 core (no position embeddings, causal, padding-masked)
 *   the action at step t is read from the **state token** output h_{3t+1} (it sees R̂_≤t, s_≤t,
 *   a_<t):
 *   μ_t = W_μ h + b_μ,   log σ_t = lo + ½(hi − lo)(tanh(ρ_t) + 1) ∈ [lo, hi] = [−5, 2]
 *   (ρ_t = W_σ h + b_σ, state-dependent as ODT; or a learned vector, state-independent)
 *   π(a|·) = tanh-squashed N(μ, σ²):  u = atanh(clip(a, ±(1 − 1e−6))),
 *   log π(a) = Σ_i [log N(u_i; μ_i, σ_i²) − log(1 − tanh² u_i)],
 *   log(1 − tanh² u) = 2(log 2 − u − softplus(−2u))                (numerically stable form)
 *   entropy estimate (ODT): H ≈ −(1/M) Σ_m log π(tanh(μ + σ ε_m)), ε_m ~ N(0, I) from an `Rng`,
 *   reparameterised (gradients flow through the sample).
 *
 * ODT's entropy temperature (log α, target entropy −|A|) is optimiser state and belongs to the
 * online-finetuning operator, not to this module. Returns-to-go are fed as given (scale them —
 * ODT divides by 1000 for MuJoCo — and normalise states before calling).
 *
 * Parameter names (after ODT's modules): `embed_timestep.weight` [maxEpisodeSteps, D],
 * `embed_return.weight|bias` [1, D], `embed_state.weight|bias` [S, D], `embed_action.weight|bias`
 * [A, D], `embed_ln.weight|bias`, core `layers.{i}.*` and `norm.*` (see params.ts),
 * `predict_action.mu.weight|bias` [D, A], `predict_action.log_std.weight|bias` [D, A] (or
 * `predict_action.log_std` [A] when state-independent).
 *
 * Batches are plain row-major typed arrays, left-padded (`mask` 0 on padding); `act` reads the
 * action at the last position K − 1 of each row.
 *
 * ```ts
 * const dt = new DecisionTransformer({ stateDim: 11, actDim: 3, contextLength: 20,
 *   core: { dModel: 128, nLayers: 3, nHeads: 1 }, seed: 0 });
 * const lp = tf.tidy(() => dt.actionLogProb(batch));            // [B, K], 0 on padding
 * const { action, logProb } = dt.act(windowBatch, new Rng(0, 'action'));
 * const { grads } = tf.variableGrads(() => tf.neg(tf.mean(dt.actionLogProb(batch))), dt.variables);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random.ts';
import { transformerConfig } from './config.ts';
import type { TransformerConfig, TransformerConfigInput } from './config.ts';
import { ParamStore, normal, ones, zeros } from './params.ts';
import type { ActOptions, ActResult, Policy } from './policy.ts';
import { Transformer, layerNorm, linear } from './transformer.ts';
import { hasFusedAttention } from '../tensor/fused-attention.ts';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
/** Actions are clipped to ±ACTION_CLIP before atanh. */
export const ACTION_CLIP = 1 - 1e-6;

export interface DecisionTransformerConfig {
  readonly stateDim: number;
  readonly actDim: number;
  /** Context length K in steps (3K tokens). ODT: 20. */
  readonly contextLength?: number;
  /** Size of the timestep embedding table. Default 1000. */
  readonly maxEpisodeSteps?: number;
  /** Add the learned timestep embedding. Default true. */
  readonly timestepEmbedding?: boolean;
  /**
   * Core overrides. Defaults (ODT): gpt2 arch, dModel 512, nLayers 4, nHeads 4, ReLU MLP,
   * no position embeddings; any arch works (vocabSize is forced to 0, tieEmbeddings to false).
   */
  readonly core?: Partial<TransformerConfigInput>;
  /** `state-dependent` (ODT) or a learned `state-independent` vector. */
  readonly logStd?: 'state-dependent' | 'state-independent';
  readonly logStdMin?: number;
  readonly logStdMax?: number;
  /** Init seed. Default 0. */
  readonly seed?: number;
}

/** B rows of K steps, row-major; left-padded with mask 0. */
export interface DtBatch {
  readonly batchSize: number;
  readonly length: number;
  /** [B·K·S] */
  readonly states: Float32Array;
  /** [B·K·A], in (−1, 1) */
  readonly actions: Float32Array;
  /** [B·K] returns-to-go as the policy saw them (scaled) */
  readonly returnsToGo: Float32Array;
  /** [B·K] integer timesteps in [0, maxEpisodeSteps) */
  readonly timesteps: Int32Array;
  /** [B·K] 1 real, 0 padding */
  readonly mask: Float32Array;
}

export interface DtDist {
  /** [B, K, A] */
  readonly mean: tf.Tensor3D;
  /** [B, K, A], already squashed into [logStdMin, logStdMax] */
  readonly logStd: tf.Tensor3D;
}

/** Σ_i log of the tanh-squashed Gaussian density at `actions` (last axis), clipped to ±ACTION_CLIP. */
export function tanhGaussianLogProb(actions: tf.Tensor, mean: tf.Tensor, logStd: tf.Tensor): tf.Tensor {
  const u = tf.atanh(tf.clipByValue(actions, -ACTION_CLIP, ACTION_CLIP));
  return tanhGaussianLogProbPre(u, mean, logStd);
}

/** The same from the pre-tanh value u (no atanh round trip). */
export function tanhGaussianLogProbPre(u: tf.Tensor, mean: tf.Tensor, logStd: tf.Tensor): tf.Tensor {
  const z = tf.mul(tf.sub(u, mean), tf.exp(tf.neg(logStd)));
  const logN = tf.sub(tf.sub(tf.mul(tf.square(z), -0.5), logStd), HALF_LOG_2PI);
  const logDet = tf.mul(tf.sub(tf.sub(Math.LN2, u), tf.softplus(tf.mul(u, -2))), 2);
  return tf.sum(tf.sub(logN, logDet), -1);
}

/** Plain-JS float64 version for one action vector (used for behaviour log-probs). */
export function tanhGaussianLogProbJs(action: ArrayLike<number>, mean: ArrayLike<number>, logStd: ArrayLike<number>): number {
  let lp = 0;
  for (let i = 0; i < action.length; i++) {
    const a = Math.min(Math.max(action[i]!, -Math.fround(ACTION_CLIP)), Math.fround(ACTION_CLIP));
    const u = Math.atanh(a);
    const ls = logStd[i]!;
    const z = (u - mean[i]!) / Math.exp(ls);
    const softplus = Math.log1p(Math.exp(-2 * u));
    lp += -0.5 * z * z - ls - HALF_LOG_2PI - 2 * (Math.LN2 - u - softplus);
  }
  return lp;
}

/**
 * B actions a = tanh(μ + σ ε) (ε ~ N(0, I) from `rng`, row by row; a = tanh(μ) when
 * deterministic) from means and squashed log σ [B·A], with log π of the stored float32 action
 * (`tanhGaussianLogProbJs`): the sampling step of `DecisionTransformer.act`.
 */
export function sampleTanhGaussian(mean: Float32Array, logStd: Float32Array, B: number, A: number, rng: Rng, opts: ActOptions = {}): ActResult<Float32Array> {
  const action = new Float32Array(B * A);
  const logProb = new Float32Array(B);
  for (let r = 0; r < B; r++) {
    const g = opts.rowRng?.(r) ?? rng;
    const mu = mean.subarray(r * A, (r + 1) * A);
    const ls = logStd.subarray(r * A, (r + 1) * A);
    const a = action.subarray(r * A, (r + 1) * A);
    for (let i = 0; i < A; i++) {
      const u = opts.deterministic ? mu[i]! : mu[i]! + Math.exp(ls[i]!) * g.normal();
      a[i] = Math.tanh(u);
    }
    logProb[r] = tanhGaussianLogProbJs(a, mu, ls);
  }
  return { action, logProb };
}

export class DecisionTransformer implements Policy<DtBatch, DtBatch, Float32Array> {
  readonly params: ParamStore;
  readonly core: Transformer;
  readonly coreConfig: TransformerConfig;
  readonly stateDim: number;
  readonly actDim: number;
  readonly contextLength: number;
  readonly maxEpisodeSteps: number;
  readonly timestepEmbedding: boolean;
  readonly stateDependentStd: boolean;
  readonly logStdMin: number;
  readonly logStdMax: number;

  constructor(config: DecisionTransformerConfig) {
    const { stateDim, actDim } = config;
    for (const [k, v] of [
      ['stateDim', stateDim],
      ['actDim', actDim],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new RangeError(`DecisionTransformer.${k}: expected a positive integer, got ${v}`);
    }
    this.stateDim = stateDim;
    this.actDim = actDim;
    this.contextLength = config.contextLength ?? 20;
    this.maxEpisodeSteps = config.maxEpisodeSteps ?? 1000;
    this.timestepEmbedding = config.timestepEmbedding ?? true;
    this.stateDependentStd = (config.logStd ?? 'state-dependent') === 'state-dependent';
    this.logStdMin = config.logStdMin ?? -5;
    this.logStdMax = config.logStdMax ?? 2;
    if (!(this.logStdMin < this.logStdMax)) throw new RangeError('DecisionTransformer: logStdMin must be < logStdMax');
    const dModel = config.core?.dModel ?? 512;
    this.coreConfig = transformerConfig({
      arch: 'gpt2',
      dModel,
      nLayers: 4,
      nHeads: 4,
      activation: 'relu',
      positionEmbedding: 'none',
      ...config.core,
      vocabSize: 0,
      tieEmbeddings: false,
      maxPositions: Math.max(config.core?.maxPositions ?? 0, 3 * this.contextLength),
    } as TransformerConfigInput);
    const D = this.coreConfig.dModel;
    const std = this.coreConfig.initializerRange;
    const ps = (this.params = new ParamStore(config.seed ?? 0));
    if (this.timestepEmbedding) ps.add('embed_timestep.weight', [this.maxEpisodeSteps, D], normal(std));
    const lin = (name: string, i: number, o: number): void => {
      ps.add(`${name}.weight`, [i, o], normal(std));
      ps.add(`${name}.bias`, [o], zeros());
    };
    lin('embed_return', 1, D);
    lin('embed_state', stateDim, D);
    lin('embed_action', actDim, D);
    ps.add('embed_ln.weight', [D], ones());
    ps.add('embed_ln.bias', [D], zeros());
    this.core = new Transformer(this.coreConfig, ps);
    lin('predict_action.mu', D, actDim);
    if (this.stateDependentStd) lin('predict_action.log_std', D, actDim);
    else ps.add('predict_action.log_std', [actDim], zeros());
  }

  get variables(): tf.Variable[] {
    return this.params.variables;
  }

  private check(b: DtBatch): void {
    const n = b.batchSize * b.length;
    const bad = (what: string, got: number, want: number): never => {
      throw new RangeError(`DecisionTransformer: batch.${what} has length ${got}, expected ${want} (B=${b.batchSize}, K=${b.length})`);
    };
    if (b.states.length !== n * this.stateDim) bad('states', b.states.length, n * this.stateDim);
    if (b.actions.length !== n * this.actDim) bad('actions', b.actions.length, n * this.actDim);
    if (b.returnsToGo.length !== n) bad('returnsToGo', b.returnsToGo.length, n);
    if (b.timesteps.length !== n) bad('timesteps', b.timesteps.length, n);
    if (b.mask.length !== n) bad('mask', b.mask.length, n);
    if (this.timestepEmbedding) {
      for (let i = 0; i < n; i++) {
        const t = b.timesteps[i]!;
        if (t < 0 || t >= this.maxEpisodeSteps) {
          throw new RangeError(`DecisionTransformer: timestep ${t} outside [0, ${this.maxEpisodeSteps})`);
        }
      }
    }
  }

  /**
   * The first `n` of the 3K tokens of a batch (all by default), embedded and normalised:
   * x [B, n, D] and their mask [B, n]. Every op here is per token (linear maps, the timestep
   * gather, LN over the last axis), so dropping trailing tokens leaves the others unchanged.
   */
  private tokens(b: DtBatch, n = 3 * b.length): { x: tf.Tensor3D; mask: tf.Tensor2D } {
    this.check(b);
    const B = b.batchSize;
    const K = b.length;
    const D = this.coreConfig.dModel;
    const p = this.params;
    const lin = (x: tf.Tensor, name: string): tf.Tensor => linear(x, p.get(`${name}.weight`), p.get(`${name}.bias`));
    let rE = lin(tf.tensor3d(b.returnsToGo, [B, K, 1]), 'embed_return');
    let sE = lin(tf.tensor3d(b.states, [B, K, this.stateDim]), 'embed_state');
    let aE = lin(tf.tensor3d(b.actions, [B, K, this.actDim]), 'embed_action');
    if (this.timestepEmbedding) {
      const tE = tf.gather(p.get('embed_timestep.weight'), tf.tensor2d(b.timesteps, [B, K], 'int32'));
      rE = tf.add(rE, tE);
      sE = tf.add(sE, tE);
      aE = tf.add(aE, tE);
    }
    // Interleave (R̂_t, s_t, a_t): stack on a new axis 2 → [B, K, 3, D] → [B, 3K, D].
    let e = tf.reshape(tf.stack([rE, sE, aE], 2), [B, 3 * K, D]);
    const m = tf.tensor2d(b.mask, [B, K]);
    let mask = tf.reshape(tf.stack([m, m, m], 2), [B, 3 * K]) as tf.Tensor2D;
    if (n < 3 * K) {
      e = tf.slice(e, [0, 0, 0], [B, n, D]);
      mask = tf.slice(mask, [0, 0], [B, n]);
    }
    const x = layerNorm(e, p.get('embed_ln.weight'), p.get('embed_ln.bias'), this.coreConfig.normEps) as tf.Tensor3D;
    return { x, mask };
  }

  /** The action heads on state-token outputs hs [B, n, D]: mean and squashed log σ, [B, n, A]. */
  private heads(hs: tf.Tensor3D): DtDist {
    const p = this.params;
    const lin = (x: tf.Tensor, name: string): tf.Tensor => linear(x, p.get(`${name}.weight`), p.get(`${name}.bias`));
    const mean = lin(hs, 'predict_action.mu') as tf.Tensor3D;
    const raw = this.stateDependentStd ? lin(hs, 'predict_action.log_std') : tf.mul(tf.onesLike(mean), p.get('predict_action.log_std'));
    const lo = this.logStdMin;
    const hi = this.logStdMax;
    const logStd = tf.add(tf.mul(tf.add(tf.tanh(raw), 1), 0.5 * (hi - lo)), lo) as tf.Tensor3D;
    return { mean, logStd };
  }

  /** The action distribution at every step: mean and squashed log σ, [B, K, A]. */
  dist(b: DtBatch): DtDist {
    const B = b.batchSize;
    const K = b.length;
    const D = this.coreConfig.dModel;
    const { x, mask } = this.tokens(b);
    const { hidden } = this.core.forwardEmbeddings(x, { attentionMask: mask });
    // State-token outputs: position 3t + 1.
    const hs = tf.reshape(tf.slice(tf.reshape(hidden, [B, K, 3, D]), [0, 0, 1, 0], [B, K, 1, D]), [B, K, D]) as tf.Tensor3D;
    return this.heads(hs);
  }

  /**
   * The action distribution at the last step K − 1 only, [B, 1, A]: the values of `dist(b)` at
   * that step, computed without what they do not depend on. The last action token (position
   * 3K − 1) comes after the state token that predicts the action (3K − 2), so it is not fed; the
   * core's last layer and the heads run for that state token alone (`outputPosition`); the
   * layers below still run on all 3K − 1 tokens, since the last layer's keys and values need them.
   * A KV cache across env steps would not be exact: once the window slides, the first steps'
   * tokens leave it, and every cached state of layer ≥ 2 was computed attending to them.
   */
  lastStepDist(b: DtBatch): DtDist {
    // The last action token is dropped only under the fused attention kernel, whose rows loop
    // over the keys up to their own query; the unfused ops sum softmax terms over all the keys
    // of a row in SIMD lanes (XNNPACK on wasm), where one key more or less regroups the sum and
    // moves results by an ulp. There the token stays (masked by causality, as in `dist`).
    const n = hasFusedAttention(this.coreConfig.headDim) ? 3 * b.length - 1 : 3 * b.length;
    const { x, mask } = this.tokens(b, n);
    const { hidden } = this.core.forwardEmbeddings(x, { attentionMask: mask, outputPosition: 3 * b.length - 2 });
    return this.heads(hidden);
  }

  /** log π(a_t | R̂_≤t, s_≤t, a_<t) of the batch's actions, per step: [B, K], 0 on padding. */
  actionLogProb(b: DtBatch): tf.Tensor2D {
    const { mean, logStd } = this.dist(b);
    const a = tf.tensor3d(b.actions, [b.batchSize, b.length, this.actDim]);
    return tf.mul(tanhGaussianLogProb(a, mean, logStd), tf.tensor2d(b.mask, [b.batchSize, b.length])) as tf.Tensor2D;
  }

  /** Same as `actionLogProb` (the Policy interface). */
  logProb(b: DtBatch): tf.Tensor2D {
    return this.actionLogProb(b);
  }

  /**
   * Entropy estimate per step, −(1/M) Σ_m log π(tanh(μ + σ ε_m)), [B, K], 0 on padding. Noise is
   * drawn from `rng` (required: the estimate is stochastic); M = `samples` (ODT: 1).
   */
  entropy(b: DtBatch, rng?: Rng, samples = 1): tf.Tensor2D {
    if (!rng) throw new Error('DecisionTransformer.entropy: needs an Rng for the sampled estimate');
    const { mean, logStd } = this.dist(b);
    const B = b.batchSize;
    const K = b.length;
    const A = this.actDim;
    let total: tf.Tensor | null = null;
    for (let s = 0; s < samples; s++) {
      const eps = tf.tensor3d(Float32Array.from(rng.normalArray(B * K * A)), [B, K, A]);
      const u = tf.add(mean, tf.mul(tf.exp(logStd), eps));
      const lp = tanhGaussianLogProbPre(u, mean, logStd);
      total = total ? tf.add(total, lp) : lp;
    }
    return tf.mul(tf.mul(total!, -1 / samples), tf.tensor2d(b.mask, [B, K])) as tf.Tensor2D;
  }

  /** The deterministic action tanh(μ) at every step: [B, K, A]. */
  deterministicAction(b: DtBatch): tf.Tensor3D {
    return tf.tanh(this.dist(b).mean);
  }

  /**
   * Acts from context windows (left-padded, current step at position K − 1; its action slot is
   * ignored — it is not even fed, see `lastStepDist`, whose values are `dist`'s). Samples a = tanh(μ + σ ε) with ε
   * from `rng` (or a = tanh(μ) when deterministic); returns actions [B·A] (float32) and their
   * log π computed from the stored float32 action, as `actionLogProb` would.
   */
  act(b: DtBatch, rng: Rng, opts: ActOptions = {}): ActResult<Float32Array> {
    const [mean, logStd] = tf.tidy(() => {
      const d = this.lastStepDist(b);
      return [d.mean.dataSync() as Float32Array, d.logStd.dataSync() as Float32Array];
    });
    return sampleTanhGaussian(mean, logStd, b.batchSize, this.actDim, rng, opts);
  }

  dispose(): void {
    this.params.dispose();
  }
}
