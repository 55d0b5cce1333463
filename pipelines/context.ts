/**
 * What a pipeline receives from whoever runs it (the CLI's runner, a test, a script) and what it
 * returns. Pipelines stay ignorant of files: checkpoints go through `checkpoint.save`, a resumed run
 * gets its state from `resume.load`, and `shouldStop` (Ctrl-C) is polled between iterations.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ParamStore } from '../lib/models/params.ts';
import type { MetricsRecord } from '../lib/data.ts';

export interface CheckpointContent {
  /** The iteration just completed. */
  iteration: number;
  params: ParamStore;
  optimizer: tf.Optimizer;
  /** Plain data: RNG states, multipliers, counters — everything else that shapes what comes next. */
  state: Record<string, unknown>;
}

export interface PipelineContext {
  /** Called every `checkpointEvery` iterations and once at the end (also after a stop). */
  checkpoint?: { save(content: CheckpointContent): Promise<void> };
  /** Restores weights and optimizer slots in place and returns the saved plain state. */
  resume?: {
    load(params: ParamStore, optimizer: tf.Optimizer): Promise<Record<string, unknown>>;
    /** The metrics record of the checkpoint's iteration (the summary of a run resumed with nothing left to do). */
    lastRecord?(): MetricsRecord | undefined;
  };
  /** Polled before each iteration; true stops the run after the current update. */
  shouldStop?: () => boolean;
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
