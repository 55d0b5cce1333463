import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { catchError, lastValueFrom, map, of } from 'rxjs';
import type { ScoredGroup } from '../lib/data.ts';
import { achievedReturnToGo, hindsightRelabel } from '../operators/hindsightRelabel.ts';
import { discountedReturns } from '../operators/returns.ts';
import { makeBatch, makeTrajectory } from './helpers/fixtures.ts';

const start = { kind: 'seed' as const, envId: 'Hopper-v4', seed: 0 };
function group(id: string, trajs: Array<{ rewards: number[]; targets?: number[] }>): ScoredGroup {
  return {
    groupId: id,
    start,
    trajectories: trajs.map(({ rewards, targets }) =>
      discountedReturns(makeTrajectory(rewards, { groupId: id, start, ...(targets ? { targets: Float32Array.from(targets) } : {}) }), { gamma: 0.5 }),
    ),
  };
}

test('achieved return-to-go is undiscounted and scaled', () => {
  assert.deepEqual([...achievedReturnToGo([1, 2, 3])], [6, 5, 3]);
  assert.deepEqual([...achievedReturnToGo([1000, 2000, 500], 1 / 1000)], [3.5, 2.5, 0.5]);
  assert.deepEqual([...achievedReturnToGo([])], []);
});

test('relabels targets from rewards (ignoring discounted returns) and reports the shift', async () => {
  const batch = makeBatch(0, [
    group('a', [
      { rewards: [1, 2, 3], targets: [10, 9, 7] },
      { rewards: [4], targets: [4] },
    ]),
    group('b', [{ rewards: [5, 5] }]), // no old targets: not part of the shift
  ]);
  const out = await lastValueFrom(of(batch).pipe(hindsightRelabel()));
  const [t0, t1] = out.groups[0]!.trajectories;
  assert.deepEqual([...t0!.targets!], [6, 5, 3]);
  assert.deepEqual([...t1!.targets!], [4]);
  assert.deepEqual([...out.groups[1]!.trajectories[0]!.targets!], [10, 5]);
  // |6−10| + |5−9| + |3−7| + |4−4| over 4 steps.
  assert.equal(out.metrics['relabel/target_shift'], 3);
  // Discounted returns (γ = 0.5) are untouched, and the input was not mutated.
  assert.deepEqual([...t0!.returns], [2.75, 3.5, 3]);
  assert.deepEqual([...batch.groups[0]!.trajectories[0]!.targets!], [10, 9, 7]);
  // No old targets anywhere: no shift metric.
  const fresh = await lastValueFrom(of(makeBatch(1, [group('c', [{ rewards: [1] }])])).pipe(hindsightRelabel({ scale: 0.5 })));
  assert.equal('relabel/target_shift' in fresh.metrics, false);
  assert.deepEqual([...fresh.groups[0]!.trajectories[0]!.targets!], [0.5]);
  assert.throws(() => hindsightRelabel({ scale: 0 }), /scale must be a finite number > 0/);
});

test('hindsightRelabel emits one batch per batch, in order; errors propagate (marbles)', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const bad = group('z', [{ rewards: [1] }]);
    (bad.trajectories[0]!.rewards as Float32Array)[0] = NaN;
    const src = cold('--a-b-c|', {
      a: makeBatch(0, [group('a', [{ rewards: [1, 1], targets: [3, 3] }])]),
      b: makeBatch(1, [group('b', [{ rewards: [2] }])]),
      c: makeBatch(2, [bad]),
    });
    const out = src.pipe(
      hindsightRelabel(),
      map((b) => [b.iteration, ...b.groups[0]!.trajectories[0]!.targets!]),
      catchError((e: Error) => of(e.message)),
    );
    expectObservable(out).toBe('--a-b-(c|)', {
      a: [0, 2, 1],
      b: [1, 2],
      c: "hindsightRelabel: reward of group 'z', trajectory 0 at step 0 is NaN",
    });
  });
});
