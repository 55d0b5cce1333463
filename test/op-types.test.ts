/**
 * Type-level tests: a wrong composition fails `tsc` (each `@ts-expect-error` line must be an error,
 * or `tsc` reports the directive as unused), the right one type-checks and runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lastValueFrom, of, type Observable } from 'rxjs';
import type { AdvantagedGroup, Batch, Group, ScoredGroup } from '../lib/data.ts';
import { constraintCost } from '../operators/constraintCost.ts';
import { groupAdvantages } from '../operators/groupAdvantages.ts';
import { hindsightRelabel } from '../operators/hindsightRelabel.ts';
import { MetricsCollector, metrics } from '../operators/metrics.ts';
import { primalDual } from '../operators/primalDual.ts';
import { LagrangeState } from '../lib/lagrange.ts';
import { ReplayBuffer, replayBuffer } from '../operators/replayBuffer.ts';
import { returns } from '../operators/returns.ts';
import { policyUpdate, type Learner } from '../operators/policyUpdate.ts';
import { makeBatch, makeGroup, makeTrajectory } from './helpers/fixtures.ts';

/** Never called: only type-checked. */
export function wrongCompositions(raw$: Observable<Batch<Group>>, lagrange: LagrangeState, buffer: ReplayBuffer, learner: Learner<unknown>): void {
  // @ts-expect-error raw trajectories have no advantages (nor cost advantages)
  raw$.pipe(primalDual(lagrange));
  // @ts-expect-error reward advantages alone are not enough: primalDual needs constraintCost's cost advantages
  raw$.pipe(returns(), groupAdvantages(), primalDual(lagrange));
  // @ts-expect-error groupAdvantages needs returns (ScoredGroup) first
  raw$.pipe(groupAdvantages());
  // @ts-expect-error constraintCost needs the reward advantages of groupAdvantages
  raw$.pipe(returns(), constraintCost());
  // @ts-expect-error primalDual's output has no guaranteed cost advantages: no combining twice
  raw$.pipe(returns(), groupAdvantages(), constraintCost(), primalDual(lagrange), primalDual(lagrange));
  // @ts-expect-error the replay buffer stores scored trajectories
  raw$.pipe(replayBuffer(buffer));
  // @ts-expect-error a constrained pipeline cannot skip primalDual: uncombined cost advantages are refused
  raw$.pipe(returns(), groupAdvantages(), constraintCost(), policyUpdate(learner));
}

/** A constrained composition with the update: type-checks. */
export function constrainedUpdate(raw$: Observable<Batch<Group>>, lagrange: LagrangeState, learner: Learner<unknown>): Observable<Batch<AdvantagedGroup>> {
  return raw$.pipe(returns(), groupAdvantages(), constraintCost(), primalDual(lagrange), policyUpdate(learner));
}

/** The HIPO-style constrained composition: type-checks. */
function constrained(raw$: Observable<Batch<Group>>, lagrange: LagrangeState, log: MetricsCollector): Observable<Batch<AdvantagedGroup>> {
  return raw$.pipe(
    returns(),
    groupAdvantages({ estimator: 'grpo' }),
    constraintCost({ costs: [{ name: 'env' }] }),
    primalDual(lagrange, { normalize: 'none' }),
    metrics({ sinks: [log] }),
  );
}

/** The ODT-style composition: type-checks. */
function odt(raw$: Observable<Batch<Group>>, buffer: ReplayBuffer): Observable<Batch<ScoredGroup>> {
  return raw$.pipe(returns(), hindsightRelabel({ scale: 1 / 1000 }), replayBuffer(buffer));
}

test('the correct compositions type-check and run', async () => {
  const start = { kind: 'seed' as const, envId: 'CartPole-v1', seed: 0 };
  const trajectories = [
    makeTrajectory([1], { groupId: 'g', start, costs: Float32Array.from([1]) }),
    makeTrajectory([3], { groupId: 'g', start, costs: Float32Array.from([0]) }),
  ];
  const batch = makeBatch<Group>(0, [{ groupId: 'g', start, trajectories }]);
  const lagrange = new LagrangeState({ constraints: [{ name: 'env', limit: 0 }], lambdaInit: 1, lr: 1 });
  const log = new MetricsCollector();
  const out = await lastValueFrom(constrained(of(batch), lagrange, log));
  // Rewards [1, 3]: A_R = ±1/(√2 + 1e-4); costs [1, 0]: A_C = ±0.5/(√0.5 + 1e-4) (unbiased std);
  // λ = 1 → A = A_R − A_C.
  const a = 1 / (Math.SQRT2 + 1e-4) + 0.5 / (Math.SQRT1_2 + 1e-4);
  const got = out.groups[0]!.trajectories.map((t) => t.advantage);
  assert.ok(Math.abs(got[0]! + a) < 1e-12 && Math.abs(got[1]! - a) < 1e-12, `${got}`);
  assert.equal(log.last()!['lambda'], 1);
  assert.equal(lagrange.lambdas[0], 1.5); // 1 + 1·(0.5 − 0)

  const buffer = new ReplayBuffer(4);
  const relabeled = await lastValueFrom(odt(of(makeBatch<Group>(0, [makeGroup('h', [[1000, 2000]])])), buffer));
  assert.deepEqual([...relabeled.groups[0]!.trajectories[0]!.targets!], [3, 2]);
  assert.equal(buffer.size, 1);
});
