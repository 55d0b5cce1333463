/**
 * Transformer core (gpt2 / llama / qwen2 / phi), LM head, Decision Transformer and MLP policies:
 * building blocks against plain-JS references, masking, GQA, gradients, memory, determinism.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { ensureGradients } from '../lib/tensor/gradients.ts';
import { Rng } from '../lib/random.ts';
import {
  CausalLM,
  ConfigError,
  DecisionTransformer,
  MlpPolicy,
  ParamStore,
  activate,
  applyRope,
  fromHfConfig,
  initValues,
  layerNorm,
  init,
  rmsNorm,
  ropeCosSin,
  tanhGaussianLogProb,
  tanhGaussianLogProbJs,
  transformerConfig,
} from '../lib/models/index.ts';
import { MODEL_KINDS, makeModel } from '../lib/models/registry.ts';
import { lmPolicy } from '../lib/models/lm-policy.ts';
import type { Arch, DtBatch, TransformerConfigInput } from '../lib/models/index.ts';

before(async () => {
  await tf.setBackend('cpu');
  await ensureGradients();
});

const ARCHS: Arch[] = ['gpt2', 'llama', 'qwen2', 'phi'];

function tinyConfig(arch: Arch, over: Partial<TransformerConfigInput> = {}): TransformerConfigInput {
  return {
    arch,
    vocabSize: 23,
    dModel: 32,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: arch === 'llama' || arch === 'qwen2' ? 2 : 4,
    dFF: 48,
    maxPositions: 32,
    tieEmbeddings: arch === 'qwen2' ? false : undefined,
    ...over,
  };
}

/** Replaces every parameter by N(0, 0.3²) noise (norm gains around 1) so biases and gains matter. */
function randomize(ps: ParamStore, seed: number): void {
  for (const name of ps.names()) {
    const v = ps.get(name);
    const rng = new Rng(seed, name);
    const isGain = /(ln\d|norm|embed_ln)\.weight$/.test(name);
    const data = Float32Array.from(rng.normalArray(v.size, isGain ? 1 : 0, 0.3));
    v.assign(tf.tensor(data, v.shape));
  }
}

function tinyLM(arch: Arch, over: Partial<TransformerConfigInput> = {}, seed = 3): CausalLM {
  const lm = new CausalLM(tinyConfig(arch, over), { seed });
  randomize(lm.params, seed + 100);
  return lm;
}

const ids = (rows: number[][]): tf.Tensor2D => tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// ------------------------------------------------------------------------------------------
// config and params
// ------------------------------------------------------------------------------------------

test('config: arch defaults, derived fields, validation errors name the field', () => {
  const l = transformerConfig({ arch: 'llama', vocabSize: 10, dModel: 32, nHeads: 4, nKvHeads: 2 });
  assert.equal(l.headDim, 8);
  assert.equal(l.norm, 'rmsnorm');
  assert.equal(l.mlp, 'gated');
  assert.equal(l.qkvBias, false);
  const p = transformerConfig({ arch: 'phi', vocabSize: 10, dModel: 32, nHeads: 4 });
  assert.equal(p.parallelResidual, true);
  assert.equal(p.partialRotaryFactor, 0.5);
  assert.equal(transformerConfig({ arch: 'qwen2', vocabSize: 5 }).qkvBias, true);
  assert.throws(
    () => transformerConfig({ arch: 'llama', vocabSize: 5, nHeads: 4, nKvHeads: 3 }),
    (e: unknown) => e instanceof ConfigError && /nKvHeads/.test(e.message),
  );
  assert.throws(() => transformerConfig({ arch: 'gpt2', vocabSize: 5, dModel: 30, nHeads: 4 }), /headDim/);
  const hf = fromHfConfig({
    model_type: 'qwen2',
    vocab_size: 100,
    hidden_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    intermediate_size: 96,
    rope_theta: 1e6,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    hidden_act: 'silu',
  });
  assert.equal(hf.nKvHeads, 2);
  assert.equal(hf.dFF, 96);
  assert.equal(hf.tieEmbeddings, true);
});

