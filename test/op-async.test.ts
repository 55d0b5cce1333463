/**
 * The async operators and messages without processes: `maxStaleness` (drop/keep and its metrics,
 * against counts made by hand), `consumeGroups` over a scripted in-memory transport (stream order,
 * duplicates skipped, undecodable / foreign / unpublished entries dead-lettered with the reason, the
 * checkpointed position: a source restored from its captured state rebuilds the same next batch,
 * and two sources fed the same stream build the same batches), the weights bytes and their checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastValueFrom, of } from 'rxjs';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import type { Batch, Group, Trajectory } from '../lib/data.ts';
import { ParamStore, normal } from '../lib/models/params.ts';
import {
  decodeEnvelope,
  decodeWeights,
  encodeEnvelope,
  encodeWeights,
  taskGroupId,
  weightsProblems,
  type AsyncTask,
  type RunInfo,
} from '../lib/async/messages.ts';
import type { ArchivedEntry, GroupEntry, LearnerTransport } from '../lib/async/transport.ts';
import { maxStaleness } from '../operators/maxStaleness.ts';
import { consumeGroups, GroupSourceStateC } from '../operators/consumeGroups.ts';

await initBackend({ quiet: true, backend: 'cpu' });

function traj(task: number, version: number, T = 3): Trajectory {
  return {
    length: T,
    obsDim: 1,
    actDim: 1,
    observations: Float32Array.from({ length: T + 1 }, (_, i) => task + i),
    actions: Int32Array.from({ length: T }, (_, i) => i % 2),
    logProbs: new Float32Array(T).fill(-0.7),
    rewards: new Float32Array(T).fill(1),
    costs: new Float32Array(T),
    terminated: true,
    truncated: false,
    policyVersion: version,
    groupId: taskGroupId(task),
    start: { kind: 'seed', envId: 'CartPole-v1', seed: task },
  };
}
const group = (task: number, version: number): Group => ({
  groupId: taskGroupId(task),
  start: { kind: 'seed', envId: 'CartPole-v1', seed: task },
  trajectories: [traj(task, version), traj(task, version, 2)],
});

test('maxStaleness drops groups lagging more than k (counted), or keeps them; staleness mean over all groups', async () => {
  const learner = { version: 5 };
  const batch: Batch<Group> = { iteration: 0, groups: [group(0, 5), group(1, 4), group(2, 2), group(3, 1)], metrics: {} };
  const dropped = await lastValueFrom(of(batch).pipe(maxStaleness(learner, { maxStaleness: 1, stale: 'drop' })));
  assert.deepEqual(
    dropped.groups.map((g) => g.groupId),
    ['task/0', 'task/1'],
  );
  // lags 0, 1, 3, 4 → mean 2, max 4, two over k = 1
  assert.equal(dropped.metrics['async/staleness_mean'], 2);
  assert.equal(dropped.metrics['async/staleness_max'], 4);
  assert.equal(dropped.metrics['async/dropped'], 2);
  const kept = await lastValueFrom(of(batch).pipe(maxStaleness(learner, { maxStaleness: 1, stale: 'keep' })));
  assert.equal(kept.groups.length, 4);
  assert.equal(kept.metrics['async/dropped'], 0);
  assert.equal(kept.metrics['async/stale_kept'], 2);
  assert.throws(() => maxStaleness(learner, { maxStaleness: -1 }), /maxStaleness: expected a non-negative integer, got -1/);
});

const INFO: RunInfo = { run: 'r1', pipeline: 'grpo-control', config: {}, configHash: 'abc' };
const env = (task: number, version: number, over: Partial<{ run: string; configHash: string }> = {}) =>
  encodeEnvelope({ run: 'r1', configHash: 'abc', task, actor: 'a', policyVersion: version, rolloutMs: 3, idleMs: 1, group: group(task, version), ...over });

/** A transport whose group stream is a fixed list (positions are indices); it records what the source did. */
function scripted(stream: string[], runPublished?: number) {
  const seen = { dead: [] as [string, string][], acked: [] as string[], tasks: [] as number[], weights: [] as number[], committed: [] as string[] };
  let at = 0;
  const t: LearnerTransport = {
    where: 'scripted',
    persistent: true,
    async open(_info, mode) {
      if (mode.kind === 'resume') at = mode.position === null ? 0 : Number(mode.position) + 1;
    },
    async publishTasks(tasks) {
      for (const x of tasks) seen.tasks.push(x.task);
    },
    async publishWeights(v) {
      seen.weights.push(v);
    },
    async next(): Promise<GroupEntry | undefined> {
      if (at >= stream.length) throw new Error('scripted stream exhausted');
      const id = String(at);
      return { id, text: stream[at++]! };
    },
    async ack(e) {
      seen.acked.push(e.id);
    },
    async deadLetter(e, reason) {
      seen.dead.push([e.id, reason]);
    },
    async queueDepth() {
      return stream.length - at;
    },
    async commit(p) {
      seen.committed.push(p);
    },
    async close() {},
    ...(runPublished !== undefined ? { tasksPublished: async () => runPublished } : {}),
  };
  return { t, seen };
}

