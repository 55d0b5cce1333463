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
  /**
   * Train; `files`: what the page provides to rxrl besides the shipped data (path → bytes); `view`:
   * show the first iteration (a view after each later one is asked for with `frames`).
   */
  | ({ type: 'start'; threads?: number; files?: Record<string, Uint8Array>; view?: boolean } & PipelineText)
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' }
  /** The page wants a view of the current policy: an episode to draw or samples (answered between iterations). */
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

/** A held-out prompt and completions of the policy to it, each with the verifier's scores. */
export interface Sample {
  /** `conflicting`: the user asks for something the system rules forbid; `aligned`: one answer satisfies both. */
  kind: 'conflicting' | 'aligned';
  /** The system rules (one line each). */
  rules: string[];
  user: string;
  completions: {
    text: string;
    /** Per system rule: kept (per-rule compliance). */
    kept: boolean[];
    /** Utility ∈ [0, 1] of the user's request; compliance ∈ {0, 1}: every rule kept. */
    utility: number;
    compliance: number;
  }[];
}

/** Completions of the policy at `version` (the HIPO family's view). */
export interface Samples {
  version: number;
  /** Sampling temperature (the rollouts'). */
  temperature: number;
  samples: Sample[];
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
  | ({ type: 'samples' } & Samples)
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
