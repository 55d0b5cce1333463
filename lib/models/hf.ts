/**
 * Hugging Face checkpoints: `loadHfModel(folder)` reads a local model folder — `config.json`,
 * `model.safetensors` (or shards listed in `model.safetensors.index.json`), and, when present,
 * `tokenizer.json` + `tokenizer_config.json` — into a `CausalLM` (and an `HfTokenizer`).
 *
 * Architectures and name mapping (HF → rxrl; `T` = transposed, torch `Linear` stores [out, in]
 * and rxrl stores [in, out]; GPT-2's `Conv1D` is already [in, out]):
 *
 *   GPT2LMHeadModel  (prefix `transformer.` optional — the original gpt2 files have none)
 *     wte → embed   wpe → pos_embed   h.i.ln_1 → layers.i.ln1   h.i.ln_2 → layers.i.ln2
 *     h.i.attn.c_attn [D, 3D] → split by columns into attn.q | attn.k | attn.v
 *     h.i.attn.c_proj → attn.o   h.i.mlp.c_fc → mlp.up   h.i.mlp.c_proj → mlp.down   ln_f → norm
 *     (lm head tied to wte; the buffers h.i.attn.bias / masked_bias are ignored)
 *   LlamaForCausalLM, Qwen2ForCausalLM (Mistral too)  (prefix `model.`)
 *     embed_tokens → embed   layers.i.input_layernorm → ln1   post_attention_layernorm → ln2
 *     self_attn.{q,k,v,o}_proj → attn.{q,k,v,o} (T; biases as they come: qwen2 has q/k/v biases)
 *     mlp.{gate,up,down}_proj → mlp.{gate,up,down} (T)   norm → norm   lm_head → lm_head (T)
 *     (qwen2 / llama with tie_word_embeddings: no lm_head; rotary_emb.inv_freq buffers ignored)
 *   PhiForCausalLM  (prefix `model.`)
 *     embed_tokens → embed   layers.i.input_layernorm → ln1 (one norm per parallel block)
 *     self_attn.{q,k,v}_proj → attn.{q,k,v} (T)   self_attn.dense → attn.o (T)
 *     mlp.fc1 → mlp.up (T)   mlp.fc2 → mlp.down (T)   final_layernorm → norm
 *     lm_head → lm_head (T, with bias)
 *
 * RoPE: HF's Llama/Qwen2/Phi rotate with `rotate_half` — dims [0, r/2) pair with [r/2, r), cos and
 * sin of cat(freqs, freqs) — and Phi rotates only the first r = ⌊partial_rotary_factor · head_dim⌋
 * dims. `applyRope` in transformer.ts implements exactly that layout, so q/k weights load
 * unpermuted. (Meta's original Llama checkpoints use interleaved pairs; HF's conversion script
 * permutes q/k rows once, so HF-format files are already in the rotate_half layout.)
 *
 * Config: `fromHfConfig` translates the fields; this module first fills HF's per-class defaults
 * for fields a config.json may omit (tie_word_embeddings: gpt2 true, others false; rope_theta
 * 10000; …), reads v5-style `rope_parameters`, and refuses what the core cannot compute exactly:
 * RoPE scaling other than the default, sliding-window attention, Phi's qk_layernorm, GPT-2's
 * scale_attn_by_inverse_layer_idx / unscaled attention, unknown activations.
 *
 * Weights of any float dtype (F32, F16, BF16, F64) are converted to float32. Everything is read
 * and checked (every rxrl parameter filled exactly once with the right shape; with `strict`, no
 * unknown tensors) before any variable is assigned.
 *
 * ```ts
 * const { lm, tokenizer } = await loadHfModel('models/Qwen2-0.5B-Instruct');
 * const prompt = tokenizer!.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
 * const ids = tokenizer!.encode(prompt, { addSpecialTokens: false });
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, fromHfConfig } from './config.ts';
import type { Arch, TransformerConfig } from './config.ts';
import { CausalLM } from './lm.ts';
import { HfTokenizer } from './tokenizer.ts';
import { openSafetensors, toFloat32 } from '../io/safetensors.ts';
import type { SafetensorsReader, SafetensorsTensor } from '../io/safetensors.ts';

export class HfLoadError extends Error {
  override readonly name = 'HfLoadError';
}

export interface LoadHfOptions {
  /** Unknown tensors in the files are an error (default true). */
  strict?: boolean;
  /** Load the tokenizer when tokenizer.json exists (default true). */
  tokenizer?: boolean;
}

