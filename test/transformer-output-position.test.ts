/**
 * The one-position forward (`forwardEmbeddings(x, { outputPosition: p })`) and the Decision
 * Transformer's acting forward built on it (`lastStepDist`, `act`) against the full forward,
 * bit for bit: every arch (sequential and parallel blocks, LayerNorm and RMSNorm, RoPE, GQA),
 * left-padded masks, several K, fused attention (cpu JS loops, wasm SIMD) and the unfused ops
 * (`returnAttention`, a head size not a multiple of 4, a KV cache), no tensor leak, determinism;
 * and wasm against the plain cpu backend to float tolerance. The DT's acting forward drops the
 * last action token (under the fused kernel) and runs its last layer for one token; its results
 * must be exactly those of the full `dist`. `npm run test:nofixes` reruns it with the tfjs
 * patches off (stock kernels, unfused attention everywhere).
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { Rng } from '../lib/random.ts';
import { transformerConfig } from '../lib/models/config.ts';
import type { TransformerConfigInput } from '../lib/models/config.ts';
import { DecisionTransformer, tanhGaussianLogProbJs } from '../lib/models/decision-transformer.ts';
import type { DecisionTransformerConfig, DtBatch } from '../lib/models/decision-transformer.ts';
import { ParamStore } from '../lib/models/params.ts';
import { KVCache, Transformer } from '../lib/models/transformer.ts';
import { tfjsPatches } from '../lib/tensor/patches.ts';

/** Set in the child process that reruns this file on tfjs's threaded wasm build (2 threads). */
const THREADED_CHILD = process.env['RXRL_OUTPUT_POSITION_THREADED'] === '1';

before(async () => {
  const info = await initBackend({ backend: 'wasm', quiet: true, ...(THREADED_CHILD ? { threads: 2 } : {}) });
  if (THREADED_CHILD && tfjsPatches().enabled) assert.equal(info.threads, 2);
});

/** Moves every parameter off its init (biases 0, norms 1) so that each one matters. */
function perturb(vars: readonly tf.Variable[], seed: number): void {
  const rng = new Rng(seed, 'perturb');
  for (const v of vars)
    tf.tidy(() =>
      v.assign(
        tf.add(
          v,
          tf.tensor(
            Float32Array.from(rng.normalArray(v.size), (x) => 0.2 * x),
            v.shape,
          ),
        ),
      ),
    );
}

/** A [B, T] left-padded mask with the given real lengths (each ≥ 1). */
function leftPadded(lengths: readonly number[], T: number): Float32Array {
  const m = new Float32Array(lengths.length * T);
  lengths.forEach((n, b) => m.fill(1, b * T + T - n, (b + 1) * T));
  return m;
}

/** Runs f in a tidy scope and returns its plain (non-tensor) result. */
function tidyData<R>(f: () => R): R {
  let r!: R;
  tf.tidy(() => {
    r = f();
  });
  return r;
}

function bitsEqual(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    if (!Object.is(got[i], want[i])) assert.fail(`${what}: element ${i} is ${got[i]}, the full forward's ${want[i]}`);
  }
}

const ARCHS: TransformerConfigInput[] = [
  { arch: 'gpt2', dModel: 32, nLayers: 3, nHeads: 4, positionEmbedding: 'none', activation: 'relu' }, // the DT's core
  { arch: 'gpt2', dModel: 16, nLayers: 2, nHeads: 1 }, // learned positions, tanh-GELU
  { arch: 'llama', dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2 }, // RMSNorm, RoPE, SwiGLU, GQA
  { arch: 'qwen2', dModel: 24, nLayers: 2, nHeads: 2, nKvHeads: 1 }, // head size 12, qkv bias
  { arch: 'phi', dModel: 32, nLayers: 2, nHeads: 4 }, // parallel block, partial rotary
  { arch: 'gpt2', dModel: 24, nLayers: 1, nHeads: 4, positionEmbedding: 'none' }, // one layer; head size 6 (unfused on wasm)
];

const label = (c: TransformerConfigInput): string => `${c.arch} D${c.dModel} L${c.nLayers} H${c.nHeads}${c.nKvHeads ? `/${c.nKvHeads}` : ''}`;

