/**
 * Sampling: batched LM generation with a KV cache, and Decision-Transformer action selection
 * over a rolling context window.
 *
 * LM generation (`generate`): prompts of different lengths are left-padded into one batch
 * (`attentionMask` 0 on padding; positions count real tokens only, so padding changes nothing).
 * One prefill forward fills the cache, then each step feeds the B sampled tokens. At each step,
 * from the policy's next-token log-probs ℓ = logsoftmax(logits) (temperature 1):
 *
 *   z = ℓ / τ;  top-k: keep the k largest z (ties at the k-th kept);  q = softmax(z over kept);
 *   top-p: sort q descending, keep the shortest prefix whose mass reaches p (≥ 1 token), renormalise;
 *   y ~ q (drawn with the given `Rng` on the JS side: deterministic on every backend).
 *
 * Both log-probabilities of each sampled token are returned:
 *   `logProbs[t]`         = ℓ[y_t], the policy's own log π(y_t | ·) at temperature 1 — what a
 *                           training-side `tokenLogProbs` recomputes (use it for importance ratios);
 *   `samplingLogProbs[t]` = log q(y_t), the distribution actually sampled from (after τ, top-k,
 *                           top-p) — the true behaviour probability; 0 under greedy decoding
 *                           (τ = 0).
 * A row stops after emitting a stop token (included in its tokens) or after `maxNewTokens`.
 * Finished rows keep stepping with a masked pad token until every row is done.
 *
 * DT acting (`DtHistory`, `selectDtActions`): each env keeps its (R̂, s, a, t) history; a window
 * of the last K steps, left-padded, is batched across envs and the DT samples the current action.
 *
 * ```ts
 * const lm = new CausalLM({ arch: 'qwen2', vocabSize: 100, dModel: 32, nHeads: 4, nKvHeads: 2 }, { seed: 0 });
 * const out = generate(lm, [[5, 6, 7], [9]], new Rng(1, 'sample'),
 *   { maxNewTokens: 16, temperature: 0.8, topK: 20, topP: 0.95, stopTokens: [2] });
 * out.tokens[0];        // Int32Array of new tokens
 * out.logProbs[0];      // Float32Array, log π at τ = 1
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../random.ts';
import type { DecisionTransformer, DtBatch } from './decision-transformer.ts';
import type { CausalLM } from './lm.ts';
import type { ActOptions } from './policy.ts';
import { KVCache } from './transformer.ts';

export interface SamplingOptions {
  /** Maximum number of new tokens per row. */
  readonly maxNewTokens: number;
  /** τ; 0 means greedy (argmax). Default 1. */
  readonly temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 0. */
  readonly topK?: number;
  /** Nucleus mass p; 1 = off. Default 1. */
  readonly topP?: number;
  /** Tokens that end a row (emitted, then the row stops). */
  readonly stopTokens?: readonly number[];
  /** Token used for left padding and for finished rows (always masked). Default 0. */
  readonly padToken?: number;
  /**
   * Row b draws its tokens from `rowRng(b)` instead of the shared `rng` — several groups sampled as
   * one batch, each from its own stream, give what each gives alone (as `ActOptions.rowRng`).
   */
  readonly rowRng?: (row: number) => Rng;
}

export interface GenerateResult {
  /** New tokens per row (a final stop token included). */
  readonly tokens: Int32Array[];
  /** log π(y_t | ·) at temperature 1 per new token. */
  readonly logProbs: Float32Array[];
  /** log q(y_t) under the sampling distribution (τ, top-k, top-p); 0 when greedy. */
  readonly samplingLogProbs: Float32Array[];
  /** True if the row ended on a stop token. */
  readonly stopped: boolean[];
}

/**
 * Draws one token from log-probs `logp` (length V) under τ / top-k / top-p.
 * Returns the token and log q(token).
 */
