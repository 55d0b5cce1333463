/**
 * The runner: a pipeline file (or a resolved config) → a run directory.
 *
 *   DIR/config.json            the resolved config (every default filled in)
 *   DIR/metrics.jsonl          every metric of every iteration (names of docs/metrics.md)
 *   DIR/summary.json           the final evaluation metrics
 *   DIR/tensorboard/           TensorBoard event files (with `tensorboard: true`, CLI `--tensorboard`)
 *   DIR/checkpoint.safetensors model, optimizer, multipliers, RNG states, stream position
 *                              (written atomically: a crash mid-write keeps the previous one)
 *
 * `resume: DIR` continues a run exactly where its last checkpoint left it: metrics of iterations
 * after the checkpoint are dropped from `metrics.jsonl` and recomputed, so 10 iterations in one
 * run and 5 + 5 with a resume give identical files. The resolved config must match the run's
 * `config.json` (only `iterations` may grow), otherwise the checkpoint belongs to another
 * experiment and the runner refuses it. Ctrl-C (SIGINT) stops after the current update and writes
 * a final checkpoint; a second Ctrl-C exits at once.
 */
import { mkdirSync, readFileSync, existsSync, accessSync, constants as fsc } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { initBackend } from '../lib/backend.ts';
import type { MetricsRecord } from '../lib/data.ts';
import type { MetricsSink } from '../operators/metrics.ts';
import { jsonlSink, readJsonl } from '../lib/io/metrics-jsonl.ts';
import { readPipelineFile } from './config-file.ts';
import { PIPELINES, decodePipelineConfig } from './registry.ts';
import type { BaseConfig, ResolvedPipeline } from './define.ts';
import type { PipelineContext, PipelineResult } from './context.ts';
import { runCheckpointLoadOptions, runCheckpointOptions } from './run-checkpoint.ts';
import { runSummary } from './loop.ts';
import { loadCheckpoint, readCheckpoint, saveCheckpoint } from '../lib/io/checkpoint.ts';
import { tensorboardSink } from '../lib/io/tensorboard.ts';
import { writeFileAtomicSync } from '../lib/io/atomic.ts';
import { ASYNC_FILE, asyncRuntime, wantsActors, type AsyncRunOptions, type AsyncRuntime } from './async/runtime.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export class RunError extends Error {
  override readonly name = 'RunError';
}

export interface RunOptions {
  /** Pipeline file (YAML/JSON). Optional with `resume`: the run's own config.json is used. */
  file?: string;
  /** `--set path=value` overrides. */
  sets?: readonly string[];
  /** Run directory; default `runs/<pipeline>-<seed>-<timestamp>`. */
  out?: string;
  /** A run directory to continue. */
  resume?: string;
  /** Extra metric sinks (the CLI's progress bar). */
  sinks?: MetricsSink[];
  /** Polled between iterations (the CLI's SIGINT flag). */
  shouldStop?: () => boolean;
  /** Also write TensorBoard event files to DIR/tensorboard. */
  tensorboard?: boolean;
  /** Called with the resolved config before the run starts. */
  onConfig?: (config: { seed: number; iterations: number } & Record<string, unknown>) => void;
  /** Actors roll out (`--actors N`, `--broker URL`); absent or `actors: 0`: one process. */
  async?: AsyncRunOptions;
}

export interface RunOutcome {
  runDir: string;
  config: { seed: number; iterations: number } & Record<string, unknown>;
  result: PipelineResult;
  stopped: boolean;
}

