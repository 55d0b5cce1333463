/**
 * The transformer core: one decoder-only stack in plain tfjs ops, variant chosen by config
 * (`gpt2`, `llama`, `qwen2`, `phi`; see `config.ts`). Reads top to bottom like nanoGPT.
 *
 *   x₀ = E[tokens] (+ P[positions] if learned)                     [B, T, D]
 *   sequential block (gpt2/llama/qwen2):  x ← x + Attn(N₁(x));  x ← x + MLP(N₂(x))
 *   parallel block (phi):                 x ← x + Attn(N₁(x)) + MLP(N₁(x))
 *   h = N_f(x)                                                      (the result; heads in lm.ts)
 *
 *   LayerNorm(x) = (x − μ)/√(σ² + ε) · γ + β      RMSNorm(x) = x/√(mean(x²) + ε) · γ
 *   MLP standard: down(act(up x))                  gated (SwiGLU): down(silu(gate x) ⊙ up x)
 *   Attn: q = x·W_q (+b), k, v likewise; RoPE on the first r = ⌊f·d_h⌋ dims of q, k:
 *     (x₁, x₂) ↦ (x₁ cos θ − x₂ sin θ, x₂ cos θ + x₁ sin θ), θ_j = pos · base^(−2j/r)
 *     (HF's rotate_half layout: x₁ = dims [0, r/2), x₂ = [r/2, r));
 *   scores = q kᵀ/√d_h + bias, bias = −1e9 where key s > query t (causal) or key is padding;
 *   softmax over keys, · v, heads concatenated, · W_o (+b).
 *   Grouped-query attention: query head h uses kv head ⌊h / (H/H_kv)⌋ — computed by viewing
 *   q [B, H, T, d] as [B·H_kv, G·T, d] (a free reshape), so K/V are never repeated.
 *
 * Padding: `attentionMask` [B, T] (1 real, 0 pad) masks keys; positions default to
 * max(cumsum(mask) − 1, 0), so a left-padded row sees the same positions (hence the same logits)
 * as the unpadded sequence. Works for left or right padding.
 *
 * KV cache (`KVCache`): inference only. Keys are cached pre-transposed [B, H_kv, d, S] and values
 * as [B, H_kv, S, d]; each forward appends T steps (concat) and keeps the new tensors
 * (`tf.keep`), disposing the old ones, so forwards may run inside `tf.tidy`. Do not use a cache
 * under `tf.variableGrads` (the old tensors are disposed).
 *
 * Attention weights: `{ returnAttention: true }` also returns softmax probabilities [B, H, T, S]
 * per layer; the default path keeps nothing extra.
 *
 * One output position (`{ outputPosition: p }`, for acting and sampling, where one position's
 * output is read, e.g. p = T − 1): every layer but the last runs on all T positions as usual (the
 * last layer's keys and values need them all); the last layer computes its attention output, o
 * projection, residual, norm and MLP, and the final norm, for position p alone, so `hidden` is
 * [B, 1, D]. Nothing is approximated: every skipped op is per position or the attention row of
 * another query, so the values are the full forward's at p (test/transformer-output-position.test.ts
 * checks them bit for bit on cpu and wasm, fused and unfused, with and without a cache).
 *
 * Speed (docs/performance.md): q, k, v come from one product with the concatenated weights;
 * without a cache, attention is one fused kernel (lib/tensor/fused-attention.ts), and LayerNorm
 * and tanh-GELU have fused kernels / hand-written gradients (lib/tensor/fused-*.ts). Each is
 * tested against the plain ops it replaces, which remain the path on other backends.
 *
 * ```ts
 * const cfg = transformerConfig({ arch: 'gpt2', vocabSize: 50, dModel: 32, nLayers: 2, nHeads: 4 });
 * const core = new Transformer(cfg, new ParamStore(0));
 * const { hidden, attentions } = tf.tidy(() =>
 *   core.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), { returnAttention: true }));
 * hidden.shape; // [1, 3, 32]; attentions![0]!.shape: [1, 4, 3, 3]
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { rotaryDim } from './config.ts';
import type { Activation, TransformerConfig } from './config.ts';
import { normal, ones, zeros } from './params.ts';
import { geluTanh } from '../tensor/fused-gelu.ts';
import { layerNorm as fusedLayerNorm } from '../tensor/fused-layernorm.ts';
import { causalAttention, hasFusedAttention } from '../tensor/fused-attention.ts';
import type { ParamStore } from './params.ts';

/** Additive bias for masked attention scores (finite, so fully masked rows stay NaN-free). */
export const MASK_VALUE = -1e9;

