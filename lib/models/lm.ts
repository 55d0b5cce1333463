/**
 * Causal language model: the transformer core plus an LM head.
 *
 *   logits = h · W_lm (+ b)          W_lm = Eᵀ when embeddings are tied, else `lm_head.weight` [D, V]
 *   log π(y_t | x_≤t) = logsoftmax(logits_t)[y_t]
 *   H_t = −Σ_v p_v log p_v            (per-token entropy of the policy at temperature 1)
 *
 * `tokenLogProbs(inputs, targets)` scores `targets[b, t]` given `inputs[b, ≤t]`; for a sequence
 * `seq`, pass inputs = seq[:, :−1], targets = seq[:, 1:]. A target of −1 scores 0 (a one-hot of
 * −1 is all zeros), which is a convenient way to ignore positions. All methods are plain tfjs
 * and work inside `tf.tidy` / `tf.variableGrads`; `variables` lists every trainable variable.
 *
 * ```ts
 * const lm = new CausalLM({ arch: 'llama', vocabSize: 32, dModel: 32, nHeads: 4, nKvHeads: 2 }, { seed: 1 });
 * const x = tf.tensor2d([[1, 5, 7]], [1, 3], 'int32');
 * const y = tf.tensor2d([[5, 7, 2]], [1, 3], 'int32');
 * const lp = tf.tidy(() => lm.tokenLogProbs(x, y));   // [1, 3]
 * const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(lm.tokenLogProbs(x, y))), lm.variables);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { transformerConfig } from './config.ts';
import type { TransformerConfig, TransformerConfigInput } from './config.ts';
import { ParamStore, normal, zeros } from './params.ts';
import { Transformer, linear } from './transformer.ts';
import { logSoftmax } from '../tensor/fused-log-softmax.ts';
import type { ForwardOptions } from './transformer.ts';

/** log softmax(logits)[target] over the last axis; targets of −1 give 0. */
export function logProbsOf(logits: tf.Tensor, targets: tf.Tensor): tf.Tensor {
  const V = logits.shape[logits.rank - 1]!;
  const logp = logSoftmax(logits);
  const onehot = tf.oneHot(tf.cast(targets, 'int32') as tf.Tensor, V);
  return tf.sum(tf.mul(logp, onehot), -1);
}

/** −Σ p log p over the last axis. */
export function entropyOf(logits: tf.Tensor): tf.Tensor {
  const logp = logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
}

export interface CausalLMOptions {
  /** Seed of the parameter init (default 0). */
  seed?: number;
}

export class CausalLM {
  readonly config: TransformerConfig;
  readonly params: ParamStore;
  readonly core: Transformer;

  constructor(config: TransformerConfig | TransformerConfigInput, opts: CausalLMOptions = {}) {
    const cfg = transformerConfig(config);
    if (cfg.vocabSize <= 0) throw new RangeError('CausalLM: config.vocabSize must be positive');
    this.config = cfg;
    this.params = new ParamStore(opts.seed ?? 0);
    this.core = new Transformer(cfg, this.params);
    if (!cfg.tieEmbeddings) this.params.add('lm_head.weight', [cfg.dModel, cfg.vocabSize], normal(cfg.initializerRange));
    if (cfg.lmHeadBias) this.params.add('lm_head.bias', [cfg.vocabSize], zeros());
  }

  /** Every trainable variable (core + head). */
  get variables(): tf.Variable[] {
    return this.params.variables;
  }

  /** The LM head on hidden states [..., D] → [..., V]. */
  head(hidden: tf.Tensor): tf.Tensor {
    const w = this.config.tieEmbeddings ? tf.transpose(this.params.get('embed.weight')) : this.params.get('lm_head.weight');
    return linear(hidden, w, this.params.maybe('lm_head.bias'));
  }

  /** Logits [B, T, V] and, on request, per-layer attention [B, H, T, S]. */
  forward(tokens: tf.Tensor2D, opts: ForwardOptions = {}): { logits: tf.Tensor3D; attentions: tf.Tensor4D[] | null } {
    const { hidden, attentions } = this.core.forward(tokens, opts);
    return { logits: this.head(hidden) as tf.Tensor3D, attentions };
  }

  /** Logits [B, T, V]. */
  logits(tokens: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor3D {
    return this.forward(tokens, opts).logits;
  }

  /** log π(targets[b,t] | inputs[b, ≤t]): [B, T]. */
  tokenLogProbs(inputs: tf.Tensor2D, targets: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return logProbsOf(this.logits(inputs, opts), targets) as tf.Tensor2D;
  }

  /** Per-token entropy of the next-token distribution: [B, T]. */
  entropy(inputs: tf.Tensor2D, opts: ForwardOptions = {}): tf.Tensor2D {
    return entropyOf(this.logits(inputs, opts)) as tf.Tensor2D;
  }

  /** Both from one forward pass. */
  logProbsAndEntropy(inputs: tf.Tensor2D, targets: tf.Tensor2D, opts: ForwardOptions = {}): { logProbs: tf.Tensor2D; entropy: tf.Tensor2D } {
    const logits = this.logits(inputs, opts);
    return { logProbs: logProbsOf(logits, targets) as tf.Tensor2D, entropy: entropyOf(logits) as tf.Tensor2D };
  }

  dispose(): void {
    this.params.dispose();
  }
}
