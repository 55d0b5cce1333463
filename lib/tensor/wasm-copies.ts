/**
 * Two cheap wins for a training step on `@tensorflow/tfjs-backend-wasm` 4.22 (numbers in
 * docs/performance.md):
 *
 * 1. `Identity` and same-dtype `Cast` share the input's buffer (reference-counted, as the cpu
 *    backend and wasm's own `Reshape` do) instead of copying it. tfjs-core's gradients call
 *    `cast(x, 'float32')` on both operands of every `mul`/`div` and clone tensors in many places:
 *    ≈400 copies per step of a small transformer. Tensors are immutable, so sharing is safe;
 *    a dtype-changing `Cast` goes to the stock kernel, except to bool, which is now x ≠ 0 (the
 *    stock kernel stored the numbers in the 1-byte bool buffer: −1 → 255, 256 → 0).
 *
 * 2. `Slice` (and so `SplitV`, which calls it) and `Concat` copy contiguous runs with
 *    `copyWithin` on the heap; the stock kernels allocate one `subarray` per innermost row
 *    (≈1.6 ms to split a [32, 60, 384] tensor in three along the last axis vs ≈0.2 ms here).
 *
 * 3. `Sum` over *leading* axes (`[N, C] → [C]`: every bias and LayerNorm-gain gradient) is one
 *    pass over the rows on the heap. The stock kernel first transposes the input so that the
 *    reduced axes are innermost (≈3 ms for [1920, 512] vs ≈0.2 ms here with rxrl's SIMD
 *    kernel, ≈0.6 ms with the JS loop used where that is unavailable). Other axis patterns go
 *    to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CastAttrs, ConcatAttrs, KernelConfig, KernelFunc, SliceAttrs, SplitVAttrs, SumAttrs, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, heapF32, heapI32, replaceWasmKernel, sizeOf, tensorData } from './wasm-internals.ts';
import { simdKernels } from './simd/instance.ts';

type KernelArgs = Parameters<KernelFunc>[0];

const stock = new Map<string, KernelConfig>();

function stockKernel(name: string): KernelFunc {
  const k = stock.get(name);
  if (k === undefined) throw new Error(`rxrl: stock wasm kernel ${name} not captured`);
  return k.kernelFunc;
}

interface RefCounting {
  incRef(dataId: object): void;
}

function share(args: KernelArgs, x: TensorInfo): TensorInfo {
  (args.backend as unknown as RefCounting).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

function identityShared(args: KernelArgs): TensorInfo | TensorInfo[] {
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string') return stockKernel(tf.Identity)(args);
  return share(args, x);
}

function castShared(args: KernelArgs): TensorInfo | TensorInfo[] {
  const { x } = args.inputs as { x: TensorInfo };
  const { dtype } = args.attrs as unknown as CastAttrs;
  if (dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) return castToBool(args, x);
  if (x.dtype !== dtype || x.dtype === 'string') return stockKernel(tf.Cast)(args);
  return share(args, x);
}

/** x ≠ 0. (The stock kernel copies the numbers into the 1-byte bool buffer, so −1 became 255
 * and 256 became 0.) */
function castToBool(args: KernelArgs, x: TensorInfo): TensorInfo {
  const be = args.backend as unknown as {
    makeOutput(s: number[], d: string): TensorInfo;
    typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  };
  const out = be.makeOutput(x.shape.slice(), 'bool');
  const src = be.typedArrayFromHeap(x);
  const dst = be.typedArrayFromHeap(out);
  for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
  return out;
}

/** If `axes` (normalised, sorted) are exactly 0..p−1 with p < rank, returns p; else −1. */
function leadingPrefix(axes: number[], rank: number): number {
  const s = [...axes].sort((a, b) => a - b);
  for (let i = 0; i < s.length; i++) if (s[i] !== i) return -1;
  return s.length > 0 && s.length < rank ? s.length : -1;
}

function sumLeading(args: KernelArgs): TensorInfo | TensorInfo[] {
  const { x } = args.inputs as { x: TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as SumAttrs;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const p = leadingPrefix(axes, rank);
  if (p < 0 || x.dtype !== 'float32' || sizeOf(x.shape) === 0) return stockKernel(tf.Sum)(args);
  const be = asWasm(args.backend);
  const rows = sizeOf(x.shape.slice(0, p));
  const cols = sizeOf(x.shape.slice(p));
  const outShape = keepDims ? [...x.shape.slice(0, p).map(() => 1), ...x.shape.slice(p)] : x.shape.slice(p);
  const out = be.makeOutput(outShape, 'float32');
  const simd = simdKernels(args.backend);
  if (simd !== null) {
    simd.sum_rows(tensorData(be, x).memoryOffset, tensorData(be, out).memoryOffset, rows, cols);
    return out;
  }
  const h = heapF32(be.wasm); // after makeOutput (malloc may grow memory)
  const src = tensorData(be, x).memoryOffset >>> 2;
  const dst = tensorData(be, out).memoryOffset >>> 2;
  h.fill(0, dst, dst + cols);
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const a = src + r * cols;
    const b = a + cols;
    const c = b + cols;
    const d = c + cols;
    for (let j = 0; j < cols; j++) h[dst + j] = h[dst + j]! + (h[a + j]! + h[b + j]! + (h[c + j]! + h[d + j]!));
  }
  for (; r < rows; r++) {
    const a = src + r * cols;
    for (let j = 0; j < cols; j++) h[dst + j] = h[dst + j]! + h[a + j]!;
  }
  return out;
}

