import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { catchError, lastValueFrom, map, of } from 'rxjs';
import type { ScoredGroup } from '../lib/data.ts';
import { groupAdvantageValues, groupAdvantages } from '../operators/groupAdvantages.ts';
import { discountedReturns } from '../operators/returns.ts';
import { makeBatch, makeGroup } from './helpers/fixtures.ts';

/** A scored group whose trajectory i has the rewards `rewardLists[i]`. */
function scored(id: string, rewardLists: number[][]): ScoredGroup {
  const g = makeGroup(id, rewardLists);
  return { ...g, trajectories: g.trajectories.map((t) => discountedReturns(t)) };
}

function close(actual: readonly number[], expected: readonly number[], tol = 1e-9): void {
  assert.equal(actual.length, expected.length, `length ${actual.length} vs ${expected.length}`);
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= tol, `index ${i}: ${a} vs ${expected[i]}`));
}

test('GRPO on a group of 4 matches a hand computation (ddof 1 and 0)', () => {
  // R = [1, 2, 3, 6]: mean 3, deviations [-2, -1, 0, 3], Σ dev² = 14.
  const sUnbiased = Math.sqrt(14 / 3);
  const v = groupAdvantageValues([[1, 2, 3, 6]], { estimator: 'grpo' });
  close(
    v.advantages[0]!,
    [-2, -1, 0, 3].map((d) => d / (sUnbiased + 1e-4)),
  );
  const sPop = Math.sqrt(14 / 4);
  const p = groupAdvantageValues([[1, 2, 3, 6]], { estimator: 'grpo', ddof: 0, eps: 0 });
  close(
    p.advantages[0]!,
    [-2, -1, 0, 3].map((d) => d / sPop),
  );
  assert.deepEqual(v.zeroStd, [false]);
});

test('Dr. GRPO subtracts the mean only; RLOO subtracts the leave-one-out mean', () => {
  const dr = groupAdvantageValues([[1, 2, 3, 6]], { estimator: 'drgrpo' });
  close(dr.advantages[0]!, [-2, -1, 0, 3]);
  // RLOO: A_1 = 1 − (2+3+6)/3 = −8/3, A_2 = 2 − 10/3, A_3 = 3 − 3, A_4 = 6 − 2.
  const rl = groupAdvantageValues([[1, 2, 3, 6]], { estimator: 'rloo' });
  close(rl.advantages[0]!, [-8 / 3, -4 / 3, 0, 4]);
  // RLOO = G/(G−1) · Dr. GRPO.
  close(
    rl.advantages[0]!,
    dr.advantages[0]!.map((a) => (a * 4) / 3),
  );
  // Three-trajectory RLOO: [0, 3, 6] → [0 − 4.5, 3 − 3, 6 − 1.5].
  close(groupAdvantageValues([[0, 3, 6]], { estimator: 'rloo' }).advantages[0]!, [-4.5, 0, 4.5]);
});

test('std scope: group vs batch vs none', () => {
  const outcomes = [
    [0, 2],
    [10, 14],
  ];
  const g = groupAdvantageValues(outcomes, { estimator: 'grpo', std: 'group', ddof: 0, eps: 0 });
  close(g.advantages.flat(), [-1, 1, -1, 1]);
  // Batch: std of [0, 2, 10, 14] (mean 6.5, Σ dev² = 131) with the per-group means kept (1 and 12).
  const sB = Math.sqrt(131 / 4);
  const b = groupAdvantageValues(outcomes, { estimator: 'grpo', std: 'batch', ddof: 0, eps: 0 });
  close(b.advantages.flat(), [-1 / sB, 1 / sB, -2 / sB, 2 / sB]);
  const n = groupAdvantageValues(outcomes, { estimator: 'grpo', std: 'none' });
  close(n.advantages.flat(), [-1, 1, -2, 2]);
  // Defaults per estimator; drgrpo with a std is a contradiction.
  assert.throws(() => groupAdvantageValues(outcomes, { estimator: 'drgrpo', std: 'group' }), /drgrpo is GRPO without the std/);
});