/** The full forward's hidden states at position `at` and the one-position forward's, for a random core on random (left-padded) inputs. */
function coreCase(cfgIn: TransformerConfigInput, T: number, lengths: number[] | null, opts: { at: number; returnAttention?: boolean; seed: number }) {
  const cfg = transformerConfig({ ...cfgIn, vocabSize: 0, tieEmbeddings: false, maxPositions: 64 });
  const ps = new ParamStore(opts.seed);
  const core = new Transformer(cfg, ps);
  perturb(ps.variables, opts.seed);
  const B = lengths?.length ?? 3;
  const rng = new Rng(opts.seed, `x/${T}`);
  const out = tidyData(() => {
    const x = tf.tensor3d(Float32Array.from(rng.normalArray(B * T * cfg.dModel)), [B, T, cfg.dModel]);
    const attentionMask = lengths ? tf.tensor2d(leftPadded(lengths, T), [B, T]) : undefined;
    const ra = opts.returnAttention ?? false;
    const full = core.forwardEmbeddings(x, { attentionMask, returnAttention: ra });
    const last = core.forwardEmbeddings(x, { attentionMask, returnAttention: ra, outputPosition: opts.at });
    const D = cfg.dModel;
    const L = cfg.nLayers;
    const fullAtt = full.attentions ? tf.slice(full.attentions[L - 1]!, [0, 0, opts.at, 0], [-1, -1, 1, -1]).dataSync() : null;
    return {
      shape: last.hidden.shape,
      full: tf.slice(full.hidden, [0, opts.at, 0], [B, 1, D]).dataSync(),
      last: last.hidden.dataSync(),
      fullAtt,
      lastAtt: last.attentions ? last.attentions[L - 1]!.dataSync() : null,
      lowerAtt: last.attentions && full.attentions ? [last.attentions[0]!.dataSync(), full.attentions[0]!.dataSync()] : null,
    };
  });
  ps.dispose();
  return { ...out, B, D: cfg.dModel };
}

const DT_CORES: { name: string; cfg: Partial<DecisionTransformerConfig> }[] = [
  { name: 'width 32, 3 layers, 1 head (gpt2, ReLU)', cfg: { core: { dModel: 32, nLayers: 3, nHeads: 1 } } },
  { name: 'width 16, 2 layers, 2 heads, state-independent σ', cfg: { core: { dModel: 16, nLayers: 2, nHeads: 2 }, logStd: 'state-independent' } },
  {
    name: 'llama core (RMSNorm, RoPE, GQA), no timestep embedding',
    cfg: { core: { arch: 'llama', dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2 }, timestepEmbedding: false },
  },
  { name: 'phi core (parallel block)', cfg: { core: { arch: 'phi', dModel: 16, nLayers: 2, nHeads: 2 } } },
];

function randomWindow(rng: Rng, B: number, K: number, S: number, A: number, maxT: number): DtBatch {
  const lengths = Array.from({ length: B }, (_, b) => (b === 0 ? K : 1 + Math.floor(rng.uniform() * K)));
  const mask = leftPadded(lengths, K);
  const timesteps = new Int32Array(B * K);
  for (let b = 0; b < B; b++) {
    const t0 = Math.floor(rng.uniform() * (maxT - K));
    for (let k = 0; k < K; k++) timesteps[b * K + k] = mask[b * K + k] ? t0 + k : 0;
  }
  const zeroPad = (x: Float32Array, per: number): Float32Array => x.map((v, i) => (mask[Math.floor(i / per)] ? v : 0));
  return {
    batchSize: B,
    length: K,
    states: zeroPad(Float32Array.from(rng.normalArray(B * K * S)), S),
    // the current step's action slot holds junk: it must not matter
    actions: Float32Array.from(rng.normalArray(B * K * A), Math.tanh),
    returnsToGo: zeroPad(Float32Array.from(rng.normalArray(B * K)), 1),
    timesteps,
    mask,
  };
}

function newDt(cfg: Partial<DecisionTransformerConfig>, K: number, seed: number): DecisionTransformer {
  const dt = new DecisionTransformer({ stateDim: 5, actDim: 3, contextLength: K, maxEpisodeSteps: 100, seed, ...cfg });
  perturb(dt.variables, seed + 100);
  return dt;
}