function source(stream: string[], queue = 3) {
  const params = new ParamStore(0);
  params.add('w', [2], normal(1));
  const learner = { version: 0 };
  const nextTask = (n: number): AsyncTask => ({ task: n, groupId: taskGroupId(n), start: { kind: 'seed', envId: 'CartPole-v1', seed: n }, seed: n + 100 });
  const s = scripted(stream);
  return { src: consumeGroups({ transport: s.t, info: INFO, groupsPerBatch: 2, queue, nextTask, learner, params }), seen: s.seen, params };
}

test('consumeGroups: stream order, duplicates skipped, bad entries dead-lettered naming the field; restored at its position it rebuilds the same batch', async () => {
  const stream = [
    env(1, 0),
    'not json',
    env(1, 0), // duplicate of task 1
    env(0, 0, { configHash: 'zzz' }),
    env(7, 0), // never published (queue 3: tasks 0..2, then one more per consumed group)
    env(0, 0),
    env(2, 0),
    env(3, 0),
  ];
  const a = source(stream);
  const b0 = await lastValueFrom(a.src.batch(0));
  assert.deepEqual(
    b0.groups.map((g) => g.groupId),
    ['task/1', 'task/0'],
  );
  assert.deepEqual(
    a.seen.dead.map(([id]) => id),
    ['1', '3', '4'],
  );
  assert.match(a.seen.dead[0]![1], /malformed JSON/);
  assert.match(a.seen.dead[1]![1], /configHash: expected abc/);
  assert.match(a.seen.dead[2]![1], /task: 7 was never published/);
  assert.equal(b0.metrics['async/duplicates'], 1);
  assert.equal(b0.metrics['async/dead_letter'], 3);
  assert.equal(b0.metrics['rollout/env_steps'], 10);
  assert.deepEqual(a.seen.weights, [0]);
  assert.deepEqual(a.seen.acked, ['0', '2', '5']);
  const saved = a.src.capture();
  assert.equal(saved.position, '5');
  assert.deepEqual([saved.published, saved.consumed, saved.doneBelow], [5, 2, 2]);
  const b1 = await lastValueFrom(a.src.batch(1));

  // A second learner restored from the state after batch 0 takes the same batch 1.
  const b = source(stream);
  b.src.restore(saved);
  const b1again = await lastValueFrom(b.src.batch(1));
  assert.deepEqual(b1again.groups, b1.groups);
  assert.deepEqual(
    b1.groups.map((g) => g.groupId),
    ['task/2', 'task/3'],
  );
  await a.src.committed();
  assert.deepEqual(a.seen.committed, ['7']);
  a.params.dispose();
  b.params.dispose();
});

test("consumeGroups: a task above the learner's count that the run published before it resumed is drawn up to and consumed (the archive keeps the transport's word); without that word it is dead-lettered", async () => {
  const nextTask = (n: number): AsyncTask => ({ task: n, groupId: taskGroupId(n), start: { kind: 'seed', envId: 'CartPole-v1', seed: n }, seed: n + 100 });
  const outstanding = [0, 1, 2].map(nextTask);
  for (const runPublished of [7, undefined]) {
    const params = new ParamStore(0);
    params.add('w', [2], normal(1));
    // Restored with tasks 0 … 2 published (its checkpoint); its predecessor published up to task 6 and task 5 was answered first.
    const s = scripted([env(5, 0), env(0, 0), env(1, 0)], runPublished);
    const archived: ArchivedEntry[] = [];
    const drawn: number[] = [];
    const src = consumeGroups({
      transport: s.t,
      info: INFO,
      groupsPerBatch: 2,
      queue: 3,
      nextTask: (n) => (drawn.push(n), nextTask(n)),
      learner: { version: 0 },
      params,
      archive: (r) => archived.push(r),
    });
    src.restore({ position: null, published: 3, consumed: 0, doneBelow: 0, doneAbove: [], outstanding, duplicates: 0, deadLetters: 0 });
    const b = await lastValueFrom(src.batch(0));
    if (runPublished !== undefined) {
      assert.deepEqual(
        b.groups.map((g) => g.groupId),
        ['task/5', 'task/0'],
      );
      assert.deepEqual(s.seen.dead, []);
      assert.deepEqual(drawn, [3, 4, 5]);
      const after = src.capture();
      assert.equal(after.published, 6);
      assert.deepEqual(
        after.outstanding.map((t) => t.task),
        [1, 2, 3, 4],
      );
      assert.deepEqual(
        archived.map((r) => r.published),
        [7, undefined],
      );
    } else {
      assert.deepEqual(
        b.groups.map((g) => g.groupId),
        ['task/0', 'task/1'],
      );
      assert.deepEqual(
        s.seen.dead.map(([id]) => id),
        ['0'],
      );
      assert.match(s.seen.dead[0]![1], /task: 5 was never published \(published: 0 … 2\)/);
      assert.ok(archived.every((r) => r.published === undefined));
    }
    params.dispose();
  }
});