/** `dst[0..n) = src[0..n)` on the heap (copyWithin for long runs, a loop for short ones). */
function copyRun(h: Float32Array | Int32Array, dst: number, src: number, n: number): void {
  if (n >= 16) h.copyWithin(dst, src, src + n);
  else for (let j = 0; j < n; j++) h[dst + j] = h[src + j]!;
}

function heapFor(be: ReturnType<typeof asWasm>, dtype: string): Float32Array | Int32Array {
  return dtype === 'float32' ? heapF32(be.wasm) : heapI32(be.wasm);
}

function sliceRuns(args: KernelArgs): TensorInfo | TensorInfo[] {
  const { x } = args.inputs as { x: TensorInfo };
  const { begin, size } = args.attrs as unknown as SliceAttrs;
  if (x.dtype !== 'float32' && x.dtype !== 'int32') return stockKernel(tf.Slice)(args);
  const [b, z] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size) as [number[], number[]];
  if (x.shape.length === 0) return stockKernel(tf.Slice)(args);
  const be = asWasm(args.backend);
  const shape = x.shape;
  const rank = shape.length;
  const out = be.makeOutput(z, x.dtype);
  const total = sizeOf(z);
  if (total === 0) return out;
  // innermost axis a whose slice is partial; all axes after it are taken whole
  let a = rank - 1;
  let inner = 1;
  while (a > 0 && z[a] === shape[a]) inner *= shape[a--]!;
  const run = z[a]! * inner;
  const strides = tf.util.computeStrides(shape);
  const h = heapFor(be, x.dtype); // after makeOutput
  const src0 = (tensorData(be, x).memoryOffset >>> 2) + (rank > 0 ? b[a]! * inner : 0);
  const dst0 = tensorData(be, out).memoryOffset >>> 2;
  // walk the outer axes 0..a−1
  const idx = new Array<number>(a).fill(0);
  let dst = dst0;
  for (let done = 0; done < total; done += run) {
    let src = src0;
    for (let i = 0; i < a; i++) src += (b[i]! + idx[i]!) * strides[i]!;
    copyRun(h, dst, src, run);
    dst += run;
    for (let i = a - 1; i >= 0; i--) {
      if (++idx[i]! < z[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

function splitVRuns(args: KernelArgs): TensorInfo | TensorInfo[] {
  const { x } = args.inputs as { x: TensorInfo };
  const { numOrSizeSplits, axis } = args.attrs as unknown as SplitVAttrs;
  const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = x.shape.slice();
    size[ax] = s;
    const part = sliceRuns({ ...args, attrs: { begin: begin.slice(), size } }) as TensorInfo;
    begin[ax]! += s;
    return part;
  });
}

function concatRuns(args: KernelArgs): TensorInfo | TensorInfo[] {
  const inputs = (args.inputs as unknown as TensorInfo[]).filter((t) => sizeOf(t.shape) > 0);
  const first = (args.inputs as unknown as TensorInfo[])[0];
  if (first === undefined || inputs.length < 2 || inputs.some((t) => t.dtype !== first.dtype) || (first.dtype !== 'float32' && first.dtype !== 'int32')) {
    return stockKernel(tf.Concat)(args);
  }
  const axis = tf.util.parseAxisParam((args.attrs as unknown as ConcatAttrs).axis, first.shape)[0]!;
  const shapes = inputs.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const outShape = tf.backend_util.computeOutShape(shapes, axis);
  const be = asWasm(args.backend);
  const out = be.makeOutput(outShape, first.dtype);
  const h = heapFor(be, first.dtype); // after makeOutput
  const outer = sizeOf(first.shape.slice(0, axis));
  const inners = inputs.map((t) => sizeOf(t.shape.slice(axis)));
  const srcs = inputs.map((t) => tensorData(be, t).memoryOffset >>> 2);
  let dst = tensorData(be, out).memoryOffset >>> 2;
  for (let r = 0; r < outer; r++) {
    for (let i = 0; i < inputs.length; i++) {
      const n = inners[i]!;
      copyRun(h, dst, srcs[i]! + r * n, n);
      dst += n;
    }
  }
  return out;
}

function replace(name: string, kernelFunc: KernelFunc): boolean {
  return replaceWasmKernel(name, kernelFunc, stock);
}

/** Register the shared-buffer `Identity`/`Cast` and leading-axes `Sum` (idempotent). Returns
 * the names of the kernels it replaced. */
export function registerWasmCopyFixes(): string[] {
  const done: string[] = [];
  if (replace(tf.Identity, identityShared as KernelFunc)) done.push('Identity');
  if (replace(tf.Cast, castShared as KernelFunc)) done.push('Cast');
  if (replace(tf.Slice, sliceRuns as KernelFunc)) done.push('Slice');
  if (replace(tf.SplitV, splitVRuns as KernelFunc)) done.push('SplitV');
  if (replace(tf.Concat, concatRuns as KernelFunc)) done.push('Concat');
  if (replace(tf.Sum, sumLeading as KernelFunc)) done.push('Sum');
  return done;
}