// ---------------------------------------------------------------------------------------------
// Building blocks (exported for tests and for other heads)
// ---------------------------------------------------------------------------------------------

/** y = x·W + b over the last axis; x of any rank ≥ 2, W [in, out]. Runs one 2-D matMul. */
export function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor | null): tf.Tensor {
  const inDim = x.shape[x.rank - 1]!;
  const outDim = w.shape[1]!;
  const lead = x.shape.slice(0, -1);
  let y = tf.matMul(tf.reshape(x, [-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D) as tf.Tensor;
  if (b) y = tf.add(y, b);
  return tf.reshape(y, [...lead, outDim]);
}

/** LayerNorm over the last axis: (x − μ)/√(σ² + ε)·γ + β (fused: lib/tensor/fused-layernorm.ts). */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor | null, eps: number): tf.Tensor {
  return fusedLayerNorm(x, gamma, beta, eps);
}

/** RMSNorm over the last axis: x/√(mean(x²) + ε)·γ. */
export function rmsNorm(x: tf.Tensor, gamma: tf.Tensor, eps: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), x.rank - 1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), gamma);
}

/** The activation functions (GELU via tanh: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))). */
export function activate(x: tf.Tensor, kind: Activation): tf.Tensor {
  switch (kind) {
    case 'relu':
      return tf.relu(x);
    case 'silu':
      return tf.mul(x, tf.sigmoid(x));
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    case 'gelu_tanh':
      return geluTanh(x); // ½x(1 + tanh(√(2/π)(x + 0.044715x³))), hand-written gradient
  }
}

/** RoPE inverse frequencies base^(−2j/r), j < r/2 (computed in float64, stored float32). */
export function ropeInvFreq(rotDim: number, theta: number): Float32Array {
  const half = rotDim / 2;
  const out = new Float32Array(half);
  for (let j = 0; j < half; j++) out[j] = 1 / theta ** ((2 * j) / rotDim);
  return out;
}

/** cos θ and sin θ for positions [B|1, T] (int or float): each [B|1, T, 1, r/2]. */
export function ropeCosSin(positions: tf.Tensor2D, rotDim: number, theta: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const half = rotDim / 2;
  const inv = tf.tensor3d(ropeInvFreq(rotDim, theta), [1, 1, half]);
  const pos = tf.expandDims(tf.cast(positions, 'float32'), 2); // [B, T, 1]
  const ang = tf.expandDims(tf.mul(pos, inv), 2) as tf.Tensor4D; // [B, T, 1, half]
  return { cos: tf.cos(ang), sin: tf.sin(ang) };
}

/** Rotates the first `rotDim` dims of each head of x [B, T, H, d] (rotate_half layout). */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D, rotDim: number): tf.Tensor4D {
  const d = x.shape[3];
  const half = rotDim / 2;
  const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
  const r1 = tf.sub(tf.mul(x1, cos), tf.mul(x2, sin));
  const r2 = tf.add(tf.mul(x2, cos), tf.mul(x1, sin));
  const parts: tf.Tensor[] = [r1, r2];
  if (rotDim < d) parts.push(tf.slice(x, [0, 0, 0, rotDim], [-1, -1, -1, d - rotDim]));
  return tf.concat(parts, 3) as tf.Tensor4D;
}

/**
 * The additive attention bias [B|1, 1, T, S] for T queries after `past` cached steps:
 * MASK_VALUE where key s > past + t (future) or keyMask[b, s] = 0 (padding).
 */
export function attentionBias(T: number, past: number, keyMask: tf.Tensor2D | null): tf.Tensor4D {
  const S = past + T;
  const causal = new Float32Array(T * S);
  for (let t = 0; t < T; t++) for (let s = past + t + 1; s < S; s++) causal[t * S + s] = MASK_VALUE;
  const bias = tf.tensor4d(causal, [1, 1, T, S]);
  if (!keyMask) return bias;
  const B = keyMask.shape[0];
  const pad = tf.reshape(tf.mul(tf.sub(1, keyMask), MASK_VALUE), [B, 1, 1, S]);
  return tf.add(bias, pad) as tf.Tensor4D;
}

