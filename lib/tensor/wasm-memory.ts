/**
 * Memory of the wasm backend: a clear error when the heap runs out, and the numbers to size a
 * model by.
 *
 * wasm32 addresses at most 4 GiB, and `@tensorflow/tfjs-backend-wasm` 4.22's Emscripten build
 * caps its heap at 4 GiB − 64 KiB (`getHeapMax()`). The heap grows on demand and never shrinks.
 * When it cannot grow, `malloc` returns 0, and tfjs writes the tensor at address 0 anyway (a
 * later `RuntimeError: memory access out of bounds`, or silently wrong values), or an
 * allocation inside XNNPACK fails and Emscripten's `abort()` prints `Aborted()` and throws a
 * `RuntimeError` whose stack points into a line of minified tfjs source.
 *
 * `installWasmHeapGuard(backend)` (done by `initBackend` and by rxrl's BatchMatMul kernel)
 * wraps the module's `_malloc` — the allocator behind every tensor — so a failed allocation
 * throws a `WasmHeapError` (limit, heap, the request, the model's parameter count, the batch)
 * instead, and sets the module's `onAbort` hook so that an abort with the heap near its limit
 * throws a `WasmHeapError` too (the backend cannot continue after an abort: its message says
 * so). The guard is not a kernel patch: it stays on with `RXRL_WASM_FIXES=0`.
 *
 * `limit` (bytes) below the real maximum simulates a smaller heap: an allocation that leaves the
 * heap larger than `limit` is undone and refused (tests; also a way to keep one process under a
 * budget). `setWasmMemoryContext({ batch: '64 × 20 steps' })` lets a training loop name the
 * batch in the message.
 *
 * ```ts
 * try { step(); } catch (e) { if (e instanceof WasmHeapError) console.error(e.message); }
 * wasmHeapBytes(tf.backend());       // current heap size (bytes): the high-water mark
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend } from '@tensorflow/tfjs-core';

/** The heap maximum of tfjs-backend-wasm 4.22's builds (`getHeapMax()`: 4 GiB − 64 KiB). */
export const WASM_HEAP_MAX = 4294901760;

/** Heap within this of `limit` at an abort → reported as running out of heap. */
const ABORT_MARGIN = 64 * 2 ** 20;

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** The wasm heap could not hold a tensor (see the module comment). */
export class WasmHeapError extends Error {
  override name = 'WasmHeapError';
  constructor(
    message: string,
    /** The heap limit (bytes). */
    readonly limit: number,
    /** The heap size when it failed (bytes). */
    readonly heap: number,
    /** The allocation that failed (bytes), if known. */
    readonly requested: number | undefined,
  ) {
    super(message);
  }
}

interface EmscriptenModule {
  _malloc(n: number): number;
  _free(p: number): void;
  HEAP8: Int8Array;
  wasmMemory?: { readonly buffer: ArrayBufferLike };
  onAbort?: (what: unknown) => void;
}

function moduleOf(backend: KernelBackend | object): EmscriptenModule | undefined {
  const wasm = (backend as { wasm?: EmscriptenModule }).wasm;
  return wasm !== undefined && wasm !== null && typeof wasm._malloc === 'function' ? wasm : undefined;
}

/** The current size of the wasm backend's heap in bytes (0 if `backend` is not wasm). */
export function wasmHeapBytes(backend: KernelBackend | object = tf.backend()): number {
  const wasm = moduleOf(backend);
  if (wasm === undefined) return 0;
  return (wasm.wasmMemory?.buffer ?? wasm.HEAP8.buffer).byteLength;
}

let context: { batch?: string } = {};

/** Name the batch being trained in heap errors (e.g. `'64 × 20 steps'`); `{}` clears it. */
export function setWasmMemoryContext(ctx: { batch?: string }): void {
  context = { ...ctx };
}

function modelSize(): string {
  let n = 0;
  let count = 0;
  for (const v of Object.values(tf.engine().registeredVariables)) {
    n += v.size;
    count++;
  }
  if (count === 0) return 'no tf.Variables';
  const p = n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
  return `${p} parameters in ${count} variables`;
}

function message(what: string, limit: number, heap: number, requested: number | undefined): string {
  const req = requested !== undefined ? `, allocating ${mb(requested)} more` : '';
  const batch = context.batch !== undefined ? `batch ${context.batch}` : 'the batch being trained';
  return (
    `wasm heap exhausted (${what}): limit ${mb(limit)}, heap ${mb(heap)}${req}; model ${modelSize()}, ${batch}. ` +
    'The wasm32 heap of tfjs-backend-wasm is capped at 4 GB and never shrinks: train with a smaller batch ' +
    '(or context, or model), run one model per process, or install @tensorflow/tfjs-node (native, no such limit).'
  );
}

interface Guard {
  limit: number;
  malloc: (n: number) => number;
}

const guards = new WeakMap<object, Guard>();

