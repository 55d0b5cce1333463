/**
 * An independent float64 reference forward pass of Hugging Face causal LMs (GPT-2, Llama, Qwen2,
 * Phi), written from the HF modeling code's math with plain loops over the HF-named weights in HF
 * layout. It shares no code with lib/models: it exists to check the loader + core end to end.
 *
 *   GPT-2  (GPT2LMHeadModel): x = wte[tok] + wpe[pos]; per block
 *          x += c_proj(attn(ln_1(x)))  with q|k|v = split(c_attn(ln_1 x)), Conv1D weights [in, out];
 *          x += mlp.c_proj(gelu_new(c_fc(ln_2 x))); logits = ln_f(x) · wteᵀ.
 *   Llama  (LlamaForCausalLM): x = embed[tok]; x += o_proj(attn(rms(x))); x += down(silu(gate(rms x)) ⊙ up(rms x));
 *          logits = lm_head(norm(x)); Linear weights [out, in]; RoPE in the rotate_half form
 *          q·cos + rotate_half(q)·sin with cos/sin of cat(freqs, freqs); GQA via repeat_kv
 *          (query head h reads kv head ⌊h / n_rep⌋).
 *   Qwen2  Llama + biases on q/k/v projections (used whenever present), optionally tied head.
 *   Phi    (PhiForCausalLM): parallel block x += dense(attn(ln(x))) + fc2(gelu_new(fc1(ln(x))));
 *          RoPE (rotate_half) on the first ⌊partial_rotary_factor · head_dim⌋ dims of each head;
 *          logits = lm_head(final_layernorm(x)) + lm_head.bias.
 */

export type HfArchName = 'gpt2' | 'llama' | 'qwen2' | 'phi';

export interface RefTensor {
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
}

type Vec = Float64Array;

function get(w: Readonly<Record<string, RefTensor>>, name: string): RefTensor {
  const t = w[name];
  if (!t) throw new Error(`reference forward: missing weight ${name}`);
  return t;
}

/** torch Linear: weight [out, in]; y_o = Σ_i W[o, i] x_i + b_o. */
function linearOutIn(x: Vec, w: RefTensor, b: RefTensor | undefined): Vec {
  const [out, inn] = w.shape as [number, number];
  if (x.length !== inn) throw new Error(`reference forward: linear expects ${inn} inputs, got ${x.length}`);
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[o]! : 0;
    for (let i = 0; i < inn; i++) s += w.data[o * inn + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/** GPT-2 Conv1D: weight [in, out]; y_o = Σ_i W[i, o] x_i + b_o. */
function conv1d(x: Vec, w: RefTensor, b: RefTensor | undefined): Vec {
  const [inn, out] = w.shape as [number, number];
  if (x.length !== inn) throw new Error(`reference forward: conv1d expects ${inn} inputs, got ${x.length}`);
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[o]! : 0;
    for (let i = 0; i < inn; i++) s += w.data[i * out + o]! * x[i]!;
    y[o] = s;
  }
  return y;
}

function layerNorm(x: Vec, g: RefTensor, b: RefTensor | undefined, eps: number): Vec {
  const n = x.length;
  let mu = 0;
  for (let i = 0; i < n; i++) mu += x[i]!;
  mu /= n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mu) ** 2;
  v /= n;
  const r = 1 / Math.sqrt(v + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = (x[i]! - mu) * r * g.data[i]! + (b ? b.data[i]! : 0);
  return y;
}

function rmsNorm(x: Vec, g: RefTensor, eps: number): Vec {
  const n = x.length;
  let ms = 0;
  for (let i = 0; i < n; i++) ms += x[i]! * x[i]!;
  ms /= n;
  const r = 1 / Math.sqrt(ms + eps);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = g.data[i]! * (x[i]! * r);
  return y;
}

/** HF's gelu_new / NewGELUActivation: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))). */
const geluNew = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number): number => x / (1 + Math.exp(-x));

/**
 * HF rotary embedding on one head vector `x` (length headDim) at position `pos`, rotating the first
 * `rot` dims: inv_freq_j = θ^(−2j/rot); emb = cat(freqs, freqs); x_rot·cos + rotate_half(x_rot)·sin,
 * rotate_half(v) = cat(−v[rot/2:], v[:rot/2]); the remaining dims pass through.
 */
