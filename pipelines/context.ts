/**
 * What a pipeline receives from whoever runs it (the CLI's runner, a test, a script) and what it
 * returns. Pipelines stay ignorant of files: checkpoints go through `checkpoint.save`, a resumed run
 * gets its state from `resume.load`, and `shouldStop` (Ctrl-C) is polled between iterations.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ParamStore } from '../lib/models/params.ts';
import type { MetricsRecord } from '../lib/data.ts';
import type { RunInfo } from '../lib/async/messages.ts';
import type { ArchivedEntry, LearnerTransport } from '../lib/async/transport.ts';
import type { ConsumedRecord } from '../operators/consumeGroups.ts';
import type { MaxStalenessConfig } from '../operators/maxStaleness.ts';

/**
 * The weights a checkpoint holds: one store (its names as they are), or several by name (a
 * learner with targets, e.g. TD3's actor, critic and their target copies), saved as `<name>/<param>`.
 */
export type CheckpointParams = ParamStore | Readonly<Record<string, ParamStore>>;
/** One optimizer, or several by name (e.g. TD3's actor and critic Adam). */
export type CheckpointOptimizers = tf.Optimizer | Readonly<Record<string, tf.Optimizer>>;

export interface CheckpointContent {
  /** The iteration just completed. */
  iteration: number;
  params: CheckpointParams;
  optimizer: CheckpointOptimizers;
  /** Plain data: RNG states, multipliers, counters — everything else that shapes what comes next. */
  state: Record<string, unknown>;
}

export interface PipelineContext {
  /** Called every `checkpointEvery` iterations and once at the end (also after a stop). */
  checkpoint?: { save(content: CheckpointContent): Promise<void> };
  /** Restores weights and optimizer slots in place and returns the saved plain state. */
  resume?: {
    load(params: CheckpointParams, optimizer: CheckpointOptimizers): Promise<Record<string, unknown>>;
    /** The metrics record of the checkpoint's iteration (the summary of a run resumed with nothing left to do). */
    lastRecord?(): MetricsRecord | undefined;
  };
  /** Polled before each iteration; true stops the run after the current update. */
  shouldStop?: () => boolean;
  /** Awaited before each iteration (before `shouldStop`): a paused run waits here (the playground's pause). */
  waitIfPaused?: () => Promise<void>;
  /**
   * Called after each iteration's metrics went to the sinks, with the live weights: a viewer may
   * read them (e.g. to play an episode with a copy of the policy) but must not change them.
   */
  afterIteration?: (info: { iteration: number; record: MetricsRecord; params: CheckpointParams }) => void;
  /** Present when actors roll out (rxrl run --actors N | --broker URL): the learner takes its groups from them. */
  async?: AsyncLearnerContext;
}

/** What a learner needs to take its groups from actors (pipelines/async/runtime.ts builds it). */
export interface AsyncLearnerContext {
  readonly transport: LearnerTransport;
  readonly info: RunInfo;
  /** Tasks in flight or waiting at most; default: one batch (the pipeline's groups per iteration). */
  readonly queue?: number | undefined;
  readonly staleness: MaxStalenessConfig;
  /** The run is resumed but has no checkpoint to continue (recomputed from iteration 0). */
  readonly resuming: boolean;
  /** Every consumed group, in order (DIR/consumed.jsonl). */
  readonly log?: ((r: ConsumedRecord) => void) | undefined;
  /** Every stream entry taken, in order (DIR/entries.jsonl, with `--archive`): what `rxrl replay` feeds a fresh learner. */
  readonly archive?: ((r: ArchivedEntry) => void) | undefined;
}

export interface PipelineResult {
  /** One record per completed iteration of this process (a resumed run starts where it left off). */
  history: MetricsRecord[];
  /** The final evaluation metrics (what `summary.json` holds). */
  summary: Record<string, number>;
  /** The last completed iteration (first − 1 if none ran). */
  lastIteration: number;
  /** Why the run ended before its last iteration: the stop rule or `shouldStop` (Ctrl-C); absent if it did not. */
  stoppedBy?: 'rule' | 'signal';
}
