/**
 * The two ends of an asynchronous actor–learner run, as interfaces a transport implements: Redis
 * Streams (lib/async/redis.ts, actors on any machine) or child processes on this machine
 * (lib/async/embedded.ts, no server). Everything crossing them is plain data (lib/async/messages.ts).
 *
 *   learner  open → publishTasks / publishWeights → next (a group entry, stream order) → ack |
 *            deadLetter → commit(position) after each checkpoint → close
 *   actor    runInfo → nextTask (a lease) → weights (newer than mine?) → publish(lease, envelope)
 *
 * A group entry has an id that orders the stream; the learner's position is the id of the last
 * entry it consumed, saved in its checkpoint: a resumed learner is handed the entries after it
 * again, in the same order, so it neither skips nor double-counts a group.
 *
 * ```ts
 * await transport.open(info, { kind: 'fresh' });
 * await transport.publishTasks([task]);
 * const entry = await transport.next(1000);       // undefined after 1 s without a group
 * ```
 */
import type { Group } from '../data.ts';
import type { ParamStore } from '../models/params.ts';
import type { AsyncTask, RunInfo } from './messages.ts';

/** One entry of the group stream: its ordering id and the encoded envelope. */
export interface GroupEntry {
  readonly id: string;
  readonly text: string;
}

/** An entry as a learner took it in iteration `iteration` (a run's archive, DIR/entries.jsonl). */
export interface ArchivedEntry extends GroupEntry {
  readonly iteration: number;
  /** What `tasksPublished` answered for this entry, when the learner asked (its task was above the learner's count). */
  readonly published?: number;
}

/** Where a learner starts: a new run, a run whose earlier state is discarded, or a checkpoint's position. */
export type OpenMode = { readonly kind: 'fresh' } | { readonly kind: 'reset' } | { readonly kind: 'resume'; readonly position: string | null };

/** The learner's end. */
export interface LearnerTransport {
  /** Names the broker and the run in every message (`redis://127.0.0.1:6379 run r1`). */
  readonly where: string;
  /** Tasks and groups outlive the learner (Redis): a resumed learner finds its outstanding tasks there. */
  readonly persistent: boolean;
  open(info: RunInfo, mode: OpenMode, opts: { maxQueue: number }): Promise<void>;
  /** Publishes tasks (a persistent transport skips those already published before a crash). */
  publishTasks(tasks: readonly AsyncTask[]): Promise<void>;
  /** The weights of one policy version (safetensors bytes); actors pick them up between groups. */
  publishWeights(version: number, bytes: Uint8Array): Promise<void>;
  /** The next group entry in stream order, or undefined after `timeoutMs` without one. */
  next(timeoutMs: number): Promise<GroupEntry | undefined>;
  /** The entry is consumed (or a duplicate): it is not delivered again, unless a resume rewinds to an earlier position. */
  ack(entry: GroupEntry): Promise<void>;
  /** An entry the learner cannot decode: moved to the dead-letter stream with the reason, never applied. */
  deadLetter(entry: GroupEntry, reason: string): Promise<void>;
  /** Group entries waiting for the learner. */
  queueDepth(): Promise<number>;
  /**
   * How many tasks the run has published, counting those of an earlier learner of the run (a
   * persistent transport: a learner killed after its checkpoint published more than the
   * checkpoint knows); asked about an entry whose task is above the learner's own count.
   */
  tasksPublished?(): Promise<number | undefined>;
  /** Everything up to `position` is in a checkpoint: it may be trimmed. */
  commit(position: string): Promise<void>;
  /** `finished`: the run is over (actors stop); otherwise the run may be resumed. */
  close(finished: boolean): Promise<void>;
}

/** A task handed to one actor until it publishes the group (or dies, and another takes it over). */
export interface TaskLease {
  readonly id: string;
  readonly task: AsyncTask;
}

/** The actor's end. */
export interface ActorTransport {
  readonly where: string;
  /** This actor's name (host-pid, or the embedded index). */
  readonly name: string;
  /**
   * Tasks reach this actor already apportioned to it (embedded: the learner hands each child its
   * share), so it may take every one it holds at once; from a shared queue (Redis) an actor takes
   * at most `runActor`'s `batch` at a time, leaving the rest to other actors.
   */
  readonly assigned?: boolean;
  /** The run to act for (waits for the learner to publish it). */
  runInfo(): Promise<RunInfo>;
  /** A task, 'finished' when the run is over, or undefined after `timeoutMs` (none, or back-pressure). */
  nextTask(timeoutMs: number): Promise<TaskLease | 'finished' | undefined>;
  /** The latest weights if newer than `since`. */
  weights(since: number): Promise<{ version: number; bytes: Uint8Array } | undefined>;
  /** Publishes the encoded envelope and releases the lease, atomically. */
  publish(lease: TaskLease, text: string): Promise<void>;
  close(): Promise<void>;
}

/** A pipeline's actor side: where weights load, and one group per task. */
export interface ActorPart {
  readonly params: ParamStore;
  /** Rolls out task `task` with the weights of `version` loaded. */
  rollout(task: AsyncTask, version: number): Group;
  /**
   * Several tasks stepped as one batch (one policy call per env step for all of them), each group
   * what `rollout` would give for its task alone: an actor holding more than one task takes them
   * together, up to `maxTasks`. Optional: without it, tasks go one at a time.
   */
  rolloutMany?(tasks: readonly AsyncTask[], version: number): Group[];
  /** The most tasks `rolloutMany` takes at once. */
  readonly maxTasks?: number;
  close(): void;
}

export class AsyncError extends Error {
  override readonly name = 'AsyncError';
}