test('zero-variance groups: advantages 0, frac_zero_std, DAPO dropping', async () => {
  const batch = makeBatch(3, [scored('same', [[1], [1], [1]]), scored('mixed', [[0], [1], [0]]), scored('pair', [[2], [2]])]);
  const keep = await lastValueFrom(of(batch).pipe(groupAdvantages({ estimator: 'grpo' })));
  assert.equal(keep.groups.length, 3);
  assert.equal(keep.metrics['frac_zero_std'], 2 / 3);
  assert.equal(keep.metrics['groups/kept'], 3);
  assert.deepEqual(
    keep.groups[0]!.trajectories.map((t) => t.advantage),
    [0, 0, 0],
  );
  const drop = await lastValueFrom(of(batch).pipe(groupAdvantages({ estimator: 'grpo', dropZeroStd: true })));
  assert.deepEqual(
    drop.groups.map((g) => g.groupId),
    ['mixed'],
  );
  assert.equal(drop.metrics['frac_zero_std'], 2 / 3); // measured before dropping
  assert.equal(drop.metrics['groups/kept'], 1);
  // mixed [0, 1, 0]: mean 1/3, unbiased std sqrt(((1/3)²·2 + (2/3)²)/2) = sqrt(1/3).
  const s = Math.sqrt(1 / 3) + 1e-4;
  close(
    drop.groups[0]!.trajectories.map((t) => t.advantage),
    [-1 / 3 / s, 2 / 3 / s, -1 / 3 / s],
  );
  close([drop.metrics['advantage/mean']!], [0], 1e-12);
});

test('outcome choices: total reward, first-step return, function', async () => {
  const g = makeGroup('g', [
    [1, 1],
    [0, 4],
  ]);
  const sc = { ...g, trajectories: g.trajectories.map((t) => discountedReturns(t, { gamma: 0.5 })) };
  // totals 2 and 4; first-step returns 1.5 and 2; custom: length − 0 = 2 and 2 (zero variance).
  const run = async (outcome: Parameters<typeof groupAdvantages>[0]) =>
    (await lastValueFrom(of(makeBatch(0, [sc])).pipe(groupAdvantages(outcome)))).groups[0]!.trajectories.map((t) => t.advantage);
  close(await run({ estimator: 'drgrpo' }), [-1, 1]);
  close(await run({ estimator: 'drgrpo', outcome: 'first-step-return' }), [-0.25, 0.25]);
  close(await run({ estimator: 'drgrpo', outcome: (t) => t.length }), [0, 0]);
});

test('rloo with a group of 1 and NaN outcomes fail with clear messages', async () => {
  assert.throws(() => groupAdvantages({ estimator: 'rloo', groupSize: 1 }), /rloo needs groupSize ≥ 2/);
  assert.throws(() => groupAdvantageValues([[1, 2], [3]], { estimator: 'rloo' }, ['a', 'b']), /rloo needs groupSize ≥ 2, group 'b' has 1/);
  const batch = makeBatch(0, [scored('p', [[1], [2]]), scored('q', [[1], [2], [3]])]);
  await assert.rejects(
    lastValueFrom(of(batch).pipe(groupAdvantages({ outcome: (t) => (t.groupId === 'q' && t.totalReward === 3 ? NaN : t.totalReward) }))),
    /outcome of group 'q', trajectory 2 is NaN/,
  );
});

test('groupAdvantages emits one batch per batch, in order; errors become stream errors (marbles)', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const b0 = makeBatch(0, [scored('a', [[1], [3]])]);
    const b1 = makeBatch(1, [scored('b', [[0], [0], [6]])]);
    const bad = makeBatch(2, [scored('c', [[1]])]); // rloo on a group of 1
    const out = cold('-x--y-z|', { x: b0, y: b1, z: bad }).pipe(
      groupAdvantages({ estimator: 'rloo' }),
      map((b) => [b.iteration, ...b.groups.flatMap((g) => g.trajectories.map((t) => t.advantage))]),
      catchError((e: Error) => of(e.message)),
    );
    expectObservable(out).toBe('-x--y-(z|)', {
      x: [0, -2, 2],
      y: [1, -3, -3, 6],
      z: "groupAdvantages: rloo needs groupSize ≥ 2, group 'c' has 1 trajectory",
    });
  });
});