// ---------------------------------------------------------------------------------------------
// KV cache
// ---------------------------------------------------------------------------------------------

/** Per-layer cached keys [B, H_kv, d, S] (transposed) and values [B, H_kv, S, d]. */
export class KVCache {
  readonly layers: ({ k: tf.Tensor4D; v: tf.Tensor4D } | null)[];
  /** [B, S]: 1 for real keys, 0 for padding. */
  keyMask: tf.Tensor2D | null = null;
  /** [B, 1]: real tokens seen so far per row (the next position). */
  seen: tf.Tensor2D | null = null;
  /** Cached steps S. */
  length = 0;

  constructor(nLayers: number) {
    this.layers = new Array(nLayers).fill(null);
  }

  /** Frees every cached tensor; the cache is then empty. */
  dispose(): void {
    for (let i = 0; i < this.layers.length; i++) {
      const l = this.layers[i];
      if (l) tf.dispose([l.k, l.v]);
      this.layers[i] = null;
    }
    if (this.keyMask) this.keyMask.dispose();
    if (this.seen) this.seen.dispose();
    this.keyMask = null;
    this.seen = null;
    this.length = 0;
  }
}

/** x[:, p : p + 1] of x [B, T, …]. */
function atPosition<T extends tf.Tensor>(x: T, p: number): T {
  const begin = x.shape.map((_, a) => (a === 1 ? p : 0));
  const size = x.shape.map((n, a) => (a === 1 ? 1 : n));
  return tf.slice(x, begin, size);
}

/** f, called once on first use. */
function memo<T>(f: () => T): () => T {
  let value: T | undefined;
  return () => {
    value ??= f();
    return value;
  };
}

function replaceKept<T extends tf.Tensor>(old: T | null, next: T): T {
  tf.keep(next);
  if (old && old !== next) old.dispose();
  return next;
}

// ---------------------------------------------------------------------------------------------
// The core
// ---------------------------------------------------------------------------------------------

export interface ForwardOptions {
  /** [B, T] 1 = real token, 0 = padding (for the new tokens only when a cache is used). */
  attentionMask?: tf.Tensor2D | undefined;
  /** [B|1, T] int positions; default from the mask (and the cache), or 0..T−1. */
  positions?: tf.Tensor2D | undefined;
  /** Attend to and extend this cache (inference only). */
  cache?: KVCache | undefined;
  /** Also return per-layer attention probabilities [B, H, T, S] ([B, H, 1, S] in the last layer with `outputPosition`). */
  returnAttention?: boolean | undefined;
  /** Run the last layer and the final norm for this one position of the T new ones: `hidden` is [B, 1, D]. */
  outputPosition?: number | undefined;
}

export interface ForwardResult {
  /** Final-norm hidden states [B, T, D] ([B, 1, D] with `outputPosition`). */
  readonly hidden: tf.Tensor3D;
  /** Per-layer attention probabilities [B, H, T, S], only with `returnAttention`. */
  readonly attentions: tf.Tensor4D[] | null;
}

/** Per-forward context shared by all layers. */
interface Ctx {
  B: number;
  T: number;
  past: number;
  /** [B, S] 1 = real key, 0 = padding; null: no padding. */
  keyMask: tf.Tensor2D | null;
  /** The additive attention bias [B|1, 1, T, S], built on first use (the fused kernel needs none). */
  bias: () => tf.Tensor4D;
  rope: { cos: tf.Tensor4D; sin: tf.Tensor4D } | null;
  cache: KVCache | null;
  attentions: tf.Tensor4D[] | null;
}

export class Transformer {
  /** Names of the parameters this core owns (in its store). */
  readonly paramNames: readonly string[];
  private readonly rotDim: number;

