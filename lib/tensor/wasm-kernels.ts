/**
 * Kernel fixes for `@tensorflow/tfjs-backend-wasm` 4.22 (see docs/backends.md for the numbers).
 *
 * `BatchMatMul` — the wasm kernel reaches XNNPACK's fast fully-connected path (≈20–40 GFLOP/s
 * per core here) only when neither operand is flagged transposed *and* both batch sizes are 1.
 * Everything else (every backward pass: `dA = dC·Bᵀ`, `dB = Aᵀ·dC`; every batched attention
 * product) falls to a naive strided triple loop at 1.3–3.5 GFLOP/s. The replacement kernel:
 *
 *  1. physically transposes a flagged operand (the wasm `Transpose` kernel for matrices under
 *     8192 elements, a cache-blocked copy on the heap — 1.5–3× faster there — above); for
 *     `Aᵀ·Bᵀ` it may instead compute `(B·A)ᵀ` when transposing the result is cheaper;
 *  2. when the right operand has no batch (`[b,m,k]·[k,n]`), stacks the batch into the rows of
 *     one 2-D product `[b·m,k]·[k,n]`;
 *  3. otherwise loops over the (broadcast) batch and runs one XNNPACK product per entry on
 *     zero-copy views (ids registered inside the operands' memory), stacking runs of
 *     consecutive left entries that share one right entry into a single product;
 *  4. keeps the original kernel for tiny per-entry products (where one XNNPACK call per entry
 *     costs more than the strided loop).
 *
 * Batch broadcasting follows numpy/TF rules in full (`[2,1,m,k]·[1,3,k,n] → [2,3,m,n]`); the
 * stock cpu and wasm kernels only handle the cases where one side's batch is 1 or both are
 * equal, and silently return garbage otherwise.
 *
 * It also guards an upstream cache hazard: XNNPACK operators are cached per right-operand
 * tensor id, ignoring its shape, so reusing one buffer as `b` under two different `[k,n]`
 * reshapes returned wrong results. A buffer seen under a second shape is now multiplied
 * through an uncached view.
 *
 * `_FusedMatMul` (tf.fused.matMul) gets step 1 (transposed operands copied first) and the same
 * cache guard; its batched case is left to the original kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import type { BatchMatMulAttrs, KernelConfig, KernelFunc, NamedAttrMap, NamedTensorInfoMap, TensorInfo, _FusedMatMulAttrs } from '@tensorflow/tfjs-core';
import {
  asWasm,
  disposeView,
  heapF32,
  registerView,
  replaceWasmKernel,
  shapeBytes,
  sizeOf,
  tensorData,
  type WasmBackendInternals,
  type WasmTensorData,
} from './wasm-internals.ts';
import { registerWasmGatherFix, registerWasmUnsortedSegmentSum } from './gather-grad.ts';
import { registerWasmCopyFixes } from './wasm-copies.ts';
import { simdKernels } from './simd/instance.ts';
import { tfjsPatchesEnabled } from './patches.ts';

type KernelArgs = Parameters<KernelFunc>[0];

/**
 * Tuning knobs. `smallBatchEntryMacs`: per-entry multiply-accumulate count (m·k·n) below which
 * a batched product (both operands batched) is left to the stock kernel, whose strided loop
 * beats one XNNPACK call per entry there; `smallBatchEntryMacsThreaded`: the same with a
 * multi-threaded pool, where every XNNPACK call also pays a thread-pool synchronisation.
 * Measured on this machine (test/bench/matmul.bench.ts, "crossover" rows; docs/backends.md).
 */
export const wasmMatMulTuning = { smallBatchEntryMacs: 4096, smallBatchEntryMacsThreaded: 1 << 20 };

function smallEntryThreshold(): number {
  let threads = 1;
  try {
    threads = getThreadsCount();
  } catch {
    /* backend not initialised through tfjs-backend-wasm's init: assume 1 */
  }
  return threads > 1 ? wasmMatMulTuning.smallBatchEntryMacsThreaded : wasmMatMulTuning.smallBatchEntryMacs;
}

let batchMatMulFixEnabled = true;
const originals = new Map<string, KernelConfig>();

/**
 * Switch the replacement `BatchMatMul` / `_FusedMatMul` kernels off (true → patched, false →
 * the stock 4.22 kernels) without re-registering anything. For side-by-side benchmarks.
 */
export function setWasmMatMulFix(enabled: boolean): void {
  batchMatMulFixEnabled = enabled;
}

// ---------------------------------------------------------------------------------------------
// helpers

type CBatchMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

const cMatMuls = new WeakMap<object, CBatchMatMul>();

