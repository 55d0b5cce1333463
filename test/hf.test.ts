/**
 * Hugging Face loading: tiny random checkpoints written in the HF format (torch names, [out, in]
 * Linear layouts, GPT-2 Conv1D [in, out], sharded files, BF16) for GPT-2, Llama, Qwen2 and Phi,
 * loaded with `loadHfModel` and compared with an independent float64 reference forward
 * (test/helpers/reference-forward.ts); config checks and errors; tokenizer and chat template.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { writeSafetensors, floatToBf16, bf16ToFloat } from '../lib/io/safetensors.ts';
import type { SafetensorsTensor } from '../lib/io/safetensors.ts';
import { HfLoadError, hfTransformerConfig, loadHfModel } from '../lib/models/hf.ts';
import { HfTokenizer } from '../lib/models/tokenizer.ts';
import { referenceLogits } from './helpers/reference-forward.ts';
import type { HfArchName, RefTensor } from './helpers/reference-forward.ts';

before(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

const V = 50;
const D = 16;
const L = 2;
const H = 4;
const TOKENS = [
  [3, 17, 42, 8, 0, 49, 21],
  [1, 2, 3, 4, 5, 6, 7],
];

/** mulberry32 + Box–Muller: the test's own deterministic randomness. */
function gaussian(seed: number): () => number {
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

type W = Record<string, RefTensor & { data: Float32Array }>;

function hfWeights(arch: HfArchName, seed: number): { config: Record<string, unknown>; weights: W } {
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

function toST(w: W, dtype: 'F32' | 'BF16' = 'F32'): Record<string, SafetensorsTensor> {
  const out: Record<string, SafetensorsTensor> = {};
  for (const [n, t] of Object.entries(w)) {
    out[n] = dtype === 'F32' ? { dtype, shape: t.shape, data: t.data } : { dtype, shape: t.shape, data: Uint16Array.from(t.data, floatToBf16) };
  }
  return out;
}

async function writeFolder(config: Record<string, unknown>, w: W, opts: { shards?: number; dtype?: 'F32' | 'BF16' } = {}): Promise<string> {
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

async function compareWithReference(arch: HfArchName, dir: string, config: Record<string, unknown>, refWeights: W): Promise<number> {
  const { lm, config: cfg } = await loadHfModel(dir);
  assert.equal(cfg.arch, arch);
  const logits = tf.tidy(() => lm.logits(tf.tensor2d(TOKENS, [TOKENS.length, TOKENS[0]!.length], 'int32')).arraySync() as number[][][]);
  let worst = 0;
  TOKENS.forEach((seq, b) => {
    const ref = referenceLogits(arch, config, refWeights, seq);
    let maxAbs = 0;
    let maxErr = 0;
    ref.forEach((row, t) => {
      row.forEach((r, v) => {
        maxAbs = Math.max(maxAbs, Math.abs(r));
        maxErr = Math.max(maxErr, Math.abs(r - logits[b]![t]![v]!));
      });
    });
    assert.ok(maxAbs > 1, `${arch}: reference logits are too small to be a meaningful test (${maxAbs})`);
    worst = Math.max(worst, maxErr / maxAbs);
  });
  lm.dispose();
  assert.ok(worst < 1e-4, `${arch}: max relative logit error ${worst.toExponential(2)}`);
  if (process.env['RXRL_VERBOSE']) console.log(`${arch}: max relative logit error ${worst.toExponential(2)}`);
  return worst;
}

for (const arch of ['gpt2', 'llama', 'qwen2', 'phi'] as const) {
  test(`hf ${arch}: logits match the float64 reference forward`, async () => {
    const { config, weights } = hfWeights(arch, 11);
    // qwen2 goes through the sharded path.
    const dir = await writeFolder(config, weights, { shards: arch === 'qwen2' ? 2 : 1 });
    await compareWithReference(arch, dir, config, weights);
  });
}

test('hf llama: BF16 weights load (converted to float32)', async () => {
  const { config, weights } = hfWeights('llama', 12);
  const dir = await writeFolder(config, weights, { dtype: 'BF16' });
  const rounded: W = {};
  for (const [n, t] of Object.entries(weights)) rounded[n] = { shape: t.shape, data: Float32Array.from(t.data, (x) => bf16ToFloat(floatToBf16(x))) };
  await compareWithReference('llama', dir, config, rounded);
});

test('hf gpt2: "transformer."-prefixed names and a stored lm_head load the same', async () => {
  const { config, weights } = hfWeights('gpt2', 13);
  const prefixed: W = {};
  for (const [n, t] of Object.entries(weights)) prefixed[`transformer.${n}`] = t;
  prefixed['lm_head.weight'] = weights['wte.weight']!;
  const dir = await writeFolder(config, prefixed);
  await compareWithReference('gpt2', dir, config, weights);
});

test('hf: config translation and unsupported features', () => {
  const { config } = hfWeights('qwen2', 1);
  const c = hfTransformerConfig(config);
  assert.equal(c.arch, 'qwen2');
  assert.equal(c.nKvHeads, 2);
  assert.equal(c.ropeTheta, 1e6);
  assert.equal(c.tieEmbeddings, true);
  // Without tie_word_embeddings, HF's Qwen2Config default (false) applies, not rxrl's variant default.
  const noTie = { ...config };
  delete (noTie as Record<string, unknown>)['tie_word_embeddings'];
  assert.equal(hfTransformerConfig(noTie).tieEmbeddings, false);
  // transformers v5 rope_parameters.
  const v5 = { ...config, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 5000 } };
  assert.equal(hfTransformerConfig(v5).ropeTheta, 5000);
  const phi = hfTransformerConfig(hfWeights('phi', 1).config);
  assert.equal(phi.partialRotaryFactor, 0.5);
  assert.equal(phi.lmHeadBias, true);
  assert.equal(phi.parallelResidual, true);
  const llama = hfWeights('llama', 1).config;
  assert.throws(() => hfTransformerConfig({ ...llama, rope_scaling: { rope_type: 'llama3', factor: 8 } }), /rope_scaling .* is not supported/);
  assert.throws(() => hfTransformerConfig({ ...llama, hidden_act: 'gelu_fast' }), /hidden_act "gelu_fast" is not supported/);
  assert.throws(() => hfTransformerConfig({ ...config, use_sliding_window: true }), /use_sliding_window/);
  assert.throws(() => hfTransformerConfig({ ...hfWeights('phi', 1).config, qk_layernorm: true }), /qk_layernorm/);
  assert.throws(() => hfTransformerConfig({ model_type: 'bert' }), /model_type: expected gpt2\|llama\|mistral\|qwen2\|phi, got bert/);
});

test('hf: missing, misshapen and unknown tensors are errors naming the tensor', async () => {
  const { config, weights } = hfWeights('llama', 14);
  const missing = { ...weights };
  delete missing['model.layers.1.mlp.up_proj.weight'];
  await assert.rejects(loadHfModel(await writeFolder(config, missing)), (e: unknown) => {
    assert.ok(e instanceof HfLoadError);
    assert.match((e as Error).message, /the weights lack layers\.1\.mlp\.up\.weight/);
    return true;
  });
  const bad = { ...weights, 'model.layers.0.self_attn.k_proj.weight': { shape: [16, 16], data: new Float32Array(256) } };
  await assert.rejects(
    loadHfModel(await writeFolder(config, bad)),
    /tensor model\.layers\.0\.self_attn\.k_proj\.weight gives layers\.0\.attn\.k\.weight shape \[16,16\], the model expects \[16,8\]/,
  );
  const extra = { ...weights, 'model.layers.0.self_attn.q_norm.weight': { shape: [4], data: new Float32Array(4) } };
  const dir = await writeFolder(config, extra);
  await assert.rejects(loadHfModel(dir), /1 tensor\(s\) a llama model does not use: model\.layers\.0\.self_attn\.q_norm\.weight/);
  const { lm } = await loadHfModel(dir, { strict: false });
  lm.dispose();
  const empty = mkdtempSync(join(tmpdir(), 'rxrl-hf-'));
  writeFileSync(join(empty, 'config.json'), JSON.stringify(config));
  writeFileSync(join(empty, 'pytorch_model.bin'), 'x');
  await assert.rejects(loadHfModel(empty), /no \.safetensors weights \(PyTorch \.bin\/\.pt files are not supported/);
});

// ---------------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------------

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

const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function tinyTokenizerFiles(): { tokenizer: object; config: Record<string, unknown> } {
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

test('tokenizer: a tiny byte-level BPE tokenizer.json encodes, decodes and renders a chat', async () => {
  const { config: mcfg, weights } = hfWeights('qwen2', 15);
  const dir = await writeFolder(mcfg, weights);
  const files = tinyTokenizerFiles();
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(files.config));
  const { tokenizer, lm } = await loadHfModel(dir);
  lm.dispose();
  assert.ok(tokenizer);
  const tok = tokenizer!;

  assert.deepEqual(tok.tokenize('the theme'), ['t', 'he', 'Ġtheme']);
  const ids = tok.encode('the theme');
  assert.deepEqual(ids, [tok.tokenToId('t'), tok.tokenToId('he'), tok.tokenToId('Ġtheme')]);
  for (const text of ['the theme', 'Hello, wörld! 123 ✓\n  tabs\tand  spaces', '']) {
    assert.equal(tok.decode(tok.encode(text)), text);
  }
  assert.equal(tok.eosToken, '<|im_end|>');
  assert.equal(tok.eosTokenId, 263);
  assert.equal(tok.padTokenId, 261);
  assert.equal(tok.vocabSize, 264);

  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi there' },
  ];
  const text = tok.applyChatTemplate(messages, { addGenerationPrompt: true });
  assert.equal(text, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(
    tok.applyChatTemplate([{ role: 'user', content: 'x' }]),
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n',
  );
  const chatIds = tok.encodeChat(messages, { addGenerationPrompt: true });
  assert.equal(chatIds[0], tok.tokenToId('<|im_start|>'));
  assert.equal(chatIds.filter((i) => i === tok.eosTokenId).length, 2);
  assert.equal(tok.decode(chatIds), text);
  assert.equal(tok.decode(chatIds, { skipSpecialTokens: true }), 'system\nBe brief.\nuser\nHi there\nassistant\n');
});

test('tokenizer: template lists, chat_template.jinja, bos tokens and no-template errors', async () => {
  const files = tinyTokenizerFiles();
  const llamaish = '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% if not loop.last %} {% endif %}{% endfor %}';
  const tok = new HfTokenizer(files.tokenizer, {
    ...files.config,
    bos_token: { content: '<|endoftext|>', __type: 'AddedToken' },
    chat_template: [
      { name: 'tool_use', template: 'x' },
      { name: 'default', template: llamaish },
    ],
  });
  assert.equal(tok.bosToken, '<|endoftext|>');
  assert.equal(
    tok.applyChatTemplate([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'U' },
    ]),
    '<|endoftext|>[system] S [user] U',
  );
  const none = new HfTokenizer(files.tokenizer, { ...files.config, chat_template: undefined });
  assert.throws(() => none.applyChatTemplate([{ role: 'user', content: 'x' }]), /no chat_template/);
  // Newer folders keep the template in chat_template.jinja.
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-tok-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...files.config, chat_template: undefined }));
  writeFileSync(join(dir, 'chat_template.jinja'), CHATML);
  const fromFolder = await HfTokenizer.fromFolder(dir);
  assert.equal(fromFolder!.applyChatTemplate([{ role: 'system', content: 'S' }]), '<|im_start|>system\nS<|im_end|>\n');
  assert.equal(await HfTokenizer.fromFolder(`${tmpdir()}/does-not-exist-rxrl`), null);
});