export function sampleToken(
  logp: ArrayLike<number>,
  rng: Rng,
  opts: Pick<SamplingOptions, 'temperature' | 'topK' | 'topP'> = {},
): { token: number; samplingLogProb: number } {
  const V = logp.length;
  const tau = opts.temperature ?? 1;
  if (tau === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logp[i]! > logp[best]!) best = i;
    return { token: best, samplingLogProb: 0 };
  }
  if (!(tau > 0)) throw new RangeError(`sampleToken: temperature must be >= 0, got ${tau}`);
  const z = new Float64Array(V);
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    z[i] = logp[i]! / tau;
    if (z[i]! > max) max = z[i]!;
  }
  const keep = new Uint8Array(V).fill(1);
  const topK = opts.topK ?? 0;
  if (topK > 0 && topK < V) {
    const kth = Float64Array.from(z).sort((a, b) => b - a)[topK - 1]!;
    for (let i = 0; i < V; i++) if (z[i]! < kth) keep[i] = 0;
  }
  const q = new Float64Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) {
    if (keep[i]) {
      q[i] = Math.exp(z[i]! - max);
      total += q[i]!;
    }
  }
  for (let i = 0; i < V; i++) q[i] = q[i]! / total;
  const topP = opts.topP ?? 1;
  if (topP < 1) {
    const order = Array.from({ length: V }, (_, i) => i)
      .filter((i) => keep[i])
      .sort((a, b) => q[b]! - q[a]! || a - b);
    let cum = 0;
    let kept = 0;
    for (const i of order) {
      if (cum < topP) {
        cum += q[i]!;
        kept += q[i]!;
      } else q[i] = 0;
    }
    for (let i = 0; i < V; i++) q[i] = q[i]! / kept;
  }
  const token = rng.categorical(q);
  return { token, samplingLogProb: Math.log(q[token]!) };
}

/** Batched sampling with a KV cache from left-padded prompts. See the file comment. */
export function generate(lm: CausalLM, prompts: readonly ArrayLike<number>[], rng: Rng, opts: SamplingOptions): GenerateResult {
  const B = prompts.length;
  if (B === 0) return { tokens: [], logProbs: [], samplingLogProbs: [], stopped: [] };
  const maxNew = opts.maxNewTokens;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new RangeError(`generate.maxNewTokens: expected an integer >= 0, got ${maxNew}`);
  const pad = opts.padToken ?? 0;
  const stop = new Set(opts.stopTokens ?? []);
  const V = lm.config.vocabSize;
  const L = Math.max(...prompts.map((p) => p.length));
  if (prompts.some((p) => p.length === 0)) throw new RangeError('generate: every prompt needs at least one token');
  const ids = new Int32Array(B * L).fill(pad);
  const mask = new Float32Array(B * L);
  prompts.forEach((p, b) => {
    const off = L - p.length;
    for (let t = 0; t < p.length; t++) {
      const tok = p[t]!;
      if (!Number.isInteger(tok) || tok < 0 || tok >= V) throw new RangeError(`generate: prompt ${b} token ${t} is ${tok}, outside [0, ${V})`);
      ids[b * L + off + t] = tok;
      mask[b * L + off + t] = 1;
    }
  });

  const out = Array.from({ length: B }, () => ({ tokens: [] as number[], lp: [] as number[], slp: [] as number[], stopped: false }));
  const done = new Array<boolean>(B).fill(maxNew === 0);
  const cache = new KVCache(lm.config.nLayers);
  try {
    // Next-token log-probs [B·V] at the last position of this forward.
    const step = (tok: Int32Array, m: Float32Array, T: number): Float32Array =>
      tf.tidy(() => {
        const { hidden } = lm.core.forward(tf.tensor2d(tok, [B, T], 'int32'), { attentionMask: tf.tensor2d(m, [B, T]), cache });
        const last = tf.reshape(tf.slice(hidden, [0, T - 1, 0], [B, 1, hidden.shape[2]]), [B, -1]);
        return tf.logSoftmax(lm.head(last)).dataSync() as Float32Array;
      });
    let logp = maxNew > 0 ? step(ids, mask, L) : new Float32Array(0);
    for (let s = 0; s < maxNew; s++) {
      const next = new Int32Array(B).fill(pad);
      const nextMask = new Float32Array(B);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const row = logp.subarray(b * V, (b + 1) * V);
        const { token, samplingLogProb } = sampleToken(row, opts.rowRng?.(b) ?? rng, opts);
        const o = out[b]!;
        o.tokens.push(token);
        o.lp.push(row[token]!);
        o.slp.push(samplingLogProb);
        if (stop.has(token)) {
          o.stopped = true;
          done[b] = true;
        } else if (o.tokens.length >= maxNew) done[b] = true;
        next[b] = token;
        nextMask[b] = 1;
      }
      if (done.every(Boolean)) break;
      logp = step(next, nextMask, 1);
    }
  } finally {
    cache.dispose();
  }
  return {
    tokens: out.map((o) => Int32Array.from(o.tokens)),
    logProbs: out.map((o) => Float32Array.from(o.lp)),
    samplingLogProbs: out.map((o) => Float32Array.from(o.slp)),
    stopped: out.map((o) => o.stopped),
  };
}

