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
import { floatToBf16, bf16ToFloat } from '../lib/io/safetensors.ts';
import { HfLoadError, hfTransformerConfig, loadHfModel } from '../lib/models/hf.ts';
import { HfTokenizer } from '../lib/models/tokenizer.ts';
import { referenceLogits } from './helpers/reference-forward.ts';
import type { HfArchName } from './helpers/reference-forward.ts';
import { CHATML, hfWeights, tinyTokenizerFiles, writeFolder, type W } from './helpers/tiny-hf.ts';

before(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

const TOKENS = [
  [3, 17, 42, 8, 0, 49, 21],
  [1, 2, 3, 4, 5, 6, 7],
];

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