test('params: same seed → same values; a parameter depends only on (seed, name); orthogonal init', () => {
  const a = new CausalLM(tinyConfig('llama'), { seed: 7 });
  const b = new CausalLM(tinyConfig('llama'), { seed: 7 });
  const c = new CausalLM(tinyConfig('llama'), { seed: 8 });
  const ra = a.params.toRecord();
  const rb = b.params.toRecord();
  const rc = c.params.toRecord();
  assert.deepEqual(Object.keys(ra), Object.keys(rb));
  for (const k of Object.keys(ra)) assert.deepEqual(ra[k]!.data, rb[k]!.data, k);
  assert.notDeepEqual(ra['layers.0.attn.q.weight']!.data, rc['layers.0.attn.q.weight']!.data);
  // Load round trip.
  c.params.load(ra);
  assert.deepEqual(c.params.get('lm_head.weight').dataSync(), a.params.get('lm_head.weight').dataSync());
  for (const m of [a, b, c]) m.dispose();

  const ps = new ParamStore(1);
  const w1 = ps.add('x', [3], { kind: 'normal', std: 1 }).dataSync();
  const ps2 = new ParamStore(1);
  ps2.add('other', [5], { kind: 'normal', std: 1 });
  assert.deepEqual(ps2.add('x', [3], { kind: 'normal', std: 1 }).dataSync(), w1);
  assert.throws(() => ps.add('x', [3], { kind: 'zeros' }), /already exists/);
  ps.dispose();
  ps2.dispose();

  for (const [r, cols] of [
    [6, 3],
    [3, 6],
  ] as const) {
    const q = initValues([r, cols], init.orthogonal(2), new Rng(0, 'o'));
    // rows ≥ cols: QᵀQ = 4I (cols × cols); else QQᵀ = 4I.
    const k = Math.min(r, cols);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        let d = 0;
        for (let t = 0; t < Math.max(r, cols); t++) d += r >= cols ? q[t * cols + i]! * q[t * cols + j]! : q[i * cols + t]! * q[j * cols + t]!;
        assert.ok(Math.abs(d - (i === j ? 4 : 0)) < 1e-5, `orthogonal ${r}x${cols} (${i},${j}) = ${d}`);
      }
    }
  }
});

// ------------------------------------------------------------------------------------------
// building blocks vs plain JS
// ------------------------------------------------------------------------------------------

test('LayerNorm and RMSNorm match plain-JS references', () => {
  const rng = new Rng(0, 'norm');
  const D = 7;
  const x = Array.from(rng.normalArray(3 * D, 0.5, 2));
  const g = Array.from(rng.normalArray(D, 1, 0.2));
  const bta = Array.from(rng.normalArray(D));
  const eps = 1e-5;
  const [ln, rms] = tf.tidy(() => {
    const xt = tf.tensor2d(x, [3, D]);
    return [layerNorm(xt, tf.tensor1d(g), tf.tensor1d(bta), eps).dataSync(), rmsNorm(xt, tf.tensor1d(g), eps).dataSync()];
  });
  for (let r = 0; r < 3; r++) {
    const row = x.slice(r * D, (r + 1) * D);
    const mu = row.reduce((a, b) => a + b, 0) / D;
    const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / D;
    const ms = row.reduce((a, b) => a + b * b, 0) / D;
    for (let i = 0; i < D; i++) {
      assert.ok(Math.abs(ln![r * D + i]! - (((row[i]! - mu) / Math.sqrt(v + eps)) * g[i]! + bta[i]!)) < 1e-5);
      assert.ok(Math.abs(rms![r * D + i]! - (row[i]! / Math.sqrt(ms + eps)) * g[i]!) < 1e-5);
    }
  }
});

test('activations: tanh-GELU, GELU, SiLU match their formulas', () => {
  const xs = [-3, -1, -0.2, 0, 0.4, 1.5, 4];
  const got = (k: 'gelu_tanh' | 'gelu' | 'silu') => tf.tidy(() => activate(tf.tensor1d(xs), k).dataSync());
  const gt = got('gelu_tanh');
  const ge = got('gelu');
  const si = got('silu');
  xs.forEach((x, i) => {
    assert.ok(Math.abs(gt[i]! - 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))) < 1e-5);
    assert.ok(Math.abs(si[i]! - x / (1 + Math.exp(-x))) < 1e-5);
    // GELU(x) vs tanh-GELU differ by < 1e-3 everywhere.
    assert.ok(Math.abs(ge[i]! - gt[i]!) < 1e-3);
  });
});

