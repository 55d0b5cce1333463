// `consumeGroups`: the learner's source of groups rolled out by actors — documented on the exported `consumeGroups` (hover it).
import * as t from 'io-ts';
import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { defer, concatMap, type MonoTypeOperatorFunction, type Observable } from 'rxjs';
import { NonNegativeInt } from '../lib/codec.ts';
import type { Batch, Group } from '../lib/data.ts';
import type { ParamStore } from '../lib/models/params.ts';
import { AsyncTask, decodeEnvelope, encodeWeights, envSteps, type GroupEnvelope, type RunInfo } from '../lib/async/messages.ts';
import type { ArchivedEntry, GroupEntry, LearnerTransport } from '../lib/async/transport.ts';

/** The source's checkpointed state: the stream position and which tasks were published and consumed. */
export const GroupSourceStateC = t.intersection(
  [
    t.type({
      /** Id of the last stream entry consumed (null before the first). */
      position: t.union([t.string, t.null]),
      /** Tasks 0 … published − 1 have been published. */
      published: NonNegativeInt,
      /** Groups consumed (used by the learner). */
      consumed: NonNegativeInt,
      /** Every task below this was consumed … */
      doneBelow: NonNegativeInt,
      /** … and these above it. */
      doneAbove: t.array(NonNegativeInt),
      /** Tasks published but not yet consumed (republished by a resumed learner on a transport that does not persist them). */
      outstanding: t.array(AsyncTask),
      duplicates: NonNegativeInt,
      deadLetters: NonNegativeInt,
    }),
    /** Tasks given up: this run's, whose group failed to decode (absent in checkpoints before it existed: 0). */
    t.partial({ abandoned: NonNegativeInt }),
  ],
  'GroupSourceState',
);
export type GroupSourceState = t.TypeOf<typeof GroupSourceStateC>;

/** One line of the learner's consumption log: what it took, from where, in which order. */
export interface ConsumedRecord {
  iteration: number;
  groupId: string;
  task: number;
  /** The stream entry id (its position). */
  entry: string;
  actor: string;
  policyVersion: number;
  learnerVersion: number;
  /** The actor's rollout wall time and its wait before it (timings: they differ between runs). */
  rolloutMs: number;
  idleMs: number;
}

export interface ConsumeGroupsConfig {
  transport: LearnerTransport;
  /** The run's identity: entries of another run or config are dead-lettered, never applied. */
  info: RunInfo;
  /** M: groups per batch (the learner's update size). */
  groupsPerBatch: number;
  /** Tasks published ahead of consumption: at most this many groups are in flight or waiting. */
  queue: number;
  /** Task n of the run (deterministic: the pipeline's seeded starts). */
  nextTask(n: number): AsyncTask;
  /** Whose version the weights carry. */
  learner: { readonly version: number };
  /** The weights published to actors. */
  params: ParamStore;
  /** A resumed run without saved source state (recomputed from iteration 0): the transport's old run is discarded. */
  resuming?: boolean;
  /** Called with every consumed group, in consumption order. */
  log?: ((r: ConsumedRecord) => void) | undefined;
  /**
   * Called with every entry taken from the stream (consumed, duplicate or dead-lettered), in order,
   * before it is decoded: fed back in this order (`replayLearner`), they rebuild the same batches.
   */
  archive?: ((r: ArchivedEntry) => void) | undefined;
  /** Warn on stderr after this long without a group. Default 30 000 ms. */
  warnAfterMs?: number;
}

/** What `consumeGroups` returns: the per-iteration source, the weights publisher and the checkpoint hooks. */
export interface GroupSource {
  /** Iteration i's batch: the next M groups in stream order (duplicates skipped, undecodable ones dead-lettered). */
  batch(iteration: number): Observable<Batch<Group>>;
  /** Publishes the learner's weights when their version is new (put it right after the update). */
  publishWeights<T>(): MonoTypeOperatorFunction<T>;
  readonly key: 'async';
  readonly codec: typeof GroupSourceStateC;
  capture(): GroupSourceState;
  restore(s: GroupSourceState): void;
  /** After a checkpoint: the transport may trim up to the saved position. */
  committed(): Promise<void>;
}

const now = () => performance.now();