/** `act` as it was before the last-step forward: `dist` over all K steps, last position, same sampling. */
function actReference(dt: DecisionTransformer, b: DtBatch, rng: Rng, deterministic: boolean) {
  const B = b.batchSize;
  const K = b.length;
  const A = dt.actDim;
  const [mean, logStd] = tidyData(() => {
    const d = dt.dist(b);
    const last = (t: tf.Tensor3D) => tf.slice(t, [0, K - 1, 0], [B, 1, A]).dataSync() as Float32Array;
    return [last(d.mean), last(d.logStd)];
  });
  const action = new Float32Array(B * A);
  const logProb = new Float32Array(B);
  for (let r = 0; r < B; r++) {
    const mu = mean.subarray(r * A, (r + 1) * A);
    const ls = logStd.subarray(r * A, (r + 1) * A);
    const a = action.subarray(r * A, (r + 1) * A);
    for (let i = 0; i < A; i++) a[i] = Math.tanh(deterministic ? mu[i]! : mu[i]! + Math.exp(ls[i]!) * rng.normal());
    logProb[r] = tanhGaussianLogProbJs(a, mu, ls);
  }
  return { action, logProb, mean, logStd };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`one-position forward on ${backend}`, () => {
    before(async () => {
      await tf.setBackend(backend);
    });

    for (const cfg of ARCHS) {
      it(`${label(cfg)}: hidden [B, 1, D] equals the full forward's at that position bit for bit (no mask, left padding)`, () => {
        for (const [T, lengths, at] of [
          [7, null, 6],
          [7, null, 2],
          [14, [14, 9, 1, 5], 13],
          [14, [14, 9, 1, 5], 12],
          [3, [1, 3], 2],
          [1, [1, 1], 0],
        ] as [number, number[] | null, number][]) {
          const r = coreCase(cfg, T, lengths, { at, seed: T + at });
          assert.deepEqual(r.shape, [r.B, 1, r.D]);
          bitsEqual(r.last, r.full, `${label(cfg)} T ${T} position ${at}`);
        }
      });
    }

    it('the unfused ops (returnAttention): the same bits, and the last layer returns that query row of the probabilities', () => {
      for (const cfg of [ARCHS[0]!, ARCHS[2]!, ARCHS[4]!]) {
        for (const at of [10, 7]) {
          const r = coreCase(cfg, 11, [11, 4, 2], { at, returnAttention: true, seed: 3 });
          bitsEqual(r.last, r.full, label(cfg));
          bitsEqual(r.lastAtt!, r.fullAtt!, `${label(cfg)} last-layer probabilities`);
          bitsEqual(r.lowerAtt![0]!, r.lowerAtt![1]!, `${label(cfg)} layer-0 probabilities`);
        }
      }
    });

    it('an outputPosition outside [0, T) is refused with the range', () => {
      const cfg = transformerConfig({ arch: 'gpt2', vocabSize: 0, tieEmbeddings: false, dModel: 8, nLayers: 1, nHeads: 2 });
      const ps = new ParamStore(0);
      const core = new Transformer(cfg, ps);
      for (const bad of [4, -1, 1.5]) {
        assert.throws(
          () => tf.tidy(() => core.forwardEmbeddings(tf.zeros([1, 4, 8]) as tf.Tensor3D, { outputPosition: bad }).hidden),
          /outputPosition must be an integer in \[0, 4\), got/,
        );
      }
      ps.dispose();
    });

    it('with a KV cache (a prefill, then one step): the last position of each equals the full cached forward', () => {
      const cfg = transformerConfig({ ...ARCHS[2]!, vocabSize: 0, tieEmbeddings: false });
      const ps = new ParamStore(4);
      const core = new Transformer(cfg, ps);
      perturb(ps.variables, 4);
      const [B, T, D] = [3, 6, cfg.dModel];
      const run = (one: boolean): Float32Array[] => {
        const cache = new KVCache(cfg.nLayers);
        const out = tidyData(() => {
          const r = new Rng(9, 'inputs');
          const x0 = tf.tensor3d(Float32Array.from(r.normalArray(B * T * D)), [B, T, D]);
          const x1 = tf.tensor3d(Float32Array.from(r.normalArray(B * D)), [B, 1, D]);
          const m0 = tf.tensor2d(leftPadded([6, 3, 1], T), [B, T]);
          const h0 = core.forwardEmbeddings(x0, { attentionMask: m0, cache, outputPosition: one ? T - 1 : undefined }).hidden;
          const h1 = core.forwardEmbeddings(x1, { attentionMask: tf.ones([B, 1]) as tf.Tensor2D, cache, outputPosition: one ? 0 : undefined }).hidden;
          const lastOf = (h: tf.Tensor3D) => tf.slice(h, [0, h.shape[1] - 1, 0], [B, 1, D]).dataSync() as Float32Array;
          return [lastOf(h0), lastOf(h1)];
        });
        cache.dispose();
        return out;
      };
      const full = run(false);
      const last = run(true);
      bitsEqual(last[0]!, full[0]!, 'prefill');
      bitsEqual(last[1]!, full[1]!, 'next step (the cache holds every position of every layer)');
      ps.dispose();
    });

    for (const { name, cfg } of DT_CORES) {
      it(`DT ${name}: lastStepDist equals dist at step K − 1 bit for bit (K 1, 2, 5, 20; random left padding)`, () => {
        for (const K of [1, 2, 5, 20]) {
          const dt = newDt(cfg, K, K);
          const b = randomWindow(new Rng(K, 'window'), 6, K, 5, 3, 100);
          const [got, want] = tidyData(() => {
            const full = dt.dist(b);
            const last = dt.lastStepDist(b);
            assert.deepEqual(last.mean.shape, [6, 1, 3]);
            const at = (t: tf.Tensor3D) => tf.slice(t, [0, K - 1, 0], [6, 1, 3]);
            return [
              [last.mean.dataSync(), last.logStd.dataSync()],
              [at(full.mean).dataSync(), at(full.logStd).dataSync()],
            ];
          });
          bitsEqual(got[0]!, want[0]!, `K ${K} mean`);
          bitsEqual(got[1]!, want[1]!, `K ${K} log σ`);
          dt.dispose();
        }
      });
    }

    it('DT act: actions and log-probs identical to the full-forward act (sampled and deterministic), deterministic, no tensor leak', () => {
      const dt = newDt(DT_CORES[0]!.cfg, 5, 7);
      const b = randomWindow(new Rng(7, 'window'), 16, 5, 5, 3, 100);
      for (const det of [false, true]) {
        const ref = actReference(dt, b, new Rng(1, 'act'), det);
        const got = dt.act(b, new Rng(1, 'act'), { deterministic: det });
        bitsEqual(got.action, ref.action, `action (deterministic ${det})`);
        bitsEqual(got.logProb, ref.logProb, `logProb (deterministic ${det})`);
      }
      const again = dt.act(b, new Rng(1, 'act'));
      bitsEqual(again.action, dt.act(b, new Rng(1, 'act')).action, 'repeat');
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) dt.act(b, new Rng(i, 'act'));
      assert.equal(tf.memory().numTensors, before);
      dt.dispose();
    });
  });
}

