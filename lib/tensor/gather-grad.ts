/**
 * Embeddings (`tf.gather`) on the wasm backend of `@tensorflow/tfjs-backend-wasm` 4.22.
 *
 * 1. `UnsortedSegmentSum` kernel for wasm — missing upstream, so the gradient of `gather`
 *    (every embedding lookup) threw. Semantics (same as the cpu backend):
 *    `out[s, ...] = Σ_{i : segmentIds[i] = s} x[i, ...]`, output `[numSegments, ...x.shape.slice(1)]`;
 *    duplicate ids are summed; ids outside `[0, numSegments)` are dropped. `segmentIds` must be
 *    1-D int32 of length `x.shape[0]`; `x` float32 or int32. One pass over the rows on the
 *    heap, O(x.size): ≈0.3 ms for a 1920×128 embedding gradient.
 *
 * 2. `GatherV2` gradient (registered for every backend, replacing tfjs-core's): the core one
 *    transposes `dy` for `axis > 0` and, for `batchDims > 0`, calls chained tensor methods
 *    (`x.split`, `t.reshape`) that tfjs-core's Node bundle does not install, so it threw. This
 *    one flattens instead: with `x` viewed as `[B, O, D, S]` (batch, outer, gathered axis,
 *    slice) and `indices` as `[B, K]`, `dx = unsortedSegmentSum(dy as [B·O·K, S],
 *    (b·O + o)·D + indices[b, k], B·O·D)` reshaped to `x.shape`: every axis, every `batchDims`,
 *    any indices shape, no transposes.
 *
 * 3. `GatherV2` forward on wasm: the stock kernel returned wrong values for `batchDims > 0` and
 *    spends ≈13 ms on a [32,60] lookup into a [1000,128] table (it recomputes a multi-index per
 *    element); replaced by row copies on the heap in the same `[B, O, D, S]` view (≈0.1 ms).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GatherV2Attrs, GradConfig, KernelConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo, UnsortedSegmentSumAttrs } from '@tensorflow/tfjs-core';
import { asWasm, heapF32, heapI32, sizeOf, tensorData } from './wasm-internals.ts';

type KernelArgs = Parameters<KernelFunc>[0];

function unsortedSegmentSumWasm(args: KernelArgs): TensorInfo {
  const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = args.attrs as unknown as UnsortedSegmentSumAttrs;
  if (segmentIds.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (rxrl wasm): segmentIds must be int32, got ${segmentIds.dtype}`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new Error(`UnsortedSegmentSum (rxrl wasm): x must be float32 or int32, got ${x.dtype}`);
  }
  if (segmentIds.shape.length !== 1 || x.shape.length < 1 || segmentIds.shape[0] !== x.shape[0]) {
    throw new Error(`UnsortedSegmentSum (rxrl wasm): segmentIds must be 1-D with length x.shape[0]; got segmentIds [${segmentIds.shape}] for x [${x.shape}]`);
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum (rxrl wasm): numSegments must be a non-negative integer, got ${numSegments}`);
  }
  const be = asWasm(args.backend);
  const rest = x.shape.slice(1);
  const inner = sizeOf(rest);
  const rows = x.shape[0]!;
  const out = be.makeOutput([numSegments, ...rest], x.dtype);
  // views after makeOutput (malloc may grow memory)
  const heap = x.dtype === 'float32' ? heapF32(be.wasm) : heapI32(be.wasm);
  const ids = heapI32(be.wasm);
  const dst = tensorData(be, out).memoryOffset >>> 2;
  const src = tensorData(be, x).memoryOffset >>> 2;
  const idp = tensorData(be, segmentIds).memoryOffset >>> 2;
  heap.fill(0, dst, dst + numSegments * inner);
  for (let i = 0; i < rows; i++) {
    const s = ids[idp + i]!;
    if (s < 0 || s >= numSegments) continue;
    const d = dst + s * inner;
    const r = src + i * inner;
    for (let j = 0; j < inner; j++) heap[d + j]! += heap[r + j]!;
  }
  return out;
}

export const wasmUnsortedSegmentSumConfig: KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSumWasm as KernelFunc,
};

/** Register the kernel unless wasm already has one. Returns true if it registered it. */
export function registerWasmUnsortedSegmentSum(): boolean {
  if (tf.getKernel(tf.UnsortedSegmentSum, 'wasm') !== undefined) return false;
  tf.registerKernel(wasmUnsortedSegmentSumConfig);
  return true;
}

// ---------------------------------------------------------------------------------------------
// GatherV2 gradient

function gatherShapeInfo(x: { shape: number[] }, indices: { shape: number[] }, axis: number, batchDims: number) {
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0]!;
  return tf.backend_util.segment_util.collectGatherOpShapeInfo(x as unknown as TensorInfo, indices as unknown as TensorInfo, parsedAxis, batchDims);
}

