/**
 * Backend resolver: picks the tfjs backend rxrl runs on and says why, once per process.
 *
 * Order (first that works): `tensorflow` (native libtensorflow through the optional peer
 * dependency `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`) → `wasm`
 * (`@tensorflow/tfjs-backend-wasm`, multi-threaded SIMD by default, with rxrl's kernel fixes)
 * → `cpu` (plain JS, ~25× slower than patched wasm: tests of tiny shapes only).
 *
 * Choice: the `backend` option, else the `RXRL_BACKEND` environment variable, else automatic.
 * A named backend that is unavailable is an error (never a silent fallback); an unknown name is
 * an error listing the valid ones. Thread count (wasm): the `threads` option, else
 * `RXRL_THREADS`, else logical CPUs − 1 (1–8; see lib/tensor/wasm-init.ts for why); 1 selects
 * the single-threaded SIMD build, more the threaded-SIMD build (falling back to 1 thread, with
 * the reason in the report line, if that fails).
 *
 * Also done here, because every training script needs it: tfjs-core's gradient functions are
 * registered (lib/tensor/gradients.ts) and, on wasm, the kernel fixes
 * (lib/tensor/wasm-kernels.ts) are registered — only on the tfjs version they were written for
 * (lib/tensor/patches.ts; `RXRL_WASM_FIXES=0|1` forces them off/on) — and running out of wasm
 * heap becomes a `WasmHeapError` (lib/tensor/wasm-memory.ts).
 *
 * ```ts
 * import { initBackend } from 'rxrl';
 * const b = await initBackend();            // rxrl backend: wasm (tfjs-node not installed; wasm ready, 1 thread)
 * await initBackend({ backend: 'cpu' });    // rejects: already initialised as wasm
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { ensureGradients } from './tensor/gradients.ts';
import { registerWasmFixes } from './tensor/wasm-kernels.ts';
import { tfjsPatches } from './tensor/patches.ts';
import { installWasmHeapGuard } from './tensor/wasm-memory.ts';
import { createSingleThreadWasmBackend, defaultThreadCount, MAX_WASM_THREADS } from './tensor/wasm-init.ts';
import { createThreadedWasmBackend, withoutEmscriptenHandlers } from '#platform/wasm';
import { loadTensorflow } from '#platform/tensorflow';
import { envVar } from '#platform/env';

// Kernel registrations are global and cheap: do them at import, so that wasm gets the fixes
// even when it is initialised some other way (e.g. `tf.setBackend('wasm')` in a test).
const wasmFixes = registerWasmFixes();

export {
  WasmHeapError,
  WASM_HEAP_MAX,
  setWasmMemoryContext,
  wasmHeapBytes,
} from './tensor/wasm-memory.ts';

export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface BackendOptions {
  /** Force a backend (wins over RXRL_BACKEND). Unavailable → the promise rejects. */
  backend?: BackendName;
  /** Do not print the one-line report. */
  quiet?: boolean;
  /** wasm threads (wins over RXRL_THREADS); default: logical CPUs − 1 (1–8); 1 = single-threaded. */
  threads?: number;
}

export interface BackendInfo {
  name: BackendName;
  /** Why this backend, in words (also the printed line's parenthesis). */
  reason: string;
  /** Backends passed over before this one, and why. */
  skipped: { name: string; why: string }[];
  /** wasm: threads in XNNPACK's pool (1 when single-threaded); other backends: undefined. */
  threads?: number;
  /** wasm: kernels rxrl replaced or added (empty when the tfjs patches are off). */
  fixes?: string[];
  /** Whether rxrl's tfjs patches apply, and why (lib/tensor/patches.ts). */
  patches?: { enabled: boolean; reason: string };
  /** The npm package that provided the `tensorflow` backend. */
  package?: string;
}

/** A requested backend could not be used, or the request was invalid. */
export class BackendError extends Error {
  override name = 'BackendError';
}

let current: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

/** The backend chosen by `initBackend`, or undefined before it has resolved. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

function parseName(value: string, source: string): BackendName {
  const v = value.trim().toLowerCase();
  if ((BACKEND_NAMES as readonly string[]).includes(v)) return v as BackendName;
  throw new BackendError(`unknown backend '${value}' (from ${source}); valid backends: ${BACKEND_NAMES.join(', ')}`);
}

function parseThreads(value: number | string, source: string): number {
  const n = typeof value === 'number' ? value : Number(value.trim());
  if (!Number.isInteger(n) || n < 1) {
    throw new BackendError(`threads must be a positive integer (from ${source}), got ${String(value)}`);
  }
  return Math.min(n, MAX_WASM_THREADS);
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.slice(0, 200);
}

/** Install a ready backend instance under `name` and make it current. */
async function install(name: string, instance: tf.KernelBackend, priority: number): Promise<void> {
  tf.removeBackend(name);
  tf.registerBackend(name, () => instance, priority);
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
}

