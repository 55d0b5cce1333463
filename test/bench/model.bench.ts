/**
 * Training-step time of the reference transformer, rxrl (tfjs, default backend) vs PyTorch, on
 * this machine, in one run; plus peak RSS, a tensor-leak check and KV-cache generation speed.
 *
 *   npm run bench:model                      # default backend and thread count (wasm: CPUs − 1)
 *   RXRL_THREADS=2 npm run bench:model       # 2 wasm threads, and torch.set_num_threads(2)
 *   BENCH_STEPS=100 BENCH_TORCH_STEPS=20 ... # timed tfjs steps / torch steps per torch run
 *   BENCH_PROFILE=1 npm run bench:model      # also: time per tfjs kernel in one step (tf.profile)
 *
 * Reference model (both sides): GPT-2-style causal LM — vocab 256, d_model 128, 3 layers,
 * 4 heads, MLP 4·d, pre-LN, GELU (tanh), learned positions (table of 128), tied embeddings,
 * biases — batch 32 × context 60. A step = forward, loss = mean next-token cross-entropy,
 * backward, Adam (lr 1e-3, β 0.9/0.999, ε 1e-7) update; timed as the median over the timed
 * steps after 3 warm-up steps. PyTorch (`/usr/bin/python3`, test/bench/model_torch.py: the same
 * architecture written out by hand) runs with `torch.set_num_threads(k)`, k = the tfjs
 * backend's thread count, twice — before and after the tfjs run, so that a change of machine
 * load hits both sides — and its figure is the median over both runs' steps.
 *
 * Nothing is installed: without a working `import torch` it says how to install it and exits 1.
 * The last line printed is `step-time ratio tfjs/pytorch: R` (R to 2 decimals).
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.ts';
import { CausalLM } from '../../lib/models/lm.ts';
import { generate, sampleToken } from '../../lib/models/generate.ts';
import { Rng } from '../../lib/random.ts';

const PYTHON = '/usr/bin/python3';
const HERE = path.dirname(fileURLToPath(import.meta.url));

const VOCAB = 256;
const D_MODEL = 128;
const LAYERS = 3;
const HEADS = 4;
const MAX_POS = 128;
const BATCH = 32;
const CONTEXT = 60;
const LR = 1e-3;
const WARMUP = 3;
const STEPS = Number(process.env['BENCH_STEPS'] ?? 100);
const TORCH_STEPS = Number(process.env['BENCH_TORCH_STEPS'] ?? 20);
const GEN_BATCH = 8;
const GEN_PROMPT = 8;
const GEN_NEW = 64;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};
/** The q-quantile (nearest rank). */
const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};
const load = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

// ---------------------------------------------------------------------------------------------
// PyTorch

interface TorchResult {
  torch: string;
  threads: number;
  params: number;
  ms_median: number;
  ms_min: number;
  ms_all: number[];
  peak_rss_mb: number;
  loss: number;
  first_loss: number;
}

function checkTorch(): void {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr ?? '').trim().split('\n').pop();
    console.error(`bench:model needs PyTorch for ${PYTHON} (import torch failed: ${why}).`);
    console.error('Install it from Debian, then run again:');
    console.error('  apt-get install python3-torch libopenblas0-pthread');
    process.exit(1);
  }
}

function runTorch(threads: number): TorchResult {
  const args = [
    path.join(HERE, 'model_torch.py'),
    '--threads',
    String(threads),
    '--steps',
    String(TORCH_STEPS),
    '--warmup',
    String(WARMUP),
    '--vocab',
    String(VOCAB),
    '--d',
    String(D_MODEL),
    '--layers',
    String(LAYERS),
    '--heads',
    String(HEADS),
    '--batch',
    String(BATCH),
    '--context',
    String(CONTEXT),
    '--max-pos',
    String(MAX_POS),
    '--lr',
    String(LR),
  ];
  // OMP_NUM_THREADS as well: OpenBLAS/OpenMP size their pools from it at import
  const env = { ...process.env, OMP_NUM_THREADS: String(threads) };
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', env, maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`model_torch.py failed (${r.status}):\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as TorchResult;
}

// ---------------------------------------------------------------------------------------------
// tfjs

function referenceLM(): CausalLM {
  return new CausalLM({ arch: 'gpt2', vocabSize: VOCAB, dModel: D_MODEL, nLayers: LAYERS, nHeads: HEADS, maxPositions: MAX_POS }, { seed: 0 });
}

function randomTokens(rng: Rng, n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng.uniform(0, VOCAB));
  return out;
}

interface TfjsResult {
  msAll: number[];
  firstLoss: number;
  tensorsBefore: number;
  tensorsAfter: number;
  /** BENCH_PROFILE: [kernel, ms, calls] for one step, slowest first. */
  profile: [string, number, number][] | null;
}