function cBatchMatMul(be: WasmBackendInternals): CBatchMatMul {
  let f = cMatMuls.get(be.wasm);
  if (f === undefined) {
    f = be.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']) as CBatchMatMul;
    cMatMuls.set(be.wasm, f);
  }
  return f;
}

/** First `[k, n]` each right-operand buffer was used with (see the cache hazard above). */
const weightShapes = new WeakMap<object, string>();

/** True if `b`'s own id may be handed to XNNPACK as weights of shape `[k, n]`. */
function cacheableWeights(b: TensorInfo, k: number, n: number): boolean {
  const key = `${k}x${n}`;
  const prev = weightShapes.get(b.dataId);
  if (prev === undefined) {
    weightShapes.set(b.dataId, key);
    return true;
  }
  return prev === key;
}

/** Below this many elements per matrix the wasm `Transpose` kernel is faster (it fits in
 * cache); above it, the blocked JS copy is 1.5–3× faster (test/bench numbers in docs). */
const SMALL_TRANSPOSE_ELEMS = 8192;

/**
 * Copy the last two axes of `x` transposed into a new tensor. The caller owns (and disposes)
 * the result.
 */
export function transposeLastTwo(be: WasmBackendInternals, x: TensorInfo): TensorInfo {
  const rank = x.shape.length;
  const r = x.shape[rank - 2] ?? 1;
  const c = x.shape[rank - 1] ?? 1;
  const outer = x.shape.slice(0, -2);
  const simd = x.dtype === 'float32' ? simdKernels(be) : null;
  if (simd !== null) {
    // rxrl's SIMD transpose (lib/tensor/simd): 4–8× faster than both paths below
    const out = be.makeOutput([...outer, c, r], x.dtype);
    simd.transpose(tensorData(be, x).memoryOffset, tensorData(be, out).memoryOffset, sizeOf(outer), r, c);
    return out;
  }
  if (r * c < SMALL_TRANSPOSE_ELEMS) {
    const transpose = tf.getKernel('Transpose', 'wasm');
    if (transpose !== undefined) {
      const perm = [...outer.map((_, i) => i), rank - 1, rank - 2];
      return transpose.kernelFunc({
        inputs: { x },
        backend: be as unknown as tf.KernelBackend,
        attrs: { perm },
      }) as TensorInfo;
    }
  }
  const out = be.makeOutput([...outer, c, r], x.dtype);
  const heap = heapF32(be.wasm); // after makeOutput: malloc may have grown memory
  transposeBlocks(heap, tensorData(be, x).memoryOffset >>> 2, tensorData(be, out).memoryOffset >>> 2, sizeOf(outer), r, c);
  return out;
}

/** `dst[b][j][i] = src[b][i][j]` for `batch` row-major `[r, c]` matrices. */
function transposeBlocks(h: Float32Array, src: number, dst: number, batch: number, r: number, c: number): void {
  const T = 16;
  const size = r * c;
  for (let b = 0; b < batch; b++) {
    const s0 = src + b * size;
    const d0 = dst + b * size;
    if (r === 1 || c === 1) {
      h.copyWithin(d0, s0, s0 + size);
      continue;
    }
    for (let i0 = 0; i0 < r; i0 += T) {
      const i1 = Math.min(i0 + T, r);
      for (let j0 = 0; j0 < c; j0 += T) {
        const j1 = Math.min(j0 + T, c);
        for (let i = i0; i < i1; i++) {
          const si = s0 + i * c;
          for (let j = j0; j < j1; j++) h[d0 + j * r + i] = h[si + j]!;
        }
      }
    }
  }
}

/** For each flat index of `outShape`, the flat index of the broadcast input of `inShape`. */
function broadcastIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const total = sizeOf(outShape);
  const idx = new Int32Array(total);
  const rank = outShape.length;
  const offset = rank - inShape.length;
  // input strides aligned to the output's axes (0 where the input broadcasts)
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let ax = inShape.length - 1; ax >= 0; ax--) {
    const d = inShape[ax]!;
    strides[ax + offset] = d === 1 ? 0 : s;
    s *= d;
  }
  const counter = new Array<number>(rank).fill(0);
  let cur = 0;
  for (let o = 0; o < total; o++) {
    idx[o] = cur;
    for (let ax = rank - 1; ax >= 0; ax--) {
      counter[ax]!++;
      cur += strides[ax]!;
      if (counter[ax]! < outShape[ax]!) break;
      cur -= strides[ax]! * counter[ax]!;
      counter[ax] = 0;
    }
  }
  return idx;
}

