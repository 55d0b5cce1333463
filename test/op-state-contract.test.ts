/**
 * The state contract of stateful operators (docs/operators.md, "State"): an operator is built once
 * around an explicit state object; every subscription of the built operator advances that one
 * object (two pipes through `primalDual(lagrange)` move the same λ, two pipes through
 * `policyUpdate(learner)` step the same weights), and the state's plain-JSON form is what a
 * checkpoint captures: restored from it, the operator continues exactly as the original.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom, of, type OperatorFunction } from 'rxjs';
import { initBackend } from '../lib/backend.ts';
import type { AdvantagedTrajectory, Batch, ScoredGroup, Trajectory } from '../lib/data.ts';
import { LagrangeState, type LagrangeConfig } from '../lib/lagrange.ts';
import type { Policy } from '../lib/models/policy.ts';
import { Rng } from '../lib/random.ts';
import type { CostAdvantagedGroup } from '../operators/constraintCost.ts';
import { policyUpdate, type Learner } from '../operators/policyUpdate.ts';
import { primalDual } from '../operators/primalDual.ts';
import { ReplayBuffer, replayBuffer } from '../operators/replayBuffer.ts';
import { discountedReturns } from '../operators/returns.ts';
import { makeBatch, makeTrajectory } from './helpers/fixtures.ts';

await initBackend({ backend: 'cpu', quiet: true });

/** Each batch through its own subscription of `op` (a fresh `of(b).pipe(op)` per batch). */
async function throughSeparateSubscriptions<I, O>(op: OperatorFunction<I, O>, batches: readonly I[]): Promise<O[]> {
  const out: O[] = [];
  for (const b of batches) out.push(await lastValueFrom(of(b).pipe(op)));
  return out;
}
/** All batches through one subscription of `op`. */
async function throughOneSubscription<I, O>(op: OperatorFunction<I, O>, batches: readonly I[]): Promise<O[]> {
  const out: O[] = [];
  await new Promise<void>((resolve, reject) =>
    of(...batches)
      .pipe(op)
      .subscribe({ next: (x) => out.push(x), error: reject, complete: resolve }),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// primalDual: one LagrangeState, shared by every subscription.

const start = { kind: 'seed' as const, envId: 'CartPole-v1', seed: 0 };
function costBatch(iteration: number, cost: number): Batch<CostAdvantagedGroup> {
  const ar = [1, -1, 0.5];
  const ac = [[0.25], [-1], [2]];
  const trajectories = ar.map((a, i) => ({ ...discountedReturns(makeTrajectory([a], { groupId: 'g', start })), advantage: a, costAdvantages: ac[i]! }));
  return { ...makeBatch(iteration, [{ groupId: 'g', start, trajectories }]), metrics: { 'cost/c/mean': cost } };
}
const costs = [3, 0.5, 2.25, 7, 1.5, 0];
const lagrangeConfigs: Array<Partial<LagrangeConfig>> = [
  { update: 'projected', lr: 0.3, lambdaMax: 5 },
  { update: 'pid', kP: 0.4, kI: 0.1, kD: 0.2, emaP: 0.5 },
];

test('primalDual: two subscriptions of one built operator advance one λ (as one subscription would)', async () => {
  for (const cfg of lagrangeConfigs) {
    const batches = costs.map((c, i) => costBatch(i, c));
    const shared = new LagrangeState({ constraints: [{ name: 'c', limit: 1 }], ...cfg });
    const op = primalDual(shared);
    const viaTwo = await throughSeparateSubscriptions(op, batches);
    const single = new LagrangeState({ constraints: [{ name: 'c', limit: 1 }], ...cfg });
    const viaOne = await throughOneSubscription(primalDual(single), batches);
    assert.deepEqual(
      viaTwo.map((b) => b.metrics['lambda']),
      viaOne.map((b) => b.metrics['lambda']),
    );
    assert.deepEqual(shared.state(), single.state());
    // λ did move (the test would pass vacuously on a constant λ otherwise).
    assert.ok(new Set(viaOne.map((b) => b.metrics['lambda'])).size > 2, `${cfg.update}: λ barely moved`);
    // The two subscriptions, interleaved, see the λ the other one left: batch 1 (second pipe) uses
    // the λ after batch 0 (first pipe), i.e. not the initial λ.
    assert.notEqual(viaTwo[1]!.metrics['lambda'], viaTwo[0]!.metrics['lambda']);
  }
});

test('primalDual: a LagrangeState restored from its JSON continues identically', async () => {
  for (const cfg of lagrangeConfigs) {
    const full = new LagrangeState({ constraints: [{ name: 'c', limit: 1 }], ...cfg });
    const fullOut = await throughOneSubscription(
      primalDual(full),
      costs.map((c, i) => costBatch(i, c)),
    );
    const first = new LagrangeState({ constraints: [{ name: 'c', limit: 1 }], ...cfg });
    await throughOneSubscription(
      primalDual(first),
      costs.slice(0, 3).map((c, i) => costBatch(i, c)),
    );
    const restored = LagrangeState.fromState(JSON.parse(JSON.stringify(first.state())));
    const restOut = await throughOneSubscription(
      primalDual(restored),
      costs.slice(3).map((c, i) => costBatch(i + 3, c)),
    );
    assert.deepEqual(
      restOut.map((b) => [b.metrics['lambda'], ...b.groups[0]!.trajectories.map((t) => t.advantage)]),
      fullOut.slice(3).map((b) => [b.metrics['lambda'], ...b.groups[0]!.trajectories.map((t) => t.advantage)]),
    );
    assert.deepEqual(restored.state(), full.state());
  }
});

// ---------------------------------------------------------------------------------------------
// replayBuffer: one ReplayBuffer, shared by every subscription.

function scoredBatch(iteration: number, returns: number[]): Batch<ScoredGroup> {
  const trajectories = returns.map((r, i) => discountedReturns(makeTrajectory([r, 0, 1].slice(0, 1 + (i % 3)), { groupId: `${iteration}/${i}`, start })));
  return makeBatch(iteration, [{ groupId: `${iteration}`, start, trajectories }]);
}
const onlineReturns = [[1, 2], [5], [0.5, 3, 4], [2]];

test('replayBuffer: two subscriptions of one built operator fill one buffer (as one subscription would)', async () => {
  const batches = onlineReturns.map((r, i) => scoredBatch(i, r));
  const shared = new ReplayBuffer(5);
  const viaTwo = await throughSeparateSubscriptions(replayBuffer(shared), batches);
  const single = new ReplayBuffer(5);
  const viaOne = await throughOneSubscription(replayBuffer(single), batches);
  assert.deepEqual(
    viaTwo.map((b) => [b.metrics['buffer/size'], b.metrics['buffer/return_mean']]),
    viaOne.map((b) => [b.metrics['buffer/size'], b.metrics['buffer/return_mean']]),
  );
  // Both subscriptions wrote into the one buffer: 8 trajectories went in, the capacity kept the newest 5.
  assert.deepEqual(viaTwo.at(-1)!.metrics['buffer/size'], 5);
  assert.deepEqual(
    shared.trajectories().map((t) => t.groupId),
    ['1/0', '2/0', '2/1', '2/2', '3/0'],
  );
  assert.deepEqual(shared.state(), single.state());
});

test('replayBuffer: a buffer restored from its JSON continues identically (contents and samples)', async () => {
  const batches = onlineReturns.map((r, i) => scoredBatch(i, r));
  const full = new ReplayBuffer(5);
  await throughOneSubscription(replayBuffer(full), batches);
  const first = new ReplayBuffer(5);
  await throughOneSubscription(replayBuffer(first), batches.slice(0, 2));
  const restored = ReplayBuffer.fromState(JSON.parse(JSON.stringify(first.state())));
  await throughOneSubscription(replayBuffer(restored), batches.slice(2));
  assert.deepEqual(restored.state(), full.state());
  assert.deepEqual(restored.sample(16, new Rng(3, 's'), 2), full.sample(16, new Rng(3, 's'), 2));
});

// ---------------------------------------------------------------------------------------------
// policyUpdate: one Learner (weights, optimizer, version, minibatch stream), shared by every subscription.

// A one-parameter policy: log π(a_t) = θ·f_t + b_t, features in the observations (rows [f, b]).
type B = { f: Float32Array; b: Float32Array };
function toyPolicy(theta: number): Policy<B, unknown, unknown> & { theta: tf.Variable } {
  const v = tf.variable(tf.scalar(theta), true);
  return {
    theta: v,
    variables: [v],
    logProb: (batch) => tf.add(tf.mul(v, tf.tensor1d(batch.f)), tf.tensor1d(batch.b)),
    entropy: (batch) => tf.mul(tf.square(v), tf.square(tf.tensor1d(batch.f))),
    act: () => {
      throw new Error('not used');
    },
    dispose: () => v.dispose(),
  };
}
const batchOf = (trs: readonly Trajectory[]): B => {
  const f: number[] = [];
  const b: number[] = [];
  for (const t of trs)
    for (let k = 0; k < t.length; k++) {
      f.push(t.observations[2 * k]!);
      b.push(t.observations[2 * k + 1]!);
    }
  return { f: Float32Array.from(f), b: Float32Array.from(b) };
};
function traj(f: number[], b: number[], old: number[], advantage: number): AdvantagedTrajectory {
  const T = f.length;
  const observations = new Float32Array(2 * (T + 1));
  f.forEach((x, k) => {
    observations[2 * k] = x;
    observations[2 * k + 1] = b[k]!;
  });
  const base = makeTrajectory(new Array(T).fill(0), { obsDim: 2, observations, logProbs: Float32Array.from(old) });
  return { ...base, returns: new Float32Array(T), totalReward: 0, totalCost: 0, advantage };
}
function updateBatch(iteration: number): Batch<{ groupId: string; start: typeof start; trajectories: AdvantagedTrajectory[] }> {
  const s = iteration * 0.1;
  const trajectories = [
    traj([0.5, -1, 2], [-1, -0.5, -2], [-0.9, -0.2, -1.5], 1.3 - s),
    traj([1, 0.3], [-0.7, -1.1], [-0.4, -1.2], -0.8 + s),
    traj([-0.6, 0.9, 0.1, 1.5], [-0.3, -0.9, -1, -2.2], [-0.8, -0.5, -1.1, -0.6], 0.4),
    traj([0.2, -0.4], [-1.3, -0.2], [-1.1, -0.4], -0.9 + s),
  ];
  return makeBatch(iteration, [{ groupId: `${iteration}`, start, trajectories }]);
}
const updateConfig = { epochs: 2, minibatches: 2, clipEps: 0.2 };
/** A learner with SGD (no optimizer slots): its whole state is θ, the version and the minibatch stream. */
function makeLearner(theta: number, version: number, rng: Rng): Learner<B> & { policy: ReturnType<typeof toyPolicy> } {
  return { policy: toyPolicy(theta), optimizer: tf.train.sgd(0.05), batchOf, version, rng };
}
function learnerJson(l: Learner<B> & { policy: ReturnType<typeof toyPolicy> }): string {
  return JSON.stringify({ theta: l.policy.theta.dataSync()[0], version: l.version, rng: l.rng!.state() });
}
function disposeLearner(l: Learner<B>): void {
  l.policy.dispose();
  l.optimizer.dispose();
}

test('policyUpdate: two subscriptions of one built operator step one learner (as one subscription would)', async () => {
  const batches = [0, 1, 2, 3].map(updateBatch);
  const shared = makeLearner(0.3, 0, new Rng(7, 'policyUpdate/minibatch'));
  const single = makeLearner(0.3, 0, new Rng(7, 'policyUpdate/minibatch'));
  const before = tf.memory().numTensors;
  const viaTwo = await throughSeparateSubscriptions(policyUpdate(shared, updateConfig), batches);
  const viaOne = await throughOneSubscription(policyUpdate(single, updateConfig), batches);
  assert.deepEqual(
    viaTwo.map((b) => [b.metrics['loss'], b.metrics['policy_version'], b.metrics['clip_frac']]),
    viaOne.map((b) => [b.metrics['loss'], b.metrics['policy_version'], b.metrics['clip_frac']]),
  );
  assert.equal(shared.version, 4);
  assert.equal(learnerJson(shared), learnerJson(single));
  assert.notEqual(shared.policy.theta.dataSync()[0], 0.3, 'θ did not move');
  assert.equal(tf.memory().numTensors, before, 'the updates leaked tensors');
  disposeLearner(shared);
  disposeLearner(single);
});

test('policyUpdate: a learner restored from its JSON continues identically', async () => {
  const batches = [0, 1, 2, 3].map(updateBatch);
  const full = makeLearner(0.3, 0, new Rng(7, 'policyUpdate/minibatch'));
  const fullOut = await throughOneSubscription(policyUpdate(full, updateConfig), batches);
  const first = makeLearner(0.3, 0, new Rng(7, 'policyUpdate/minibatch'));
  await throughOneSubscription(policyUpdate(first, updateConfig), batches.slice(0, 2));
  const json = JSON.parse(learnerJson(first)) as { theta: number; version: number; rng: ReturnType<Rng['state']> };
  const restored = makeLearner(json.theta, json.version, Rng.fromState(json.rng));
  const before = tf.memory().numTensors;
  const restOut = await throughOneSubscription(policyUpdate(restored, updateConfig), batches.slice(2));
  assert.equal(tf.memory().numTensors, before, 'the updates leaked tensors');
  assert.deepEqual(
    restOut.map((b) => [b.metrics['loss'], b.metrics['policy_version'], b.metrics['grad_norm']]),
    fullOut.slice(2).map((b) => [b.metrics['loss'], b.metrics['policy_version'], b.metrics['grad_norm']]),
  );
  assert.equal(learnerJson(restored), learnerJson(full));
  for (const l of [full, first, restored]) disposeLearner(l);
});