// ---------------------------------------------------------------------------------------------
// Decision Transformer acting
// ---------------------------------------------------------------------------------------------

/**
 * One episode's history for a DT: step t holds (R̂_t, s_t, a_t, t). `observe(s, R̂)` opens a step
 * (its action zero until `setAction`); after the env step, `observe(s', R̂ − r)` opens the next
 * one (ODT rollouts keep the intended return-to-go; nothing is relabelled here).
 */
export class DtHistory {
  readonly states: number[][] = [];
  readonly actions: number[][] = [];
  readonly returnsToGo: number[] = [];

  /** `t0`: the env time of the first observed step (a history started from a mid-episode snapshot). */
  constructor(
    readonly stateDim: number,
    readonly actDim: number,
    readonly t0 = 0,
  ) {}

  get length(): number {
    return this.states.length;
  }

  /** Starts a new step with state s and return-to-go R̂. */
  observe(state: ArrayLike<number>, returnToGo: number): void {
    if (state.length !== this.stateDim) throw new RangeError(`DtHistory.observe: state of length ${state.length}, expected ${this.stateDim}`);
    this.states.push(Array.from(state));
    this.actions.push(new Array<number>(this.actDim).fill(0));
    this.returnsToGo.push(returnToGo);
  }

  /** Records the action of the current (last) step. */
  setAction(action: ArrayLike<number>): void {
    if (this.length === 0) throw new Error('DtHistory.setAction: observe a state first');
    if (action.length !== this.actDim) throw new RangeError(`DtHistory.setAction: action of length ${action.length}, expected ${this.actDim}`);
    this.actions[this.length - 1] = Array.from(action);
  }

  clear(): void {
    this.states.length = 0;
    this.actions.length = 0;
    this.returnsToGo.length = 0;
  }
}

/** Packs the last K steps of each history into a left-padded batch (timesteps = step indices). */
export function dtWindowBatch(histories: readonly DtHistory[], K: number): DtBatch {
  const B = histories.length;
  const first = histories[0];
  if (!first) throw new RangeError('dtWindowBatch: no histories');
  const S = first.stateDim;
  const A = first.actDim;
  const states = new Float32Array(B * K * S);
  const actions = new Float32Array(B * K * A);
  const returnsToGo = new Float32Array(B * K);
  const timesteps = new Int32Array(B * K);
  const mask = new Float32Array(B * K);
  histories.forEach((h, b) => {
    if (h.length === 0) throw new RangeError(`dtWindowBatch: history ${b} is empty`);
    const n = Math.min(K, h.length);
    const start = h.length - n;
    for (let j = 0; j < n; j++) {
      const t = start + j;
      const k = b * K + (K - n + j);
      states.set(h.states[t]!, k * S);
      actions.set(h.actions[t]!, k * A);
      returnsToGo[k] = h.returnsToGo[t]!;
      timesteps[k] = h.t0 + t;
      mask[k] = 1;
    }
  });
  return { batchSize: B, length: K, states, actions, returnsToGo, timesteps, mask };
}

/**
 * The current action of every history from one batched DT forward over its last K steps.
 * Records the actions into the histories; returns them ([B·A]) with their log-probs ([B]).
 */
export function selectDtActions(
  dt: DecisionTransformer,
  histories: readonly DtHistory[],
  rng: Rng,
  opts: ActOptions & { contextLength?: number } = {},
): { action: Float32Array; logProb: Float32Array } {
  const K = opts.contextLength ?? dt.contextLength;
  const batch = dtWindowBatch(histories, K);
  // A row whose episode has ended keeps being stepped with its batch (its action is discarded), so
  // its step count can run past the DT's timestep table (HalfCheetah: every episode reaches the
  // 1000-step limit). Such timesteps take the table's last entry. A live row never gets there while
  // maxEpisodeSteps ≥ the env's time limit, so its window is unchanged.
  const last = dt.maxEpisodeSteps - 1;
  for (let k = 0; k < batch.timesteps.length; k++) if (batch.timesteps[k]! > last) batch.timesteps[k] = last;
  const res = dt.act(batch, rng, opts);
  const A = dt.actDim;
  histories.forEach((h, b) => h.setAction(res.action.subarray(b * A, (b + 1) * A)));
  return { action: res.action, logProb: res.logProb };
}
