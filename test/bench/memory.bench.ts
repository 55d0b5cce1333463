/**
 * Peak wasm heap of a training step, and the largest Decision Transformer that trains at batch
 * 64 within the 4 GB wasm32 heap (docs/backends.md, "Memory on WebAssembly").
 *
 *   npm run bench:memory                  # ~5–10 min on 2 shared cores
 *   BENCH_STEPS=3 npm run bench:memory    # steps per model (default 2; BENCH_SEARCH_STEPS: 1)
 *   BENCH_WIDTHS=512,768 npm run bench:memory   # widths of the search (4 layers, 4 heads)
 *
 * Every measurement runs in a fresh child process (the heap never shrinks, so one model must not
 * inherit another's heap): build the model, run `BENCH_STEPS` Adam steps, print one JSON line.
 * Reported per model: parameters; `peak live` — the most bytes the allocator held for tensors at
 * once during a step (each buffer counted once; `tf.memory().numBytes` counts a buffer once per
 * tensor viewing it), i.e. what the step needs live; `settled` — `tf.memory().numBytes` between
 * steps (weights + Adam moments); `heap` — the wasm heap after the steps (its high-water mark);
 * `heap / peak live`; the step time. A model that does not fit reports the `WasmHeapError`.
 *
 * Models: the reference transformer step of test/bench/model.bench.ts (GPT-2-style LM, vocab
 * 256, d 128, 3 layers, 4 heads, batch 32 × 60 tokens); Decision Transformers (ODT defaults:
 * gpt2 core, ReLU MLP, 4 heads; HalfCheetah sizes: state 17, action 6; K = 20 steps = 60
 * tokens; batch 64; loss = −mean action log-likelihood): the width 128 × 3 layers and
 * width 256 × 4 layers, ODT's own width 512 × 4 layers, then widths upwards (4 layers) until one
 * does not fit. The last line: `largest DT that trains at batch 64 on wasm: width W (P params)`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

interface Spec {
  kind: 'lm' | 'dt';
  label: string;
  width: number;
  layers: number;
  batch: number;
  steps: number;
}

interface Result {
  params: number;
  peakLive: number;
  settled: number;
  heap: number;
  msPerStep: number;
  error?: string;
}

const STEPS = Number(process.env['BENCH_STEPS'] ?? 2);
/** Steps per model of the width search (slow models; the first step reaches the peak). */
const SEARCH_STEPS = Number(process.env['BENCH_SEARCH_STEPS'] ?? 1);
const MB = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MB`;

async function child(spec: Spec): Promise<Result> {
  const { initBackend, WasmHeapError, wasmHeapBytes, setWasmMemoryContext } = await import('../../lib/backend.ts');
  const { trackWasmAllocations } = await import('../../lib/tensor/wasm-memory.ts');
  await initBackend({ quiet: true, backend: 'wasm' });
  const alloc = trackWasmAllocations();
  let params = 0;
  let msPerStep = 0;
  try {
    const opt = tf.train.adam(1e-4);
    let loss: () => tf.Scalar;
    let vars: tf.Variable[];
    if (spec.kind === 'lm') {
      const { CausalLM } = await import('../../lib/models/lm.ts');
      const { Rng } = await import('../../lib/random.ts');
      const lm = new CausalLM({ arch: 'gpt2', vocabSize: 256, dModel: spec.width, nLayers: spec.layers, nHeads: 4, maxPositions: 128 }, { seed: 0 });
      const T = 60;
      const rng = new Rng(1, 'bench/memory');
      const tok = Int32Array.from({ length: spec.batch * (T + 1) }, () => Math.floor(rng.uniform(0, 256)));
      const seq = tf.tensor2d(tok, [spec.batch, T + 1], 'int32');
      const x = tf.slice(seq, [0, 0], [spec.batch, T]) as tf.Tensor2D;
      const y = tf.slice(seq, [0, 1], [spec.batch, T]) as tf.Tensor2D;
      vars = lm.variables;
      loss = () => tf.neg(tf.mean(lm.tokenLogProbs(x, y))) as tf.Scalar;
      setWasmMemoryContext({ batch: `${spec.batch} × ${T} tokens` });
    } else {
      const { DecisionTransformer } = await import('../../lib/models/decision-transformer.ts');
      const { Rng } = await import('../../lib/random.ts');
      const S = 17;
      const A = 6;
      const K = 20;
      const dt = new DecisionTransformer({
        stateDim: S,
        actDim: A,
        contextLength: K,
        core: { dModel: spec.width, nLayers: spec.layers, nHeads: 4 },
      });
      const rng = new Rng(2, 'bench/memory');
      const n = spec.batch * K;
      const u = (m: number): Float32Array => Float32Array.from({ length: m }, () => rng.uniform(-0.9, 0.9));
      const batch = {
        batchSize: spec.batch,
        length: K,
        states: u(n * S),
        actions: u(n * A),
        returnsToGo: u(n),
        timesteps: Int32Array.from({ length: n }, (_, i) => i % K),
        mask: new Float32Array(n).fill(1),
      };
      vars = dt.variables;
      loss = () => tf.neg(tf.mean(dt.actionLogProb(batch))) as tf.Scalar;
      setWasmMemoryContext({ batch: `${spec.batch} × ${K} steps` });
    }
    params = vars.reduce((s, v) => s + v.size, 0);
    alloc.resetPeak();
    const t0 = performance.now();
    for (let i = 0; i < spec.steps; i++) tf.dispose(opt.minimize(loss, true, vars) ?? []);
    msPerStep = (performance.now() - t0) / spec.steps;
    return { params, peakLive: alloc.peak(), settled: tf.memory().numBytes, heap: wasmHeapBytes(), msPerStep };
  } catch (e) {
    if (!(e instanceof WasmHeapError)) throw e;
    return { params, peakLive: alloc.peak(), settled: tf.memory().numBytes, heap: wasmHeapBytes(), msPerStep, error: e.message };
  }
}

function measure(spec: Spec): Result {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', JSON.stringify(spec)], {
    encoding: 'utf8',
    maxBuffer: 1 << 22,
    env: { ...process.env, RXRL_BACKEND: 'wasm' },
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status === 0 && last.startsWith('{')) return JSON.parse(last) as Result;
  // a crash instead of a WasmHeapError is a finding too: report its first line
  const why =
    (r.stderr || r.stdout || String(r.error))
      .trim()
      .split('\n')
      .find((l) => l.trim() !== '') ?? `exit ${r.status}`;
  return { params: 0, peakLive: 0, settled: 0, heap: 0, msPerStep: 0, error: `child failed: ${why.slice(0, 300)}` };
}

function row(spec: Spec, r: Result): string {
  const p = r.params > 0 ? `${(r.params / 1e6).toFixed(2)}M` : '?';
  if (r.error !== undefined) return `| ${spec.label} | ${p} | does not fit: ${r.error.split(';')[0]} |  |  |  |  |`;
  return (
    `| ${spec.label} | ${p} | ${MB(r.peakLive)} | ${MB(r.settled)} | ${MB(r.heap)} | ` +
    `${(r.heap / r.peakLive).toFixed(2)}× | ${(r.msPerStep / 1000).toFixed(1)} s |`
  );
}

async function main(): Promise<void> {
  const i = process.argv.indexOf('--child');
  if (i >= 0) {
    const spec = JSON.parse(process.argv[i + 1]!) as Spec;
    console.log(JSON.stringify(await child(spec)));
    return;
  }
  console.log(
    `bench:memory — ${STEPS} Adam steps per model (${SEARCH_STEPS} in the width search), each model in a fresh process (wasm, 1 thread unless RXRL_THREADS)`,
  );
  console.log('| model | params | peak live (step) | settled live | heap after | heap / peak live | time / step |');
  console.log('|---|---|---|---|---|---|---|');
  const fixed: Spec[] = [
    { kind: 'lm', label: 'reference LM step (bench:model): d 128, 3 layers, batch 32 × 60', width: 128, layers: 3, batch: 32, steps: STEPS },
    { kind: 'dt', label: 'DT width 128, 3 layers, batch 64 × K 20', width: 128, layers: 3, batch: 64, steps: STEPS },
    { kind: 'dt', label: 'DT width 256, 4 layers, batch 64 × K 20', width: 256, layers: 4, batch: 64, steps: STEPS },
    { kind: 'dt', label: 'ODT size: DT width 512, 4 layers, batch 64 × K 20', width: 512, layers: 4, batch: 64, steps: STEPS },
  ];
  let largest: { width: number; params: number } | undefined;
  for (const spec of fixed) {
    const r = measure(spec);
    console.log(row(spec, r));
    if (spec.kind === 'dt' && spec.layers === 4 && r.error === undefined) largest = { width: spec.width, params: r.params };
  }
  const widths = (process.env['BENCH_WIDTHS'] ?? '768,1024,1280,1536')
    .split(',')
    .map(Number)
    .filter((w) => w > 0);
  const tried: number[] = [512];
  for (const width of widths) {
    tried.push(width);
    const spec: Spec = { kind: 'dt', label: `DT width ${width}, 4 layers, batch 64 × K 20`, width, layers: 4, batch: 64, steps: SEARCH_STEPS };
    const r = measure(spec);
    console.log(row(spec, r));
    if (r.error !== undefined) break;
    largest = { width, params: r.params };
  }
  console.log(
    largest === undefined
      ? 'largest DT that trains at batch 64 on wasm: none of the widths tried'
      : `largest DT that trains at batch 64 on wasm: width ${largest.width} (${(largest.params / 1e6).toFixed(1)}M params, 4 layers; widths tried: ${tried.join(', ')})`,
  );
}

await main();