function rope(x: Vec, pos: number, rot: number, theta: number): Vec {
  const half = rot / 2;
  const cos = new Float64Array(rot);
  const sin = new Float64Array(rot);
  for (let j = 0; j < half; j++) {
    const f = pos / theta ** ((2 * j) / rot);
    cos[j] = cos[j + half] = Math.cos(f);
    sin[j] = sin[j + half] = Math.sin(f);
  }
  const rh = new Float64Array(rot);
  for (let j = 0; j < half; j++) {
    rh[j] = -x[j + half]!;
    rh[j + half] = x[j]!;
  }
  const y = Float64Array.from(x);
  for (let j = 0; j < rot; j++) y[j] = x[j]! * cos[j]! + rh[j]! * sin[j]!;
  return y;
}

/** Causal multi-head attention with GQA over per-position q [T][H·d], k, v [T][Hkv·d]. */
function attention(q: Vec[], k: Vec[], v: Vec[], H: number, Hkv: number, d: number, probsOut?: Vec[][]): Vec[] {
  const T = q.length;
  if (probsOut) for (let h = 0; h < H; h++) probsOut.push(Array.from({ length: T }, () => new Float64Array(T)));
  const nRep = H / Hkv;
  const out: Vec[] = [];
  for (let t = 0; t < T; t++) {
    const o = new Float64Array(H * d);
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / nRep);
      const scores = new Float64Array(t + 1);
      let mx = -Infinity;
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[t]![h * d + i]! * k[s]![kh * d + i]!;
        scores[s] = dot / Math.sqrt(d);
        mx = Math.max(mx, scores[s]!);
      }
      let z = 0;
      for (let s = 0; s <= t; s++) z += scores[s] = Math.exp(scores[s]! - mx);
      for (let s = 0; s <= t; s++) {
        const p = scores[s]! / z;
        if (probsOut) probsOut[h]![t]![s] = p;
        for (let i = 0; i < d; i++) o[h * d + i] = o[h * d + i]! + p * v[s]![kh * d + i]!;
      }
    }
    out.push(o);
  }
  return out;
}

function applyRopeAll(x: Vec, heads: number, d: number, pos: number, rot: number, theta: number): Vec {
  const y = new Float64Array(x.length);
  for (let h = 0; h < heads; h++) y.set(rope(x.subarray(h * d, (h + 1) * d), pos, rot, theta), h * d);
  return y;
}

/**
 * Logits [T][V] for one token sequence. `cfg` is the HF config.json object. With `attentions`,
 * also collects each layer's softmax probabilities [H][T][T] (zeros above the diagonal).
 */
