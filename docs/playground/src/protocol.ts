/**
 * The messages between the page (src/main.ts) and the training worker (src/worker.ts). Everything
 * is plain data (numbers, strings, typed arrays), as everywhere in rxrl.
 */

/** A pipeline file: its text and its name (the extension picks YAML or JSON; errors start with it). */
export interface PipelineText {
  text: string;
  name: string;
  /** `path=value` overrides, like the CLI's `--set`. */
  sets: string[];
}

export type ToWorker =
  | ({ type: 'validate' } & PipelineText)
  | ({ type: 'start'; threads?: number } & PipelineText)
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  /** The page wants an episode of the current policy to draw (answered between iterations). */
  | { type: 'frames' };

/** What the page draws: one frame per env step. */
export interface Frames {
  envId: string;
  /** `observation`: a classic env, drawn from its observation; `side`: MuJoCo capsules (Env.sideView). */
  kind: 'observation' | 'side';
  frames: Float32Array[];
  /** The policy version that acted. */
  version: number;
  /** The episode's return. */
  return: number;
}

export type FromWorker =
  /** The worker is up: the pipelines it runs and those that need Node. */
  | { type: 'hello'; pipelines: string[]; nodeOnly: string[] }
  | { type: 'valid'; pipeline: string; config: Record<string, unknown> }
  /** A bad pipeline file: the CLI's message (without its `rxrl: ` prefix). */
  | { type: 'invalid'; message: string }
  | { type: 'backend'; line: string; readyMs: number }
  | { type: 'started'; pipeline: string; config: Record<string, unknown> }
  /** One iteration: the record as metrics.jsonl holds it (its JSON line). */
  | { type: 'metrics'; line: string }
  | ({ type: 'frames' } & Frames)
  | { type: 'paused' }
  | { type: 'resumed' }
  | {
      type: 'done';
      /** metrics.jsonl, line by line. */
      lines: string[];
      /** summary.json's record. */
      summary: Record<string, number>;
      config: Record<string, unknown>;
      /** checkpoint.safetensors of the last completed iteration (null if none completed). */
      checkpoint: Uint8Array<ArrayBuffer> | null;
      seconds: number;
    }
  | { type: 'error'; message: string };
