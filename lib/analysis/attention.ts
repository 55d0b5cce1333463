/**
 * How much attention a language model's response pays to the system prompt (HIPO's attention
 * analysis): per layer, the share of attention mass that response queries put on system-prompt
 * keys, and what the share of system tokens in the context would give by chance.
 *
 * For one example, sequence x = prompt ‖ response (P + R tokens), system positions 𝒮 ⊆ [0, P),
 * query positions 𝒬 (default `queries: 'response'`: the response tokens, t ∈ [P, P + R);
 * `'generating'`: the positions whose next-token distribution produced the response,
 * t ∈ [P − 1, P + R − 1)), layer l with H heads and softmax probabilities a^{l,h}_{t,s}:
 *
 *   share_l   = (1/|𝒬|) Σ_{t∈𝒬} (1/H) Σ_h Σ_{s∈𝒮} a^{l,h}_{t,s}
 *   chance    = (1/|𝒬|) Σ_{t∈𝒬} |𝒮 ∩ [0, t]| / (t + 1)        (uniform attention over the causal context)
 *
 * then each is averaged over examples (every example weighs the same; examples with an empty
 * response are skipped). `mean` is the average of `perLayer`; `chancePerLayer` repeats `chance`
 * (the causal context is the same in every layer), so the two plot side by side.
 *
 * Examples are right-padded into batches of `batchSize`; the forward runs the core (no LM head)
 * with `returnAttention`, and each layer's probabilities are reduced on the backend to the
 * system share [B, T] before download. Peak memory is about batchSize · layers · heads · T²
 * floats: lower `batchSize` for long prompts on a big model. No tensor outlives the call.
 *
 * ```ts
 * const start = suite.toStart(prompt);                    // PromptStart with systemTokens
 * const share = systemAttentionShare(lm, [{ prompt: start.tokens, system: start.systemTokens!, response }]);
 * share.perLayer;                                         // [0.41, 0.37, ...]
 * attentionShareMetrics(share);                           // { 'eval/attention/system_share': ..., ... }
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../models/lm.ts';

export interface AttentionExample {
  /** Prompt token ids (the chat template rendered). */
  readonly prompt: ArrayLike<number>;
  /**
   * Which prompt positions are system-prompt tokens: a count of leading tokens
   * (`PromptStart.systemTokens`) or a 0/1 (or boolean) mask of the prompt's length.
   */
  readonly system: number | ArrayLike<number | boolean>;
  /** The generated response token ids (cut where it stopped; a final stop token may be included). */
  readonly response: ArrayLike<number>;
}

export interface SystemShareOptions {
  /** Examples per forward (default 4). */
  batchSize?: number;
  /** Query positions: the response tokens (default) or the positions that generated them. */
  queries?: 'response' | 'generating';
}

export interface SystemAttentionShare {
  /** Per layer: mean attention share on system tokens. */
  perLayer: number[];
  /** Mean of `perLayer`. */
  mean: number;
  /** Per layer: the share under uniform causal attention (the same value in every layer). */
  chancePerLayer: number[];
  chance: number;
  /** Examples averaged (those with a non-empty response). */
  examples: number;
}

export class AttentionAnalysisError extends Error {
  override readonly name = 'AttentionAnalysisError';
}

/** The system mask of one example (length P), checked. */
function systemMask(ex: AttentionExample, i: number): Uint8Array {
  const P = ex.prompt.length;
  const m = new Uint8Array(P);
  if (typeof ex.system === 'number') {
    if (!Number.isInteger(ex.system) || ex.system < 0 || ex.system > P) {
      throw new AttentionAnalysisError(`systemAttentionShare: examples[${i}].system must be an integer in [0, ${P}] (the prompt's length), got ${ex.system}`);
    }
    m.fill(1, 0, ex.system);
    return m;
  }
  if (ex.system.length !== P) {
    throw new AttentionAnalysisError(`systemAttentionShare: examples[${i}].system mask has ${ex.system.length} entries, the prompt has ${P} tokens`);
  }
  for (let t = 0; t < P; t++) m[t] = ex.system[t] ? 1 : 0;
  return m;
}

/** The query positions of an example with prompt length P and response length R. */
function queryPositions(P: number, R: number, queries: 'response' | 'generating'): number[] {
  const first = queries === 'response' ? P : P - 1;
  return Array.from({ length: R }, (_, j) => first + j);
}

/** Uniform-attention share: mean over queries t of |𝒮 ∩ [0, t]| / (t + 1). */
export function chanceShare(mask: ArrayLike<number | boolean>, queries: readonly number[]): number {
  if (queries.length === 0) return Number.NaN;
  const prefix: number[] = [0];
  for (let s = 0; s < mask.length; s++) prefix.push(prefix[s]! + (mask[s] ? 1 : 0));
  let total = 0;
  for (const t of queries) total += prefix[Math.min(t + 1, mask.length)]! / (t + 1);
  return total / queries.length;
}