export function referenceLogits(
  arch: HfArchName,
  cfg: Record<string, any>,
  weights: Readonly<Record<string, RefTensor>>,
  tokens: readonly number[],
  attentions?: Vec[][][],
): Vec[] {
  const layerProbs = (): Vec[][] | undefined => {
    if (!attentions) return undefined;
    const probs: Vec[][] = [];
    attentions.push(probs);
    return probs;
  };
  // Accept both "transformer."/"model."-prefixed names and bare base-model names.
  const w: Record<string, RefTensor> = {};
  for (const [n, t] of Object.entries(weights)) w[n.replace(/^(transformer|model)\./, '')] = t;

  if (arch === 'gpt2') {
    const D = cfg['n_embd'] as number;
    const H = cfg['n_head'] as number;
    const d = D / H;
    const eps = (cfg['layer_norm_epsilon'] as number) ?? 1e-5;
    const wte = get(w, 'wte.weight');
    const wpe = get(w, 'wpe.weight');
    let x: Vec[] = tokens.map((tok, t) => {
      const e = new Float64Array(D);
      for (let i = 0; i < D; i++) e[i] = wte.data[tok * D + i]! + wpe.data[t * D + i]!;
      return e;
    });
    for (let l = 0; l < (cfg['n_layer'] as number); l++) {
      const p = `h.${l}`;
      const a = x.map((xi) => layerNorm(xi, get(w, `${p}.ln_1.weight`), w[`${p}.ln_1.bias`], eps));
      const qkv = a.map((ai) => conv1d(ai, get(w, `${p}.attn.c_attn.weight`), w[`${p}.attn.c_attn.bias`]));
      const q = qkv.map((r) => r.slice(0, D));
      const k = qkv.map((r) => r.slice(D, 2 * D));
      const v = qkv.map((r) => r.slice(2 * D, 3 * D));
      const att = attention(q, k, v, H, H, d, layerProbs());
      x = x.map((xi, t) => {
        const o = conv1d(att[t]!, get(w, `${p}.attn.c_proj.weight`), w[`${p}.attn.c_proj.bias`]);
        return xi.map((val, i) => val + o[i]!);
      });
      x = x.map((xi) => {
        const m = layerNorm(xi, get(w, `${p}.ln_2.weight`), w[`${p}.ln_2.bias`], eps);
        const hdn = conv1d(m, get(w, `${p}.mlp.c_fc.weight`), w[`${p}.mlp.c_fc.bias`]).map(geluNew);
        const o = conv1d(hdn, get(w, `${p}.mlp.c_proj.weight`), w[`${p}.mlp.c_proj.bias`]);
        return xi.map((val, i) => val + o[i]!);
      });
    }
    const V = cfg['vocab_size'] as number;
    return x.map((xi) => {
      const h = layerNorm(xi, get(w, 'ln_f.weight'), w['ln_f.bias'], eps);
      const logits = new Float64Array(V);
      for (let vv = 0; vv < V; vv++) {
        let s = 0;
        for (let i = 0; i < D; i++) s += wte.data[vv * D + i]! * h[i]!;
        logits[vv] = s;
      }
      return logits;
    });
  }

  // Llama family (llama, qwen2) and phi.
  const D = cfg['hidden_size'] as number;
  const H = cfg['num_attention_heads'] as number;
  const Hkv = (cfg['num_key_value_heads'] as number | null | undefined) ?? H;
  const d = (cfg['head_dim'] as number | undefined) ?? D / H;
  const theta = (cfg['rope_theta'] as number | undefined) ?? 10000;
  const isPhi = arch === 'phi';
  const eps = isPhi ? ((cfg['layer_norm_eps'] as number) ?? 1e-5) : ((cfg['rms_norm_eps'] as number) ?? 1e-6);
  const rot = isPhi ? Math.floor(d * ((cfg['partial_rotary_factor'] as number) ?? 0.5)) : d;
  const emb = get(w, 'embed_tokens.weight');
  let x: Vec[] = tokens.map((tok) => Float64Array.from({ length: D }, (_, i) => emb.data[tok * D + i]!));
  for (let l = 0; l < (cfg['num_hidden_layers'] as number); l++) {
    const p = `layers.${l}`;
    const lin = (xi: Vec, name: string): Vec => linearOutIn(xi, get(w, `${name}.weight`), w[`${name}.bias`]);
    const a = x.map((xi) =>
      isPhi
        ? layerNorm(xi, get(w, `${p}.input_layernorm.weight`), w[`${p}.input_layernorm.bias`], eps)
        : rmsNorm(xi, get(w, `${p}.input_layernorm.weight`), eps),
    );
    const q = a.map((ai, t) => applyRopeAll(lin(ai, `${p}.self_attn.q_proj`), H, d, t, rot, theta));
    const k = a.map((ai, t) => applyRopeAll(lin(ai, `${p}.self_attn.k_proj`), Hkv, d, t, rot, theta));
    const v = a.map((ai) => lin(ai, `${p}.self_attn.v_proj`));
    const att = attention(q, k, v, H, Hkv, d, layerProbs());
    if (isPhi) {
      x = x.map((xi, t) => {
        const o = lin(att[t]!, `${p}.self_attn.dense`);
        const m = lin(lin(a[t]!, `${p}.mlp.fc1`).map(geluNew), `${p}.mlp.fc2`);
        return xi.map((val, i) => val + o[i]! + m[i]!);
      });
    } else {
      x = x.map((xi, t) => {
        const o = lin(att[t]!, `${p}.self_attn.o_proj`);
        return xi.map((val, i) => val + o[i]!);
      });
      x = x.map((xi) => {
        const m = rmsNorm(xi, get(w, `${p}.post_attention_layernorm.weight`), eps);
        const g = lin(m, `${p}.mlp.gate_proj`).map(silu);
        const u = lin(m, `${p}.mlp.up_proj`);
        const o = lin(
          g.map((gi, i) => gi * u[i]!),
          `${p}.mlp.down_proj`,
        );
        return xi.map((val, i) => val + o[i]!);
      });
    }
  }
  const tied = w['lm_head.weight'] === undefined;
  const head = tied ? emb : get(w, 'lm_head.weight');
  return x.map((xi) => {
    const h = isPhi ? layerNorm(xi, get(w, 'final_layernorm.weight'), w['final_layernorm.bias'], eps) : rmsNorm(xi, get(w, 'norm.weight'), eps);
    return linearOutIn(h, head, w['lm_head.bias']);
  });
}
