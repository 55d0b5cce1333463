/**
 * matmul throughput per backend, stock vs rxrl-patched wasm kernels side by side.
 *
 *   npx tsx test/bench/matmul.bench.ts                  # default threads (logical CPUs)
 *   RXRL_THREADS=1 npx tsx test/bench/matmul.bench.ts   # single-threaded wasm
 *   BENCH_MS=400 ...                                     # time per measurement window
 *
 * Prints a markdown table: GFLOP/s (2·m·k·n per batch entry / time; best of 3 windows) for
 * cpu (small cases only: it is slow), wasm with the stock 4.22 kernel, wasm with rxrl's
 * kernel, and their ratio; plus the crossover rows used to tune `smallBatchEntryMacs`, and
 * embedding-lookup (gather) timings.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.ts';
import { setWasmMatMulFix, wasmMatMulTuning } from '../../lib/tensor/wasm-kernels.ts';
import { setWasmGatherFix } from '../../lib/tensor/gather-grad.ts';

const WINDOW_MS = Number(process.env['BENCH_MS'] ?? 250);

interface Case {
  name: string;
  a: number[]; // stored shapes
  b: number[];
  ta: boolean;
  tb: boolean;
  cpu?: boolean; // also run on the cpu backend
}

const cases: Case[] = [
  { name: 'square 256', a: [256, 256], b: [256, 256], ta: false, tb: false, cpu: true },
  { name: 'square 512', a: [512, 512], b: [512, 512], ta: false, tb: false },
  { name: 'square 1024', a: [1024, 1024], b: [1024, 1024], ta: false, tb: false },
  { name: 'square 512, Aᵀ·B', a: [512, 512], b: [512, 512], ta: true, tb: false },
  { name: 'square 512, A·Bᵀ', a: [512, 512], b: [512, 512], ta: false, tb: true },
  // transformer, batch 32 × 60 tokens, d=128, MLP 512, 4 heads of 32
  { name: 'MLP fwd x·W', a: [1920, 128], b: [128, 512], ta: false, tb: false, cpu: true },
  { name: 'MLP bwd dX = dY·Wᵀ', a: [1920, 512], b: [128, 512], ta: false, tb: true, cpu: true },
  { name: 'MLP bwd dW = Xᵀ·dY', a: [1920, 128], b: [1920, 512], ta: true, tb: false, cpu: true },
  { name: 'MLP fwd, 3-D x [32,60,128]·W', a: [32, 60, 128], b: [128, 512], ta: false, tb: false },
  { name: 'attn scores Q·Kᵀ', a: [128, 60, 32], b: [128, 60, 32], ta: false, tb: true, cpu: true },
  { name: 'attn values P·V', a: [128, 60, 60], b: [128, 60, 32], ta: false, tb: false, cpu: true },
  { name: 'attn bwd dP = dO·Vᵀ', a: [128, 60, 32], b: [128, 60, 32], ta: false, tb: true },
  { name: 'attn bwd dV = Pᵀ·dO', a: [128, 60, 60], b: [128, 60, 32], ta: true, tb: false },
  { name: 'attn bwd dQ = dS·K', a: [128, 60, 60], b: [128, 60, 32], ta: false, tb: false },
  { name: 'attn bwd dK = dSᵀ·Q', a: [128, 60, 60], b: [128, 60, 32], ta: true, tb: false },
];

/** Rows for the small-entry crossover: stock loop vs forced XNNPACK loop. */
const crossover: Case[] = [
  { name: '[128,4,16]·[128,16,4]ᵀ', a: [128, 4, 16], b: [128, 4, 16], ta: false, tb: true },
  { name: '[128,8,8]·[128,8,8]', a: [128, 8, 8], b: [128, 8, 8], ta: false, tb: false },
  { name: '[128,16,16]·[128,16,16]', a: [128, 16, 16], b: [128, 16, 16], ta: false, tb: false },
  { name: '[128,1,32]·[128,32,60] (decode)', a: [128, 1, 32], b: [128, 32, 60], ta: false, tb: false },
  { name: '[128,16,32]·[128,16,32]ᵀ', a: [128, 16, 32], b: [128, 16, 32], ta: false, tb: true },
  { name: '[128,32,32]·[128,32,32]', a: [128, 32, 32], b: [128, 32, 32], ta: false, tb: false },
  { name: '[128,60,60]·[128,60,32] (attention)', a: [128, 60, 60], b: [128, 60, 32], ta: false, tb: false },
  { name: '[16,128,128]·[16,128,64]', a: [16, 128, 128], b: [16, 128, 64], ta: false, tb: false },
];

