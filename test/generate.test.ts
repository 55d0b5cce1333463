/**
 * KV-cache generation and DT action selection: cached logits equal a full recomputation for
 * every variant (with left padding), sampling semantics (τ, top-k, top-p, stop tokens), seeded
 * determinism, behaviour log-probs, flat memory.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Rng } from '../lib/random.ts';
import { CausalLM, DecisionTransformer, DtHistory, KVCache, dtWindowBatch, generate, sampleToken, selectDtActions } from '../lib/models/index.ts';
import type { Arch, ParamStore, TransformerConfigInput } from '../lib/models/index.ts';

before(async () => {
  await tf.setBackend('cpu');
});

const ARCHS: Arch[] = ['gpt2', 'llama', 'qwen2', 'phi'];

function tinyConfig(arch: Arch, over: Partial<TransformerConfigInput> = {}): TransformerConfigInput {
  return {
    arch,
    vocabSize: 19,
    dModel: 32,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: arch === 'llama' ? 2 : arch === 'qwen2' ? 1 : 4,
    dFF: 40,
    maxPositions: 24,
    ...over,
  };
}

function randomize(ps: ParamStore, seed: number): void {
  for (const name of ps.names()) {
    const v = ps.get(name);
    const isGain = /(ln\d|norm)\.weight$/.test(name);
    v.assign(tf.tensor(Float32Array.from(new Rng(seed, name).normalArray(v.size, isGain ? 1 : 0, 0.3)), v.shape));
  }
}

function tinyLM(arch: Arch, seed = 1): CausalLM {
  const lm = new CausalLM(tinyConfig(arch), { seed });
  randomize(lm.params, seed + 50);
  return lm;
}

for (const arch of ARCHS) {
  test(`${arch}: logits with the KV cache equal a full recomputation (left padding, masked steps)`, () => {
    const lm = tinyLM(arch);
    const V = lm.config.vocabSize;
    const B = 3;
    const L = 5;
    // Left-padded prompts of lengths 5, 2, 1 (pad = 0).
    const prompt = [
      [3, 1, 4, 1, 5],
      [0, 0, 0, 9, 2],
      [0, 0, 0, 0, 6],
    ];
    const pmask = [
      [1, 1, 1, 1, 1],
      [0, 0, 0, 1, 1],
      [0, 0, 0, 0, 1],
    ];
    // Four decode steps; row 2 "finishes" after step 1 (masked pad afterwards).
    const steps = [
      [7, 8, 2],
      [11, 3, 5],
      [4, 12, 0],
      [1, 16, 0],
    ];
    const smask = [
      [1, 1, 1],
      [1, 1, 1],
      [1, 1, 0],
      [1, 1, 0],
    ];
    const n0 = tf.memory().numTensors;
    const cache = new KVCache(lm.config.nLayers);
    const cached: Float32Array[] = [];
    cached.push(tf.tidy(() => lm.logits(tf.tensor2d(prompt, [B, L], 'int32'), { attentionMask: tf.tensor2d(pmask), cache }).dataSync() as Float32Array));
    for (let s = 0; s < steps.length; s++) {
      cached.push(
        tf.tidy(() => lm.logits(tf.tensor2d(steps[s]!, [B, 1], 'int32'), { attentionMask: tf.tensor2d(smask[s]!, [B, 1]), cache }).dataSync() as Float32Array),
      );
    }
    assert.equal(cache.length, L + steps.length);
    cache.dispose();
    assert.equal(tf.memory().numTensors, n0, 'cache disposal frees everything');

    const T = L + steps.length;
    const allTok = prompt.map((row, b) => [...row, ...steps.map((st) => st[b]!)]);
    const allMask = pmask.map((row, b) => [...row, ...smask.map((st) => st[b]!)]);
    const full = tf.tidy(() => lm.logits(tf.tensor2d(allTok, [B, T], 'int32'), { attentionMask: tf.tensor2d(allMask) }).dataSync());
    let maxDiff = 0;
    let compared = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        if (!allMask[b]![t]) continue;
        const c = t < L ? cached[0]!.subarray((b * L + t) * V, (b * L + t + 1) * V) : cached[t - L + 1]!.subarray(b * V, (b + 1) * V);
        const f = full.subarray((b * T + t) * V, (b * T + t + 1) * V);
        for (let v = 0; v < V; v++) maxDiff = Math.max(maxDiff, Math.abs(c[v]! - f[v]!));
        compared++;
      }
    }
    assert.equal(compared, 5 + 2 + 1 + 4 + 4 + 2);
    assert.ok(maxDiff < 1e-5, `max |cached − full| = ${maxDiff}`);

    // And the left-padded row equals its unpadded self run alone.
    const alone = tf.tidy(() => lm.logits(tf.tensor2d([[9, 2, 8, 3, 12, 16]], [1, 6], 'int32')).dataSync());
    const row1 = [3, 4, 5, 6, 7, 8].map((t) => full.subarray((1 * T + t) * V, (1 * T + t + 1) * V));
    for (let i = 0; i < 6; i++) {
      for (let v = 0; v < V; v++) assert.ok(Math.abs(row1[i]![v]! - alone[i * V + v]!) < 1e-5);
    }
    lm.dispose();
  });
}

test('sampleToken: greedy, temperature, top-k and top-p follow their definitions', () => {
  const p = [0.5, 0.3, 0.15, 0.05];
  const logp = p.map(Math.log);
  const rng = new Rng(0, 'st');
  assert.deepEqual(sampleToken(logp, rng, { temperature: 0 }), { token: 0, samplingLogProb: 0 });
  // top-k = 1 and a tiny top-p always give the argmax with q = 1.
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(sampleToken(logp, rng, { topK: 1 }), { token: 0, samplingLogProb: 0 });
    assert.deepEqual(sampleToken(logp, rng, { topP: 0.1 }), { token: 0, samplingLogProb: 0 });
  }
  // Temperature τ: q ∝ p^(1/τ). top-k 2: q over {0, 1} renormalised. top-p 0.7: {0, 1} (0.5 < 0.7 ≤ 0.8).
  const tau = 0.5;
  const z = p.map((x) => x ** (1 / tau));
  const zs = z.reduce((a, b) => a + b, 0);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 400; i++) {
    const { token, samplingLogProb } = sampleToken(logp, rng, { temperature: tau });
    counts[token]!++;
    assert.ok(Math.abs(samplingLogProb - Math.log(z[token]! / zs)) < 1e-9);
    const k = sampleToken(logp, rng, { topK: 2 });
    assert.ok(k.token <= 1);
    assert.ok(Math.abs(k.samplingLogProb - Math.log(p[k.token]! / 0.8)) < 1e-9);
    const n = sampleToken(logp, rng, { topP: 0.7 });
    assert.ok(n.token <= 1);
    assert.ok(Math.abs(n.samplingLogProb - Math.log(p[n.token]! / 0.8)) < 1e-9);
  }
  assert.ok(counts[0]! > counts[1]! && counts[1]! > counts[3]!);
  const s = sampleToken(logp, rng, { topP: 0.9 });
  assert.ok(s.token <= 2, 'top-p 0.9 keeps {0, 1, 2}');
});

test('generate: seeded, batched with left padding, stop tokens, behaviour log-probs match recomputation, memory flat', () => {
  const lm = tinyLM('llama', 2);
  const V = lm.config.vocabSize;
  const prompts = [[3, 1, 4, 1, 5], [9, 2], [6]];
  const opts = { maxNewTokens: 6, stopTokens: [7, 8], temperature: 1 };
  const a = generate(lm, prompts, new Rng(5, 'sample'), opts);
  const b = generate(lm, prompts, new Rng(5, 'sample'), opts);
  assert.deepEqual(a, b, 'same seed → same tokens and log-probs');
  const c = generate(lm, prompts, new Rng(6, 'sample'), { maxNewTokens: 6 });
  assert.notDeepEqual(a.tokens, c.tokens);
  for (let r = 0; r < 3; r++) {
    const toks = a.tokens[r]!;
    assert.ok(toks.length >= 1 && toks.length <= 6);
    toks.forEach((t, i) => {
      assert.ok(t >= 0 && t < V);
      if (i < toks.length - 1) assert.ok(t !== 7 && t !== 8, 'stops at the first stop token');
    });
    assert.equal(a.stopped[r], toks.length > 0 && [7, 8].includes(toks[toks.length - 1]!));
    if (!a.stopped[r]) assert.equal(toks.length, 6);
    // τ = 1, no filtering: the sampling distribution is the policy.
    for (let i = 0; i < toks.length; i++) assert.ok(Math.abs(a.samplingLogProbs[r]![i]! - a.logProbs[r]![i]!) < 1e-5);
  }
  // Recompute log π of each generated token without the cache, one sequence at a time.
  for (let r = 0; r < 3; r++) {
    const seq = [...prompts[r]!, ...a.tokens[r]!];
    const n = a.tokens[r]!.length;
    const lp = tf.tidy(() => {
      const x = tf.tensor2d([seq.slice(0, -1)], [1, seq.length - 1], 'int32');
      const y = tf.tensor2d([seq.slice(1)], [1, seq.length - 1], 'int32');
      return lm.tokenLogProbs(x, y).dataSync();
    });
    const tail = lp.subarray(lp.length - n);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(tail[i]! - a.logProbs[r]![i]!) < 1e-5, `row ${r} token ${i}`);
  }
  // Greedy decoding: sampling log-prob 0, deterministic regardless of the Rng.
  const g1 = generate(lm, prompts, new Rng(1), { maxNewTokens: 4, temperature: 0 });
  const g2 = generate(lm, prompts, new Rng(2), { maxNewTokens: 4, temperature: 0 });
  assert.deepEqual(g1.tokens, g2.tokens);
  for (const s of g1.samplingLogProbs) for (const v of s) assert.equal(v, 0);
  // Memory: nothing leaks across calls.
  const n0 = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) generate(lm, prompts, new Rng(i), { maxNewTokens: 5, topK: 5, topP: 0.9, temperature: 0.7 });
  assert.equal(tf.memory().numTensors, n0);
  assert.throws(() => generate(lm, [[1], []], new Rng(0), { maxNewTokens: 2 }), /at least one token/);
  lm.dispose();
});

test('generate: gpt2 learned positions refuse to run past maxPositions', () => {
  const lm = tinyLM('gpt2');
  const n0 = tf.memory().numTensors;
  assert.throws(() => generate(lm, [new Array(20).fill(1)], new Rng(0), { maxNewTokens: 10 }), /maxPositions/);
  assert.equal(tf.memory().numTensors, n0, 'the cache is freed on error');
  const ok = generate(lm, [new Array(20).fill(1)], new Rng(0), { maxNewTokens: 4 });
  assert.equal(ok.tokens[0]!.length, 4);
  lm.dispose();
});

test('DT acting: windows of the last K steps, left-padded; seeded; actions recorded; memory flat', () => {
  const dt = new DecisionTransformer({ stateDim: 2, actDim: 1, contextLength: 3, maxEpisodeSteps: 20, core: { dModel: 16, nLayers: 1, nHeads: 2 }, seed: 0 });
  const h1 = new DtHistory(2, 1);
  const h2 = new DtHistory(2, 1);
  h1.observe([0.1, 0.2], 10);
  h2.observe([0.3, 0.4], 5);
  const r1 = selectDtActions(dt, [h1, h2], new Rng(0, 'a'));
  assert.equal(r1.action.length, 2);
  assert.deepEqual(h1.actions[0], [r1.action[0]]);
  // Steps 1..4 for h1 (return-to-go decreases by the reward), h2 stays at one step.
  for (let t = 1; t < 5; t++) {
    h1.observe([t, -t], 10 - t);
    selectDtActions(dt, [h1], new Rng(t, 'a'));
  }
  const w = dtWindowBatch([h1, h2], 3);
  assert.deepEqual(Array.from(w.timesteps), [2, 3, 4, 0, 0, 0]);
  assert.deepEqual(Array.from(w.mask), [1, 1, 1, 0, 0, 1]);
  assert.deepEqual(Array.from(w.returnsToGo), [8, 7, 6, 0, 0, 5]);
  assert.deepEqual(Array.from(w.states.subarray(0, 2)), [2, -2]);
  assert.equal(w.actions[2], Math.fround(h1.actions[4]![0]!));
  // Seeded: same histories + same Rng → same action.
  const x = dt.act(w, new Rng(3, 'x'));
  const y = dt.act(w, new Rng(3, 'x'));
  assert.deepEqual(x, y);
  const n0 = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) dt.act(w, new Rng(i));
  assert.equal(tf.memory().numTensors, n0);
  dt.dispose();
});
