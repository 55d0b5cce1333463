/**
 * Multi-threaded `@tensorflow/tfjs-backend-wasm` in a browser: tfjs's own threaded-SIMD build,
 * which needs `SharedArrayBuffer`, i.e. a cross-origin isolated page (served with
 * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`).
 * Node resolves `#platform/wasm` to lib/platform/node/wasm.ts, which works around tfjs there.
 *
 * tfjs's C++ side caps XNNPACK's pool at half of the logical cores Emscripten reports
 * (`navigator.hardwareConcurrency`): during the init this reports twice the threads asked for, as
 * the Node side does with `os.cpus()`, so `threads: n` means n. The bundler must leave tfjs's
 * threaded factory readable as source text (docs/browser.md, "Threads").
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend } from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { withTimeout } from '../../tensor/wasm-init.ts';

/**
 * Build a threaded wasm backend instance (not yet installed in the engine).
 * @param threads Threads in XNNPACK's pool.
 * @param timeoutMs Give up after this long.
 * @returns The backend instance; rejects with the reason when the page cannot have threads.
 */
export async function createThreadedWasmBackend(threads: number, timeoutMs = 30_000): Promise<KernelBackend> {
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (typeof SharedArrayBuffer === 'undefined' || g.crossOriginIsolated !== true) {
    throw new Error('the page is not cross-origin isolated (COOP/COEP headers), so there is no SharedArrayBuffer');
  }
  if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) throw new Error('WebAssembly SIMD is unsupported');
  const factory = tf.findBackendFactory('wasm') as (() => Promise<KernelBackend>) | null;
  if (factory === null) throw new Error('the wasm backend is not registered');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);
  // The cap reads navigator.hardwareConcurrency (a getter of the prototype): shadow it meanwhile.
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const own = nav === undefined ? undefined : Object.getOwnPropertyDescriptor(nav, 'hardwareConcurrency');
  if (nav !== undefined) Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * threads, configurable: true });
  try {
    return await withTimeout(Promise.resolve(factory()), timeoutMs, 'threaded wasm init');
  } finally {
    if (nav !== undefined) {
      if (own !== undefined) Object.defineProperty(nav, 'hardwareConcurrency', own);
      else delete nav.hardwareConcurrency;
    }
  }
}

/**
 * Runs a wasm init as it is: a browser's Emscripten glue adds no process handlers.
 * @param f The init.
 * @returns What `f` resolves to.
 */
export function withoutEmscriptenHandlers<T>(f: () => Promise<T>): Promise<T> {
  return f();
}
