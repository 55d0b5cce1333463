/**
 * Metrics as JSONL files (Node): `jsonlSink(path)`, a sink for the `metrics` operator that appends
 * `{ iteration, ...metrics }` as one line per record, and `readJsonl` / `readJsonlFile`, which read
 * such a file back. A run directory's `metrics.jsonl` is written and read with these.
 *
 * ```ts
 * batches$.pipe(metrics({ sinks: [jsonlSink('runs/a/metrics.jsonl')] }));
 * const rows = readJsonl('runs/a/metrics.jsonl');
 * ```
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { MetricsRecord } from '../data.ts';

export interface JsonlSinkOptions {
  /** Start the file empty instead of appending to it (appending suits a resumed run). Default false. */
  truncate?: boolean;
}

/** A metrics sink (operators/metrics.ts `MetricsSink`) writing to `path`. */
export interface JsonlSink {
  readonly path: string;
  write(record: MetricsRecord): void;
  close(): void;
}

/** Appends `{ iteration, ...metrics }` as one line per record (parent directories are created). */
export function jsonlSink(path: string, options: JsonlSinkOptions = {}): JsonlSink {
  mkdirSync(dirname(path), { recursive: true });
  if (options.truncate) writeFileSync(path, '');
  let closed = false;
  return {
    path,
    write(record) {
      if (closed) throw new Error(`jsonlSink: write to ${path} after close`);
      // appendFileSync: open, write, close — the line is with the OS when this returns.
      appendFileSync(path, `${JSON.stringify(record)}\n`);
    },
    close() {
      closed = true;
    },
  };
}

/**
 * Reads a JSONL metrics file, one record per line in file order. Every line but the last non-empty
 * one must be a JSON object with a numeric `iteration` (errors name `path:line`); a last line that
 * is not JSON is a torn write (a crash, or a run still going) and is skipped, reported as
 * `tornLastLine`. `null` reads as NaN; values that are not numbers are dropped.
 */
/** A metrics file that cannot be read as JSONL metrics (a user's file, not a bug). */
export class MetricsFileError extends Error {
  override readonly name = 'MetricsFileError';
}

export function readJsonlFile(path: string): { records: MetricsRecord[]; tornLastLine: boolean; droppedKeys: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MetricsFileError(`${path}: cannot read: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === '') last--;
  const records: MetricsRecord[] = [];
  let tornLastLine = false;
  const dropped = new Set<string>();
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line) as unknown;
    } catch {
      if (i === last) {
        tornLastLine = true;
        continue;
      }
      throw new MetricsFileError(`${path}:${i + 1}: not JSON`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new MetricsFileError(`${path}:${i + 1}: expected a JSON object`);
    const it = (obj as Record<string, unknown>)['iteration'];
    if (typeof it !== 'number' || !Number.isFinite(it)) throw new MetricsFileError(`${path}:${i + 1}: "iteration" must be a number, got ${JSON.stringify(it)}`);
    const rec: Record<string, number> = {};
    for (const [k, v] of Object.entries(obj)) {
      if (v === null) rec[k] = NaN;
      else if (typeof v === 'number') rec[k] = v;
      else dropped.add(k);
    }
    records.push(rec as MetricsRecord);
  }
  return { records, tornLastLine, droppedKeys: [...dropped].sort() };
}

/** `readJsonlFile`'s records: a JSONL metrics file, `null` as NaN, a torn last line skipped. */
export function readJsonl(path: string): MetricsRecord[] {
  return readJsonlFile(path).records;
}