/**
 * `consumeGroups` — the learner's source: groups rolled out by actors (other processes or
 * machines) back into one `Batch<Group>` per iteration, so the learner side reads as before:
 * `source.batch(i) → returns → groupAdvantages → … → policyUpdate`.
 *
 * It hands out tasks — task n is `nextTask(n)`, the pipeline's seeded start and action seed — at
 * most `queue` ahead of consumption (back-pressure: no more groups are in flight or waiting than
 * that), publishes the weights of each new policy version, and for `batch(i)` takes the next
 * entries of the transport's group stream, in stream order, until M groups are accepted:
 *
 * - an entry that does not decode, or belongs to another run or config, or answers a task never
 *   published, goes to the dead-letter stream with the reason (`async/dead_letter`); a task above
 *   this learner's count that the run published before it resumed (a persistent transport's
 *   `tasksPublished`) is drawn from the task generator up to it and consumed; an entry of this run
 *   that does not decode but names an awaited task gives that task up (dead-lettered, counted in
 *   the state's `abandoned`, a late copy skipped) and a new task replaces it — the run goes on
 *   instead of waiting for a group that will not come;
 * - a group whose task was already consumed (an actor presumed dead finished after all) is acked
 *   and skipped (`async/duplicates`): a group id is used once;
 * - every other group is consumed, acked and logged (`log`, the run's consumed.jsonl).
 *
 * Its state (stream position, tasks published and consumed) is checkpointed with the learner's
 * (`key` `async`): a learner resumed from a checkpoint is handed the entries after the position
 * again, in the same order, and rebuilds exactly the batches it had built — neither skipping nor
 * double-counting a group. Given the stream's order (the log), a run is reproducible: `archive`
 * receives every entry taken, and a learner fed them again in that order (`replayLearner`) builds
 * the same batches, so its metrics are the run's bit for bit (timings aside).
 * Emits `rollout/env_steps`, `rollout/episodes`, `policy_version`, `async/queue_depth`,
 * `async/learner_idle_frac` (share of the learner's time since its last batch spent waiting),
 * `async/actor_idle_frac` (share of the batch's actors' time spent waiting before their group),
 * `async/duplicates`, `async/dead_letter` (cumulative counts).
 *
 * @param cfg The transport, the run's identity, M, the queue bound, the task generator, the learner and its parameters ({@link ConsumeGroupsConfig}).
 * @returns A {@link GroupSource}: `batch(i)`, `publishWeights()`, and the checkpoint hooks `runLoop` calls.
 * @example
 * ```ts
 * const source = consumeGroups({ transport, info, groupsPerBatch: 4, queue: 4, nextTask, learner, params: policy.params });
 * const iteration = (i: number) => source.batch(i).pipe(maxStaleness(learner, { maxStaleness: 1 }), returns(), groupAdvantages(), policyUpdate(learner), source.publishWeights());
 * ```
 */