function stripLeadingOnes(shape: readonly number[]): number[] {
  let i = 0;
  while (i < shape.length && shape[i] === 1) i++;
  return shape.slice(i);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * `dst[o] = X[xIdx[o]] · W[wIdx[o]]` for every output batch entry `o`, with X entries
 * `[rows, k]`, W entries `[k, cols]`, all row-major and contiguous, through XNNPACK.
 */
function productsInto(
  be: WasmBackendInternals,
  x: WasmTensorData,
  xBatch: readonly number[],
  w: TensorInfo,
  wBatch: readonly number[],
  outBatch: readonly number[],
  rows: number,
  k: number,
  cols: number,
  dst: WasmTensorData,
  wIsCallerTensor: boolean,
): void {
  const call = cBatchMatMul(be);
  const wData = tensorData(be, w);
  const total = sizeOf(outBatch);
  const xIdx = broadcastIndex(xBatch, outBatch);
  const wIdx = broadcastIndex(wBatch, outBatch);
  const wSingle = sizeOf(wBatch) === 1;
  // XNNPACK caches a packed copy of the weights per id: worth it for a real, unbatched weight
  // tensor (reused across calls); a transposed temporary dies right after this call anyway.
  const wOwnId = wSingle && (!wIsCallerTensor || cacheableWeights(w, k, cols));
  const wShape = shapeBytes([1, k, cols]);
  let o = 0;
  while (o < total) {
    // extend a run of consecutive X entries that share one W entry into a single product
    let end = o + 1;
    while (end < total && wIdx[end] === wIdx[o] && xIdx[end] === xIdx[end - 1]! + 1) end++;
    const count = end - o;
    const xOff = xIdx[o]! * rows * k;
    const wOff = wIdx[o]! * k * cols;
    const oOff = o * rows * cols;
    const xId = xOff === 0 ? x.id : registerView(be, x, xOff, count * rows * k);
    const wId = wOwnId ? wData.id : registerView(be, wData, wOff, k * cols);
    const oId = oOff === 0 ? dst.id : registerView(be, dst, oOff, count * rows * cols);
    try {
      call(xId, shapeBytes([1, count * rows, k]), 3, wId, wShape, 3, false, false, oId);
    } finally {
      if (xId !== x.id) disposeView(be, xId);
      if (wId !== wData.id) disposeView(be, wId);
      if (oId !== dst.id) disposeView(be, oId);
    }
    o = end;
  }
}

// ---------------------------------------------------------------------------------------------
// BatchMatMul

function originalKernel(name: string): KernelFunc {
  const k = originals.get(name);
  if (k === undefined) throw new Error(`rxrl: original wasm kernel ${name} not captured`);
  return k.kernelFunc;
}

function batchMatMulFixed(args: KernelArgs): TensorInfo | TensorInfo[] {
  const original = originalKernel('BatchMatMul');
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as BatchMatMulAttrs;
  if (!batchMatMulFixEnabled || a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) {
    return original(args);
  }
  const be = asWasm(args.backend);
  const aRank = a.shape.length;
  const bRank = b.shape.length;
  const m = transposeA ? a.shape[aRank - 1]! : a.shape[aRank - 2]!;
  const kA = transposeA ? a.shape[aRank - 2]! : a.shape[aRank - 1]!;
  const kB = transposeB ? b.shape[bRank - 1]! : b.shape[bRank - 2]!;
  const n = transposeB ? b.shape[bRank - 2]! : b.shape[bRank - 1]!;
  if (kA !== kB) {
    throw new Error(
      `Error in matMul: inner shapes (${kA}) and (${kB}) of Tensors with shapes ${a.shape} and ` +
        `${b.shape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const k = kA;
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const outBatch = tf.backend_util.assertAndGetBroadcastShape(aBatch, bBatch);
  const batchA = sizeOf(aBatch);
  const batchB = sizeOf(bBatch);

  // Tiny per-entry products with simple batching: the stock strided loop is cheaper than one
  // XNNPACK call per entry. (Stock handles equal batches correctly; we route nothing else.)
  if (batchA > 1 && batchB > 1 && m * k * n < smallEntryThreshold() && sameShape(stripLeadingOnes(aBatch), stripLeadingOnes(bBatch))) {
    return original(args);
  }

  const outSize = sizeOf(outBatch) * m * n;
  if (outSize === 0 || k === 0) {
    const out = be.makeOutput([...outBatch, m, n], 'float32');
    const off = tensorData(be, out).memoryOffset >>> 2;
    heapF32(be.wasm).fill(0, off, off + outSize);
    return out;
  }

  const temps: TensorInfo[] = [];
  const temp = (t: TensorInfo): TensorInfo => {
    temps.push(t);
    return t;
  };
  let out: TensorInfo | undefined;
  try {
    // Aᵀ·Bᵀ = (B·A)ᵀ: both stored operands are already in XNNPACK's layout; transpose the
    // result instead of the operands when that moves fewer elements.
    if (transposeA && transposeB && m * n < m * k + k * n) {
      const ct = temp(be.makeOutput([...outBatch, n, m], 'float32'));
      productsInto(be, tensorData(be, b), bBatch, a, aBatch, outBatch, n, k, m, tensorData(be, ct), true);
      out = transposeLastTwo(be, ct);
      return out;
    }
    const x = transposeA ? temp(transposeLastTwo(be, a)) : a;
    const w = transposeB ? temp(transposeLastTwo(be, b)) : b;
    out = be.makeOutput([...outBatch, m, n], 'float32');
    productsInto(be, tensorData(be, x), aBatch, w, bBatch, outBatch, m, k, n, tensorData(be, out), !transposeB);
    return out;
  } catch (e) {
    if (out !== undefined) be.disposeData(out.dataId);
    throw e;
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
}

// ---------------------------------------------------------------------------------------------
// _FusedMatMul: transposes only (+ cache guard)

function fusedMatMulFixed(args: KernelArgs): TensorInfo | TensorInfo[] {
  const original = originalKernel('_FusedMatMul');
  const inputs = args.inputs as NamedTensorInfoMap & { a: TensorInfo; b: TensorInfo };
  const attrs = args.attrs as unknown as _FusedMatMulAttrs;
  const { a, b } = inputs;
  if (!batchMatMulFixEnabled || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return original(args);
  }
  const be = asWasm(args.backend);
  const temps: TensorInfo[] = [];
  try {
    const temp = (t: TensorInfo): TensorInfo => {
      temps.push(t);
      return t;
    };
    const x = attrs.transposeA ? temp(transposeLastTwo(be, a)) : a;
    let w = attrs.transposeB ? temp(transposeLastTwo(be, b)) : b;
    const k = w.shape[w.shape.length - 2]!;
    const n = w.shape[w.shape.length - 1]!;
    if (!attrs.transposeB && !cacheableWeights(b, k, n)) {
      // fresh buffer → fresh XNNPACK cache entry
      const copy = be.makeOutput(b.shape.slice(), 'float32');
      const heap = heapF32(be.wasm);
      const src = tensorData(be, b).memoryOffset >>> 2;
      heap.copyWithin(tensorData(be, copy).memoryOffset >>> 2, src, src + sizeOf(b.shape));
      w = temp(copy);
    }
    if (temps.length === 0) return original(args);
    const newAttrs = { ...attrs, transposeA: false, transposeB: false } as unknown as NamedAttrMap;
    return original({ ...args, inputs: { ...inputs, a: x, b: w }, attrs: newAttrs });
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
}

// ---------------------------------------------------------------------------------------------
// registration

function replaceKernel(name: string, kernelFunc: KernelFunc): boolean {
  return replaceWasmKernel(name, kernelFunc, originals);
}

let applied: string[] | undefined;

/**
 * Register rxrl's wasm kernel fixes. Idempotent; works before or after the wasm backend is
 * initialised (but `@tensorflow/tfjs-backend-wasm` must have been imported). Returns the list
 * of fixes in place — none when the tfjs patches are off (lib/tensor/patches.ts).
 */
export function registerWasmFixes(): string[] {
  if (applied !== undefined) return applied;
  if (!tfjsPatchesEnabled()) {
    applied = []; // stock kernels (lib/tensor/patches.ts: version guard, RXRL_WASM_FIXES)
    return applied;
  }
  if (tf.getKernel('BatchMatMul', 'wasm') === undefined) {
    throw new Error('registerWasmFixes: the wasm backend is not registered (import @tensorflow/tfjs-backend-wasm first)');
  }
  const fixes: string[] = [];
  if (replaceKernel('BatchMatMul', batchMatMulFixed)) fixes.push('BatchMatMul');
  if (replaceKernel('_FusedMatMul', fusedMatMulFixed)) fixes.push('_FusedMatMul');
  if (registerWasmUnsortedSegmentSum()) fixes.push('UnsortedSegmentSum');
  if (registerWasmGatherFix()) fixes.push('GatherV2');
  fixes.push(...registerWasmCopyFixes()); // Identity, Cast, Slice, SplitV, Concat, Sum
  applied = fixes;
  return fixes;
}
