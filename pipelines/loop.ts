/**
 * The shared iteration loop: everything a pipeline does between its iterations, written once.
 *
 *   resume   decode the checkpoint's plain state with the pipeline's codec (a bad value is refused,
 *            naming its key), restore weights, optimizer slots and state, continue at iteration + 1
 *   per i    `waitIfPaused()` → `shouldStop()` (Ctrl-C) → `iteration(i)` (one batch) → sinks
 *            → `afterIteration` (a viewer) → checkpoint every
 *            `checkpointEvery` iterations → one macrotask (signals and progress output get through;
 *            `setTimeout`, so it runs in browsers too) → the stop rule
 *   end      a final checkpoint of the last completed iteration, the sinks closed, the summary
 *
 * A pipeline module supplies only what is its own: its parts, `iteration(i)` as one `pipe(...)`,
 * the state that shapes what comes next (`PipelineState`) and `summary`. The metrics line of
 * iteration i is written before checkpoint i, so a kill between the two resumes from an earlier
 * checkpoint and loses no line.
 *
 * ```ts
 * return runLoop({ iterations, checkpointEvery, stop: stopRule(cfg.stop), state, iteration, summary }, sinks, ctx);
 * ```
 */
import * as t from 'io-ts';
import { lastValueFrom, type Observable } from 'rxjs';
import { isLeft } from 'fp-ts/lib/Either.js';
import { DecodeError, FiniteNumber, NonNegativeInt, decode, formatErrors } from '../lib/codec.ts';
import type { Batch, MetricsRecord } from '../lib/data.ts';
import { metrics, toMetricsRecord, type MetricsSink } from '../operators/metrics.ts';
import type { CheckpointOptimizers, CheckpointParams, PipelineContext, PipelineResult } from './context.ts';

/** Stop after the first iteration whose `metric` is ≥ `atLeast` (or ≤ `atMost`). */
export const StopRule = t.intersection([t.type({ metric: t.string }), t.partial({ atLeast: FiniteNumber, atMost: FiniteNumber })], 'StopRule');
export type StopRule = t.TypeOf<typeof StopRule>;

/** The stop rule as a predicate on an iteration's metrics (a metric the record lacks never stops). */
export function stopRule(rule: StopRule | null): ((m: MetricsRecord) => boolean) | undefined {
  if (!rule) return undefined;
  return (m) => {
    const v = m[rule.metric];
    if (v === undefined) return false;
    return (rule.atLeast !== undefined && v >= rule.atLeast) || (rule.atMost !== undefined && v <= rule.atMost);
  };
}

/** What a checkpoint holds besides the iteration: weights, optimizer slots and plain state `S`. */
export interface PipelineState<S extends Record<string, unknown>> {
  /** Decodes the plain state on resume (`t.type`: extra keys such as `iteration` pass through). */
  readonly codec: t.Type<S, unknown, unknown>;
  /** The weights: one store, or several by name (saved as `<name>/<param>`). */
  readonly params: CheckpointParams;
  /** The optimizer, or several by name (each one's moments are checkpointed). */
  readonly optimizer: CheckpointOptimizers;
  /** The plain state after the iteration just completed (RNG states, counters, multipliers). */
  capture(): S;
  /** Puts a decoded state back (weights and optimizer slots are restored by the loop). */
  restore(state: S): void;
}

export interface LoopSpec<G, S extends Record<string, unknown>> {
  /** Total iterations of the run (a resumed run continues up to it). */
  iterations: number;
  /** Checkpoint every this many iterations (0: only at the end). */
  checkpointEvery: number;
  /** True ends the run after this iteration (the stop rule). */
  stop?: ((m: MetricsRecord) => boolean) | undefined;
  state: PipelineState<S>;
  /** One on-policy iteration as a finite stream that emits the iteration's batch once. */
  iteration(i: number): Observable<Batch<G>>;
  /** The run's summary from its last metrics record (undefined if no iteration ever completed). */
  summary(last: MetricsRecord | undefined): Record<string, number>;
  /** State of a source outside the pipeline (the async group source), checkpointed under its key. */
  attachment?: LoopAttachment<Record<string, unknown>> | undefined;
}