test('RoPE: matches a hand rotation of (x_j, x_{j+r/2}) pairs; q·k depends only on the position difference', () => {
  const d = 8;
  const rot = 6; // partial: dims 6, 7 pass through
  const theta = 100;
  const rng = new Rng(0, 'rope');
  const q = Array.from(rng.normalArray(d));
  const k = Array.from(rng.normalArray(d));
  const rotate = (v: number[], pos: number): Float32Array =>
    tf.tidy(() => {
      const { cos, sin } = ropeCosSin(tf.tensor2d([[pos]], [1, 1]), rot, theta);
      return applyRope(tf.tensor4d(v, [1, 1, 1, d]), cos, sin, rot).dataSync() as Float32Array;
    });
  const hand = (v: number[], pos: number): number[] => {
    const out = v.slice();
    for (let j = 0; j < rot / 2; j++) {
      const a = pos * theta ** ((-2 * j) / rot);
      out[j] = v[j]! * Math.cos(a) - v[j + rot / 2]! * Math.sin(a);
      out[j + rot / 2] = v[j + rot / 2]! * Math.cos(a) + v[j]! * Math.sin(a);
    }
    return out;
  };
  for (const pos of [0, 1, 5, 17]) assert.ok(maxAbsDiff(rotate(q, pos), hand(q, pos)) < 1e-5, `pos ${pos}`);
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);
  const base = dot(rotate(q, 7), rotate(k, 3));
  for (const shift of [1, 4, 20]) assert.ok(Math.abs(dot(rotate(q, 7 + shift), rotate(k, 3 + shift)) - base) < 1e-4);
  // The rotated part depends on the difference; at a different difference it changes.
  assert.ok(Math.abs(dot(rotate(q, 8), rotate(k, 3)) - base) > 1e-3);
  // Hand check of the relative property itself: dot of rotated = Σ_j rotation by (m − n).
  assert.ok(Math.abs(dot(hand(q, 7), hand(k, 3)) - base) < 1e-4);
});

// ------------------------------------------------------------------------------------------
// masking, padding, attention weights, GQA
// ------------------------------------------------------------------------------------------

for (const arch of ARCHS) {
  test(`${arch}: causal — changing a future token leaves earlier logits unchanged`, () => {
    const lm = tinyLM(arch);
    const [a, b] = tf.tidy(() => [lm.logits(ids([[1, 4, 9, 2, 7, 3]])).dataSync(), lm.logits(ids([[1, 4, 9, 15, 7, 3]])).dataSync()]);
    const V = lm.config.vocabSize;
    assert.ok(maxAbsDiff(a!.subarray(0, 3 * V), b!.subarray(0, 3 * V)) < 1e-6);
    assert.ok(maxAbsDiff(a!.subarray(3 * V), b!.subarray(3 * V)) > 1e-3, 'later positions must change');
    lm.dispose();
  });

  test(`${arch}: padding — left- and right-padded rows equal the unpadded sequence at real positions`, () => {
    const lm = tinyLM(arch);
    const V = lm.config.vocabSize;
    const seq = [5, 3, 8, 1];
    const out = tf.tidy(() => {
      const alone = lm.logits(ids([seq])).dataSync();
      const batch = lm
        .logits(
          ids([
            [0, 0, ...seq],
            [...seq, 0, 0],
            [2, 6, 1, 9, 4, 4],
          ]),
          {
            attentionMask: tf.tensor2d([
              [0, 0, 1, 1, 1, 1],
              [1, 1, 1, 1, 0, 0],
              [1, 1, 1, 1, 1, 1],
            ]),
          },
        )
        .dataSync();
      return [alone, batch];
    });
    const alone = out[0]!;
    const batch = out[1]!;
    const T = 6;
    assert.ok(maxAbsDiff(alone, batch.subarray((0 * T + 2) * V, (0 * T + 6) * V)) < 1e-5, 'left padding');
    assert.ok(maxAbsDiff(alone, batch.subarray((1 * T + 0) * V, (1 * T + 4) * V)) < 1e-5, 'right padding');
    for (const x of batch) assert.ok(Number.isFinite(x));
    lm.dispose();
  });

  test(`${arch}: attention weights [B, H, T, T] per layer; rows sum to 1 and are causal`, () => {
    const lm = tinyLM(arch);
    const T = 5;
    const { atts, shapes } = tf.tidy(() => {
      const { attentions } = lm.forward(
        ids([
          [1, 2, 3, 4, 5],
          [6, 7, 8, 9, 10],
        ]),
        { returnAttention: true },
      );
      return { atts: attentions!.map((a) => a.dataSync() as Float32Array), shapes: attentions!.map((a) => a.shape) };
    });
    assert.equal(atts.length, lm.config.nLayers);
    for (let l = 0; l < atts.length; l++) {
      assert.deepEqual(shapes[l], [2, lm.config.nHeads, T, T]);
      const a = atts[l]!;
      for (let row = 0; row < 2 * lm.config.nHeads * T; row++) {
        const t = row % T;
        let s = 0;
        for (let j = 0; j < T; j++) {
          const p = a[row * T + j]!;
          s += p;
          if (j > t) assert.equal(p, 0, `future weight at layer ${l} row ${row} key ${j}`);
        }
        assert.ok(Math.abs(s - 1) < 1e-5);
      }
    }
    // The default path returns no attention.
    const none = tf.tidy(() => {
      const r = lm.forward(ids([[1, 2]]));
      assert.equal(r.attentions, null);
      return r.logits;
    });
    none.dispose();
    lm.dispose();
  });
}