function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomicSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsc.W_OK);
  } catch (e) {
    throw new RunError(`output folder ${dir} is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The first difference between two configs, as `path: a vs b`, or undefined if equal. */
export function configDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (isDeepStrictEqual(a, b)) return undefined;
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = configDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  return `${path || '(root)'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

/** Resolves the config of a run from a file and/or a run directory to resume. */
export function resolveRunConfig(opts: Pick<RunOptions, 'file' | 'sets' | 'resume'>): { def: ResolvedPipeline; config: BaseConfig } {
  if (opts.file) {
    const decoded = decodePipelineConfig(readPipelineFile(opts.file), opts.sets ?? [], opts.file);
    if (opts.resume) {
      const saved = readRunConfig(opts.resume);
      const diff = configDifference({ ...saved, iterations: 0 }, { ...decoded.config, iterations: 0 });
      if (diff) throw new RunError(`cannot resume ${opts.resume}: it was run with another config (${diff}); only iterations may change`);
    }
    return decoded;
  }
  if (!opts.resume) throw new RunError('a pipeline file or --resume DIR is needed');
  const saved = readRunConfig(opts.resume);
  const decoded = decodePipelineConfig(saved, opts.sets ?? [], join(opts.resume, 'config.json'));
  const diff = configDifference({ ...saved, iterations: 0 }, { ...decoded.config, iterations: 0 });
  if (diff) throw new RunError(`cannot resume ${opts.resume} with --set overrides that change its config (${diff}); only iterations may change`);
  return decoded;
}

function readRunConfig(dir: string): Record<string, unknown> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new RunError(`cannot resume ${dir}: no config.json there (is it a run directory?)`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new RunError(`${path}: not JSON (${(e as Error).message})`);
  }
}

export async function runPipeline(opts: RunOptions): Promise<RunOutcome> {
  const { def, config } = resolveRunConfig(opts);
  opts.onConfig?.(config);
  const runDir = resolvePath(opts.resume ?? opts.out ?? join('runs', `${def.name}-${config.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  ensureWritableDir(runDir);
  const metricsPath = join(runDir, 'metrics.jsonl');
  const ckptPath = join(runDir, CHECKPOINT_FILE);
  await initBackend();

  const ctx: PipelineContext = {
    checkpoint: { save: (c) => saveCheckpoint(ckptPath, runCheckpointOptions(config, c)) },
    ...(opts.shouldStop ? { shouldStop: opts.shouldStop } : {}),
  };
  const asyncOpts = wantsActors(opts.async) ? opts.async : undefined;
  if (asyncOpts && !def.actor) {
    throw new RunError(`pipeline ${def.name} has no actor side yet: --actors and --broker work with ${actorPipelines().join(', ')}`);
  }
  if (opts.resume && !asyncOpts && existsSync(join(runDir, ASYNC_FILE))) {
    throw new RunError(`${runDir} is a run with actors (${ASYNC_FILE}); resume it with --actors N or --broker URL`);
  }
  let done = 0;
  if (opts.resume) {
    const rows = existsSync(metricsPath) ? readJsonl(metricsPath) : [];
    // The checkpoint's iteration (its plain state is decoded again, with the pipeline's codec, on load).
    const saved = existsSync(ckptPath) ? Number((await readCheckpoint(ckptPath)).state['iteration']) : undefined;
    // Rows 0 … k must all be there (a torn last line is skipped by readJsonl): else the checkpoint
    // cannot be continued without losing row k, and the run is recomputed from the start (seeded:
    // identical rows). Likewise without a checkpoint (stopped before the first one was written).
    if (saved !== undefined && !(Number.isInteger(saved) && saved >= 0))
      throw new RunError(`${ckptPath}: invalid checkpoint state: iteration: expected a non-negative integer, got ${saved}`);
    const complete = saved !== undefined && Number.isInteger(saved) && rows.filter((m) => m.iteration <= saved).length === saved + 1;
    if (saved === undefined && rows.length === 0) throw new RunError(`cannot resume ${runDir}: no ${CHECKPOINT_FILE} and no metrics (nothing to continue)`);
    done = complete ? saved + 1 : 0;
    const ranBefore = rows.length === 0 ? 0 : Math.max(...rows.map((m) => m.iteration)) + 1;
    if (config.iterations < Math.max(done, ranBefore)) {
      throw new RunError(
        `cannot resume ${runDir} with iterations=${config.iterations}: it has completed ${Math.max(done, ranBefore)} iterations; iterations may only grow`,
      );
    }
    // Drop metrics of iterations after the checkpoint: they are recomputed identically.
    const kept = rows.filter((m) => m.iteration < done);
    writeFileAtomicSync(metricsPath, kept.map((m) => `${JSON.stringify(m, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`).join(''));
    if (complete) {
      ctx.resume = {
        load: async (params, optimizer) => (await loadCheckpoint(ckptPath, runCheckpointLoadOptions(config, params, optimizer))).state,
        lastRecord: () => kept.at(-1),
      };
    } else {
      process.stderr.write(
        `rxrl: ${runDir}: ${saved === undefined ? `no ${CHECKPOINT_FILE}` : `the metrics of checkpoint iteration ${saved} are incomplete`}; recomputing from iteration 0\n`,
      );
    }
  } else {
    if (existsSync(metricsPath)) throw new RunError(`${runDir} already holds a run (metrics.jsonl); choose another --out or --resume it`);
  }
  writeJsonAtomic(join(runDir, 'config.json'), config);

  const sinks: MetricsSink[] = [jsonlSink(metricsPath), ...(opts.tensorboard ? [tensorboardSink(join(runDir, 'tensorboard'))] : []), ...(opts.sinks ?? [])];
  let rt: AsyncRuntime | undefined;
  if (asyncOpts) {
    rt = asyncRuntime(asyncOpts, { runDir, pipeline: def.name, config, resume: opts.resume !== undefined, continues: ctx.resume !== undefined, done });
    ctx.async = rt.context;
  }
  let result: PipelineResult;
  let finished = false;
  try {
    result = await def.run(sinks, ctx);
    finished = result.stoppedBy !== 'signal';
  } finally {
    await rt?.close(finished);
  }
  // stopped: 1 when the run ended before its last iteration (Ctrl-C or the stop rule), and which.
  const stopped = result.stoppedBy === 'signal';
  writeJsonAtomic(join(runDir, 'summary.json'), runSummary(result));
  return { runDir, config, result, stopped };
}

/** The pipelines with an actor side (what --actors and --broker can run). */
function actorPipelines(): string[] {
  return Object.values(PIPELINES)
    .filter((p) => p.hasActor)
    .map((p) => p.name);
}

/** Reads a run directory's metrics (for tests and `rxrl report`). */
export function readRunMetrics(runDir: string): MetricsRecord[] {
  return readJsonl(join(runDir, 'metrics.jsonl'));
}

/** Validates a pipeline file without running it; returns the resolved config. */
export function validatePipelineFile(file: string, sets: readonly string[] = []): { pipeline: string; config: Record<string, unknown> } {
  const { def, config } = decodePipelineConfig(readPipelineFile(file), sets, file);
  return { pipeline: def.name, config };
}