describe('one-position forward across backends', () => {
  it('wasm lastStepDist equals the plain cpu backend to float tolerance', async () => {
    const run = async (backend: string): Promise<Float32Array> => {
      await tf.setBackend(backend);
      const dt = newDt({ core: { dModel: 32, nLayers: 3, nHeads: 1 } }, 5, 11);
      const b = randomWindow(new Rng(11, 'window'), 8, 5, 5, 3, 100);
      const out = tidyData(() => {
        const d = dt.lastStepDist(b);
        return Float32Array.from([...d.mean.dataSync(), ...d.logStd.dataSync()]);
      });
      dt.dispose();
      return out;
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    let worst = 0;
    for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(cpu[i]! - wasm[i]!));
    assert.ok(worst < 1e-4, `wasm and cpu differ by ${worst}`);
  });

  if (!THREADED_CHILD) {
    it('the same checks pass on the threaded wasm build (2 threads; child process)', {
      skip: tfjsPatches().enabled ? false : 'threads need the tfjs patches',
    }, () => {
      const file = new URL(import.meta.url).pathname;
      const r = spawnSync(process.execPath, ['--conditions=rxrl-source', '--import', 'tsx', '--test', file], {
        env: { ...process.env, RXRL_OUTPUT_POSITION_THREADED: '1', RXRL_BACKEND: '', RXRL_THREADS: '' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.error, undefined, `child did not exit: ${String(r.error)}`);
      assert.equal(
        r.status,
        0,
        r.stdout
          .split('\n')
          .filter((l) => /not ok|error/i.test(l))
          .join('\n'),
      );
    });
  }
});