test('GQA equals MHA with each K/V head repeated for its query group', () => {
  const gqa = tinyLM('llama', { nHeads: 4, nKvHeads: 2 });
  const mha = new CausalLM(tinyConfig('llama', { nHeads: 4, nKvHeads: 4 }), { seed: 0 });
  const d = gqa.config.headDim;
  const D = gqa.config.dModel;
  const G = 2;
  for (const name of mha.params.names()) {
    const src = gqa.params.get(name);
    if (/attn\.[kv]\.weight$/.test(name)) {
      // [D, Hkv·d] → [D, H·d]: head h takes kv head ⌊h/G⌋.
      const w = src.dataSync();
      const out = new Float32Array(D * 4 * d);
      for (let r = 0; r < D; r++)
        for (let h = 0; h < 4; h++) for (let j = 0; j < d; j++) out[r * 4 * d + h * d + j] = w[r * 2 * d + Math.floor(h / G) * d + j]!;
      mha.params.get(name).assign(tf.tensor2d(out, [D, 4 * d]));
    } else mha.params.get(name).assign(src);
  }
  const [a, b] = tf.tidy(() => {
    const x = ids([
      [3, 1, 4, 1, 5, 9],
      [2, 6, 5, 3, 5, 8],
    ]);
    return [gqa.logits(x).dataSync(), mha.logits(x).dataSync()];
  });
  assert.ok(maxAbsDiff(a!, b!) < 1e-5);
  gqa.dispose();
  mha.dispose();
});

// ------------------------------------------------------------------------------------------
// LM head: log-probs and entropy
// ------------------------------------------------------------------------------------------

test('tokenLogProbs and entropy match a softmax by hand over the logits', () => {
  const lm = tinyLM('qwen2');
  const V = lm.config.vocabSize;
  const x = [[3, 1, 4, 1]];
  const y = [[1, 4, 1, 5]];
  const { logits, lp, ent } = tf.tidy(() => {
    const r = lm.logProbsAndEntropy(ids(x), ids(y));
    return { logits: lm.logits(ids(x)).dataSync(), lp: r.logProbs.dataSync(), ent: r.entropy.dataSync() };
  });
  for (let t = 0; t < 4; t++) {
    const row = Array.from(logits.subarray(t * V, (t + 1) * V));
    const m = Math.max(...row);
    const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    const logp = row.map((v) => v - m - Math.log(z));
    assert.ok(Math.abs(lp[t]! - logp[y[0]![t]!]!) < 1e-5);
    assert.ok(Math.abs(ent[t]! + logp.reduce((s, l) => s + Math.exp(l) * l, 0)) < 1e-5);
  }
  // Target −1 scores 0 (ignored position).
  const ign = tf.tidy(() => lm.tokenLogProbs(ids([[3, 1]]), ids([[-1, 4]])).dataSync());
  assert.equal(ign[0], 0);
  lm.dispose();
});

// ------------------------------------------------------------------------------------------
// gradients and memory
// ------------------------------------------------------------------------------------------

