import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { discountedReturns, returns } from '../operators/returns.ts';
import { tailBootstrap } from '../operators/subTrajectories.ts';
import { makeBatch, makeGroup, makeTrajectory } from './helpers/fixtures.ts';

test('discounted returns match a hand computation; terminated vs truncated', () => {
  const tr = makeTrajectory([1, 2, 3]);
  const s = discountedReturns(tr, { gamma: 0.5 });
  // G2 = 3, G1 = 2 + 0.5*3 = 3.5, G0 = 1 + 0.5*3.5 = 2.75
  assert.deepEqual([...s.returns], [2.75, 3.5, 3]);
  assert.equal(s.totalReward, 6);
  const trunc = makeTrajectory([1, 2, 3], { terminated: false, truncated: true });
  const b = discountedReturns(trunc, { gamma: 0.5, bootstrap: () => 8 });
  // G2 = 3 + 0.5*8 = 7, G1 = 2 + 3.5 = 5.5, G0 = 1 + 2.75 = 3.75
  assert.deepEqual([...b.returns], [3.75, 5.5, 7]);
  // A terminated trajectory ignores the bootstrap.
  assert.deepEqual([...discountedReturns(tr, { gamma: 0.5, bootstrap: () => 8 }).returns], [2.75, 3.5, 3]);
  assert.throws(() => discountedReturns(tr, { gamma: 1.5 }), /gamma/);
});

test('sub-trajectory tails: folded in with γ = 1, refused with γ < 1 (tail_return is an undiscounted sum)', () => {
  const sub = { ...makeTrajectory([1, 2], { terminated: false, truncated: true }), scores: { tail_return: 10, tail_cost: 0 } };
  // γ = 1: G1 = 2 + 10 = 12, G0 = 1 + 12 = 13
  assert.deepEqual([...discountedReturns(sub, { gamma: 1, bootstrap: tailBootstrap }).returns], [13, 12]);
  // γ < 1 would weigh the tail as if its H rewards all arrived at step L: refused, naming the fix.
  assert.throws(() => discountedReturns(sub, { gamma: 0.9, bootstrap: tailBootstrap }), /tail_return .*undiscounted.*gamma 1/);
  // whole episodes (no tail) keep any γ with tailBootstrap
  const ep = makeTrajectory([1, 2], { terminated: false, truncated: true });
  assert.ok(Math.abs(discountedReturns(ep, { gamma: 0.5, bootstrap: tailBootstrap }).returns[0]! - 2) < 1e-7);
});

test('returns never rewrites the intended targets', () => {
  const targets = Float32Array.from([100, 99, 98]);
  const out = discountedReturns(makeTrajectory([1, 1, 1], { targets }), { gamma: 1 });
  assert.deepEqual([...out.targets!], [100, 99, 98]);
  assert.deepEqual([...out.returns], [3, 2, 1]);
});

test('returns emits one scored batch per batch, in order, with metrics (marbles)', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const b0 = makeBatch(0, [makeGroup('a', [[1, 1], [0]])]);
    const b1 = makeBatch(1, [makeGroup('b', [[2], [4]])]);
    const src = cold('-x--y|', { x: b0, y: b1 });
    const out = src.pipe(
      returns(),
      map((b) => [b.iteration, b.metrics['reward/mean'], b.metrics['reward/max'], b.metrics['length/mean']]),
    );
    expectObservable(out).toBe('-x--y|', { x: [0, 1, 2, 1.5], y: [1, 3, 4, 1] });
  });
});
