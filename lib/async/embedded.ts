/**
 * The embedded transport: N actor processes on this machine, children of the learner talking over
 * Node's IPC channel (structured clone, so group text crosses without a server).
 *
 *   learner → child   { type: 'run', info }  { type: 'task', lease }  { type: 'weights', version, path }  { type: 'stop' }
 *   child → learner   { type: 'ready' }  { type: 'group', leaseId, text }
 *
 * Weights do not cross the channel: the learner writes each version to one file (a temporary
 * directory of its own, in /dev/shm where there is one, replaced atomically by a rename) and sends
 * its path. Through the pipe, a version of megabytes leaves most of its bytes in the learner's
 * write queue until the child reads them, and the learner's queue is flushed only while its event
 * loop runs — not during a synchronous update — so tasks sent after it would reach the child only
 * when the update ends: the actor would idle through every update. For the same reason the write is
 * synchronous: an asynchronous one completes on that event loop, so the path and the tasks held
 * behind it reached the actor only after the next update (tried: 1 actor 0.89–0.93 updates/s on
 * hipo-gen against 1.09–1.18 with this write; docs/scaling.md).
 *
 * The learner hands tasks out as soon as they are published, to the ready child holding the fewest,
 * up to its share ⌈maxQueue / N⌉ each (a child queues its tasks): the learner's event loop is busy
 * during a synchronous update, so a child that had to ask for its next task would idle until the
 * update ends. Each new weights
 * version goes to every child when published (and to a child when it starts); a child loads the
 * newest it has received between groups. A child that dies loses the group it was rolling out: its
 * tasks go back to the front of the queue and a new child takes its place. Nothing persists: a
 * resumed learner republishes the tasks its checkpoint lists as outstanding.
 *
 * ```ts
 * const t = embeddedLearner(2, () => fork('pipelines/bin.mjs', ['actor', '--embedded'], { serialization: 'advanced' }));
 * await t.open(info, { kind: 'fresh' }, { maxQueue: 8 });
 * ```
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncError, type ActorTransport, type GroupEntry, type LearnerTransport, type TaskLease } from './transport.ts';
import type { RunInfo } from './messages.ts';

/** A weights version announced: the file at `path` holds it (or, read later, a newer one). */
type WeightsNote = { version: number; path: string };
type ToChild = { type: 'run'; info: RunInfo } | { type: 'task'; lease: TaskLease } | ({ type: 'weights' } & WeightsNote) | { type: 'stop' };
type ToLearner = { type: 'ready' } | { type: 'group'; leaseId: string; text: string };

interface Child {
  readonly index: number;
  proc: ChildProcess;
  ready: boolean;
  /** Tasks handed to it and not yet answered, in the order it rolls them out. */
  leases: TaskLease[];
}

/** How many children may die before they were ever ready (a config they cannot run) before the run fails. */
const MAX_EARLY_DEATHS = 3;

