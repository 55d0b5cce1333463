/**
 * Loading a run directory for a report: `config.json`, `metrics.jsonl`, `summary.json`, each checked,
 * with errors that name the file (and line) at fault.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { MetricsFileError, readJsonlFile } from '../../lib/io/metrics-jsonl.ts';

/** The config keys every run has; the rest of the resolved pipeline config is kept as is. */
export interface RunConfig {
  pipeline: string;
  seed: number;
  iterations: number;
  [key: string]: unknown;
}

/** One metrics row: `iteration` plus the numbers logged for it (`null` in the file reads as NaN). */
export type MetricsRow = { iteration: number } & Record<string, number>;

export interface RunData {
  /** The directory as given. */
  dir: string;
  /** The directory's name (`runs/a` → `a`); the default legend label. */
  name: string;
  config: RunConfig;
  /** One row per iteration in iteration order (rows logged twice for an iteration are merged). */
  metrics: MetricsRow[];
  /** Final metrics from `summary.json`; `undefined` when the run has none (yet). */
  summary: Record<string, number> | undefined;
  /** Whether a torn (partially written) last line of `metrics.jsonl` was skipped. */
  tornLastLine: boolean;
  /** Metrics of `metrics.jsonl` that are not numbers (strings, objects): not charted. */
  droppedKeys: string[];
}

/** A run directory or one of its files that `rxrl report` cannot use (a user's mistake, not a bug). */
export class ReportError extends Error {
  override readonly name = 'ReportError';
}

const RUN_FILES = 'a run directory holds config.json, metrics.jsonl and summary.json';

function readText(path: string): string {
  if (!existsSync(path)) throw new ReportError(`${path}: missing (${RUN_FILES})`);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ReportError(`${path}: cannot read: ${(e as Error).message}`);
  }
}

function parseJsonFile(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ReportError(`${path}: not JSON (${(e as Error).message})`);
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readConfig(path: string): RunConfig {
  const raw = parseJsonFile(path);
  if (!isObject(raw)) throw new ReportError(`${path}: expected a JSON object`);
  if (typeof raw['pipeline'] !== 'string') throw new ReportError(`${path}: "pipeline" must be a string, got ${JSON.stringify(raw['pipeline'])}`);
  for (const key of ['seed', 'iterations'] as const) {
    if (typeof raw[key] !== 'number') throw new ReportError(`${path}: "${key}" must be a number, got ${JSON.stringify(raw[key])}`);
  }
  return raw as RunConfig;
}

function readSummary(path: string): Record<string, number> {
  const raw = parseJsonFile(path);
  if (!isObject(raw)) throw new ReportError(`${path}: expected a flat JSON object { name: number }`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === null) out[k] = NaN;
    else if (typeof v === 'number') out[k] = v;
    else throw new ReportError(`${path}: "${k}" must be a number or null, got ${JSON.stringify(v)}`);
  }
  return out;
}

/**
 * Reads `metrics.jsonl` (operators/metrics.ts `readJsonlFile`: errors name `path:line`, a torn last
 * line is skipped) into one row per iteration, in iteration order; rows logged twice for an
 * iteration are merged (later keys win).
 */
export function readMetricsFile(path: string): { rows: MetricsRow[]; tornLastLine: boolean; droppedKeys: string[] } {
  if (!existsSync(path)) throw new ReportError(`${path}: missing (${RUN_FILES})`);
  let file: ReturnType<typeof readJsonlFile>;
  try {
    file = readJsonlFile(path);
  } catch (e) {
    throw e instanceof MetricsFileError ? new ReportError(e.message) : e;
  }
  const { records, tornLastLine, droppedKeys } = file;
  const byIteration = new Map<number, MetricsRow>();
  for (const r of records) byIteration.set(r.iteration, { ...byIteration.get(r.iteration), ...r } as MetricsRow);
  const rows = [...byIteration.values()].sort((a, b) => a.iteration - b.iteration);
  return { rows, tornLastLine, droppedKeys };
}

/**
 * Reads a run directory. Errors name the file (and line) at fault, e.g.
 * `runs/a/metrics.jsonl:7: not JSON` or `runs/a/config.json: missing (...)`.
 * `summary.json` may be absent (an unfinished run); a present but malformed one is an error.
 */
export function loadRun(dir: string): RunData {
  if (!existsSync(dir)) throw new ReportError(`${dir}: no such run directory`);
  if (!statSync(dir).isDirectory()) throw new ReportError(`${dir}: not a directory (${RUN_FILES})`);
  const config = readConfig(join(dir, 'config.json'));
  const { rows, tornLastLine, droppedKeys } = readMetricsFile(join(dir, 'metrics.jsonl'));
  const summaryPath = join(dir, 'summary.json');
  const summary = existsSync(summaryPath) ? readSummary(summaryPath) : undefined;
  const name = basename(resolve(dir));
  return { dir, name, config, metrics: rows, summary, tornLastLine, droppedKeys };
}