function assertAllGrads(vars: tf.Variable[], loss: () => tf.Scalar, what: string): void {
  const { value, grads } = tf.variableGrads(loss, vars);
  try {
    assert.ok(Number.isFinite(value.dataSync()[0]!));
    for (const v of vars) {
      const g = grads[v.name];
      assert.ok(g, `${what}: no gradient for a variable of shape [${v.shape.join(', ')}]`);
      const n = tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]!);
      assert.ok(Number.isFinite(n) && n > 0, `${what}: zero/NaN gradient for shape [${v.shape.join(', ')}]`);
    }
  } finally {
    tf.dispose(value);
    tf.dispose(Object.values(grads));
  }
}

for (const arch of ARCHS) {
  test(`${arch}: gradients reach every variable (also tied embeddings) and memory stays flat`, () => {
    for (const tie of arch === 'qwen2' ? [true, false] : [undefined]) {
      const lm = tinyLM(arch, tie === undefined ? {} : { tieEmbeddings: tie });
      const names = lm.params.names();
      assert.equal(names.includes('lm_head.weight'), !lm.config.tieEmbeddings);
      assert.equal(names.includes('lm_head.bias'), arch === 'phi');
      assert.equal(names.includes('layers.0.ln2.weight'), arch !== 'phi');
      const x = ids([
        [1, 2, 3, 4],
        [5, 6, 7, 8],
      ]);
      const y = ids([
        [2, 3, 4, 5],
        [6, 7, 8, 9],
      ]);
      const mask = tf.tensor2d([
        [1, 1, 1, 1],
        [0, 1, 1, 1],
      ]);
      const loss = () => tf.neg(tf.mean(lm.tokenLogProbs(x, y, { attentionMask: mask }))) as tf.Scalar;
      assertAllGrads(lm.variables, loss, arch);
      const opt = tf.train.sgd(0.01);
      opt.minimize(loss, false, lm.variables);
      const n0 = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        opt.minimize(loss, false, lm.variables);
        tf.tidy(() => {
          lm.forward(x, { returnAttention: true });
        });
      }
      assert.equal(tf.memory().numTensors, n0, 'tensor count must stay flat');
      opt.dispose();
      tf.dispose([x, y, mask]);
      lm.dispose();
    }
  });
}

// ------------------------------------------------------------------------------------------
// Decision Transformer
// ------------------------------------------------------------------------------------------

function dtBatch(B: number, K: number, S: number, A: number, seed: number, padLeft = [0, 0]): DtBatch {
  const rng = new Rng(seed, 'dt-batch');
  const mask = new Float32Array(B * K).fill(1);
  padLeft.slice(0, B).forEach((p, b) => mask.fill(0, b * K, b * K + p));
  return {
    batchSize: B,
    length: K,
    states: Float32Array.from(rng.normalArray(B * K * S)),
    actions: Float32Array.from(rng.uniformArray(B * K * A, -0.95, 0.95)),
    returnsToGo: Float32Array.from(rng.normalArray(B * K)),
    timesteps: Int32Array.from({ length: B * K }, (_, i) => (i % K) + 3),
    mask,
  };
}

const tinyDt = (over: Partial<ConstructorParameters<typeof DecisionTransformer>[0]> = {}) =>
  new DecisionTransformer({ stateDim: 3, actDim: 2, contextLength: 4, maxEpisodeSteps: 50, core: { dModel: 16, nLayers: 2, nHeads: 2 }, seed: 5, ...over });

test('tanh-Gaussian log-likelihood matches the closed form (atanh + Jacobian), with clipping', () => {
  const a = [0.3, -0.7, 0.999, -1, 1, 0];
  const mu = [0.1, -0.4, 2.0, -1.5, 0.3, 0];
  const ls = [-0.5, 0.2, -1, 0.5, -2, -5];
  const got = tf.tidy(() => tanhGaussianLogProb(tf.tensor2d(a, [3, 2]), tf.tensor2d(mu, [3, 2]), tf.tensor2d(ls, [3, 2])).dataSync());
  for (let r = 0; r < 3; r++) {
    let ref = 0;
    for (let i = 2 * r; i < 2 * r + 2; i++) {
      const ac = Math.max(-(1 - 1e-6), Math.min(1 - 1e-6, Math.fround(a[i]!)));
      const u = 0.5 * Math.log((1 + ac) / (1 - ac));
      const s = Math.exp(ls[i]!);
      ref += -0.5 * ((u - mu[i]!) / s) ** 2 - Math.log(s) - 0.5 * Math.log(2 * Math.PI) - Math.log(1 - ac * ac);
    }
    // Clipped actions at ±1 lose precision in float32 atanh; compare loosely there.
    const tol = r >= 1 ? 2e-2 * Math.max(1, Math.abs(ref)) : 1e-4;
    assert.ok(Math.abs(got[r]! - ref) < tol, `row ${r}: ${got[r]} vs ${ref}`);
    assert.ok(Math.abs(tanhGaussianLogProbJs(a.slice(2 * r, 2 * r + 2), mu.slice(2 * r, 2 * r + 2), ls.slice(2 * r, 2 * r + 2)) - ref) < tol);
  }
});

