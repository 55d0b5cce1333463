import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import type { ScoredGroup, ScoredTrajectory } from '../lib/data.ts';
import { Rng } from '../lib/random.ts';
import { ReplayBuffer, replayBuffer } from '../operators/replayBuffer.ts';
import { discountedReturns } from '../operators/returns.ts';
import { makeBatch, makeTrajectory } from './helpers/fixtures.ts';

/** A trajectory of `length` steps whose rewards sum to `ret`; `id` goes in groupId. */
function traj(id: string, ret: number, length = 1): ScoredTrajectory {
  const rewards = new Array<number>(length).fill(0);
  rewards[0] = ret;
  return discountedReturns(makeTrajectory(rewards, { groupId: id }));
}
const ids = (b: ReplayBuffer) => b.trajectories().map((t) => t.groupId);

test('init keeps the top-capacity trajectories by return, lowest first', () => {
  const offline = [traj('a', 5), traj('b', 1), traj('c', 9), traj('d', 3), traj('e', 7)];
  const b = ReplayBuffer.fromOffline(offline, 3);
  assert.deepEqual(ids(b), ['a', 'e', 'c']);
  assert.equal(b.returnMean(), 7);
  // Unscored offline trajectories are scored (γ = 1).
  const raw = ReplayBuffer.fromOffline([makeTrajectory([1, 1], { groupId: 'x' }), makeTrajectory([5], { groupId: 'y' })], 1);
  assert.deepEqual(ids(raw), ['y']);
  assert.equal(raw.at(0).totalReward, 5);
  // Fewer than capacity: all kept.
  assert.equal(ReplayBuffer.fromOffline(offline, 10).size, 5);
});

test('FIFO eviction: the oldest leave first', () => {
  const b = ReplayBuffer.fromOffline([traj('a', 5), traj('b', 1), traj('c', 9)], 3);
  assert.deepEqual(ids(b), ['b', 'a', 'c']);
  assert.equal(b.add([traj('n1', 0)]), 1);
  assert.deepEqual(ids(b), ['a', 'c', 'n1']);
  assert.equal(b.add([traj('n2', 0), traj('n3', 0)]), 2);
  assert.deepEqual(ids(b), ['n1', 'n2', 'n3']);
  // More than capacity at once: only the newest stay.
  b.add([traj('m1', 0), traj('m2', 0), traj('m3', 0), traj('m4', 0)]);
  assert.deepEqual(ids(b), ['m2', 'm3', 'm4']);
  // Extra fields (advantages) are not stored.
  b.add([{ ...traj('adv', 1), advantage: 3 } as ScoredTrajectory]);
  assert.equal('advantage' in b.at(2), false);
});

test('sampling frequencies are proportional to trajectory length; starts uniform; windows ≤ K', () => {
  const lengths = [1, 2, 3, 4, 10];
  const b = new ReplayBuffer(10);
  b.add(lengths.map((L, i) => traj(`t${i}`, i, L)));
  const rng = new Rng(123, 'replay');
  const n = 40000;
  const K = 3;
  const windows = b.sample(n, rng, K);
  const counts = new Array<number>(lengths.length).fill(0);
  const startCounts = new Array<number>(10).fill(0);
  for (const w of windows) {
    counts[w.index]!++;
    const T = lengths[w.index]!;
    assert.ok(w.start >= 0 && w.start < T);
    assert.equal(w.length, Math.min(K, T - w.start));
    if (w.index === 4) startCounts[w.start]!++;
  }
  const total = lengths.reduce((a, c) => a + c, 0);
  lengths.forEach((L, i) => {
    const p = L / total;
    const sd = Math.sqrt((p * (1 - p)) / n);
    assert.ok(Math.abs(counts[i]! / n - p) < 5 * sd, `trajectory ${i}: ${counts[i]! / n} vs ${p}`);
  });
  // Starts inside the longest trajectory are uniform over its 10 steps.
  const m = counts[4]!;
  startCounts.forEach((c) => assert.ok(Math.abs(c / m - 0.1) < 5 * Math.sqrt(0.09 / m), `start freq ${c / m}`));
  // Same seed, same windows.
  assert.deepEqual(b.sample(50, new Rng(7), K), b.sample(50, new Rng(7), K));
  // Full windows only.
  for (const w of b.sample(500, rng, K, { fullWindows: true })) {
    assert.equal(w.length, Math.min(K, lengths[w.index]!));
  }
  assert.throws(() => new ReplayBuffer(3).sample(1, rng, K), /holds no steps/);
});

test('state round-trips through JSON and samples identically', () => {
  const b = ReplayBuffer.fromOffline([traj('a', 5, 3), traj('b', 1, 2), traj('c', 9, 4)], 3);
  b.add([{ ...traj('d', 2, 5), targets: Float32Array.from([1, 2, 3, 4, 5]) }]);
  const text = JSON.stringify(b.state());
  const r = ReplayBuffer.fromState(JSON.parse(text));
  assert.equal(r.capacity, 3);
  assert.deepEqual(ids(r), ids(b));
  assert.deepEqual([...r.at(2).targets!], [1, 2, 3, 4, 5]);
  assert.ok(r.at(2).rewards instanceof Float32Array);
  assert.deepEqual(r.sample(100, new Rng(1), 2), b.sample(100, new Rng(1), 2));
  assert.throws(() => ReplayBuffer.fromState({ version: 1, capacity: 2, trajectories: [1] }), /invalid replay buffer trajectories/);
  // load: the same contents in place (an operator built around the buffer sees them); another capacity is refused.
  const inPlace = new ReplayBuffer(3);
  inPlace.add([traj('z', 1)]);
  inPlace.load(JSON.parse(text));
  assert.deepEqual(ids(inPlace), ids(b));
  assert.deepEqual(inPlace.sample(50, new Rng(2), 2), b.sample(50, new Rng(2), 2));
  assert.throws(() => new ReplayBuffer(4).load(JSON.parse(text)), /ReplayBuffer\.load: the state has capacity 3, this buffer 4/);
});

test('replayBuffer pushes each batch and reports size and mean return (marbles)', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const buffer = ReplayBuffer.fromOffline([traj('o1', 10), traj('o2', 20)], 3);
    const g = (id: string, rets: number[]): ScoredGroup => ({
      groupId: id,
      start: { kind: 'seed', envId: 'CartPole-v1', seed: 0 },
      trajectories: rets.map((r) => traj(id, r)),
    });
    const src = cold('a--b|', { a: makeBatch(0, [g('x', [0])]), b: makeBatch(1, [g('y', [30, 40])]) });
    const out = src.pipe(
      replayBuffer(buffer),
      map((b) => [b.iteration, b.metrics['buffer/size'], b.metrics['buffer/return_mean']]),
    );
    // [10, 20, 0] → mean 10; then [0, 30, 40] → mean 70/3.
    expectObservable(out).toBe('a--b|', { a: [0, 3, 10], b: [1, 3, 70 / 3] });
  });
});
