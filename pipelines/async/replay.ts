/**
 * `rxrl replay RUN_DIR`: reproduces a run with actors from what its learner consumed. The run must
 * have been made with `--archive` (DIR/entries.jsonl: every stream entry its learner took, in
 * order); a fresh learner in a new directory is fed those entries in that order (the replay
 * transport, no actors) and must write the same metrics.jsonl, bit for bit, except the timing keys
 * (`isTimingKey`: wall-clock shares and queue depths, which say how long things took, not what was
 * computed). A group is plain data and the learner's computation is deterministic given its input,
 * so the consumption order (the archive, logged) determines the run.
 *
 *   replay        RUN_DIR/config.json (iterations: the rows RUN_DIR/metrics.jsonl holds)
 *                 + RUN_DIR/async.json (run name, staleness bound, queue) + RUN_DIR/entries.jsonl
 *   compare       OUT/metrics.jsonl against RUN_DIR/metrics.jsonl, timing keys dropped
 *
 * ```ts
 * const r = await replayRun('runs/r1', { out: 'runs/r1-replay' });
 * if (r.difference) console.error(r.difference);       // "iteration 3: loss: 0.12 there vs 0.11 here"
 * ```
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { MetricsRecord } from '../../lib/data.ts';
import { AsyncError } from '../../lib/async/transport.ts';
import type { MetricsSink } from '../../operators/metrics.ts';
import { readRunMetrics, runPipeline } from '../runner.ts';
import { ENTRIES_FILE } from './runtime.ts';

/** Metrics that measure wall time (they differ between any two runs): `time/…`, the learner's idle share, the queue depth. */
export function isTimingKey(key: string): boolean {
  return key.startsWith('time/') || key === 'async/learner_idle_frac' || key === 'async/queue_depth';
}

/** The first difference between two runs' metrics rows, timing keys aside (`iteration i: key: a there vs b here`), or undefined. */
export function metricsDifference(there: readonly MetricsRecord[], here: readonly MetricsRecord[]): string | undefined {
  if (there.length !== here.length) return `rows: ${there.length} there vs ${here.length} here`;
  for (let i = 0; i < there.length; i++) {
    const a = there[i]!;
    const b = here[i]!;
    const keys = (m: MetricsRecord) => Object.keys(m).filter((k) => !isTimingKey(k));
    const ka = keys(a);
    const kb = keys(b);
    if (!isDeepStrictEqual(ka, kb)) {
      const only = [...ka.filter((k) => !kb.includes(k)).map((k) => `${k} only there`), ...kb.filter((k) => !ka.includes(k)).map((k) => `${k} only here`)];
      return `row ${i}: keys differ (${only.length > 0 ? only.join(', ') : 'in order'})`;
    }
    for (const k of ka) if (!Object.is(a[k], b[k])) return `iteration ${a.iteration}: ${k}: ${a[k]} there vs ${b[k]} here`;
  }
  return undefined;
}

export interface ReplayOutcome {
  /** The replay's run directory. */
  runDir: string;
  /** Iterations replayed. */
  iterations: number;
  /** The first difference from the archived run's metrics (timing keys aside); undefined when identical. */
  difference: string | undefined;
}

/**
 * Replays `runDir` (a run made with `--archive`) into `out` and compares the metrics (see the
 * module comment). Throws an `AsyncError` when `runDir` has no archive.
 */
export async function replayRun(runDir: string, opts: { out: string; sinks?: MetricsSink[] }): Promise<ReplayOutcome> {
  if (!existsSync(join(runDir, ENTRIES_FILE)))
    throw new AsyncError(`${runDir}: no ${ENTRIES_FILE}: only a run made with --archive (rxrl run FILE --actors N --archive) can be replayed`);
  const there = readRunMetrics(runDir);
  if (there.length === 0) throw new AsyncError(`${runDir}: metrics.jsonl has no rows: nothing to replay`);
  const outcome = await runPipeline({
    file: join(runDir, 'config.json'),
    sets: [`iterations=${there.length}`],
    out: opts.out,
    async: { replay: runDir },
    ...(opts.sinks ? { sinks: opts.sinks } : {}),
  });
  return { runDir: outcome.runDir, iterations: outcome.result.lastIteration + 1, difference: metricsDifference(there, readRunMetrics(outcome.runDir)) };
}