test('DT: per-step log-probs [B, K], 0 on padding; the action at t ignores a_t and later steps', () => {
  const dt = tinyDt();
  randomize(dt.params, 11);
  const b = dtBatch(2, 4, 3, 2, 0, [1, 0]);
  const lp = tf.tidy(() => dt.actionLogProb(b).arraySync());
  assert.equal(lp.length, 2);
  assert.equal(lp[0]!.length, 4);
  assert.equal(Math.abs(lp[0]![0]!), 0);
  for (const row of lp) for (const v of row) assert.ok(Number.isFinite(v));
  // Change the action and state at step 2: the distribution at steps 0, 1 must not move; the mean
  // at step 2 must not move when only a_2 changes.
  const means = (x: DtBatch) => tf.tidy(() => dt.dist(x).mean.arraySync());
  const m0 = means(b);
  const actions = b.actions.slice();
  actions[(1 * 4 + 2) * 2] = -0.5;
  const m1 = means({ ...b, actions });
  const states = b.states.slice();
  states[(1 * 4 + 2) * 3] = 4;
  const m2 = means({ ...b, states });
  assert.ok(maxAbsDiff(m0[1]!.slice(0, 3).flat(), m1[1]!.slice(0, 3).flat()) < 1e-6);
  assert.ok(maxAbsDiff(m0[1]![3]!, m1[1]![3]!) > 1e-4, 'a_2 must influence step 3');
  assert.ok(maxAbsDiff(m0[1]!.slice(0, 2).flat(), m2[1]!.slice(0, 2).flat()) < 1e-6);
  assert.ok(maxAbsDiff(m0[1]![2]!, m2[1]![2]!) > 1e-4, 's_2 must influence step 2');
  // Padding does not change a row's real-step outputs: row 0 with its pad step dropped.
  const sub: DtBatch = {
    batchSize: 1,
    length: 3,
    states: b.states.slice(3, 12),
    actions: b.actions.slice(2, 8),
    returnsToGo: b.returnsToGo.slice(1, 4),
    timesteps: b.timesteps.slice(1, 4),
    mask: new Float32Array(3).fill(1),
  };
  const lpSub = tf.tidy(() => dt.actionLogProb(sub).arraySync());
  assert.ok(maxAbsDiff(lpSub[0]!, lp[0]!.slice(1)) < 1e-4);
  // log σ stays within [−5, 2].
  const ls = tf.tidy(() => dt.dist(b).logStd.dataSync());
  for (const v of ls) assert.ok(v >= -5 && v <= 2);
  dt.dispose();
});

test('DT: act samples deterministically from an Rng; its log-prob equals actionLogProb of the stored action', () => {
  const dt = tinyDt({ logStd: 'state-independent' });
  randomize(dt.params, 12);
  const b = dtBatch(3, 4, 3, 2, 1, [2, 0, 3]);
  const r1 = dt.act(b, new Rng(9, 'act'));
  const r2 = dt.act(b, new Rng(9, 'act'));
  assert.deepEqual(r1.action, r2.action);
  assert.deepEqual(r1.logProb, r2.logProb);
  for (const v of r1.action) assert.ok(Math.abs(v) < 1);
  // Put the sampled actions in the last slot and score them.
  const actions = b.actions.slice();
  for (let r = 0; r < 3; r++) actions.set(r1.action.subarray(r * 2, r * 2 + 2), (r * 4 + 3) * 2);
  const lp = tf.tidy(() => dt.actionLogProb({ ...b, actions }).arraySync());
  for (let r = 0; r < 3; r++) assert.ok(Math.abs(lp[r]![3]! - r1.logProb[r]!) < 1e-3, `row ${r}: ${lp[r]![3]} vs ${r1.logProb[r]}`);
  const det = dt.act(b, new Rng(0), { deterministic: true });
  const tanhMean = tf.tidy(() => dt.deterministicAction(b).arraySync());
  for (let r = 0; r < 3; r++) assert.ok(maxAbsDiff(det.action.subarray(r * 2, r * 2 + 2), tanhMean[r]![3]!) < 1e-5);
  dt.dispose();
});