async function runTfjs(lm: CausalLM): Promise<TfjsResult> {
  const opt = tf.train.adam(LR, 0.9, 0.999, 1e-7);
  const seq = tf.tensor2d(randomTokens(new Rng(1, 'bench/data'), BATCH * (CONTEXT + 1)), [BATCH, CONTEXT + 1], 'int32');
  const x = tf.slice(seq, [0, 0], [BATCH, CONTEXT]) as tf.Tensor2D;
  const y = tf.slice(seq, [0, 1], [BATCH, CONTEXT]) as tf.Tensor2D;
  // mean next-token cross-entropy = −mean log π(y_t | x_≤t)
  const loss = (): tf.Scalar => tf.neg(tf.mean(lm.tokenLogProbs(x, y))) as tf.Scalar;
  const step = (): number => {
    const l = opt.minimize(loss, true, lm.variables)!;
    const v = l.dataSync()[0]!;
    l.dispose();
    return v;
  };
  const firstLoss = step();
  for (let i = 1; i < WARMUP; i++) step();
  const tensorsBefore = tf.memory().numTensors;
  const msAll: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const t0 = performance.now();
    step();
    msAll.push(performance.now() - t0);
  }
  const tensorsAfter = tf.memory().numTensors;
  let profile: [string, number, number][] | null = null;
  if (process.env['BENCH_PROFILE']) {
    // kernels nested in a customGrad forward (reported as "forward") are counted twice
    const info = await tf.profile(() => {
      step();
    });
    const byName = new Map<string, [number, number]>();
    for (const k of info.kernels) {
      const e = byName.get(k.name) ?? [0, 0];
      byName.set(k.name, [e[0] + (k.kernelTimeMs as number), e[1] + 1]);
    }
    profile = [...byName.entries()].map(([n, [ms, c]]): [string, number, number] => [n, ms, c]).sort((a, b) => b[1] - a[1]);
  }
  tf.dispose([seq, x, y]);
  opt.dispose();
  return { msAll, firstLoss, tensorsBefore, tensorsAfter, profile };
}

/** Generation without a cache: the whole sequence is run again for every new token. */
function generateNoCache(lm: CausalLM, prompts: Int32Array[], rng: Rng, maxNew: number): Int32Array[] {
  const B = prompts.length;
  const rows = prompts.map((p) => Array.from(p));
  for (let s = 0; s < maxNew; s++) {
    const L = rows[0]!.length;
    const logp = tf.tidy(() => {
      const ids = tf.tensor2d(rows.flat(), [B, L], 'int32');
      const { hidden } = lm.core.forward(ids);
      const last = tf.reshape(tf.slice(hidden, [0, L - 1, 0], [B, 1, D_MODEL]), [B, D_MODEL]);
      return tf.logSoftmax(lm.head(last)).dataSync() as Float32Array;
    });
    for (let b = 0; b < B; b++) rows[b]!.push(sampleToken(logp.subarray(b * VOCAB, (b + 1) * VOCAB), rng).token);
  }
  return rows.map((r) => Int32Array.from(r.slice(prompts[0]!.length)));
}

interface GenResult {
  cachedMs: number;
  uncachedMs: number;
  sameTokens: boolean;
}

function runGeneration(lm: CausalLM): GenResult {
  const data = new Rng(2, 'bench/prompts');
  const prompts = Array.from({ length: GEN_BATCH }, () => randomTokens(data, GEN_PROMPT));
  const opts = { maxNewTokens: GEN_NEW, temperature: 1 };
  generate(lm, prompts, new Rng(3, 'warm-up'), { maxNewTokens: 4 }); // warm-up
  generateNoCache(lm, prompts, new Rng(3, 'warm-up'), 4);
  const best = (f: () => Int32Array[]): { ms: number; tokens: Int32Array[] } => {
    let ms = Infinity;
    let tokens: Int32Array[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      tokens = f();
      ms = Math.min(ms, performance.now() - t0);
    }
    return { ms, tokens };
  };
  const cached = best(() => generate(lm, prompts, new Rng(4, 'sample'), opts).tokens);
  const uncached = best(() => generateNoCache(lm, prompts, new Rng(4, 'sample'), GEN_NEW));
  const sameTokens = cached.tokens.every((t, b) => t.length === uncached.tokens[b]!.length && t.every((v, i) => v === uncached.tokens[b]![i]));
  return { cachedMs: cached.ms, uncachedMs: uncached.ms, sameTokens };
}