/** `(b·O + o)·D + indices[b, k]` as a `[B·O·K]` int32 tensor (ops; any backend). */
function flatIndices(indices: Tensor, B: number, O: number, D: number): Tensor {
  const K = B === 0 ? 0 : indices.size / B;
  const idx = tf.reshape(tf.cast(indices, 'int32'), [B, 1, K]);
  if (B * O === 1) return tf.reshape(idx, [K]);
  const base = tf.mul(tf.reshape(tf.range(0, B * O, 1, 'int32'), [B, O, 1]), tf.scalar(D, 'int32'));
  return tf.reshape(tf.add(base, idx), [B * O * K]);
}

export const gatherGradConfig: GradConfig = {
  kernelName: tf.GatherV2,
  inputsToSave: ['x', 'indices'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [x, indices] = saved as [Tensor, Tensor];
    const { axis, batchDims } = attrs as unknown as GatherV2Attrs;
    return {
      x: () => {
        const { batchSize: B, outerSize: O, dimSize: D, sliceSize: S } = gatherShapeInfo(x, indices, axis, batchDims);
        const K = B === 0 ? 0 : indices.size / B;
        const segments = tf.unsortedSegmentSum(tf.reshape(dy as Tensor, [B * O * K, S]), flatIndices(indices, B, O, D) as tf.Tensor1D, B * O * D);
        return tf.reshape(segments, x.shape);
      },
      indices: () => indices, // not differentiable (int32); tfjs-core returns the same
    };
  },
};

/** Replace tfjs-core's GatherV2 gradient (all backends). Idempotent. */
export function registerGatherGradient(): void {
  if (tf.getGradient(tf.GatherV2) !== gatherGradConfig) tf.registerGradient(gatherGradConfig);
}

// ---------------------------------------------------------------------------------------------
// GatherV2 forward (wasm)

let stockGather: KernelConfig | undefined;
let gatherFixEnabled = true;

/** Switch the replacement wasm GatherV2 kernel off/on (benchmarks). */
export function setWasmGatherFix(enabled: boolean): void {
  gatherFixEnabled = enabled;
}

/**
 * `out[b, o, k, :] = x[b, o, indices[b, k], :]` as row copies on the heap, with `x` viewed as
 * `[B, O, D, S]`. The stock kernel recomputes a multi-index per element (≈13 ms for a
 * [32,60] lookup into a [1000,128] table here) and is wrong for `batchDims > 0`; this is
 * ≈0.1 ms. float32 / int32 (4-byte elements, copied bit for bit); bool goes to the stock kernel.
 */
function gatherV2Wasm(args: KernelArgs): TensorInfo | TensorInfo[] {
  const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
  const { axis, batchDims } = args.attrs as unknown as GatherV2Attrs;
  if (!gatherFixEnabled || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32') {
    return stockGather!.kernelFunc(args);
  }
  const info = gatherShapeInfo(x, indices, axis, batchDims ?? 0);
  const { batchSize: B, outerSize: O, dimSize: D, sliceSize: S } = info;
  const be = asWasm(args.backend);
  const n = sizeOf(indices.shape);
  const K = B === 0 ? 0 : n / B;
  const out = be.makeOutput(info.outputShape, x.dtype);
  if (sizeOf(info.outputShape) === 0) return out;
  const heap = heapI32(be.wasm); // after makeOutput
  const ip = tensorData(be, indices).memoryOffset >>> 2;
  for (let i = 0; i < n; i++) {
    const v = heap[ip + i]!;
    if (v < 0 || v >= D) {
      be.disposeData(out.dataId);
      throw new Error(`GatherV2: the index value ${v} is not in [0, ${D - 1}]`);
    }
  }
  const xp = tensorData(be, x).memoryOffset >>> 2;
  const op = tensorData(be, out).memoryOffset >>> 2;
  let dst = op;
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < O; o++) {
      const rowBase = xp + (b * O + o) * D * S;
      for (let k = 0; k < K; k++) {
        const src = rowBase + heap[ip + b * K + k]! * S;
        if (S >= 16) heap.copyWithin(dst, src, src + S);
        else for (let j = 0; j < S; j++) heap[dst + j] = heap[src + j]!;
        dst += S;
      }
    }
  }
  return out;
}

/** Replace wasm's GatherV2 kernel (speed; batchDims > 0). Returns true if it did so. */
export function registerWasmGatherFix(): boolean {
  if (stockGather !== undefined) return false;
  const orig = tf.getKernel(tf.GatherV2, 'wasm');
  if (orig === undefined) return false;
  stockGather = orig;
  tf.unregisterKernel(tf.GatherV2, 'wasm');
  const config: KernelConfig = { kernelName: tf.GatherV2, backendName: 'wasm', kernelFunc: gatherV2Wasm as KernelFunc };
  if (orig.setupFunc !== undefined) config.setupFunc = orig.setupFunc;
  if (orig.disposeFunc !== undefined) config.disposeFunc = orig.disposeFunc;
  tf.registerKernel(config);
  return true;
}
