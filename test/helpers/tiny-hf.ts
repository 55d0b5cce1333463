/**
 * Tiny random Hugging Face checkpoints for tests: HF-format weights (torch names, [out, in] Linear
 * layouts) for GPT-2, Llama, Qwen2 and Phi, written as safetensors folders (optionally sharded or
 * BF16), and a tiny byte-level BPE tokenizer with a ChatML chat template.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors, floatToBf16 } from '../../lib/io/safetensors.ts';
import type { SafetensorsTensor } from '../../lib/io/safetensors.ts';
import type { HfArchName, RefTensor } from './reference-forward.ts';

const VOCAB = 50;
const D = 16;
const LAYERS = 2;
const H = 4;

/** mulberry32 + Box–Muller: the test's own deterministic randomness. */
export function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const u = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

export type W = Record<string, RefTensor & { data: Float32Array }>;

/** Random HF weights and config.json of a tiny model (width 16, 4 heads; 2 layers and 50 tokens unless given). */
export function hfWeights(arch: HfArchName, seed: number, opts: { vocabSize?: number; layers?: number } = {}): { config: Record<string, unknown>; weights: W } {
  const V = opts.vocabSize ?? VOCAB;
  const L = opts.layers ?? LAYERS;
  const g = gaussian(seed);
  const w: W = {};
  const mk = (name: string, shape: number[], kind: 'w' | 'b' | 'norm' | 'emb'): void => {
    const n = shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = kind === 'norm' ? 1 + 0.2 * g() : kind === 'b' ? 0.1 * g() : kind === 'emb' ? g() : 0.35 * g();
    w[name] = { shape, data };
  };
  if (arch === 'gpt2') {
    const P = 32;
    const config = {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: V,
      n_embd: D,
      n_layer: L,
      n_head: H,
      n_positions: P,
      n_inner: null,
      activation_function: 'gelu_new',
      layer_norm_epsilon: 1e-5,
    };
    // The original gpt2 files carry no "transformer." prefix and include the causal-mask buffers.
    mk('wte.weight', [V, D], 'emb');
    mk('wpe.weight', [P, D], 'emb');
    for (let i = 0; i < L; i++) {
      const p = `h.${i}`;
      mk(`${p}.ln_1.weight`, [D], 'norm');
      mk(`${p}.ln_1.bias`, [D], 'b');
      mk(`${p}.attn.c_attn.weight`, [D, 3 * D], 'w');
      mk(`${p}.attn.c_attn.bias`, [3 * D], 'b');
      mk(`${p}.attn.c_proj.weight`, [D, D], 'w');
      mk(`${p}.attn.c_proj.bias`, [D], 'b');
      mk(`${p}.ln_2.weight`, [D], 'norm');
      mk(`${p}.ln_2.bias`, [D], 'b');
      mk(`${p}.mlp.c_fc.weight`, [D, 4 * D], 'w');
      mk(`${p}.mlp.c_fc.bias`, [4 * D], 'b');
      mk(`${p}.mlp.c_proj.weight`, [4 * D, D], 'w');
      mk(`${p}.mlp.c_proj.bias`, [D], 'b');
      w[`${p}.attn.bias`] = { shape: [1, 1, P, P], data: Float32Array.from({ length: P * P }, (_, k) => (k % P <= Math.floor(k / P) ? 1 : 0)) };
      w[`${p}.attn.masked_bias`] = { shape: [], data: Float32Array.from([-1e4]) };
    }
    mk('ln_f.weight', [D], 'norm');
    mk('ln_f.bias', [D], 'b');
    return { config, weights: w };
  }
  if (arch === 'phi') {
    const FF = 64;
    const config = {
      architectures: ['PhiForCausalLM'],
      model_type: 'phi',
      vocab_size: V,
      hidden_size: D,
      intermediate_size: FF,
      num_hidden_layers: L,
      num_attention_heads: H,
      num_key_value_heads: null,
      hidden_act: 'gelu_new',
      layer_norm_eps: 1e-5,
      partial_rotary_factor: 0.5,
      rope_theta: 10000.0,
      qk_layernorm: false,
      tie_word_embeddings: false,
      max_position_embeddings: 64,
      rope_scaling: null,
    };
    mk('model.embed_tokens.weight', [V, D], 'emb');
    for (let i = 0; i < L; i++) {
      const p = `model.layers.${i}`;
      mk(`${p}.input_layernorm.weight`, [D], 'norm');
      mk(`${p}.input_layernorm.bias`, [D], 'b');
      for (const m of ['q_proj', 'k_proj', 'v_proj', 'dense']) {
        mk(`${p}.self_attn.${m}.weight`, [D, D], 'w');
        mk(`${p}.self_attn.${m}.bias`, [D], 'b');
      }
      mk(`${p}.mlp.fc1.weight`, [FF, D], 'w');
      mk(`${p}.mlp.fc1.bias`, [FF], 'b');
      mk(`${p}.mlp.fc2.weight`, [D, FF], 'w');
      mk(`${p}.mlp.fc2.bias`, [D], 'b');
    }
    mk('model.final_layernorm.weight', [D], 'norm');
    mk('model.final_layernorm.bias', [D], 'b');
    mk('lm_head.weight', [V, D], 'w');
    mk('lm_head.bias', [V], 'b');
    return { config, weights: w };
  }
  // llama / qwen2
  const KV = 2;
  const hd = D / H;
  const FF = 24;
  const qwen = arch === 'qwen2';
  const config = {
    architectures: [qwen ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: arch,
    vocab_size: V,
    hidden_size: D,
    intermediate_size: FF,
    num_hidden_layers: L,
    num_attention_heads: H,
    num_key_value_heads: KV,
    hidden_act: 'silu',
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    rope_theta: qwen ? 1000000.0 : 10000.0,
    tie_word_embeddings: qwen,
    rope_scaling: null,
    ...(qwen ? { use_sliding_window: false, sliding_window: 32 } : { attention_bias: false, mlp_bias: false }),
  };
  mk('model.embed_tokens.weight', [V, D], 'emb');
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    mk(`${p}.input_layernorm.weight`, [D], 'norm');
    mk(`${p}.self_attn.q_proj.weight`, [H * hd, D], 'w');
    mk(`${p}.self_attn.k_proj.weight`, [KV * hd, D], 'w');
    mk(`${p}.self_attn.v_proj.weight`, [KV * hd, D], 'w');
    if (qwen) {
      mk(`${p}.self_attn.q_proj.bias`, [H * hd], 'b');
      mk(`${p}.self_attn.k_proj.bias`, [KV * hd], 'b');
      mk(`${p}.self_attn.v_proj.bias`, [KV * hd], 'b');
    }
    mk(`${p}.self_attn.o_proj.weight`, [D, H * hd], 'w');
    mk(`${p}.post_attention_layernorm.weight`, [D], 'norm');
    mk(`${p}.mlp.gate_proj.weight`, [FF, D], 'w');
    mk(`${p}.mlp.up_proj.weight`, [FF, D], 'w');
    mk(`${p}.mlp.down_proj.weight`, [D, FF], 'w');
  }
  mk('model.norm.weight', [D], 'norm');
  if (!qwen) mk('lm_head.weight', [V, D], 'w');
  return { config, weights: w };
}

