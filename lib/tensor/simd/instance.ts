/**
 * rxrl's WebAssembly SIMD kernels (kernels.c, embedded by build.sh as kernels-wasm.ts),
 * instantiated inside the linear memory of tfjs's wasm backend so that they work on tensors in
 * place: arguments are the byte offsets of tensors (`tensorData(be, t).memoryOffset`).
 *
 * Both tfjs wasm builds are covered: the single-threaded one (a plain memory) and the threaded
 * one (a shared memory; the kernels themselves run on the calling thread). `simdKernels`
 * returns null where they cannot run (another backend, no WebAssembly SIMD), and callers fall
 * back to tfjs ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend } from '@tensorflow/tfjs-core';
import { KERNELS_SHARED_WASM_BASE64, KERNELS_WASM_BASE64 } from './kernels-wasm.ts';
import { tfjsPatchesEnabled } from '../patches.ts';

type Ptr = number;

export interface SimdKernels {
  attention_forward(q: Ptr, k: Ptr, v: Ptr, keyMask: Ptr, o: Ptr, probs: Ptr, B: number, T: number, H: number, Hkv: number, d: number, scale: number): void;
  attention_backward(
    dO: Ptr,
    q: Ptr,
    k: Ptr,
    v: Ptr,
    probs: Ptr,
    keyMask: Ptr,
    dq: Ptr,
    dk: Ptr,
    dv: Ptr,
    scratch: Ptr,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    d: number,
    scale: number,
  ): void;
  layernorm_forward(x: Ptr, gamma: Ptr, beta: Ptr, y: Ptr, mean: Ptr, rstd: Ptr, N: number, D: number, eps: number): void;
  layernorm_backward(dy: Ptr, x: Ptr, gamma: Ptr, mean: Ptr, rstd: Ptr, dx: Ptr, dgamma: Ptr, dbeta: Ptr, N: number, D: number): void;
  gelu_forward(x: Ptr, y: Ptr, n: number): void;
  gelu_backward(dy: Ptr, x: Ptr, dx: Ptr, n: number): void;
  transpose(src: Ptr, dst: Ptr, batch: number, r: number, c: number): void;
  sum_rows(x: Ptr, out: Ptr, rows: number, cols: number): void;
}

/** True if the current tfjs backend is wasm with rxrl's SIMD kernels available. */
export function hasSimdKernels(): boolean {
  return tf.getBackend() === 'wasm' && simdKernels(tf.backend()) !== null;
}

/** The part of the WebAssembly JS API used here (tsconfig has no DOM lib, which declares it). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
  Memory: abstract new (...args: never[]) => { readonly buffer: ArrayBufferLike };
}
const WA = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

const modules = new Map<string, object | null>();

function compile(base64: string): object | null {
  if (!modules.has(base64)) {
    try {
      const bin = atob(base64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      modules.set(base64, new WA.Module(bytes));
    } catch {
      modules.set(base64, null); // no WebAssembly SIMD here
    }
  }
  return modules.get(base64)!;
}

const instances = new WeakMap<object, SimdKernels | null>();

/** The kernels bound to this wasm backend's memory, or null if they cannot run there. */
export function simdKernels(backend: KernelBackend | object): SimdKernels | null {
  if (!tfjsPatchesEnabled()) return null; // they work on wasm-backend internals: a tfjs patch
  const wasm = (backend as { wasm?: { asm?: { memory?: unknown }; wasmMemory?: unknown } }).wasm;
  if (wasm === undefined) return null;
  if (instances.has(wasm)) return instances.get(wasm)!;
  let kernels: SimdKernels | null = null;
  const memory = wasm.asm?.memory ?? wasm.wasmMemory; // exported (single-threaded) or imported (threaded)
  if (memory instanceof WA.Memory) {
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const mod = compile(shared ? KERNELS_SHARED_WASM_BASE64 : KERNELS_WASM_BASE64);
    try {
      if (mod !== null) kernels = new WA.Instance(mod, { env: { memory } }).exports as unknown as SimdKernels;
    } catch {
      kernels = null;
    }
  }
  instances.set(wasm, kernels);
  return kernels;
}