  /** Creates (and initialises from the store's seed) the core's parameters in `params`. */
  constructor(
    readonly config: TransformerConfig,
    readonly params: ParamStore,
  ) {
    const c = config;
    const before = new Set(params.names());
    const std = c.initializerRange;
    const residStd = std / Math.sqrt(2 * c.nLayers); // GPT-2's scaled init of residual projections
    const D = c.dModel;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    const addNorm = (name: string): void => {
      params.add(`${name}.weight`, [D], ones());
      if (c.norm === 'layernorm') params.add(`${name}.bias`, [D], zeros());
    };
    const addLinear = (name: string, i: number, o: number, bias: boolean, s = std): void => {
      params.add(`${name}.weight`, [i, o], normal(s));
      if (bias) params.add(`${name}.bias`, [o], zeros());
    };
    if (c.vocabSize > 0) params.add('embed.weight', [c.vocabSize, D], normal(std));
    if (c.positionEmbedding === 'learned') params.add('pos_embed.weight', [c.maxPositions, D], normal(std));
    for (let i = 0; i < c.nLayers; i++) {
      const p = `layers.${i}`;
      addNorm(`${p}.ln1`);
      addLinear(`${p}.attn.q`, D, qDim, c.qkvBias);
      addLinear(`${p}.attn.k`, D, kvDim, c.qkvBias);
      addLinear(`${p}.attn.v`, D, kvDim, c.qkvBias);
      addLinear(`${p}.attn.o`, qDim, D, c.attnOutBias, residStd);
      if (!c.parallelResidual) addNorm(`${p}.ln2`);
      if (c.mlp === 'gated') addLinear(`${p}.mlp.gate`, D, c.dFF, c.mlpBias);
      addLinear(`${p}.mlp.up`, D, c.dFF, c.mlpBias);
      addLinear(`${p}.mlp.down`, c.dFF, D, c.mlpBias, residStd);
    }
    addNorm('norm');
    this.paramNames = params.names().filter((n) => !before.has(n));
    this.rotDim = c.positionEmbedding === 'rope' ? rotaryDim(c) : 0;
  }

  /** The core's trainable variables. */
  get variables(): tf.Variable[] {
    return this.paramNames.map((n) => this.params.get(n)).filter((v) => v.trainable);
  }

  /** Token embeddings E[tokens]: [B, T] int → [B, T, D]. */
  embed(tokens: tf.Tensor2D): tf.Tensor3D {
    if (this.config.vocabSize === 0) throw new Error('Transformer.embed: this core has no token embedding (vocabSize 0)');
    const ids = tokens.dtype === 'int32' ? tokens : tf.cast(tokens, 'int32');
    return tf.gather(this.params.get('embed.weight'), ids) as tf.Tensor3D;
  }

  /** Embeds tokens and runs the stack. */
  forward(tokens: tf.Tensor2D, opts: ForwardOptions = {}): ForwardResult {
    return this.forwardEmbeddings(this.embed(tokens), opts);
  }