/** The learner's end: `actors` children made by `spawn(i)` (see the module comment). */
export function embeddedLearner(actors: number, spawn: (index: number) => ChildProcess): LearnerTransport & { readonly restarts: number } {
  if (!Number.isInteger(actors) || actors < 1) throw new AsyncError(`--actors: expected a positive integer, got ${actors}`);
  const where = `embedded actors (${actors})`;
  const children: Child[] = [];
  const queue: TaskLease[] = [];
  const entries: GroupEntry[] = [];
  let waiting: (() => void) | undefined;
  let info: RunInfo | undefined;
  let weights: WeightsNote | undefined;
  let weightsDir: string | undefined;
  let seq = 0;
  let closing = false;
  let failure: Error | undefined;
  let earlyDeaths = 0;
  let restarts = 0;
  /** Tasks one child may hold (its share of the queue bound). */
  let share = Number.POSITIVE_INFINITY;

  const wake = () => {
    const w = waiting;
    waiting = undefined;
    w?.();
  };
  const send = (c: Child, m: ToChild) => {
    // A child that is exiting may close its channel between the check and the write: its 'exit' handles it.
    if (c.proc.connected) c.proc.send(m, (e) => e && undefined);
  };
  const dispatch = () => {
    while (queue.length > 0) {
      // The ready child with the fewest tasks (the lowest index on a tie).
      let to: Child | undefined;
      for (const c of children) if (c.ready && c.leases.length < share && (!to || c.leases.length < to.leases.length)) to = c;
      if (!to) return;
      const lease = queue.shift()!;
      to.leases.push(lease);
      send(to, { type: 'task', lease });
    }
  };
  const start = (index: number) => {
    const proc = spawn(index);
    const c: Child = { index, proc, ready: false, leases: [] };
    children[index] = c;
    proc.on('error', () => {}); // a failed send to a dying child; its 'exit' requeues its tasks
    proc.on('message', (m: ToLearner) => {
      if (m.type === 'ready') {
        c.ready = true;
        if (weights) send(c, { type: 'weights', ...weights });
        dispatch();
      } else if (m.type === 'group') {
        c.leases = c.leases.filter((l) => l.id !== m.leaseId);
        entries.push({ id: String(++seq).padStart(12, '0'), text: m.text });
        wake();
        dispatch();
      }
    });
    proc.on('exit', (code, signal) => {
      if (closing) return;
      const wasReady = c.ready;
      c.ready = false;
      queue.unshift(...c.leases);
      c.leases = [];
      if (!wasReady && ++earlyDeaths >= MAX_EARLY_DEATHS) {
        failure = new AsyncError(
          `${where}: actor ${index} exited (${signal ?? `code ${code}`}) before it was ready, ${earlyDeaths} times; see its error above`,
        );
        wake();
        return;
      }
      restarts++;
      start(index);
      if (info) send(children[index]!, { type: 'run', info });
      // Its tasks go to the other ready children now (or to its replacement when it is ready).
      dispatch();
    });
    return c;
  };

  return {
    where,
    persistent: false,
    get restarts() {
      return restarts;
    },
    async open(i, _mode, opts) {
      info = i;
      share = Math.max(1, Math.ceil(opts.maxQueue / actors));
      for (let k = 0; k < actors; k++) send(start(k), { type: 'run', info });
    },
    async publishTasks(tasks) {
      for (const task of tasks) queue.push({ id: `task-${task.task}`, task });
      dispatch();
    },
    async publishWeights(version, bytes) {
      weightsDir ??= mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rxrl-weights-'));
      const path = join(weightsDir, 'weights.safetensors');
      writeFileSync(`${path}.tmp`, bytes);
      renameSync(`${path}.tmp`, path);
      weights = { version, path };
      for (const c of children) if (c.ready) send(c, { type: 'weights', ...weights });
    },
    async next(timeoutMs) {
      if (failure) throw failure;
      if (entries.length === 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            waiting = undefined;
            resolve();
          }, timeoutMs);
          waiting = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (failure) throw failure;
      return entries.shift();
    },
    async ack() {},
    async deadLetter(entry, reason) {
      process.stderr.write(`rxrl: ${where}: entry ${entry.id} dead-lettered: ${reason}\n`);
    },
    async queueDepth() {
      return entries.length;
    },
    async commit() {},
    async close() {
      closing = true;
      await Promise.all(
        children.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
              const timer = setTimeout(() => c.proc.kill('SIGKILL'), 5000);
              c.proc.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              send(c, { type: 'stop' });
              if (!c.proc.connected) c.proc.kill('SIGTERM');
            }),
        ),
      );
      if (weightsDir) rmSync(weightsDir, { recursive: true, force: true });
    },
  };
}

/** The child's end: the IPC channel to the learner that forked this process. */
export function embeddedActor(name: string, proc: NodeJS.Process = process): ActorTransport {
  if (!proc.send) throw new AsyncError('rxrl actor --embedded: no IPC channel (this process was not forked by a learner)');
  const where = 'embedded actor';
  const inbox: ToChild[] = [];
  let waiting: (() => void) | undefined;
  let pendingWeights: WeightsNote | undefined;
  proc.on('message', (m: ToChild) => {
    // Weights skip the queue of tasks: the newest received is loaded before the next group.
    if (m.type === 'weights') {
      if (!pendingWeights || m.version > pendingWeights.version) pendingWeights = { version: m.version, path: m.path };
      return;
    }
    inbox.push(m);
    const w = waiting;
    waiting = undefined;
    w?.();
  });
  // The learner gone (its channel closed) ends this actor.
  proc.on('disconnect', () => {
    inbox.push({ type: 'stop' });
    waiting?.();
  });
  const take = async (timeoutMs: number): Promise<ToChild | undefined> => {
    if (inbox.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return inbox.shift();
  };
  const send = (m: ToLearner) => {
    if (proc.connected) proc.send!(m, undefined, undefined, (e) => e && undefined);
  };
  return {
    where,
    name,
    assigned: true,
    async runInfo() {
      for (;;) {
        const m = await take(60_000);
        if (m?.type === 'run') {
          send({ type: 'ready' });
          return m.info;
        }
        if (m?.type === 'stop') throw new AsyncError(`${where}: the learner stopped before it sent the run`);
        if (!m) throw new AsyncError(`${where}: no run from the learner within 60 s`);
      }
    },
    async nextTask(timeoutMs) {
      const m = await take(timeoutMs);
      if (!m) return undefined;
      if (m.type === 'stop') return 'finished';
      if (m.type === 'task') return m.lease;
      return undefined;
    },
    async weights(since) {
      const w = pendingWeights;
      pendingWeights = undefined;
      if (!w || w.version <= since) return undefined;
      // The file holds this version or a newer one (its header says which: decodeWeights reads it).
      try {
        return { version: w.version, bytes: new Uint8Array(readFileSync(w.path)) };
      } catch (e) {
        throw new AsyncError(`${where}: weights of version ${w.version}: cannot read ${w.path}: ${(e as Error).message}`);
      }
    },
    async publish(lease, text) {
      send({ type: 'group', leaseId: lease.id, text });
    },
    async close() {
      if (proc.connected) proc.disconnect?.();
    },
  };
}
