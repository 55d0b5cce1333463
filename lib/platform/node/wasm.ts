/**
 * Multi-threaded `@tensorflow/tfjs-backend-wasm` (4.22) in Node, without touching node_modules.
 *
 * Out of the box the package runs single-threaded in Node:
 *  - its `WASM_HAS_MULTITHREAD_SUPPORT` flag is hard-wired to false under Node;
 *  - forced on, Emscripten is handed the pthread worker script (and the main script) as Blob
 *    URLs, which Node's `Worker` refuses; and the bundled main-script Blob is built from a
 *    rollup-renamed function (`require$$0` ...) that cannot run inside a worker anyway;
 *  - the C++ side caps the thread pool at half of `os.cpus().length` (1 on a 2-core machine);
 *  - the worker threads keep the process alive.
 *
 * `createThreadedWasmBackend(threads)` works around each, for the duration of the init only:
 *  - forces the flag and `setThreadsCount(threads)`;
 *  - captures the worker script tfjs builds (a Blob) and writes it to a real temporary file,
 *    prefixed so that inside the worker every `URL.createObjectURL(...)` names the package's
 *    unbundled `wasm-out/tfjs-backend-wasm-threaded-simd.js` (the same build, loadable there);
 *  - reports `2 × threads` CPUs to `os.cpus()` so the cap does not bite;
 *  - makes every Emscripten worker `unref()`'d (and terminates the idle pre-spawned ones after
 *    init: Emscripten spawns 8, the pool needs `threads − 1`);
 *  - turns a worker `error` (which Emscripten rethrows, crashing the process) into a rejected
 *    init, and bounds the init with a timeout, so a failure falls back instead of hanging.
 *
 * It returns the backend *instance*; the caller installs it (see lib/backend.ts). Temporary
 * files are removed at process exit. `withoutEmscriptenHandlers` runs an init without the process
 * handlers Emscripten's Node glue installs. This is the Node side of `#platform/wasm` (package.json
 * `imports`); browsers get lib/platform/browser/wasm.ts, where tfjs's own threaded build works.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelBackend } from '@tensorflow/tfjs-core';
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { asWasm } from '../../tensor/wasm-internals.ts';
import { withTimeout } from '../../tensor/wasm-init.ts';

const require = createRequire(import.meta.url);
// the CommonJS exports object: the same one Emscripten's `require("worker_threads")` returns
const workerThreads = require('node:worker_threads') as typeof import('node:worker_threads');

function threadedScriptPath(): string {
  // main entry: <pkg>/dist/tf-backend-wasm.node.js
  const main = require.resolve('@tensorflow/tfjs-backend-wasm');
  return path.join(path.dirname(main), '..', 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
}

let tmpDir: string | undefined;
function tempDir(): string {
  if (tmpDir === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rxrl-wasm-'));
    tmpDir = dir;
    process.once('exit', () => {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
      } catch {
        /* best effort */
      }
    });
  }
  return tmpDir;
}

/**
 * Build a threaded wasm backend instance (not yet installed in the engine). Rejects with a
 * reason on any failure, leaving no worker running.
 */