/**
 * Checkpointed state that is not the pipeline's own: saved under `key` beside the pipeline's state,
 * restored before the first iteration, told once each checkpoint is written (`committed`).
 */
export interface LoopAttachment<A> {
  readonly key: string;
  readonly codec: t.Decoder<unknown, A>;
  capture(): A;
  restore(state: A): void;
  committed(): Promise<void>;
}

const Position = t.type({ iteration: NonNegativeInt });

/** Decodes a checkpoint's plain state, or throws a `DecodeError` naming every bad key. */
export function decodeCheckpointState<S>(codec: t.Type<S, unknown, unknown>, raw: unknown): S & { iteration: number } {
  const position = decode(Position, raw);
  const state = decode(codec, raw);
  const problems = [...(isLeft(position) ? position.left : []), ...(isLeft(state) ? state.left : [])];
  if (isLeft(position) || isLeft(state)) throw new DecodeError('checkpoint state', problems);
  return { ...state.right, iteration: position.right.iteration };
}

/**
 * What a run directory's `summary.json` holds: the pipeline's summary, `iterations_completed`,
 * `stopped` (1 if the run ended before its last iteration: a stop request or the stop rule) and
 * `stopped_by_rule`.
 * @param result What the pipeline's run returned.
 * @returns The summary record.
 */
export function runSummary(result: PipelineResult): Record<string, number> {
  return {
    ...result.summary,
    iterations_completed: result.lastIteration + 1,
    stopped: result.stoppedBy ? 1 : 0,
    stopped_by_rule: result.stoppedBy === 'rule' ? 1 : 0,
  };
}

const macrotask = () => new Promise<void>((r) => setTimeout(r, 0));

/** Runs iterations `first … iterations − 1` of a pipeline (see the module comment). */
export async function runLoop<G, S extends Record<string, unknown>>(
  spec: LoopSpec<G, S>,
  sinks: readonly MetricsSink[] = [],
  ctx: PipelineContext = {},
): Promise<PipelineResult> {
  const { state } = spec;
  let first = 0;
  let last: MetricsRecord | undefined;
  if (ctx.resume) {
    const raw = await ctx.resume.load(state.params, state.optimizer);
    const s = decodeCheckpointState(state.codec, raw);
    state.restore(s);
    const att = spec.attachment;
    if (att) {
      const a = (raw as Record<string, unknown>)[att.key];
      // A checkpoint without it (a run that was not asynchronous) starts the attachment afresh.
      if (a !== undefined) {
        const r = att.codec.decode(a);
        if (isLeft(r)) throw new DecodeError(`checkpoint state: ${att.key}`, formatErrors(r.left));
        att.restore(r.right);
      }
    }
    first = s.iteration + 1;
    last = ctx.resume.lastRecord?.();
  }
  const checkpoint = async (iteration: number) => {
    const att = spec.attachment;
    await ctx.checkpoint?.save({
      params: state.params,
      optimizer: state.optimizer,
      state: att ? { ...state.capture(), [att.key]: att.capture() } : state.capture(),
      iteration,
    });
    await att?.committed();
  };
  const toSinks = metrics<G>({ sinks, close: false });
  const history: MetricsRecord[] = [];
  let lastIteration = first - 1;
  let stoppedBy: 'rule' | 'signal' | undefined;
  try {
    for (let i = first; i < spec.iterations; i++) {
      await ctx.waitIfPaused?.();
      if (ctx.shouldStop?.()) {
        stoppedBy = 'signal';
        break;
      }
      const batch = await lastValueFrom(spec.iteration(i).pipe(toSinks));
      const record = toMetricsRecord(batch);
      history.push(record);
      last = record;
      lastIteration = i;
      ctx.afterIteration?.({ iteration: i, record, params: state.params });
      if (spec.checkpointEvery > 0 && (i + 1) % spec.checkpointEvery === 0 && i < spec.iterations - 1) await checkpoint(i);
      await macrotask();
      if (spec.stop?.(record)) {
        if (i < spec.iterations - 1) stoppedBy = 'rule';
        break;
      }
    }
    if (lastIteration >= first) await checkpoint(lastIteration);
    return { history, summary: spec.summary(last), lastIteration, ...(stoppedBy ? { stoppedBy } : {}) };
  } finally {
    for (const sink of sinks) sink.close?.();
  }
}