function flops(c: Case): number {
  const ar = c.a.length;
  const br = c.b.length;
  const m = c.ta ? c.a[ar - 1]! : c.a[ar - 2]!;
  const k = c.ta ? c.a[ar - 2]! : c.a[ar - 1]!;
  const n = c.tb ? c.b[br - 2]! : c.b[br - 1]!;
  const batch = Math.max(
    c.a.slice(0, -2).reduce((p, d) => p * d, 1),
    c.b.slice(0, -2).reduce((p, d) => p * d, 1),
  );
  return 2 * batch * m * k * n;
}

/** Best GFLOP/s over 3 windows of WINDOW_MS (at least 2 runs each). */
function measure(c: Case, windowMs = WINDOW_MS): number {
  const a = tf.randomNormal(c.a);
  const b = tf.randomNormal(c.b);
  try {
    tf.matMul(a, b, c.ta, c.tb).dispose(); // warm-up (XNNPACK operator creation, allocations)
    let best = Infinity;
    for (let w = 0; w < 3; w++) {
      let n = 0;
      const t0 = performance.now();
      let t = t0;
      while (n < 2 || t - t0 < windowMs) {
        tf.matMul(a, b, c.ta, c.tb).dispose(); // kernels are synchronous on these backends
        n++;
        t = performance.now();
      }
      best = Math.min(best, (t - t0) / n);
    }
    return flops(c) / best / 1e6;
  } finally {
    tf.dispose([a, b]);
  }
}