export interface HfModel {
  readonly lm: CausalLM;
  readonly config: TransformerConfig;
  /** The raw config.json. */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  readonly tokenizer: HfTokenizer | null;
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/** HF's class defaults for fields a config.json may leave out (PretrainedConfig's tie default is true). */
const HF_DEFAULTS: Readonly<Record<string, Record<string, unknown>>> = {
  gpt2: { tie_word_embeddings: true, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, n_positions: 1024 },
  llama: { tie_word_embeddings: false, hidden_act: 'silu', rms_norm_eps: 1e-6, rope_theta: 10000, attention_bias: false, mlp_bias: false },
  mistral: { tie_word_embeddings: false, hidden_act: 'silu', rms_norm_eps: 1e-6, rope_theta: 10000 },
  qwen2: { tie_word_embeddings: false, hidden_act: 'silu', rms_norm_eps: 1e-6, rope_theta: 10000 },
  phi: { tie_word_embeddings: false, hidden_act: 'gelu_new', layer_norm_eps: 1e-5, rope_theta: 10000, partial_rotary_factor: 0.5 },
};

const ACTIVATIONS: Readonly<Record<string, string>> = {
  gelu_new: 'gelu_new',
  gelu_pytorch_tanh: 'gelu_pytorch_tanh',
  gelu: 'gelu',
  relu: 'relu',
  silu: 'silu',
  swish: 'silu',
};

/**
 * config.json → TransformerConfig, with HF's defaults and a clear error for features the core
 * does not implement.
 */
export function hfTransformerConfig(json: Readonly<Record<string, unknown>>): TransformerConfig {
  const mt = String(json['model_type'] ?? '');
  const defaults = HF_DEFAULTS[mt];
  if (!defaults) throw new ConfigError(`config.json model_type: expected gpt2|llama|mistral|qwen2|phi, got ${mt || '(missing)'}`);
  const c: Record<string, unknown> = { ...defaults };
  for (const [k, v] of Object.entries(json)) if (v !== null && v !== undefined) c[k] = v;
  const unsupported = (what: string): never => {
    throw new ConfigError(`config.json: ${what} is not supported by the rxrl transformer core`);
  };
  // transformers v5 moved rope_theta (and rope scaling) into rope_parameters.
  const rp = c['rope_parameters'];
  if (rp && typeof rp === 'object' && !Array.isArray(rp)) {
    const r = rp as Record<string, unknown>;
    if (typeof r['rope_theta'] === 'number') c['rope_theta'] = r['rope_theta'];
    if (typeof r['partial_rotary_factor'] === 'number') c['partial_rotary_factor'] = r['partial_rotary_factor'];
    const type = r['rope_type'] ?? r['type'];
    if (type !== undefined && type !== 'default') unsupported(`rope_parameters.rope_type ${JSON.stringify(type)}`);
  }
  const rs = c['rope_scaling'];
  if (rs && typeof rs === 'object') {
    const type = (rs as Record<string, unknown>)['rope_type'] ?? (rs as Record<string, unknown>)['type'];
    if (type !== 'default') unsupported(`rope_scaling ${JSON.stringify(rs)}`);
  }
  const actKey = mt === 'gpt2' ? 'activation_function' : 'hidden_act';
  const act = String(c[actKey]);
  const mapped = ACTIVATIONS[act];
  if (!mapped) unsupported(`${actKey} ${JSON.stringify(act)}`);
  c[actKey] = mapped;
  if (mt === 'gpt2') {
    if (c['scale_attn_by_inverse_layer_idx'] === true) unsupported('scale_attn_by_inverse_layer_idx');
    if (c['scale_attn_weights'] === false) unsupported('scale_attn_weights = false');
  }
  if (mt === 'phi' && c['qk_layernorm'] === true) unsupported('qk_layernorm');
  if (mt === 'qwen2' && c['use_sliding_window'] === true) unsupported('use_sliding_window');
  if (mt === 'mistral' && typeof c['sliding_window'] === 'number') unsupported(`sliding_window ${c['sliding_window']}`);
  return fromHfConfig(c);
}

// ---------------------------------------------------------------------------------------------
// Weight names
// ---------------------------------------------------------------------------------------------

/** What to do with one HF tensor. */
export type HfMapping =
  | { readonly kind: 'copy'; readonly target: string }
  | { readonly kind: 'transpose'; readonly target: string }
  | { readonly kind: 'split'; readonly targets: readonly [string, string, string] }
  | { readonly kind: 'ignore' };

/** Maps one HF tensor name to rxrl parameter(s); null for a name this arch does not know. */
export function mapHfName(arch: Arch, cfg: Pick<TransformerConfig, 'tieEmbeddings'>, hfName: string): HfMapping | null {
  const copy = (target: string): HfMapping => ({ kind: 'copy', target });
  const tr = (target: string): HfMapping => ({ kind: 'transpose', target });
  const ignore: HfMapping = { kind: 'ignore' };
  let m: RegExpExecArray | null;
  if (arch === 'gpt2') {
    const n = hfName.replace(/^transformer\./, '');
    if (n === 'wte.weight') return copy('embed.weight');
    if (n === 'wpe.weight') return copy('pos_embed.weight');
    if ((m = /^ln_f\.(weight|bias)$/.exec(n))) return copy(`norm.${m[1]}`);
    if (n === 'lm_head.weight') return ignore; // tied to wte
    if ((m = /^h\.(\d+)\.(.+)$/.exec(n))) {
      const [, i, rest] = m as unknown as [string, string, string];
      const p = `layers.${i}`;
      let r: RegExpExecArray | null;
      if ((r = /^ln_([12])\.(weight|bias)$/.exec(rest))) return copy(`${p}.ln${r[1]}.${r[2]}`);
      if ((r = /^attn\.c_attn\.(weight|bias)$/.exec(rest))) {
        return { kind: 'split', targets: [`${p}.attn.q.${r[1]}`, `${p}.attn.k.${r[1]}`, `${p}.attn.v.${r[1]}`] };
      }
      if ((r = /^attn\.c_proj\.(weight|bias)$/.exec(rest))) return copy(`${p}.attn.o.${r[1]}`);
      if ((r = /^mlp\.c_fc\.(weight|bias)$/.exec(rest))) return copy(`${p}.mlp.up.${r[1]}`);
      if ((r = /^mlp\.c_proj\.(weight|bias)$/.exec(rest))) return copy(`${p}.mlp.down.${r[1]}`);
      if (/^attn\.(bias|masked_bias)$/.test(rest)) return ignore; // causal-mask buffers
    }
    return null;
  }
  const n = hfName.replace(/^model\./, '');
  const wb = (target: string, kind: 'weight' | 'bias'): HfMapping => (kind === 'weight' ? tr(`${target}.weight`) : copy(`${target}.bias`));
  if (n === 'embed_tokens.weight') return copy('embed.weight');
  if ((m = /^lm_head\.(weight|bias)$/.exec(n))) {
    if (m[1] === 'weight' && cfg.tieEmbeddings) return ignore;
    return wb('lm_head', m[1] as 'weight' | 'bias');
  }
  if (arch === 'phi') {
    if ((m = /^final_layernorm\.(weight|bias)$/.exec(n))) return copy(`norm.${m[1]}`);
  } else if ((m = /^norm\.(weight|bias)$/.exec(n))) return copy(`norm.${m[1]}`);
  if ((m = /^layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(n))) {
    const [, i, mod, kind] = m as unknown as [string, string, string, 'weight' | 'bias'];
    const p = `layers.${i}`;
    const table: Record<string, string> =
      arch === 'phi'
        ? {
            input_layernorm: 'ln1',
            'self_attn.q_proj': 'attn.q',
            'self_attn.k_proj': 'attn.k',
            'self_attn.v_proj': 'attn.v',
            'self_attn.dense': 'attn.o',
            'mlp.fc1': 'mlp.up',
            'mlp.fc2': 'mlp.down',
          }
        : {
            input_layernorm: 'ln1',
            post_attention_layernorm: 'ln2',
            'self_attn.q_proj': 'attn.q',
            'self_attn.k_proj': 'attn.k',
            'self_attn.v_proj': 'attn.v',
            'self_attn.o_proj': 'attn.o',
            'mlp.gate_proj': 'mlp.gate',
            'mlp.up_proj': 'mlp.up',
            'mlp.down_proj': 'mlp.down',
          };
    const t = table[mod];
    if (t === undefined) return null;
    return mod.endsWith('layernorm') ? copy(`${p}.${t}.${kind}`) : wb(`${p}.${t}`, kind);
  }
  if (/^layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(n)) return ignore;
  return null;
}

/** [rows, cols] row-major → [cols, rows]. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new HfLoadError(`${path}: cannot be read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new HfLoadError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** The safetensors files of a model folder. */
async function weightFiles(folder: string): Promise<string[]> {
  const index = join(folder, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const j = await readJson(index);
    const map = j['weight_map'];
    if (!map || typeof map !== 'object') throw new HfLoadError(`${index}: no weight_map`);
    return [...new Set(Object.values(map as Record<string, string>))].map((f) => join(folder, f));
  }
  if (existsSync(join(folder, 'model.safetensors'))) return [join(folder, 'model.safetensors')];
  const all = (await readdir(folder)).filter((f) => f.endsWith('.safetensors') && !f.startsWith('.'));
  if (all.length === 1) return [join(folder, all[0]!)];
  if (all.length > 1) throw new HfLoadError(`${folder}: several .safetensors files (${all.join(', ')}) but no model.safetensors.index.json`);
  const bin = (await readdir(folder)).some((f) => f.endsWith('.bin') || f.endsWith('.pt'));
  throw new HfLoadError(`${folder}: no .safetensors weights${bin ? ' (PyTorch .bin/.pt files are not supported; convert them to safetensors)' : ''}`);
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

/** Loads a local Hugging Face model folder (see the module doc). */
export async function loadHfModel(folder: string, opts: LoadHfOptions = {}): Promise<HfModel> {
  const hfConfig = await readJson(join(folder, 'config.json'));
  let config: TransformerConfig;
  try {
    config = hfTransformerConfig(hfConfig);
  } catch (e) {
    throw new HfLoadError(`${folder}: ${(e as Error).message}`);
  }
  const arch = config.arch;
  const files = await weightFiles(folder);

  // Read and convert every tensor before touching a variable.
  const values = new Map<string, { data: Float32Array; from: string }>();
  const unknown: string[] = [];
  const readers: SafetensorsReader[] = [];
  const lm = new CausalLM(config, { seed: 0 });
  try {
    for (const f of files) readers.push(await openSafetensors(f));
    const seen = new Set<string>();
    for (const r of readers) {
      for (const name of r.names) {
        if (seen.has(name)) throw new HfLoadError(`${r.path}: tensor ${name} appears in more than one file`);
        seen.add(name);
        const mapping = mapHfName(arch, config, name);
        if (mapping === null) {
          unknown.push(name);
          continue;
        }
        if (mapping.kind === 'ignore') continue;
        const info = r.header.byName.get(name)!;
        if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) {
          throw new HfLoadError(`${r.path}: tensor ${name} has dtype ${info.dtype}; expected a float type`);
        }
        const t: SafetensorsTensor = await r.read(name);
        const data = toFloat32(t);
        const put = (target: string, d: Float32Array, shape: readonly number[]): void => {
          const v = lm.params.maybe(target);
          if (!v) {
            throw new HfLoadError(`${r.path}: tensor ${name} maps to ${target}, which a ${arch} model with this config.json does not have`);
          }
          if (shape.length !== v.shape.length || shape.some((s, i) => s !== v.shape[i])) {
            throw new HfLoadError(`${r.path}: tensor ${name} gives ${target} shape ${fmtShape(shape)}, the model expects ${fmtShape(v.shape)}`);
          }
          const prev = values.get(target);
          if (prev) throw new HfLoadError(`${r.path}: ${target} is given by both ${prev.from} and ${name}`);
          values.set(target, { data: d, from: name });
        };
        if (mapping.kind === 'copy') put(mapping.target, data, t.shape);
        else if (mapping.kind === 'transpose') {
          if (t.shape.length !== 2) throw new HfLoadError(`${r.path}: tensor ${name} has shape ${fmtShape(t.shape)}, expected a matrix`);
          const [rows, cols] = t.shape as [number, number];
          put(mapping.target, transpose2d(data, rows, cols), [cols, rows]);
        } else {
          // GPT-2 c_attn: weight [D, qDim + 2·kvDim] (Conv1D, [in, out]) or bias [qDim + 2·kvDim].
          const qDim = config.nHeads * config.headDim;
          const kvDim = config.nKvHeads * config.headDim;
          const widths = [qDim, kvDim, kvDim];
          const total = qDim + 2 * kvDim;
          const cols = t.shape[t.shape.length - 1]!;
          const rows = t.shape.length === 2 ? t.shape[0]! : 1;
          if (cols !== total || t.shape.length > 2) {
            throw new HfLoadError(`${r.path}: tensor ${name} has shape ${fmtShape(t.shape)}, expected [..., ${total}] (q|k|v)`);
          }
          let start = 0;
          mapping.targets.forEach((target, j) => {
            const w = widths[j]!;
            const part = new Float32Array(rows * w);
            for (let row = 0; row < rows; row++) part.set(data.subarray(row * cols + start, row * cols + start + w), row * w);
            put(target, part, t.shape.length === 2 ? [rows, w] : [w]);
            start += w;
          });
        }
      }
    }
    if (unknown.length && (opts.strict ?? true)) {
      throw new HfLoadError(
        `${folder}: ${unknown.length} tensor(s) a ${arch} model does not use: ${unknown.slice(0, 6).join(', ')}${unknown.length > 6 ? ', …' : ''} (pass strict: false to ignore)`,
      );
    }
    const missing = lm.params.names().filter((n) => !values.has(n));
    if (missing.length) {
      throw new HfLoadError(`${folder}: the weights lack ${missing.slice(0, 6).join(', ')}${missing.length > 6 ? `, … (${missing.length} in all)` : ''}`);
    }
  } catch (e) {
    lm.dispose();
    throw e;
  } finally {
    for (const r of readers) await r.close();
  }
  for (const [name, { data }] of values) {
    const v = lm.params.get(name);
    tf.tidy(() => v.assign(tf.tensor(data, v.shape, 'float32')));
  }
  let tokenizer: HfTokenizer | null = null;
  if (opts.tokenizer ?? true) tokenizer = await HfTokenizer.fromFolder(folder);
  return { lm, config, hfConfig, tokenizer };
}