// ---------------------------------------------------------------------------------------------

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => `| ${r.map((v, c) => v.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

async function main(): Promise<void> {
  checkTorch();
  const info = await initBackend();
  const threads = info.threads ?? 1;
  const lm = referenceLM();
  const params = lm.variables.reduce((s, v) => s + v.size, 0);
  console.log(
    `reference model: gpt2, vocab ${VOCAB}, d_model ${D_MODEL}, ${LAYERS} layers, ${HEADS} heads, MLP ${4 * D_MODEL}, ` +
      `${params} parameters; batch ${BATCH} × ${CONTEXT} tokens; Adam lr ${LR}`,
  );
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, threads: tfjs ${threads}, torch ${threads}`);

  const loadStart = load();
  const torch1 = runTorch(threads);
  const loadMid = load();
  const t = await runTfjs(lm);
  const tfjsRss = process.resourceUsage().maxRSS; // kB; before generation (training peak)
  const torch2 = runTorch(threads);
  const loadEnd = load();
  const gen = runGeneration(lm);

  if (torch1.params !== params) throw new Error(`parameter counts differ: tfjs ${params}, torch ${torch1.params}`);
  const tfjsMs = median(t.msAll);
  const torchAll = [...torch1.ms_all, ...torch2.ms_all];
  const torchMs = median(torchAll);
  const tokens = BATCH * CONTEXT;
  console.log(`load average (1/5/15 min): start ${loadStart}; tfjs run ${loadMid}; end ${loadEnd}`);
  console.log('');
  console.log(
    table([
      [
        '',
        `tfjs (${info.name}, ${threads} thread${threads === 1 ? '' : 's'})`,
        `PyTorch ${torch1.torch} (${torch1.threads} thread${torch1.threads === 1 ? '' : 's'})`,
      ],
      ['ms/step (median)', tfjsMs.toFixed(1), torchMs.toFixed(1)],
      ['ms/step (min)', Math.min(...t.msAll).toFixed(1), Math.min(torch1.ms_min, torch2.ms_min).toFixed(1)],
      [
        'ms/step (p10–p90)',
        `${quantile(t.msAll, 0.1).toFixed(1)}–${quantile(t.msAll, 0.9).toFixed(1)}`,
        `${quantile(torchAll, 0.1).toFixed(1)}–${quantile(torchAll, 0.9).toFixed(1)}`,
      ],
      ['timed steps', String(t.msAll.length), String(torch1.ms_all.length + torch2.ms_all.length)],
      ['training tokens/s', (tokens / (tfjsMs / 1000)).toFixed(0), (tokens / (torchMs / 1000)).toFixed(0)],
      ['peak RSS', mb(tfjsRss), mb(Math.max(torch1.peak_rss_mb, torch2.peak_rss_mb) * 1024)],
      ['loss at step 1 (ln 256 = 5.545)', t.firstLoss.toFixed(3), torch1.first_loss.toFixed(3)],
    ]),
  );
  console.log('');
  if (t.profile) {
    const total = t.profile.reduce((a, [, ms]) => a + ms, 0);
    console.log(`tf.profile of one step: ${total.toFixed(1)} ms of kernel time`);
    console.log(
      table([
        ['kernel', 'ms', 'calls', 'share'],
        ...t.profile.slice(0, 15).map(([n, ms, c]) => [n, ms.toFixed(2), String(c), `${((100 * ms) / total).toFixed(0)}%`]),
      ]),
    );
    console.log('');
  }
  const flat = t.tensorsAfter === t.tensorsBefore;
  console.log(
    `tensor leak check: tf.memory().numTensors ${t.tensorsBefore} after warm-up, ${t.tensorsAfter} after ${STEPS} more steps ` +
      `(${flat ? 'flat' : `LEAK: +${t.tensorsAfter - t.tensorsBefore}`})`,
  );
  const newTokens = GEN_BATCH * GEN_NEW;
  console.log(
    `generation (batch ${GEN_BATCH}, prompt ${GEN_PROMPT}, ${GEN_NEW} new tokens, best of 3): ` +
      `KV cache ${(newTokens / (gen.cachedMs / 1000)).toFixed(0)} tokens/s (${gen.cachedMs.toFixed(0)} ms), ` +
      `recomputing the sequence ${(newTokens / (gen.uncachedMs / 1000)).toFixed(0)} tokens/s (${gen.uncachedMs.toFixed(0)} ms); ` +
      `speed-up ${(gen.uncachedMs / gen.cachedMs).toFixed(2)}×; same tokens: ${gen.sameTokens ? 'yes' : 'no'}`,
  );
  lm.dispose();
  if (!flat) process.exitCode = 1;
  console.log(`step-time ratio tfjs/pytorch: ${(tfjsMs / torchMs).toFixed(2)}`);
}

await main();