export function toST(w: W, dtype: 'F32' | 'BF16' = 'F32'): Record<string, SafetensorsTensor> {
  const out: Record<string, SafetensorsTensor> = {};
  for (const [n, t] of Object.entries(w)) {
    out[n] = dtype === 'F32' ? { dtype, shape: t.shape, data: t.data } : { dtype, shape: t.shape, data: Uint16Array.from(t.data, floatToBf16) };
  }
  return out;
}

export async function writeFolder(config: Record<string, unknown>, w: W, opts: { shards?: number; dtype?: 'F32' | 'BF16' } = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-hf-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const st = toST(w, opts.dtype);
  const shards = opts.shards ?? 1;
  if (shards === 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), st, { format: 'pt' });
  } else {
    const names = Object.keys(st);
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part: Record<string, SafetensorsTensor> = {};
      names
        .filter((_, i) => i % shards === s)
        .forEach((n) => {
          part[n] = st[n]!;
          weightMap[n] = file;
        });
      await writeSafetensors(join(dir, file), part, { format: 'pt' });
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  }
  return dir;
}

/** GPT-2's byte → printable-unicode table (as ByteLevel uses). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => (out[b] = String.fromCodePoint(cs[i]!)));
  return out;
}

export const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export function tinyTokenizerFiles(): { tokenizer: object; config: Record<string, unknown> } {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, i) => (vocab[c] = i));
  const merges = ['Ġ t', 'h e', 'Ġt he', 'Ġthe m', 'Ġthem e'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const added = specials.map((content, i) => ({ id: 261 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: { ...byteLevel, trim_offsets: false },
      decoder: byteLevel,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges,
      },
    },
    config: {
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
      bos_token: null,
      clean_up_tokenization_spaces: false,
      chat_template: CHATML,
      model_max_length: 32768,
    },
  };
}
