/**
 * The parts of `@tensorflow/tfjs-backend-wasm` 4.22's `BackendWasm` that rxrl's wasm kernels
 * touch. They are not in the package's public typings, so they are described here once and
 * every access goes through these helpers.
 *
 * Memory model: every tensor is a block of the module's linear memory at `memoryOffset`
 * (bytes), registered with the C++ side under a numeric `id`. A C++ kernel receives ids and
 * finds the pointer through that registry, so a *view* of part of an existing tensor can be
 * made by registering a fresh id that points inside it (`registerView`) and unregistering it
 * afterwards (`disposeView`), without copying and without freeing anything.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DataId, DataType, KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';

export interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: DataType;
  refCount: number;
}

export interface WasmModule {
  HEAPF32: Float32Array;
  HEAP32: Int32Array;
  /** Present on the threaded build (shared, growable memory). */
  wasmMemory?: { readonly buffer: ArrayBufferLike };
  cwrap(name: string, returnType: null | 'number', argTypes: string[]): (...args: unknown[]) => unknown;
  tfjs: {
    registerTensor(id: number, size: number, memoryOffset: number): void;
    disposeData(id: number): void;
  };
  /** Emscripten's pthread bookkeeping (threaded build only). */
  PThread?: EmscriptenPThread;
}

export interface EmscriptenPThread {
  unusedWorkers: { unref(): void; terminate(): unknown }[];
  runningWorkers: { unref(): void }[];
}

export interface WasmBackendInternals {
  wasm: WasmModule;
  dataIdMap: { get(dataId: DataId): WasmTensorData | undefined };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: DataId, force?: boolean): boolean;
}

export function asWasm(backend: KernelBackend | object): WasmBackendInternals {
  return backend as unknown as WasmBackendInternals;
}

export function tensorData(be: WasmBackendInternals, t: TensorInfo): WasmTensorData {
  const d = be.dataIdMap.get(t.dataId);
  if (d === undefined) throw new Error('rxrl wasm kernel: tensor data not found (disposed tensor?)');
  return d;
}

/**
 * A fresh Float32Array over the whole linear memory. Fetch it after every allocation: a
 * `malloc` may grow memory, which detaches older views (on the threaded build another thread
 * may grow it too, so the module's cached `HEAPF32` can be stale — hence `wasmMemory`).
 */
export function heapF32(wasm: WasmModule): Float32Array {
  const mem = wasm.wasmMemory;
  if (mem !== undefined && wasm.HEAPF32.buffer !== mem.buffer) return new Float32Array(mem.buffer);
  return wasm.HEAPF32;
}

export function heapI32(wasm: WasmModule): Int32Array {
  const mem = wasm.wasmMemory;
  if (mem !== undefined && wasm.HEAP32.buffer !== mem.buffer) return new Int32Array(mem.buffer);
  return wasm.HEAP32;
}

/** Register `size` float32 elements starting `offsetElems` into `data` under a new id. */
export function registerView(be: WasmBackendInternals, data: WasmTensorData, offsetElems: number, size: number): number {
  const id = be.dataIdNextNumber++;
  be.wasm.tfjs.registerTensor(id, size, data.memoryOffset + offsetElems * 4);
  return id;
}

/** Unregister a view id (also drops any XNNPACK operator cached on it); frees nothing. */
export function disposeView(be: WasmBackendInternals, id: number): void {
  be.wasm.tfjs.disposeData(id);
}

export function sizeOf(shape: readonly number[]): number {
  let s = 1;
  for (const d of shape) s *= d;
  return s;
}

export function shapeBytes(shape: readonly number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/**
 * Replaces the wasm kernel `name` with `kernelFunc`, saving the stock registration in `saved` (so
 * the replacement can fall back to it). The stock setupFunc (which creates the stock kernel's
 * cwrap) and disposeFunc are kept, so the fallback works even when this runs before the backend
 * initialises. Returns false if already replaced or if wasm has no such kernel.
 */
export function replaceWasmKernel(name: string, kernelFunc: KernelFunc, saved: Map<string, KernelConfig>): boolean {
  if (saved.has(name)) return false;
  const orig = tf.getKernel(name, 'wasm');
  if (orig === undefined) return false;
  saved.set(name, orig);
  tf.unregisterKernel(name, 'wasm');
  const config: KernelConfig = { kernelName: name, backendName: 'wasm', kernelFunc };
  if (orig.setupFunc !== undefined) config.setupFunc = orig.setupFunc;
  if (orig.disposeFunc !== undefined) config.disposeFunc = orig.disposeFunc;
  tf.registerKernel(config);
  return true;
}