async function loadWasm(threads: number): Promise<{ threads: number; note: string }> {
  if (tf.engine().registry['wasm'] !== undefined) {
    // already initialised by someone (tf.setBackend('wasm') before initBackend): keep it
    if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') failed");
    installWasmHeapGuard(tf.backend());
    const t = getThreadsCount();
    return { threads: t, note: `already initialised, ${t} thread${t === 1 ? '' : 's'}` };
  }
  const r = await withoutEmscriptenHandlers(async () => {
    let threadNote = '';
    if (threads > 1 && !tfjsPatches().enabled) {
      // the threaded init works around tfjs internals (lib/platform/node/wasm.ts): a patch, so off too
      threadNote = `; ${threads} threads need the tfjs patches (off), using 1 thread`;
    } else if (threads > 1) {
      try {
        const instance = await createThreadedWasmBackend(threads);
        await install('wasm', instance, 2);
        const t = getThreadsCount();
        return { threads: t, note: `${t} threads` };
      } catch (e) {
        threadNote = `; threaded init failed (${firstLine(e)}), using 1 thread`;
      }
    }
    const instance = await createSingleThreadWasmBackend();
    await install('wasm', instance, 2);
    return { threads: 1, note: `1 thread${threadNote}` };
  });
  installWasmHeapGuard(tf.backend());
  return r;
}

/** tfjs-backend-cpu prints a "Hi, install tfjs-node" banner on first use; we say it once. */
function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu !== null && typeof cpu === 'object' && 'firstUse' in cpu) cpu.firstUse = false;
}

async function resolve(options: BackendOptions, requested: BackendName | undefined): Promise<BackendInfo> {
  const threadsSource = options.threads !== undefined ? 'option threads' : 'RXRL_THREADS';
  const threadsRaw = options.threads ?? envVar('RXRL_THREADS');
  const threads = threadsRaw === undefined || threadsRaw === '' ? defaultThreadCount() : parseThreads(threadsRaw, threadsSource);

  const skipped: { name: string; why: string }[] = [];
  let info: BackendInfo | undefined;
  const candidates: BackendName[] = requested !== undefined ? [requested] : [...BACKEND_NAMES];

  for (const name of candidates) {
    if (name === 'tensorflow') {
      const r = await loadTensorflow();
      if (!r.ok) {
        skipped.push({ name, why: r.why });
        continue;
      }
      try {
        if (!(await tf.setBackend('tensorflow'))) throw new Error("tf.setBackend('tensorflow') failed");
      } catch (e) {
        skipped.push({ name, why: `${r.pkg} loaded but did not initialise: ${firstLine(e)}` });
        continue;
      }
      info = { name, reason: `${r.pkg}${r.pkg.endsWith('-gpu') ? ', CUDA' : ''}`, skipped, package: r.pkg };
    } else if (name === 'wasm') {
      try {
        const w = await loadWasm(threads);
        const patches = tfjsPatches();
        const off = patches.enabled ? '' : `; ${patches.reason}`;
        info = {
          name,
          reason: `wasm ready, ${w.note}${off}`,
          skipped,
          threads: w.threads,
          fixes: wasmFixes,
          patches: { enabled: patches.enabled, reason: patches.reason },
        };
      } catch (e) {
        skipped.push({ name, why: `wasm failed to initialise: ${firstLine(e)}` });
        continue;
      }
    } else {
      if (!(await tf.setBackend('cpu'))) {
        skipped.push({ name, why: "tf.setBackend('cpu') failed" });
        continue;
      }
      info = { name, reason: 'plain JS', skipped };
    }
    break;
  }

  if (info === undefined) {
    const why = skipped.map((s) => `${s.name}: ${s.why}`).join('; ');
    throw new BackendError(
      requested !== undefined
        ? `backend '${requested}' is unavailable: ${why}. Valid backends: ${BACKEND_NAMES.join(', ')}`
        : `no tfjs backend could be initialised (${why})`,
    );
  }
  silenceCpuBanner();
  await ensureGradients();
  if (requested !== undefined) info.reason = `requested; ${info.reason}`;
  return info;
}

function line(info: BackendInfo): string {
  const parts = info.skipped.map((s) => s.why);
  parts.push(info.reason);
  return `rxrl backend: ${info.name} (${parts.join('; ')})`;
}

/**
 * Choose and initialise the tfjs backend (see the module comment). Idempotent: later calls
 * return the same `BackendInfo` without re-initialising; asking a later call for a *different*
 * backend rejects (tensors cannot move between backends mid-run), as does naming an unknown or
 * unavailable backend. Concurrent calls share one initialisation.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const envName = envVar('RXRL_BACKEND');
  const requested =
    options.backend !== undefined
      ? parseName(options.backend, 'option backend')
      : envName !== undefined && envName.trim() !== ''
        ? parseName(envName, 'RXRL_BACKEND')
        : undefined;

  if (pending !== undefined) {
    const info = await pending;
    if (requested !== undefined && requested !== info.name) {
      let why = `rxrl is already running on '${info.name}'; initBackend cannot switch backends in a running process`;
      if (requested === 'tensorflow') {
        const r = await loadTensorflow();
        if (!r.ok) why = `backend 'tensorflow' is unavailable: ${r.why} (and rxrl is already running on '${info.name}')`;
      }
      throw new BackendError(why);
    }
    return info;
  }

  const p = resolve(options, requested);
  pending = p;
  try {
    const info = await p;
    current = info;
    if (options.quiet !== true) console.log(line(info));
    return info;
  } catch (e) {
    pending = undefined; // a failed init may be retried (e.g. with another backend)
    throw e;
  }
}