test('DT: gradients reach every variable (log-likelihood + sampled entropy); memory flat', () => {
  for (const logStd of ['state-dependent', 'state-independent'] as const) {
    const dt = tinyDt({ logStd });
    const b = dtBatch(2, 4, 3, 2, 2, [1, 0]);
    const rng = new Rng(0, 'ent');
    const loss = () => tf.neg(tf.add(tf.mean(dt.actionLogProb(b)), tf.mul(0.1, tf.mean(dt.entropy(b, rng, 2))))) as tf.Scalar;
    assertAllGrads(dt.variables, loss, `dt ${logStd}`);
    const ent = tf.tidy(() => dt.entropy(b, new Rng(1), 64).arraySync());
    assert.equal(Math.abs(ent[0]![0]!), 0, 'entropy is 0 on padding');
    const opt = tf.train.sgd(0.01);
    opt.minimize(loss, false, dt.variables);
    const n0 = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      opt.minimize(loss, false, dt.variables);
      dt.act(b, rng);
    }
    assert.equal(tf.memory().numTensors, n0);
    opt.dispose();
    dt.dispose();
  }
});

// ------------------------------------------------------------------------------------------
// MLP policies
// ------------------------------------------------------------------------------------------

test('MLP categorical: logProb = log softmax by hand; act is seeded; value head', () => {
  const pi = new MlpPolicy({ obsDim: 4, actionSpace: { kind: 'discrete', n: 3 }, hidden: [8, 8], valueHead: true, seed: 2 });
  randomize(pi.params, 4);
  const obs = Float32Array.from(new Rng(0, 'obs').normalArray(5 * 4));
  const actions = Int32Array.from([0, 2, 1, 1, 2]);
  const { logits, lp, ent, v } = tf.tidy(() => {
    const d = pi.dist(obs);
    assert.equal(d.kind, 'categorical');
    return {
      logits: d.kind === 'categorical' ? d.logits.arraySync() : [],
      lp: pi.logProb({ obs, actions }).dataSync(),
      ent: pi.entropy({ obs }).dataSync(),
      v: pi.value(obs).dataSync(),
    };
  });
  for (let n = 0; n < 5; n++) {
    const row = logits[n]!;
    const z = row.reduce((s, x) => s + Math.exp(x), 0);
    const p = row.map((x) => Math.exp(x) / z);
    assert.ok(Math.abs(lp[n]! - Math.log(p[actions[n]!]!)) < 1e-5);
    assert.ok(Math.abs(ent[n]! + p.reduce((s, q) => s + q * Math.log(q), 0)) < 1e-5);
  }
  const a1 = pi.act(obs, new Rng(3, 'a'));
  const a2 = pi.act(obs, new Rng(3, 'a'));
  assert.deepEqual(a1.action, a2.action);
  assert.ok(a1.action instanceof Int32Array && a1.action.length === 5);
  const lpAct = tf.tidy(() => pi.logProb({ obs, actions: a1.action }).dataSync());
  assert.ok(maxAbsDiff(lpAct, a1.logProb) < 1e-6);
  assert.ok(maxAbsDiff(a1.value!, v) < 1e-6);
  // Init: hidden layers orthogonal(√2), policy output small (CleanRL).
  const fresh = new MlpPolicy({ obsDim: 4, actionSpace: { kind: 'discrete', n: 3 }, seed: 2 });
  const w = fresh.params.get('pi.out.weight').dataSync();
  assert.ok(Math.max(...Array.from(w, Math.abs)) <= 0.01 + 1e-6);
  fresh.dispose();
  pi.dispose();
});