/**
 * `e` as a `WasmHeapError` if it is a WebAssembly trap (`RuntimeError`: an out-of-bounds access
 * after an allocation inside C++/XNNPACK failed) with the heap within 64 MB of its limit;
 * otherwise `e` itself.
 */
export function asWasmHeapError(e: unknown, backend: KernelBackend | object, what: string): unknown {
  if (e instanceof WasmHeapError) return e;
  const wasm = moduleOf(backend);
  const guard = wasm === undefined ? undefined : guards.get(wasm);
  const isTrap = e instanceof Error && e.name === 'RuntimeError';
  if (guard === undefined || !isTrap) return e;
  const heap = wasmHeapBytes(backend);
  if (heap + ABORT_MARGIN < guard.limit) return e;
  const first = (e as Error).message.split('\n')[0]!.slice(0, 120);
  return new WasmHeapError(
    `${message(`${what}: ${first}`, guard.limit, heap, undefined)} The wasm backend may be unusable after this.`,
    guard.limit,
    heap,
    undefined,
  );
}

let kernelsWrapped = false;

/** Every wasm kernel registered now turns a trap near the heap limit into a WasmHeapError. */
function wrapWasmKernels(): void {
  if (kernelsWrapped) return;
  kernelsWrapped = true;
  for (const k of tf.getKernelsForBackend('wasm')) {
    const f = k.kernelFunc;
    const name = k.kernelName;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        try {
          return f(args);
        } catch (e) {
          throw asWasmHeapError(e, args.backend, `tfjs kernel ${name} trapped`);
        }
      },
    });
  }
}

/**
 * Make heap exhaustion on this wasm backend a `WasmHeapError` (see the module comment).
 * Idempotent; a later call may change `limit`. No-op on other backends.
 */
export function installWasmHeapGuard(backend: KernelBackend | object, options: { limit?: number } = {}): void {
  const wasm = moduleOf(backend);
  if (wasm === undefined) return;
  const limit = Math.min(options.limit ?? WASM_HEAP_MAX, WASM_HEAP_MAX);
  const existing = guards.get(wasm);
  if (existing !== undefined) {
    existing.limit = limit;
    return;
  }
  wrapWasmKernels();
  // Emscripten's `_malloc` is a stub that replaces itself with the export on first call: resolve it
  wasm._free(wasm._malloc(8));
  const rawMalloc = wasm._malloc.bind(wasm);
  const rawFree = wasm._free.bind(wasm);
  const guard: Guard = { limit, malloc: rawMalloc };
  guards.set(wasm, guard);
  wasm._malloc = (n: number): number => {
    const p = rawMalloc(n);
    const heap = wasmHeapBytes(backend);
    if ((p === 0 && n > 0) || heap > guard.limit) {
      if (p !== 0) rawFree(p);
      throw new WasmHeapError(message('allocation failed', guard.limit, heap, n), guard.limit, heap, n);
    }
    return p;
  };
  const prevAbort = wasm.onAbort;
  wasm.onAbort = (what: unknown): void => {
    const heap = wasmHeapBytes(backend);
    if (heap + ABORT_MARGIN >= guard.limit) {
      throw new WasmHeapError(
        `${message(`tfjs aborted: ${String(what)}`, guard.limit, heap, undefined)} The wasm backend cannot be used again in this process.`,
        guard.limit,
        heap,
        undefined,
      );
    }
    prevAbort?.(what);
  };
}

/** The heap limit the guard enforces on this backend, or undefined if no guard is installed. */
export function wasmHeapLimit(backend: KernelBackend | object = tf.backend()): number | undefined {
  const wasm = moduleOf(backend);
  return wasm === undefined ? undefined : guards.get(wasm)?.limit;
}

/**
 * Count the bytes the backend's allocator holds for tensors, and their peak, from now on (by
 * wrapping `_malloc`/`_free`); `stop()` unwraps. For benchmarks and tests: the live bytes of
 * `tf.memory().numBytes` count a buffer once per tensor viewing it (reshapes, shared casts),
 * this counts each allocation once.
 */
export function trackWasmAllocations(backend: KernelBackend | object = tf.backend()): {
  live(): number;
  peak(): number;
  resetPeak(): void;
  stop(): void;
} {
  const wasm = moduleOf(backend);
  if (wasm === undefined) throw new Error('trackWasmAllocations: the backend is not wasm');
  wasm._free(wasm._malloc(8));
  const malloc = wasm._malloc;
  const free = wasm._free;
  const sizes = new Map<number, number>();
  let live = 0;
  let peak = 0;
  wasm._malloc = (n: number): number => {
    const p = malloc(n);
    if (p === 0) return p;
    sizes.set(p, n);
    live += n;
    if (live > peak) peak = live;
    return p;
  };
  wasm._free = (p: number): void => {
    live -= sizes.get(p) ?? 0;
    sizes.delete(p);
    free(p);
  };
  return {
    live: () => live,
    peak: () => peak,
    resetPeak: () => {
      peak = live;
    },
    stop: () => {
      wasm._malloc = malloc;
      wasm._free = free;
    },
  };
}
