// `metrics`: one metrics record per iteration, written to sinks — documented on the exported `metrics` (hover it).
import { finalize, tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { Batch, MetricsRecord } from '../lib/data.ts';

/** Where metrics records go. */
export interface MetricsSink {
  write(record: MetricsRecord): void;
  /** Releases resources; called once when the stream ends (unless `close: false`). */
  close?(): void;
}

export interface MetricsConfig {
  sinks: readonly MetricsSink[];
  /** Close the sinks when the stream completes, errors or is unsubscribed. Default true. */
  close: boolean;
}

export const METRICS_DEFAULTS: MetricsConfig = { sinks: [], close: true };

/** `{ iteration, ...metrics }`; a metric named `iteration` cannot override the batch's. */
export function toMetricsRecord<G>(batch: Batch<G>): MetricsRecord {
  const { iteration: _ignored, ...rest } = batch.metrics;
  return { iteration: batch.iteration, ...rest } as MetricsRecord;
}

/**
 * `metrics` — one metrics record per iteration, written to sinks; the batch passes through unchanged.
 *
 * In: `Batch<G>`; out: the same `Batch<G>` (a tap). Every operator upstream has added its numbers to
 * `batch.metrics` under the shared vocabulary of `docs/metrics.md` (`reward/mean`, `lambda`, `kl`,
 * ...); this operator turns a batch into the record
 *
 *     { iteration, ...batch.metrics }
 *
 * and hands it to every sink, in order, synchronously. A sink that throws errors the stream.
 * Sinks:
 *
 * - `consoleSink({ keys })` — one compact line per iteration with the selected keys present
 *   (`it 12 | reward/mean 1.234 | lambda 0.05 | kl 0.00123`);
 * - `jsonlSink(path)` (Node: lib/io/metrics-jsonl.ts, exported by rxrl/operators under Node) —
 *   appends one JSON object per line with `fs.appendFileSync`, so each line is handed to the OS
 *   before the next iteration starts and a crash loses at most the line being written. Non-finite
 *   numbers are written as `null` (JSON has no NaN); `readJsonl` reads them back as NaN;
 * - `MetricsCollector` — in memory (tests, notebooks, plots): `records`, `series(name)`, `last()`.
 *   Records written twice for the same iteration are merged (later keys win), so several sources
 *   (training, asynchronous evaluation) can report into one row per iteration.
 *
 * Anything with `write(record)` (and optionally `close()`) is a sink: TensorBoard, a message broker.
 * Sinks are closed when the stream completes, errors or is unsubscribed (`close: false` keeps them
 * open, e.g. for a sink shared between runs).
 *
 * @param config Partial {@link MetricsConfig} (`sinks`, `close`); missing keys from {@link METRICS_DEFAULTS}.
 * @returns A tap: each `Batch<G>` passes through unchanged after its record went to every sink.
 * @example
 * ```ts
 * const log = new MetricsCollector();
 * batches$.pipe(
 *   returns(), groupAdvantages(), policyUpdate(learner),
 *   metrics({ sinks: [consoleSink({ keys: ['reward/mean', 'kl'] }), jsonlSink('runs/a/metrics.jsonl'), log] }),
 * );
 * ```
 */
export function metrics<G>(config: Partial<MetricsConfig> = {}): MonoTypeOperatorFunction<Batch<G>> {
  const cfg: MetricsConfig = { ...METRICS_DEFAULTS, ...config };
  return (source) =>
    source.pipe(
      tap((batch) => {
        const record = toMetricsRecord(batch);
        for (const sink of cfg.sinks) sink.write(record);
      }),
      finalize(() => {
        if (cfg.close) for (const sink of cfg.sinks) sink.close?.();
      }),
    );
}

// ---------------------------------------------------------------------------------------------
// Console.

/** The keys a console line shows by default, when present. */
export const CONSOLE_DEFAULT_KEYS: readonly string[] = [
  'reward/mean',
  'cost/mean',
  'length/mean',
  'lambda',
  'constraint/violation',
  'loss',
  'kl',
  'clip_frac',
  'entropy',
  'frac_zero_std',
  'grad_norm',
  'eval/return',
  'eval/normalized_score',
];

/** A number in at most `digits` significant digits, without trailing zeros. */
export function formatNumber(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e9) return String(x);
  // Trailing zeros are stripped from the fraction only: 1150 and 1000 keep theirs.
  const [mantissa, exponent] = x.toPrecision(digits).split('e') as [string, string | undefined];
  const m = mantissa.includes('.') ? mantissa.replace(/\.?0+$/, '') : mantissa;
  return exponent === undefined ? m : `${m}e${exponent}`;
}

/** `it 12 | reward/mean 1.234 | kl 0.00123` with the keys of `keys` that the record has. */
export function formatMetricsLine(record: MetricsRecord, keys: readonly string[] = CONSOLE_DEFAULT_KEYS, digits = 4): string {
  const parts = [`it ${record.iteration}`];
  for (const k of keys) {
    const v = record[k];
    if (typeof v === 'number') parts.push(`${k} ${formatNumber(v, digits)}`);
  }
  return parts.join(' | ');
}

export interface ConsoleSinkOptions {
  /** Keys to show, in order (missing keys are skipped). Default `CONSOLE_DEFAULT_KEYS`. */
  keys?: readonly string[];
  /** Significant digits. Default 4. */
  digits?: number;
  /** Where lines go. Default `console.log`. */
  log?: (line: string) => void;
}

export function consoleSink(options: ConsoleSinkOptions = {}): MetricsSink {
  const log = options.log ?? ((line: string) => console.log(line));
  return { write: (record) => log(formatMetricsLine(record, options.keys, options.digits)) };
}

// ---------------------------------------------------------------------------------------------
// In memory.

/** Keeps every record in memory, one per iteration (later writes for an iteration merge in). */
export class MetricsCollector implements MetricsSink {
  private readonly rows = new Map<number, MetricsRecord>();

  write(record: MetricsRecord): void {
    const prev = this.rows.get(record.iteration);
    this.rows.set(record.iteration, { ...prev, ...record } as MetricsRecord);
  }

  /** The records in iteration order. */
  get records(): MetricsRecord[] {
    return [...this.rows.values()].sort((a, b) => a.iteration - b.iteration);
  }

  /** The latest iteration's record, if any. */
  last(): MetricsRecord | undefined {
    return this.records.at(-1);
  }

  /** `[iteration, value]` pairs of one metric, in iteration order (iterations without it skipped). */
  series(name: string): Array<[number, number]> {
    return this.records.filter((r) => typeof r[name] === 'number').map((r) => [r.iteration, r[name]!]);
  }
}