test('MLP Gaussian: logProb and entropy match the closed form; act log-prob is consistent; grads; memory', () => {
  const pi = new MlpPolicy({ obsDim: 3, actionSpace: { kind: 'box', shape: [2] }, hidden: [8], valueHead: true, logStdInit: -0.5, seed: 1 });
  const obs = Float32Array.from(new Rng(1, 'obs').normalArray(4 * 3));
  const actions = Float32Array.from(new Rng(2, 'a').normalArray(4 * 2));
  const { mean, lp, ent } = tf.tidy(() => {
    const d = pi.dist(obs);
    return {
      mean: d.kind === 'gaussian' ? d.mean.dataSync() : new Float32Array(0),
      lp: pi.logProb({ obs, actions }).dataSync(),
      ent: pi.entropy({ obs }).dataSync(),
    };
  });
  const s = Math.exp(-0.5);
  for (let n = 0; n < 4; n++) {
    let ref = 0;
    for (let i = 0; i < 2; i++) ref += -0.5 * ((actions[n * 2 + i]! - mean[n * 2 + i]!) / s) ** 2 - Math.log(s) - 0.5 * Math.log(2 * Math.PI);
    assert.ok(Math.abs(lp[n]! - ref) < 1e-5);
    assert.ok(Math.abs(ent[n]! - 2 * (-0.5 + 0.5 * Math.log(2 * Math.PI * Math.E))) < 1e-5);
  }
  const r = pi.act(obs, new Rng(5, 'act'));
  assert.ok(r.action instanceof Float32Array && r.action.length === 8);
  const lpAct = tf.tidy(() => pi.logProb({ obs, actions: r.action }).dataSync());
  assert.ok(maxAbsDiff(lpAct, r.logProb) < 1e-4);
  const loss = () =>
    tf.add(tf.neg(tf.mean(tf.add(pi.logProb({ obs, actions }), tf.mul(0.01, pi.entropy({ obs }))))), tf.mean(tf.square(pi.value(obs)))) as tf.Scalar;
  assertAllGrads(pi.variables, loss, 'mlp gaussian');
  const opt = tf.train.adam(1e-3);
  opt.minimize(loss, false, pi.variables);
  const n0 = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    opt.minimize(loss, false, pi.variables);
    pi.act(obs, new Rng(i));
  }
  assert.equal(tf.memory().numTensors, n0);
  opt.dispose();
  pi.dispose();
});

// ------------------------------------------------------------------------------------------
// create → dispose leaves no tensor behind, for every model kind

test('every model kind frees all its tensors on dispose (registry kinds and variants)', () => {
  const cases: Array<[string, () => { dispose(): void }]> = [
    ...ARCHS.map((arch): [string, () => { dispose(): void }] => [`causal-lm ${arch}`, () => makeModel('causal-lm', { ...tinyConfig(arch), seed: 1 })]),
    ['causal-lm gpt2 untied', () => new CausalLM(tinyConfig('gpt2', { tieEmbeddings: false }), { seed: 2 })],
    ['lmPolicy(llama)', () => lmPolicy(new CausalLM(tinyConfig('llama'), { seed: 3 }))],
    [
      'decision-transformer',
      () =>
        makeModel('decision-transformer', {
          stateDim: 3,
          actDim: 2,
          contextLength: 4,
          maxEpisodeSteps: 50,
          core: { dModel: 16, nLayers: 2, nHeads: 2 },
          seed: 5,
        }),
    ],
    ['decision-transformer llama core', () => tinyDt({ core: { arch: 'llama', dModel: 16, nLayers: 1, nHeads: 2 } })],
    ['mlp categorical', () => makeModel('mlp', { obsDim: 4, actionSpace: { kind: 'discrete', n: 3 }, seed: 1 })],
    ['mlp categorical + value', () => makeModel('mlp', { obsDim: 4, actionSpace: { kind: 'discrete', n: 3 }, hidden: [8], valueHead: true, seed: 1 })],
    ['mlp gaussian + value', () => makeModel('mlp', { obsDim: 3, actionSpace: { kind: 'box', shape: [2] }, hidden: [8, 8], valueHead: true, seed: 1 })],
  ];
  // every registered kind is covered
  for (const kind of MODEL_KINDS)
    assert.ok(
      cases.some(([name]) => name.startsWith(kind)),
      `no leak case for model kind ${kind}`,
    );
  for (const [name, make] of cases) {
    const n0 = tf.memory().numTensors;
    make().dispose();
    assert.equal(tf.memory().numTensors, n0, `${name}: tensors left after dispose`);
  }
});