/**
 * Per-layer system share and chance for `examples` under `lm` (see the module doc).
 * @param lm the causal LM (its core returns the attention probabilities)
 * @param examples prompts with their system positions and the responses generated for them
 * @return per-layer shares, their mean, and the chance level
 */
export function systemAttentionShare(lm: CausalLM, examples: readonly AttentionExample[], opts: SystemShareOptions = {}): SystemAttentionShare {
  const batchSize = opts.batchSize ?? 4;
  const queries = opts.queries ?? 'response';
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new AttentionAnalysisError(`systemAttentionShare: batchSize must be a positive integer, got ${batchSize}`);
  const V = lm.config.vocabSize;
  const masks = examples.map((ex, i) => {
    if (ex.prompt.length === 0) throw new AttentionAnalysisError(`systemAttentionShare: examples[${i}].prompt is empty`);
    for (const [what, ids] of [
      ['prompt', ex.prompt],
      ['response', ex.response],
    ] as const) {
      for (let t = 0; t < ids.length; t++) {
        const id = ids[t]!;
        if (!Number.isInteger(id) || id < 0 || id >= V) {
          throw new AttentionAnalysisError(`systemAttentionShare: examples[${i}].${what}[${t}] = ${id} is not a token id of this model (vocabulary ${V})`);
        }
      }
    }
    return systemMask(ex, i);
  });
  const used = examples.map((_, i) => i).filter((i) => examples[i]!.response.length > 0);
  if (used.length === 0) throw new AttentionAnalysisError('systemAttentionShare: no example has a non-empty response');
  const nLayers = lm.config.nLayers;
  const layerSums = new Float64Array(nLayers);
  let chanceSum = 0;

  for (let b0 = 0; b0 < used.length; b0 += batchSize) {
    const rows = used.slice(b0, b0 + batchSize);
    const B = rows.length;
    const T = Math.max(...rows.map((i) => examples[i]!.prompt.length + examples[i]!.response.length));
    const ids = new Int32Array(B * T);
    const keep = new Float32Array(B * T);
    const sys = new Float32Array(B * T);
    rows.forEach((i, r) => {
      const ex = examples[i]!;
      const P = ex.prompt.length;
      for (let t = 0; t < P; t++) ids[r * T + t] = ex.prompt[t]!;
      for (let j = 0; j < ex.response.length; j++) ids[r * T + P + j] = ex.response[j]!;
      keep.fill(1, r * T, r * T + P + ex.response.length);
      masks[i]!.forEach((m, t) => (sys[r * T + t] = m));
    });
    // Per layer [B, T]: Σ_{s∈𝒮} a_{t,s}, averaged over heads (right padding: real tokens never see padding).
    const perLayer = tf.tidy(() => {
      const { attentions } = lm.core.forward(tf.tensor2d(ids, [B, T], 'int32'), {
        attentionMask: tf.tensor2d(keep, [B, T]),
        returnAttention: true,
      });
      const sysKeys = tf.tensor4d(sys, [B, 1, 1, T]);
      return attentions!.map((a) => tf.mean(tf.sum(tf.mul(a, sysKeys), 3), 1));
    });
    const data = perLayer.map((x) => x.dataSync() as Float32Array);
    tf.dispose(perLayer);
    rows.forEach((i, r) => {
      const ex = examples[i]!;
      const q = queryPositions(ex.prompt.length, ex.response.length, queries);
      for (let l = 0; l < nLayers; l++) {
        let s = 0;
        for (const t of q) s += data[l]![r * T + t]!;
        layerSums[l] = layerSums[l]! + s / q.length;
      }
      chanceSum += chanceShare(masks[i]!, q);
    });
  }
  const perLayer = Array.from(layerSums, (s) => s / used.length);
  const chance = chanceSum / used.length;
  return {
    perLayer,
    mean: perLayer.reduce((a, b) => a + b, 0) / nLayers,
    chancePerLayer: perLayer.map(() => chance),
    chance,
    examples: used.length,
  };
}

/**
 * The metric record of a share: `<prefix>/system_share`, `<prefix>/system_share/layer_<i>`,
 * `<prefix>/chance` (prefix `eval/attention` by default).
 */
export function attentionShareMetrics(share: SystemAttentionShare, prefix = 'eval/attention'): Record<string, number> {
  const out: Record<string, number> = { [`${prefix}/system_share`]: share.mean, [`${prefix}/chance`]: share.chance };
  share.perLayer.forEach((v, i) => (out[`${prefix}/system_share/layer_${i}`] = v));
  return out;
}