export function consumeGroups(cfg: ConsumeGroupsConfig): GroupSource {
  const M = cfg.groupsPerBatch;
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`consumeGroups: groupsPerBatch: expected a positive integer, got ${M}`);
  if (!Number.isInteger(cfg.queue) || cfg.queue < 1) throw new RangeError(`consumeGroups: queue: expected a positive integer, got ${cfg.queue}`);
  const { transport } = cfg;
  let s: GroupSourceState = { position: null, published: 0, consumed: 0, doneBelow: 0, doneAbove: [], outstanding: [], duplicates: 0, deadLetters: 0 };
  let restored = false;
  let opened = false;
  let weightsVersion = -1;
  let lastBatchEnd = 0;
  const done = new Set<number>();
  const outstanding = new Map<number, AsyncTask>();

  const isDone = (n: number) => n < s.doneBelow || done.has(n);
  const markDone = (n: number) => {
    done.add(n);
    while (done.has(s.doneBelow)) done.delete(s.doneBelow++);
  };
  const publishWeightsNow = async () => {
    if (cfg.learner.version === weightsVersion) return;
    await transport.publishWeights(cfg.learner.version, encodeWeights(cfg.params.toRecord(), cfg.learner.version));
    weightsVersion = cfg.learner.version;
  };
  /** Tasks published and neither consumed nor abandoned: their groups are still to come. */
  const inFlight = () => s.published - s.consumed - (s.abandoned ?? 0);
  const topUp = async () => {
    const fresh = [];
    while (inFlight() < cfg.queue) {
      const task = cfg.nextTask(s.published);
      outstanding.set(task.task, task);
      fresh.push(task);
      s.published++;
    }
    if (fresh.length > 0) await transport.publishTasks(fresh);
  };
  const open = async () => {
    const mode = restored ? { kind: 'resume' as const, position: s.position } : cfg.resuming ? { kind: 'reset' as const } : { kind: 'fresh' as const };
    await transport.open(cfg.info, mode, { maxQueue: cfg.queue });
    await publishWeightsNow();
    // Outstanding tasks of the checkpoint: a persistent transport still holds them (and skips them).
    if (outstanding.size > 0) await transport.publishTasks([...outstanding.values()]);
    await topUp();
    opened = true;
    lastBatchEnd = now();
  };
  /** The task of an undecodable entry, when its raw JSON says it is this run's and the task is awaited. */
  const ownTask = (text: string): number | undefined => {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (typeof raw !== 'object' || raw === null) return undefined;
    const { run, configHash, task } = raw as Record<string, unknown>;
    if (run !== cfg.info.run || configHash !== cfg.info.configHash || typeof task !== 'number') return undefined;
    return Number.isInteger(task) && task < s.published && !isDone(task) ? task : undefined;
  };
  const dead = async (entry: GroupEntry, reason: string) => {
    s.deadLetters++;
    s.position = entry.id;
    await transport.deadLetter(entry, reason);
  };

  const take = async (iteration: number): Promise<Batch<Group>> => {
    if (!opened) await open();
    await publishWeightsNow();
    await topUp();
    const envelopes: GroupEnvelope[] = [];
    let waited = 0;
    let silent = 0;
    while (envelopes.length < M) {
      const w0 = now();
      const entry = await transport.next(1000);
      const dt = now() - w0;
      waited += dt;
      if (!entry) {
        silent += dt;
        if (silent >= (cfg.warnAfterMs ?? 30_000)) {
          console.warn(`rxrl: ${transport.where}: no group for ${Math.round(silent / 1000)} s (are actors running? rxrl actor --broker URL --run NAME)`);
          silent = 0;
        }
        continue;
      }
      silent = 0;
      const d = decodeEnvelope(entry.text);
      // A task beyond this learner's count may have been published by an earlier learner of the
      // run (a persistent transport keeps them): the transport says how many the run published.
      const runPublished = isRight(d) && d.right.task >= s.published ? await transport.tasksPublished?.() : undefined;
      cfg.archive?.({ iteration, id: entry.id, text: entry.text, ...(runPublished !== undefined ? { published: runPublished } : {}) });
      if (isLeft(d)) {
        const own = ownTask(entry.text);
        if (own === undefined) {
          await dead(entry, d.left.join('; '));
          continue;
        }
        // This run's group that cannot be decoded: re-running its task would most likely fail the
        // same way (a group is a function of its task), so the task is given up — its group never
        // applied, a late copy skipped as a duplicate — and a new task takes its place.
        markDone(own);
        outstanding.delete(own);
        s.abandoned = (s.abandoned ?? 0) + 1;
        await dead(entry, `task ${own} abandoned (a new task replaces it): ${d.left.join('; ')}`);
        await topUp();
        continue;
      }
      const e = d.right;
      if (e.run !== cfg.info.run) {
        await dead(entry, `run: expected ${cfg.info.run}, got ${e.run}`);
        continue;
      }
      if (e.configHash !== cfg.info.configHash) {
        await dead(entry, `configHash: expected ${cfg.info.configHash} (this run's config), got ${e.configHash}`);
        continue;
      }
      if (e.task >= s.published) {
        if (runPublished === undefined || e.task >= runPublished) {
          await dead(entry, `task: ${e.task} was never published (published: 0 … ${Math.max(s.published, runPublished ?? 0) - 1})`);
          continue;
        }
        // Published before this learner resumed: the same tasks (the seeded streams), drawn up to it.
        while (s.published <= e.task) {
          const task = cfg.nextTask(s.published);
          outstanding.set(task.task, task);
          s.published++;
        }
      }
      if (isDone(e.task)) {
        s.duplicates++;
        s.position = entry.id;
        await transport.ack(entry);
        continue;
      }
      markDone(e.task);
      outstanding.delete(e.task);
      s.position = entry.id;
      s.consumed++;
      await transport.ack(entry);
      cfg.log?.({
        iteration,
        groupId: e.group.groupId,
        task: e.task,
        entry: entry.id,
        actor: e.actor,
        policyVersion: e.policyVersion,
        learnerVersion: cfg.learner.version,
        rolloutMs: e.rolloutMs,
        idleMs: e.idleMs,
      });
      envelopes.push(e);
      // New tasks go out a batch at a time: when the batch is full (its replacements reach the
      // actors together, while the learner updates), or when none is left in flight (a queue below
      // M). An actor steps the tasks it holds as one batch: topped up as each group arrived, the
      // first replacement would go alone (the actor's groups arrive one message at a time) and the
      // actor would sample twice per batch, each time at nearly a full batch's cost.
      if (envelopes.length === M || inFlight() === 0) await topUp();
    }
    const end = now();
    const span = Math.max(end - lastBatchEnd, 1e-9);
    lastBatchEnd = end;
    let steps = 0;
    let episodes = 0;
    let idle = 0;
    let busy = 0;
    for (const e of envelopes) {
      steps += envSteps(e);
      episodes += e.group.trajectories.length;
      idle += e.idleMs;
      busy += e.rolloutMs;
    }
    return {
      iteration,
      groups: envelopes.map((e) => e.group),
      metrics: {
        'rollout/env_steps': steps,
        'rollout/episodes': episodes,
        policy_version: cfg.learner.version,
        'async/queue_depth': await transport.queueDepth(),
        'async/learner_idle_frac': Math.min(1, waited / span),
        'async/actor_idle_frac': idle + busy > 0 ? idle / (idle + busy) : 0,
        'async/duplicates': s.duplicates,
        'async/dead_letter': s.deadLetters,
      },
    };
  };

  return {
    key: 'async',
    codec: GroupSourceStateC,
    batch: (iteration) => defer(() => take(iteration)),
    publishWeights: () => concatMap(async (x) => (await publishWeightsNow(), x)),
    capture: () => ({
      ...s,
      doneAbove: [...done].sort((a, b) => a - b),
      outstanding: [...outstanding.values()].sort((a, b) => a.task - b.task),
    }),
    restore(state) {
      s = { ...state, doneAbove: [], outstanding: [] };
      done.clear();
      for (const n of state.doneAbove) done.add(n);
      outstanding.clear();
      for (const task of state.outstanding) outstanding.set(task.task, task);
      restored = true;
    },
    async committed() {
      if (opened && s.position !== null) await transport.commit(s.position);
    },
  };
}