  /** Runs the stack on input embeddings x [B, T, D] (adds learned positions if configured). */
  forwardEmbeddings(x: tf.Tensor3D, opts: ForwardOptions = {}): ForwardResult {
    const c = this.config;
    const [B, T] = x.shape;
    const cache = opts.cache ?? null;
    const past = cache?.length ?? 0;
    if (opts.attentionMask && (opts.attentionMask.shape[0] !== B || opts.attentionMask.shape[1] !== T)) {
      throw new RangeError(`Transformer.forward: attentionMask must be [${B}, ${T}], got [${opts.attentionMask.shape.join(', ')}]`);
    }
    const at = opts.outputPosition ?? null;
    if (at !== null && !(Number.isInteger(at) && at >= 0 && at < T)) {
      throw new RangeError(`Transformer.forward: outputPosition must be an integer in [0, ${T}), got ${at}`);
    }
    if (c.positionEmbedding === 'learned' && past + T > c.maxPositions) {
      throw new RangeError(`Transformer.forward: ${past + T} positions exceed maxPositions ${c.maxPositions}`);
    }

    // Masks and positions. Without a mask or cache: causal bias only, positions 0..T−1.
    // Positions count real tokens: max(seen + cumsum(mask) − 1, 0), seen = real tokens cached.
    const needPositions = c.positionEmbedding !== 'none';
    let keyMask: tf.Tensor2D | null = null;
    let positions: tf.Tensor2D | null = opts.positions ?? null;
    if (!cache && !opts.attentionMask) {
      if (needPositions && !positions) positions = tf.reshape(tf.range(0, T, 1, 'int32'), [1, T]) as tf.Tensor2D;
    } else {
      const m = opts.attentionMask ? tf.cast(opts.attentionMask, 'float32') : tf.ones([B, T]);
      const seen0 = cache?.seen ?? tf.zeros([B, 1]);
      if (needPositions && !positions) {
        positions = tf.cast(tf.relu(tf.sub(tf.add(seen0, tf.cumsum(m, 1)), 1)), 'int32') as tf.Tensor2D;
      }
      keyMask = m as tf.Tensor2D;
      if (cache) {
        if (cache.keyMask && cache.keyMask.shape[0] !== B) {
          throw new RangeError(`Transformer.forward: batch ${B} does not match the cache's ${cache.keyMask.shape[0]}`);
        }
        // Fresh tensors (never the caller's mask object): the cache keeps and later disposes them.
        keyMask = (cache.keyMask ? tf.concat([cache.keyMask, m], 1) : tf.clone(m)) as tf.Tensor2D;
        cache.seen = replaceKept(cache.seen, tf.add(seen0, tf.sum(m, 1, true)) as tf.Tensor2D);
        cache.keyMask = replaceKept(cache.keyMask, keyMask);
      }
    }

    let h: tf.Tensor3D = x;
    if (c.positionEmbedding === 'learned') h = tf.add(h, tf.gather(this.params.get('pos_embed.weight'), positions!));
    const ctx: Ctx = {
      B,
      T,
      past,
      keyMask,
      bias: memo(() => attentionBias(T, past, keyMask)),
      rope: c.positionEmbedding === 'rope' ? ropeCosSin(positions!, this.rotDim, c.ropeTheta) : null,
      cache,
      attentions: opts.returnAttention ? [] : null,
    };
    for (let i = 0; i < c.nLayers; i++) h = this.block(h, i, ctx, i === c.nLayers - 1 ? at : null);
    if (cache) cache.length = past + T;
    return { hidden: this.norm(h, 'norm') as tf.Tensor3D, attentions: ctx.attentions };
  }

  private norm(x: tf.Tensor, name: string): tf.Tensor {
    const c = this.config;
    const g = this.params.get(`${name}.weight`);
    return c.norm === 'rmsnorm' ? rmsNorm(x, g, c.normEps) : layerNorm(x, g, this.params.maybe(`${name}.bias`), c.normEps);
  }

  private lin(x: tf.Tensor, name: string): tf.Tensor {
    return linear(x, this.params.get(`${name}.weight`), this.params.maybe(`${name}.bias`));
  }

  /** h·[W_q W_k W_v] (+ biases): one product instead of three (the parameters stay separate). */
  private qkv(h: tf.Tensor, p: string): tf.Tensor {
    const w = ['q', 'k', 'v'].map((n) => this.params.get(`${p}.${n}.weight`));
    const b = ['q', 'k', 'v'].map((n) => this.params.maybe(`${p}.${n}.bias`));
    return linear(h, tf.concat(w, 1), b[0] ? tf.concat(b as tf.Tensor[]) : null);
  }

  /**
   * One layer. `at` (a position, or null for all): the residual stream leaves it for that
   * position alone — the norm N₁ still runs on all positions (their keys and values), everything
   * after the attention on position `at`.
   */
  private block(x: tf.Tensor3D, i: number, ctx: Ctx, at: number | null): tf.Tensor3D {
    const p = `layers.${i}`;
    const xq = at === null ? x : atPosition(x, at);
    if (this.config.parallelResidual) {
      const h = this.norm(x, `${p}.ln1`);
      return tf.add(tf.add(xq, this.attention(h, i, ctx, at)), this.mlp(at === null ? h : atPosition(h, at), p));
    }
    const x1 = tf.add(xq, this.attention(this.norm(x, `${p}.ln1`), i, ctx, at)) as tf.Tensor3D;
    return tf.add(x1, this.mlp(this.norm(x1, `${p}.ln2`), p));
  }

  private mlp(h: tf.Tensor, p: string): tf.Tensor {
    const c = this.config;
    const up = this.lin(h, `${p}.mlp.up`);
    const a = c.mlp === 'gated' ? tf.mul(activate(this.lin(h, `${p}.mlp.gate`), c.activation), up) : activate(up, c.activation);
    return this.lin(a, `${p}.mlp.down`);
  }

