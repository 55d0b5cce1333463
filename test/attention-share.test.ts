/**
 * The attention analysis (lib/analysis/attention.ts): per-layer system share against an
 * independent float64 reference forward (test/helpers/reference-forward.ts, which collects the
 * softmax(qkᵀ/√d) probabilities) on tiny random HF checkpoints; uniform attention gives exactly the
 * chance level; shares lie in [0, 1]; batching and padding change nothing; no tensor leaks.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { AttentionAnalysisError, attentionShareMetrics, chanceShare, systemAttentionShare, type AttentionExample } from '../lib/analysis/attention.ts';
import { loadHfModel } from '../lib/models/hf.ts';
import { CausalLM } from '../lib/models/lm.ts';
import { referenceLogits, type HfArchName } from './helpers/reference-forward.ts';
import { hfWeights, writeFolder } from './helpers/tiny-hf.ts';

before(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

const EXAMPLES: AttentionExample[] = [
  { prompt: [3, 17, 42, 8, 0], system: 3, response: [49, 21, 7] },
  { prompt: [1, 2, 3, 4, 5, 6, 7], system: [0, 1, 1, 0, 1, 0, 0], response: [9, 10] },
  { prompt: [11, 12], system: 1, response: [13, 14, 15, 16] },
  { prompt: [20, 21, 22], system: 2, response: [] }, // skipped: no response
];

const toMask = (ex: AttentionExample): number[] =>
  typeof ex.system === 'number' ? Array.from({ length: ex.prompt.length }, (_, t) => (t < (ex.system as number) ? 1 : 0)) : Array.from(ex.system, Number);

/** The share by the reference: plain loops over the reference's per-layer [H][T][T] probabilities. */
function referenceShare(arch: HfArchName, config: Record<string, unknown>, weights: Parameters<typeof referenceLogits>[2], queries: 'response' | 'generating') {
  const used = EXAMPLES.filter((e) => e.response.length > 0);
  const L = config['num_hidden_layers'] as number;
  const perLayer = new Array<number>(L).fill(0);
  let chance = 0;
  for (const ex of used) {
    const seq = [...Array.from(ex.prompt), ...Array.from(ex.response)];
    const atts: Float64Array[][][] = [];
    referenceLogits(arch, config, weights, seq, atts);
    const mask = toMask(ex);
    const P = ex.prompt.length;
    const qs = Array.from({ length: ex.response.length }, (_, j) => (queries === 'response' ? P + j : P - 1 + j));
    for (let l = 0; l < L; l++) {
      const heads = atts[l]!;
      let s = 0;
      for (const t of qs) {
        for (const h of heads) for (let k = 0; k < P; k++) s += mask[k]! * h[t]![k]!;
      }
      perLayer[l]! += s / heads.length / qs.length / used.length;
    }
    let c = 0;
    for (const t of qs) {
      let n = 0;
      for (let k = 0; k <= t && k < P; k++) n += mask[k]!;
      c += n / (t + 1);
    }
    chance += c / qs.length / used.length;
  }
  return { perLayer, chance };
}

for (const arch of ['llama', 'phi'] as const) {
  test(`${arch}: per-layer system share equals the float64 reference (both query choices)`, async () => {
    const { config, weights } = hfWeights(arch, 21, { layers: 3 });
    const { lm } = await loadHfModel(await writeFolder(config, weights));
    const before = tf.memory().numTensors;
    for (const queries of ['response', 'generating'] as const) {
      const got = systemAttentionShare(lm, EXAMPLES, { batchSize: 2, queries });
      const ref = referenceShare(arch, config, weights, queries);
      assert.equal(got.examples, 3);
      assert.equal(got.perLayer.length, 3);
      got.perLayer.forEach((v, l) => assert.ok(Math.abs(v - ref.perLayer[l]!) < 2e-5, `${queries} layer ${l}: ${v} vs reference ${ref.perLayer[l]}`));
      assert.ok(Math.abs(got.chance - ref.chance) < 1e-12, `chance ${got.chance} vs ${ref.chance}`);
      assert.deepEqual(got.chancePerLayer, [got.chance, got.chance, got.chance]);
      assert.ok(Math.abs(got.mean - ref.perLayer.reduce((a, b) => a + b) / 3) < 2e-5);
      // The layers differ (a share that ignored the layer index would not).
      assert.ok(new Set(got.perLayer.map((v) => v.toFixed(4))).size > 1);
    }
    // Batching (and with it padding) changes nothing.
    const one = systemAttentionShare(lm, EXAMPLES, { batchSize: 1 });
    const all = systemAttentionShare(lm, EXAMPLES, { batchSize: 8 });
    one.perLayer.forEach((v, l) => assert.ok(Math.abs(v - all.perLayer[l]!) < 1e-6));
    assert.equal(tf.memory().numTensors, before);
    lm.dispose();
  });
}

