import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { catchError, lastValueFrom, map, of } from 'rxjs';
import type { AdvantagedGroup, Batch, ScoredGroup, ScoredTrajectory } from '../lib/data.ts';
import { constraintCost } from '../operators/constraintCost.ts';
import { groupAdvantages } from '../operators/groupAdvantages.ts';
import { discountedReturns } from '../operators/returns.ts';
import { makeBatch, makeTrajectory } from './helpers/fixtures.ts';

const start = { kind: 'seed' as const, envId: 'CartPole-v1', seed: 0 };

/** A scored group; each entry is [rewards, costs]. */
function group(id: string, steps: Array<[number[], number[]]>): ScoredGroup {
  return {
    groupId: id,
    start,
    trajectories: steps.map(([r, c]) => discountedReturns(makeTrajectory(r, { costs: Float32Array.from(c), groupId: id, start }))),
  };
}

/** Reward advantages (Dr. GRPO) then the operator under test. */
async function run(batch: Batch<ScoredGroup>, cc: Parameters<typeof constraintCost>[0]) {
  return lastValueFrom(of(batch).pipe(groupAdvantages({ estimator: 'drgrpo' }), constraintCost(cc)));
}

const lengthCost = { name: 'len', fn: (t: ScoredTrajectory) => t.length };

test('cost values and cost advantages for two constraints (Dr. GRPO, by hand)', async () => {
  const batch = makeBatch(0, [
    group('a', [
      [[1], [1]],
      [
        [3, 0],
        [0, 0],
      ],
    ]),
    group('b', [
      [[2], [2]],
      [[2], [2]],
    ]),
  ]);
  const out = await run(batch, { estimator: 'drgrpo', costs: [{ name: 'env' }, lengthCost] });
  const a = out.groups[0]!.trajectories;
  // env cost [1, 0] → mean 0.5 → [0.5, −0.5]; length [1, 2] → mean 1.5 → [−0.5, 0.5].
  assert.deepEqual(
    a.map((t) => t.costAdvantages),
    [
      [0.5, -0.5],
      [-0.5, 0.5],
    ],
  );
  assert.deepEqual(
    a.map((t) => [t.scores!['cost/env'], t.scores!['cost/len']]),
    [
      [1, 1],
      [0, 2],
    ],
  );
  // Reward advantages are untouched: rewards 1 and 3 → [−1, 1].
  assert.deepEqual(
    a.map((t) => t.advantage),
    [-1, 1],
  );
  assert.deepEqual(
    out.groups[1]!.trajectories.map((t) => t.costAdvantages),
    [
      [0, 0],
      [0, 0],
    ],
  );
  assert.equal(out.metrics['cost/env/mean'], (1 + 0 + 2 + 2) / 4);
  assert.equal(out.metrics['cost/len/mean'], (1 + 2 + 1 + 1) / 4);
  assert.equal(out.metrics['cost/env/frac_zero_std'], 0.5);
});

test('GRPO cost advantages divide by the group std of the costs', async () => {
  const batch = makeBatch(0, [
    group('a', [
      [[0], [0]],
      [[0], [1]],
      [[0], [2]],
    ]),
  ]);
  const out = await run(batch, { estimator: 'grpo', ddof: 0, eps: 0 });
  // costs [0, 1, 2]: mean 1, population std sqrt(2/3).
  const s = Math.sqrt(2 / 3);
  const got = out.groups[0]!.trajectories.map((t) => t.costAdvantages[0]!);
  [-1 / s, 0, 1 / s].forEach((e, i) => assert.ok(Math.abs(got[i]! - e) < 1e-12));
});

test('dropZeroStd drops only groups with no signal in any objective; cost means use all trajectories', async () => {
  const batch = makeBatch(0, [
    group('signal', [
      [[1], [0]],
      [[2], [0]],
    ]),
    group('none', [
      [[2], [2]],
      [[2], [2]],
    ]),
    group('costOnly', [
      [[1], [0]],
      [[1], [1]],
    ]),
  ]);
  const out = await run(batch, { estimator: 'drgrpo', dropZeroStd: true });
  assert.deepEqual(
    out.groups.map((g) => g.groupId),
    ['signal', 'costOnly'],
  );
  assert.equal(out.metrics['groups/kept'], 2);
  assert.equal(out.metrics['cost/env/mean'], (0 + 0 + 2 + 2 + 0 + 1) / 6);
  assert.deepEqual(
    out.groups[1]!.trajectories.map((t) => t.costAdvantages),
    [[-0.5], [0.5]],
  );
});

test('bad costs and bad names fail clearly', async () => {
  assert.throws(() => constraintCost({ costs: [{ name: 'x' }, { name: 'x' }] }), /duplicate constraint name "x"/);
  assert.throws(() => constraintCost({ costs: [{ name: 'a b' }] }), /constraint name must match/);
  assert.throws(() => constraintCost({ costs: [] }), /at least one constraint/);
  const batch = makeBatch(0, [
    group('g', [
      [[1], [0]],
      [[2], [0]],
    ]),
  ]);
  await assert.rejects(run(batch, { costs: [{ name: 'bad', fn: (t) => (t.totalReward === 2 ? NaN : 0) }] }), /cost 'bad' of group 'g', trajectory 1 is NaN/);
});

test('constraintCost emits one batch per batch, in order; errors propagate (marbles)', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const adv = (b: Batch<ScoredGroup>) => b as unknown as Batch<AdvantagedGroup>;
    const withAdv = (g: ScoredGroup): AdvantagedGroup => ({ ...g, trajectories: g.trajectories.map((t) => ({ ...t, advantage: 0 })) });
    const b0 = makeBatch(0, [
      withAdv(
        group('a', [
          [[0], [1]],
          [[0], [3]],
        ]),
      ),
    ]);
    const b1 = makeBatch(1, [
      withAdv(
        group('b', [
          [[0], [2]],
          [[0], [2]],
        ]),
      ),
    ]);
    const b2 = adv(makeBatch(2, [group('c', [[[0], [0]]])]));
    const out = cold('a-b--c|', { a: b0, b: b1, c: b2 }).pipe(
      constraintCost({ estimator: 'drgrpo', costs: [{ name: 'env' }, { name: 'boom', fn: (t) => (t.groupId === 'c' ? Infinity : 0) }] }),
      map((b) => [b.iteration, b.metrics['cost/env/mean'], ...b.groups[0]!.trajectories.map((t) => t.costAdvantages[0])]),
      catchError((e: Error) => of(e.message)),
    );
    expectObservable(out).toBe('a-b--(c|)', {
      a: [0, 2, -1, 1],
      b: [1, 2, 0, 0],
      c: "constraintCost: cost 'boom' of group 'c', trajectory 0 is Infinity",
    });
  });
});