export async function createThreadedWasmBackend(threads: number, timeoutMs = 30_000): Promise<KernelBackend> {
  if (typeof SharedArrayBuffer === 'undefined') throw new Error('SharedArrayBuffer is unavailable');
  if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) throw new Error('WebAssembly SIMD is unsupported');
  const mainScript = threadedScriptPath();
  if (!fs.existsSync(mainScript)) throw new Error(`${mainScript} not found`);
  const workerPath = path.join(tempDir(), 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  const factory = tf.findBackendFactory('wasm') as (() => Promise<KernelBackend>) | null;
  if (factory === null) throw new Error('the wasm backend is not registered');

  const OrigBlob = globalThis.Blob;
  const origCreateObjectURL = URL.createObjectURL;
  const origCpus = os.cpus;
  const OrigWorker = workerThreads.Worker;
  const blobTexts = new WeakMap<object, string>();
  const workers: InstanceType<typeof OrigWorker>[] = [];
  let failWorker: ((e: Error) => void) | undefined;
  const workerFailed = new Promise<never>((_, reject) => {
    failWorker = reject;
  });
  workerFailed.catch(() => undefined);

  class CapturingBlob extends OrigBlob {
    constructor(parts?: unknown[], options?: { type?: string }) {
      super(parts as ConstructorParameters<typeof Blob>[0], options);
      if (Array.isArray(parts) && parts.every((p) => typeof p === 'string')) blobTexts.set(this, parts.join(''));
    }
  }
  class UnrefWorker extends OrigWorker {
    constructor(...args: ConstructorParameters<typeof OrigWorker>) {
      super(...args);
      this.unref();
      workers.push(this);
    }
    override on(event: string | symbol, listener: (...args: any[]) => void): this {
      if (event !== 'error') return super.on(event, listener);
      // Emscripten rethrows worker errors from this listener, which would crash the process
      return super.on(event, (...args: unknown[]) => {
        try {
          listener(...args);
        } catch (e) {
          failWorker?.(e instanceof Error ? e : new Error(String(e)));
        }
      });
    }
  }

  const g = globalThis as { Blob: typeof Blob };
  const wt = workerThreads as { Worker: typeof OrigWorker };
  const osMut = os as { cpus: typeof os.cpus };
  const cpu0 = origCpus()[0];
  g.Blob = CapturingBlob as unknown as typeof Blob;
  URL.createObjectURL = (obj: Blob): string => {
    const text = blobTexts.get(obj);
    if (text?.includes('WasmBackendModuleThreadedSimd(Module)')) {
      const prelude = `"use strict";URL.createObjectURL=function(){return ${JSON.stringify(mainScript)}};URL.revokeObjectURL=function(){};\n`;
      fs.writeFileSync(workerPath, prelude + text);
      return workerPath;
    }
    return origCreateObjectURL(obj);
  };
  osMut.cpus = () => Array.from({ length: 2 * threads }, () => cpu0!);
  wt.Worker = UnrefWorker;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);

  try {
    const backend = await withTimeout(Promise.race([Promise.resolve(factory()), workerFailed]), timeoutMs, 'threaded wasm init');
    const pthread = asWasm(backend).wasm.PThread;
    if (pthread === undefined) throw new Error('the threaded build was not loaded');
    // Emscripten pre-spawns 8 workers; the pool took what it needed. Idle ones cost ~12 MB each.
    for (const w of pthread.unusedWorkers) void w.terminate();
    pthread.unusedWorkers.length = 0;
    // something re-refs the running workers during init: unref again, or the process never exits
    for (const w of workers) w.unref();
    return backend;
  } catch (e) {
    for (const w of workers) void w.terminate();
    throw e;
  } finally {
    g.Blob = OrigBlob;
    URL.createObjectURL = origCreateObjectURL;
    osMut.cpus = origCpus;
    wt.Worker = OrigWorker;
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  }
}

/**
 * Runs a wasm init without the process handlers Emscripten's Node glue adds: they rethrow every
 * uncaught error from inside its minified module (burying the real error under a 100 kB source
 * line). Handlers that were there before are kept.
 * @param f The init.
 * @returns What `f` resolves to.
 */
export async function withoutEmscriptenHandlers<T>(f: () => Promise<T>): Promise<T> {
  type Listener = (...args: unknown[]) => void;
  const emitter = process as unknown as NodeJS.EventEmitter;
  const events = ['uncaughtException', 'unhandledRejection'];
  const before = new Map(events.map((ev) => [ev, new Set(emitter.listeners(ev))]));
  try {
    return await f();
  } finally {
    for (const ev of events) {
      for (const l of emitter.listeners(ev)) {
        if (!before.get(ev)!.has(l)) emitter.removeListener(ev, l as Listener);
      }
    }
  }
}