const fmt = (x: number | undefined): string => (x === undefined ? '—' : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const shapeStr = (c: Case): string => `[${c.a}]${c.ta ? 'ᵀ' : ''}·[${c.b}]${c.tb ? 'ᵀ' : ''}`;

const info = await initBackend();
const hasWasm = tf.findBackendFactory('wasm') !== null;
const hasTf = tf.findBackendFactory('tensorflow') !== null;

const header = ['case', 'shapes'];
if (hasTf) header.push('tensorflow');
header.push('cpu', 'wasm stock', 'wasm rxrl', 'rxrl / stock');
const rows: string[][] = [];

for (const c of cases) {
  const row = [c.name, shapeStr(c)];
  if (hasTf) {
    await tf.setBackend('tensorflow');
    row.push(fmt(measure(c)));
  }
  let cpu: number | undefined;
  if (c.cpu === true) {
    await tf.setBackend('cpu');
    cpu = measure(c, Math.min(WINDOW_MS, 150));
  }
  row.push(fmt(cpu));
  if (hasWasm) {
    await tf.setBackend('wasm');
    setWasmMatMulFix(false);
    const stock = measure(c);
    setWasmMatMulFix(true);
    const fixed = measure(c);
    row.push(fmt(stock), fmt(fixed), `${(fixed / stock).toFixed(1)}×`);
  }
  rows.push(row);
  process.stderr.write('.');
}
process.stderr.write('\n');

const table = (h: string[], rs: string[][]): string =>
  [`| ${h.join(' | ')} |`, `|${h.map(() => '---').join('|')}|`, ...rs.map((r) => `| ${r.join(' | ')} |`)].join('\n');

console.log(`\nGFLOP/s, best of 3 × ${WINDOW_MS} ms; backend: ${info.name} (${info.reason}); node ${process.version}\n`);
console.log(table(header, rows));

if (hasWasm) {
  await tf.setBackend('wasm');
  const saved = { ...wasmMatMulTuning };
  const threshold = (info.threads ?? 1) > 1 ? saved.smallBatchEntryMacsThreaded : saved.smallBatchEntryMacs;
  const cross: string[][] = [];
  for (const c of crossover) {
    const ar = c.a.length;
    const macs = flops(c) / 2 / Math.max(c.a[0]!, c.b[0]!);
    wasmMatMulTuning.smallBatchEntryMacs = wasmMatMulTuning.smallBatchEntryMacsThreaded = Infinity; // stock loop
    const stock = measure(c);
    wasmMatMulTuning.smallBatchEntryMacs = wasmMatMulTuning.smallBatchEntryMacsThreaded = 0; // XNNPACK per entry
    const loop = measure(c);
    cross.push([c.name, String(macs), fmt(stock), fmt(loop), (loop / stock).toFixed(2), ar === 3 ? (macs < threshold ? 'stock' : 'XNNPACK loop') : '']);
  }
  Object.assign(wasmMatMulTuning, saved);
  console.log(
    `\nCrossover (both operands batched): GFLOP/s; threshold ${threshold} MACs per entry (${(info.threads ?? 1) > 1 ? 'threaded' : 'single-threaded'})\n`,
  );
  console.log(table(['case', 'MACs / entry', 'stock loop', 'XNNPACK per entry', 'ratio', 'rxrl uses'], cross));
}

if (hasWasm) {
  await tf.setBackend('wasm');
  const msPer = (f: () => void): number => {
    f();
    let best = Infinity;
    for (let w = 0; w < 3; w++) {
      let n = 0;
      const t0 = performance.now();
      let t = t0;
      while (n < 2 || t - t0 < WINDOW_MS) {
        f();
        n++;
        t = performance.now();
      }
      best = Math.min(best, (t - t0) / n);
    }
    return best;
  };
  const table1k = tf.randomNormal([1000, 128]);
  const ids = tf.randomUniform([32, 60], 0, 1000, 'int32');
  const w = tf.randomNormal([32, 60, 128]);
  const lookup = (): void => tf.gather(table1k, ids).dispose();
  const lookupGrad = (): void =>
    tf.tidy(() => {
      tf.grad((e: tf.Tensor) => tf.sum(tf.mul(w, tf.gather(e, ids))))(table1k);
    });
  setWasmGatherFix(false);
  const stockFwd = msPer(lookup);
  const stockBoth = msPer(lookupGrad); // stock forward + rxrl gradient (no stock gradient exists)
  setWasmGatherFix(true);
  const fixedFwd = msPer(lookup);
  const fixedBoth = msPer(lookupGrad);
  console.log('\nEmbedding lookup, table [1000,128], ids [32,60] (ms, best of 3)\n');
  console.log(
    table(
      ['', 'wasm stock gather', 'wasm rxrl gather', 'ratio'],
      [
        ['gather forward', stockFwd.toFixed(3), fixedFwd.toFixed(3), `${(stockFwd / fixedFwd).toFixed(0)}×`],
        ['forward + gradient (rxrl gradient in both columns)', stockBoth.toFixed(3), fixedBoth.toFixed(3), `${(stockBoth / fixedBoth).toFixed(1)}×`],
      ],
    ),
  );
  tf.dispose([table1k, ids, w]);
}

if (hasWasm) {
  // per-op latency: compare runs with RXRL_THREADS=1 and RXRL_THREADS=2 (thread-pool sync cost)
  await tf.setBackend('wasm');
  const x = tf.randomNormal([1920, 128]);
  const w = tf.randomNormal([128, 512]);
  const q = tf.randomNormal([128, 60, 32]);
  const ops: [string, () => tf.Tensor][] = [
    ['relu [1920,128]', () => tf.relu(x)],
    ['softmax [1920,128]', () => tf.softmax(x)],
    ['add [1920,128]', () => tf.add(x, x)],
    ['matMul [1920,128]·[128,512]', () => tf.matMul(x, w)],
    ['matMul [128,60,32]·[128,60,32]ᵀ', () => tf.matMul(q, q, false, true)],
  ];
  const rowsOps: string[][] = [];
  for (const [name, f] of ops) {
    f().dispose();
    let best = Infinity;
    for (let win = 0; win < 3; win++) {
      let n = 0;
      const t0 = performance.now();
      let t = t0;
      while (n < 2 || t - t0 < WINDOW_MS) {
        f().dispose();
        n++;
        t = performance.now();
      }
      best = Math.min(best, (t - t0) / n);
    }
    rowsOps.push([name, best.toFixed(3)]);
  }
  console.log(`\nPer-op latency on wasm, ${info.threads ?? 1} thread(s) (ms, best of 3)\n`);
  console.log(table(['op', 'ms'], rowsOps));
  tf.dispose([x, w, q]);
}