  /** Self-attention of h [B, T, D] → [B, T, D], or → [B, 1, D] for the query at position `at` alone. */
  private attention(h: tf.Tensor, i: number, ctx: Ctx, at: number | null): tf.Tensor {
    const c = this.config;
    const { B, T, past } = ctx;
    const H = c.nHeads;
    const Hkv = c.nKvHeads;
    const G = H / Hkv;
    const d = c.headDim;
    const S = past + T;
    const p = `layers.${i}.attn`;

    // q, k, v. Without a cache: one product x·[W_q W_k W_v] (+ [b_q b_k b_v]), split along the
    // last axis. With one (decoding): three products, since XNNPACK keeps each weight matrix
    // packed across steps, which a freshly concatenated one would lose.
    const [qf, kf, vf] = ctx.cache
      ? [this.lin(h, `${p}.q`), this.lin(h, `${p}.k`), this.lin(h, `${p}.v`)]
      : (tf.split(this.qkv(h, p), [H * d, Hkv * d, Hkv * d], 2) as [tf.Tensor, tf.Tensor, tf.Tensor]);
    let q = tf.reshape(qf, [B, T, H, d]) as tf.Tensor4D;
    let k = tf.reshape(kf, [B, T, Hkv, d]) as tf.Tensor4D;
    const v = tf.reshape(vf, [B, T, Hkv, d]) as tf.Tensor4D;
    if (ctx.rope) {
      q = applyRope(q, ctx.rope.cos, ctx.rope.sin, this.rotDim);
      k = applyRope(k, ctx.rope.cos, ctx.rope.sin, this.rotDim);
    }
    // Without a cache (training, scoring): one fused kernel where the backend has it
    // (lib/tensor/fused-attention.ts; the same result as the ops below). For one query it
    // still runs all T (a few kFLOP per query, against the D² per position that the
    // projections and the MLP skip) and keeps that row, so the row is the full forward's.
    if (!ctx.cache && !ctx.attentions && hasFusedAttention(d)) {
      let o = causalAttention(q, k, v, ctx.keyMask) as tf.Tensor4D;
      if (at !== null) o = atPosition(o, at);
      return this.lin(tf.reshape(o, [B, o.shape[1], H * d]), `${p}.o`);
    }
    // Tq queries: T, or the one at `at` (with its row of the bias).
    const Tq = at === null ? T : 1;
    let bias = ctx.bias();
    if (at !== null) {
      q = atPosition(q, at);
      bias = tf.slice(bias, [0, 0, at, 0], [-1, -1, 1, -1]);
    }
    // q: [B, H, Tq, d] viewed as [B·Hkv, G·Tq, d]; kᵀ: [B, Hkv, d, S]; v: [B, Hkv, S, d].
    const qh = tf.reshape(tf.mul(tf.transpose(q, [0, 2, 1, 3]), 1 / Math.sqrt(d)), [B * Hkv, G * Tq, d]) as tf.Tensor3D;
    let kT = tf.transpose(k, [0, 2, 3, 1]) as tf.Tensor4D;
    let vh = tf.transpose(v, [0, 2, 1, 3]) as tf.Tensor4D;
    const cache = ctx.cache;
    if (cache) {
      const prev = cache.layers[i];
      if (prev) {
        kT = tf.concat([prev.k, kT], 3) as tf.Tensor4D;
        vh = tf.concat([prev.v, vh], 2) as tf.Tensor4D;
      }
      cache.layers[i] = { k: replaceKept(prev?.k ?? null, kT), v: replaceKept(prev?.v ?? null, vh) };
    }
    const scores = tf.matMul(qh, tf.reshape(kT, [B * Hkv, d, S]) as tf.Tensor3D);
    const probs = tf.softmax(tf.add(tf.reshape(scores, [B, H, Tq, S]), bias)) as tf.Tensor4D;
    if (ctx.attentions) ctx.attentions.push(probs);
    const out = tf.matMul(tf.reshape(probs, [B * Hkv, G * Tq, S]) as tf.Tensor3D, tf.reshape(vh, [B * Hkv, S, d]) as tf.Tensor3D);
    const merged = tf.reshape(tf.transpose(tf.reshape(out, [B, H, Tq, d]), [0, 2, 1, 3]), [B, Tq, H * d]);
    return this.lin(merged, `${p}.o`);
  }
}