test('uniform attention (q = 0) gives exactly the chance level in every layer; the hand-computed chance', () => {
  const lm = new CausalLM({ arch: 'llama', vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2 }, { seed: 3 });
  for (let l = 0; l < 2; l++) {
    const q = lm.params.get(`layers.${l}.attn.q.weight`);
    q.assign(tf.zerosLike(q));
  }
  const ex: AttentionExample[] = [{ prompt: [1, 2, 3, 4], system: 2, response: [5, 6] }];
  const got = systemAttentionShare(lm, ex);
  // Queries at positions 4 and 5 see 5 and 6 tokens, 2 of them system: (2/5 + 2/6) / 2.
  const exact = (2 / 5 + 2 / 6) / 2;
  assert.ok(Math.abs(got.chance - exact) < 1e-15);
  for (const v of got.perLayer) assert.ok(Math.abs(v - exact) < 1e-6, `${v} vs ${exact}`);
  // 'generating' queries at 3 and 4: (2/4 + 2/5) / 2.
  const gen = systemAttentionShare(lm, ex, { queries: 'generating' });
  assert.ok(Math.abs(gen.chance - (2 / 4 + 2 / 5) / 2) < 1e-15);
  for (const v of gen.perLayer) assert.ok(Math.abs(v - gen.chance) < 1e-6);
  assert.equal(chanceShare([1, 0, 1], [0, 1, 2, 5]), (1 / 1 + 1 / 2 + 2 / 3 + 2 / 6) / 4);
  lm.dispose();
});

test('shares lie in [0, 1]; all-system and no-system masks give 1 and 0 at prompt queries', () => {
  const lm = new CausalLM({ arch: 'qwen2', vocabSize: 40, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2 }, { seed: 5 });
  const g = (n: number, k: number): number[] => Array.from({ length: n }, (_, i) => (i * 7 + k * 3) % 40);
  const many: AttentionExample[] = Array.from({ length: 6 }, (_, k) => ({ prompt: g(3 + k, k), system: k % 4, response: g(1 + (k % 3), k + 1) }));
  const r = systemAttentionShare(lm, many, { batchSize: 4 });
  for (const v of [...r.perLayer, r.mean, r.chance]) assert.ok(v >= 0 && v <= 1, String(v));
  const full = systemAttentionShare(lm, [{ prompt: [1, 2, 3], system: 3, response: [4] }], { queries: 'generating' });
  for (const v of full.perLayer) assert.ok(Math.abs(v - 1) < 1e-6);
  assert.equal(full.chance, 1);
  const none = systemAttentionShare(lm, [{ prompt: [1, 2, 3], system: 0, response: [4, 5] }]);
  for (const v of none.perLayer) assert.equal(v, 0);
  const m = attentionShareMetrics(r);
  assert.deepEqual(Object.keys(m).sort(), [
    'eval/attention/chance',
    'eval/attention/system_share',
    'eval/attention/system_share/layer_0',
    'eval/attention/system_share/layer_1',
  ]);
  assert.equal(m['eval/attention/system_share/layer_1'], r.perLayer[1]);
  lm.dispose();
});

test('bad input names the example', () => {
  const lm = new CausalLM({ arch: 'llama', vocabSize: 10, dModel: 8, nLayers: 1, nHeads: 2 }, { seed: 1 });
  assert.throws(() => systemAttentionShare(lm, [{ prompt: [1, 2], system: 3, response: [1] }]), /examples\[0\]\.system must be an integer in \[0, 2\]/);
  assert.throws(() => systemAttentionShare(lm, [{ prompt: [1, 2], system: [1], response: [1] }]), /examples\[0\]\.system mask has 1 entries, the prompt has 2/);
  assert.throws(
    () =>
      systemAttentionShare(lm, [
        { prompt: [1], system: 1, response: [1] },
        { prompt: [1], system: 0, response: [12] },
      ]),
    /examples\[1\]\.response\[0\] = 12 is not a token id/,
  );
  assert.throws(() => systemAttentionShare(lm, [{ prompt: [1], system: 1, response: [] }]), AttentionAnalysisError);
  lm.dispose();
});