test('envelopes and weights: bit-exact round trips; errors name the field, the broker and the tensor', () => {
  const e = decodeEnvelope(env(4, 2));
  assert.ok(e._tag === 'Right');
  assert.deepEqual(e.right.group, group(4, 2));
  const bad = decodeEnvelope(env(4, 2).replace('"policyVersion":2,', '"policyVersion":3,'));
  assert.ok(bad._tag === 'Left');
  assert.match(bad.left.join('\n'), /group\.trajectories\.0\.policyVersion: expected 3 \(the envelope's\), got 2/);

  const before = tf.memory().numTensors;
  const ps = new ParamStore(3);
  ps.add('pi.w', [3, 2], normal(1));
  ps.add('pi.b', [2], normal(1));
  const rec = ps.toRecord();
  const { version, record } = decodeWeights(encodeWeights(rec, 9), 'redis://h:1 run r1');
  assert.equal(version, 9);
  assert.deepEqual(record, rec);
  assert.deepEqual(weightsProblems(record, ps.map), []);
  const other = new ParamStore(3);
  other.add('pi.w', [4, 2], normal(1));
  other.add('pi.b', [2], normal(1));
  assert.deepEqual(weightsProblems(record, other.map), ["pi.w: shape [3, 2], the policy's is [4, 2]"]);
  assert.throws(() => decodeWeights(new Uint8Array([1, 2, 3]), 'redis://h:1 run r1'), /redis:\/\/h:1 run r1: weights/);
  ps.dispose();
  other.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test("consumeGroups: this run's group that does not decode is dead-lettered, its task given up and replaced (the batch completes; a late copy is a duplicate)", async () => {
  // Task 1's group arrives corrupt (valid JSON naming run, config and task, a group that fails its
  // codec). With queue = M = 2 the learner would otherwise wait for it for ever.
  const corrupt = JSON.stringify({ ...JSON.parse(env(1, 0)), group: { groupId: 'task/1', trajectories: 'oops' } });
  const stream = [env(0, 0), corrupt, env(2, 0), env(1, 0), env(3, 0), env(4, 0)];
  const { src, seen, params } = source(stream, 2);
  try {
    const b0 = await lastValueFrom(src.batch(0));
    assert.deepEqual(
      b0.groups.map((g) => g.groupId),
      ['task/0', 'task/2'],
    );
    assert.deepEqual(
      seen.dead.map(([id]) => id),
      ['1'],
    );
    assert.match(seen.dead[0]![1], /^task 1 abandoned \(a new task replaces it\): /);
    // Tasks 0, 1 at the start; task 2 replaces the abandoned 1 at once (nothing else was in flight).
    assert.deepEqual(seen.tasks.slice(0, 3), [0, 1, 2]);
    const state = src.capture();
    assert.equal(state.abandoned, 1);
    assert.equal(state.consumed, 2);
    const b1 = await lastValueFrom(src.batch(1));
    // The late, valid copy of task 1 is skipped as a duplicate: a given-up task is never applied.
    assert.deepEqual(
      b1.groups.map((g) => g.groupId),
      ['task/3', 'task/4'],
    );
    assert.equal(b1.metrics['async/duplicates'], 1);
    // A state without the field (a checkpoint from before it) still decodes.
    const { abandoned: _, ...old } = state;
    assert.ok(GroupSourceStateC.is(old));
  } finally {
    params.dispose();
  }
});
