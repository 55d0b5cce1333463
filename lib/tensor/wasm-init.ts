/**
 * Initialising `@tensorflow/tfjs-backend-wasm`, the parts that are the same under Node and in a
 * browser: the thread-count default and bound, the single-threaded init, and a timeout. The
 * threaded init differs by host and lives behind `#platform/wasm` (lib/platform/node/wasm.ts works
 * around tfjs in Node; lib/platform/browser/wasm.ts uses tfjs's own threaded build).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend } from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { THREADS_BY_DEFAULT, cpuCount } from '#platform/env';

/** Emscripten pre-spawns 8 workers and the C++ side never uses more than 8 threads. */
export const MAX_WASM_THREADS = 8;

/**
 * Default pool size: logical CPUs − 1 (1 to 8). XNNPACK's pool synchronises on every operator,
 * so one worker descheduled by another process stalls every op: on this 2-core machine shared
 * with other jobs, 2 threads made small ops 10–20× slower and large matmuls no faster
 * (docs/backends.md). Leaving one CPU free keeps 2-core machines single-threaded and still
 * threads larger ones. Override with the `threads` option or RXRL_THREADS. In a browser the
 * default is 1 (`THREADS_BY_DEFAULT` of lib/platform/browser/env.ts says why).
 * @returns The thread count `initBackend` uses when none is asked for.
 */
export function defaultThreadCount(): number {
  if (!THREADS_BY_DEFAULT) return 1;
  return Math.max(1, Math.min(MAX_WASM_THREADS, cpuCount() - 1));
}

/**
 * `p`, or a rejection naming `what` after `ms` milliseconds.
 * @param p The promise to bound.
 * @param ms Milliseconds before giving up.
 * @param what What is waited for, for the message.
 * @returns A promise settling like `p`, or rejecting on the timeout.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // this (ref'd) timer also keeps the event loop alive while only unref'd workers are busy
    const timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String((e as { message?: string })?.message ?? e)));
      },
    );
  });
}

/**
 * Build a single-threaded (SIMD if supported) wasm backend instance (not yet installed).
 * @param timeoutMs Give up after this long.
 * @returns The backend instance.
 */
export async function createSingleThreadWasmBackend(timeoutMs = 30_000): Promise<KernelBackend> {
  const factory = tf.findBackendFactory('wasm') as (() => Promise<KernelBackend>) | null;
  if (factory === null) throw new Error('the wasm backend is not registered');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setThreadsCount(1);
  return withTimeout(Promise.resolve(factory()), timeoutMs, 'wasm init');
}
