/**
 * The training worker: decodes a pipeline file with the CLI's codecs and registry (the same
 * errors), initialises the tfjs wasm backend, provides the files pipelines read (the shipped test
 * dataset test/data/hopper-tiny.hdf5 and whatever the page opened) to rxrl, runs the pipeline on the
 * shared loop and posts every metrics record as its metrics.jsonl line. Pause and stop act between
 * iterations (the loop yields a macrotask after each, so messages get through); the checkpoint of
 * the last completed iteration is kept as bytes for the download.
 */
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { initBackend, provideFiles } from 'rxrl';
import hopperTiny from '../../../test/data/hopper-tiny.hdf5?url';
import type { MetricsSink } from 'rxrl/operators';
import {
  ConfigError,
  NODE_ONLY_PIPELINES,
  PIPELINES,
  decodePipelineConfig,
  parsePipelineText,
  runCheckpointBytes,
  runSummary,
  type BaseConfig,
  type ResolvedPipeline,
} from 'rxrl/pipelines';
import type { FromWorker, PipelineText, ToWorker } from './protocol.ts';
import { makeViewer, type Viewer } from './viewer.ts';

const scope = globalThis as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

setWasmPaths({ 'tfjs-backend-wasm.wasm': wasmPlain, 'tfjs-backend-wasm-simd.wasm': wasmSimd, 'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded });

/** The files shipped with the playground, by the path pipeline files name them with. */
const SHIPPED: Record<string, string> = { 'test/data/hopper-tiny.hdf5': hopperTiny };
let shipped: Promise<void> | undefined;

/** Fetches the shipped files once and provides them to rxrl (`provideFiles`). */
function provideShipped(): Promise<void> {
  shipped ??= (async () => {
    const entries = await Promise.all(
      Object.entries(SHIPPED).map(async ([path, url]) => {
        const r = await fetch(url);
        if (!r.ok) throw new Error(`${path}: could not be fetched (${r.status})`);
        return [path, new Uint8Array(await r.arrayBuffer())] as const;
      }),
    );
    provideFiles(Object.fromEntries(entries));
  })();
  return shipped;
}

/** Decodes a pipeline file as `rxrl validate` does; a user's mistake is a ConfigError. */
function decode(p: PipelineText): { def: ResolvedPipeline; config: BaseConfig } {
  return decodePipelineConfig(parsePipelineText(p.text, p.name), p.sets, p.name);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

let running = false;
let stopRequested = false;
let resume: (() => void) | undefined;
let paused: Promise<void> | undefined;
let wantFrames = false;

async function start(p: PipelineText, threads?: number, files?: Record<string, Uint8Array>, view = false): Promise<void> {
  let decoded: { def: ResolvedPipeline; config: BaseConfig };
  try {
    decoded = decode(p);
  } catch (e) {
    post(e instanceof ConfigError ? { type: 'invalid', message: e.message } : { type: 'error', message: message(e) });
    return;
  }
  const { def, config } = decoded;
  running = true;
  stopRequested = false;
  // The page's request for a view arrives only once the run yields (after an iteration): ask up front.
  wantFrames = view;
  try {
    await provideShipped();
    if (files) provideFiles(files);
  } catch (e) {
    running = false;
    post({ type: 'error', message: message(e) });
    return;
  }
  const t0 = performance.now();
  const info = await initBackend({ quiet: true, ...(threads !== undefined ? { threads } : {}) });
  const readyMs = performance.now() - t0;
  const skipped = info.skipped.map((s) => s.why);
  post({ type: 'backend', line: `rxrl backend: ${info.name} (${[...skipped, info.reason].join('; ')})`, readyMs });
  post({ type: 'started', pipeline: def.name, config });

  const lines: string[] = [];
  const sink: MetricsSink = {
    write(record) {
      const line = JSON.stringify(record);
      lines.push(line);
      post({ type: 'metrics', line });
    },
  };
  const saved: { checkpoint: Uint8Array<ArrayBuffer> | null } = { checkpoint: null };
  let viewer: Viewer | undefined;
  try {
    viewer = await makeViewer(def.name, config);
  } catch (e) {
    console.warn(`rxrl playground: no viewer (${message(e)})`);
  }
  const started = performance.now();
  try {
    const result = await def.run([sink], {
      checkpoint: {
        save: async (c) => {
          saved.checkpoint = await runCheckpointBytes(config, c);
        },
      },
      shouldStop: () => stopRequested,
      waitIfPaused: () => paused ?? Promise.resolve(),
      afterIteration: ({ params, record }) => {
        if (!wantFrames || viewer === undefined) return;
        wantFrames = false;
        const v = viewer.view(params, Number(record['policy_version'] ?? record.iteration + 1));
        post(v.message, v.transfer);
      },
    });
    const ckpt = saved.checkpoint;
    post(
      { type: 'done', lines, summary: runSummary(result), config, checkpoint: ckpt, seconds: (performance.now() - started) / 1000 },
      ckpt ? [ckpt.buffer] : [],
    );
  } catch (e) {
    post({ type: 'error', message: message(e) });
  } finally {
    viewer?.dispose();
    running = false;
    paused = undefined;
    resume = undefined;
  }
}

scope.onmessage = (e) => {
  const m = e.data;
  switch (m.type) {
    case 'validate':
      try {
        const { def, config } = decode(m);
        post({ type: 'valid', pipeline: def.name, config });
      } catch (err) {
        post(err instanceof ConfigError ? { type: 'invalid', message: err.message } : { type: 'error', message: message(err) });
      }
      break;
    case 'start':
      if (!running) void start(m, m.threads, m.files, m.view);
      break;
    case 'pause':
      if (running && paused === undefined) {
        paused = new Promise<void>((r) => (resume = r));
        post({ type: 'paused' });
      }
      break;
    case 'resume':
      if (paused !== undefined) {
        resume?.();
        paused = undefined;
        post({ type: 'resumed' });
      }
      break;
    case 'stop':
      stopRequested = true;
      if (paused !== undefined) {
        resume?.();
        paused = undefined;
      }
      break;
    case 'frames':
      wantFrames = true;
      break;
  }
};

post({ type: 'hello', pipelines: Object.keys(PIPELINES), nodeOnly: [...NODE_ONLY_PIPELINES] });
