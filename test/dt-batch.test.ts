import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { makeVectorEnv } from '../lib/envs/registry.ts';
import { Rng } from '../lib/random.ts';
import type { Trajectory } from '../lib/data.ts';
import { DecisionTransformer, type DtBatch } from '../lib/models/decision-transformer.ts';
import { dtActor } from '../lib/models/dt-actor.ts';
import { dtBatchOf, dtPolicy, type StateNorm } from '../lib/models/dt-batch.ts';
import { rolloutGroup } from '../operators/rollout.ts';

before(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

const K = 3;
const SCALE = 1 / 100;
const NORM: StateNorm = { mean: Float32Array.from([0.1, -0.2, 0.3]), std: Float32Array.from([0.9, 1.1, 2.5]) };
const makeDt = () =>
  new DecisionTransformer({ stateDim: 3, actDim: 1, contextLength: 8, maxEpisodeSteps: 200, core: { dModel: 16, nLayers: 1, nHeads: 2 }, seed: 4 });

/** Two groups of Pendulum trajectories acted by the DT at context K (one from a snapshot start, mid-episode). */
async function trajectories(dt: DecisionTransformer): Promise<Trajectory[]> {
  const venv = await makeVectorEnv('Pendulum-v1', 2, {}, { autoreset: 'disabled' });
  const actor = dtActor(dt, { targetReturn: -150.3, scale: SCALE, contextLength: K, stateNorm: NORM, version: () => 0 });
  const g1 = rolloutGroup({ venv, actor, rng: new Rng(1), maxSteps: 7 }, { kind: 'seed', envId: 'Pendulum-v1', seed: 3 }, 'a');
  // Walk 5 steps, snapshot, and act from there (timesteps continue at t = 5).
  venv.reset([9, 9]);
  for (let i = 0; i < 5; i++) venv.step(Float32Array.from([0.3, -0.3]));
  const snap = venv.snapshot().envs[0]!;
  const obs = venv.observations.slice(0, 3);
  const g2 = rolloutGroup({ venv, actor, rng: new Rng(2), maxSteps: 4 }, { kind: 'snapshot', snapshot: snap, observation: obs, t: 5 }, 'b');
  venv.close();
  return [...g1.trajectories, ...g2.trajectories];
}

/** Reference: window by window, one B = 1 forward per step, built by an independent loop. */
function referenceLogProbs(dt: DecisionTransformer, trs: readonly Trajectory[]): number[] {
  const out: number[] = [];
  for (const tr of trs) {
    for (let t = 0; t < tr.length; t++) {
      const states = new Float32Array(K * 3);
      const actions = new Float32Array(K);
      const returnsToGo = new Float32Array(K);
      const timesteps = new Int32Array(K);
      const mask = new Float32Array(K);
      for (let j = 0; j < K; j++) {
        const u = t - (K - 1) + j; // the step at position j
        if (u < 0) continue;
        for (let d = 0; d < 3; d++) states[j * 3 + d] = (tr.observations[u * 3 + d]! - NORM.mean[d]!) / NORM.std[d]!;
        actions[j] = (tr.actions as Float32Array)[u]!;
        returnsToGo[j] = tr.targets![u]! * SCALE;
        timesteps[j] = tr.timesteps![u]!;
        mask[j] = 1;
      }
      const b: DtBatch = { batchSize: 1, length: K, states, actions, returnsToGo, timesteps, mask };
      out.push(tf.tidy(() => dt.actionLogProb(b).dataSync()[K - 1]!));
    }
  }
  return out;
}

test('dtBatchOf + dtPolicy: log-probs equal the window-by-window reference and the behaviour log-probs', async () => {
  const dt = makeDt();
  const trs = await trajectories(dt);
  assert.equal(trs[2]!.timesteps![0], 5, 'the snapshot group starts at t = 5');
  const batch = dtBatchOf(trs, { K, rtgScale: SCALE, stateNorm: NORM });
  const total = trs.reduce((n, tr) => n + tr.length, 0);
  assert.equal(batch.batchSize, total);
  const pi = dtPolicy(dt, { rng: new Rng(0, 'ent') });
  const before = tf.memory().numTensors;
  const got = tf.tidy(() => Array.from(pi.logProb(batch).dataSync()));
  assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  assert.equal(got.length, total);
  const ref = referenceLogProbs(dt, trs);
  const behaviour = trs.flatMap((tr) => Array.from(tr.logProbs));
  for (let i = 0; i < total; i++) {
    assert.ok(Math.abs(got[i]! - ref[i]!) < 1e-4, `step ${i}: batch ${got[i]} vs reference ${ref[i]}`);
    assert.ok(Math.abs(got[i]! - behaviour[i]!) < 1e-3, `step ${i}: batch ${got[i]} vs behaviour ${behaviour[i]}`);
  }
  // Entropy: one value per step, finite, and no leak.
  const ent = tf.tidy(() => Array.from(pi.entropy(batch).dataSync()));
  assert.equal(ent.length, total);
  assert.ok(ent.every(Number.isFinite));
  assert.equal(tf.memory().numTensors, before);
  dt.dispose();
});

test('dtBatchOf: left padding and masks; no window reaches into another trajectory', async () => {
  const dt = makeDt();
  const trs = await trajectories(dt);
  const batch = dtBatchOf(trs, { K, rtgScale: SCALE, stateNorm: NORM });
  let row = 0;
  for (const tr of trs) {
    for (let t = 0; t < tr.length; t++, row++) {
      const m = Array.from(batch.mask.subarray(row * K, (row + 1) * K));
      const real = Math.min(K, t + 1);
      assert.deepEqual(m, [...new Array<number>(K - real).fill(0), ...new Array<number>(real).fill(1)], `row ${row} mask`);
      for (let j = 0; j < K - real; j++) {
        assert.equal(batch.returnsToGo[row * K + j], 0);
        assert.equal(batch.actions[row * K + j], 0);
        assert.ok(batch.states.subarray((row * K + j) * 3, (row * K + j + 1) * 3).every((x) => x === 0));
      }
      assert.equal(batch.timesteps[row * K + K - 1], tr.timesteps![t], 'the last position is the scored step');
      assert.equal(batch.actions[row * K + K - 1], (tr.actions as Float32Array)[t]);
    }
  }
  // Changing trajectory 0 leaves every other trajectory's log-probs untouched.
  const pi = dtPolicy(dt);
  const lp = (x: Trajectory[]) => tf.tidy(() => Array.from(pi.logProb(dtBatchOf(x, { K, rtgScale: SCALE, stateNorm: NORM })).dataSync()));
  const base = lp(trs);
  const t0 = trs[0]!;
  const changed = { ...t0, observations: t0.observations.map((x) => x + 1), targets: t0.targets!.map((x) => x * 2) };
  const after = lp([changed, ...trs.slice(1)]);
  assert.notDeepEqual(after.slice(0, t0.length), base.slice(0, t0.length), 'trajectory 0 changed');
  assert.deepEqual(after.slice(t0.length), base.slice(t0.length), 'the others did not');
  dt.dispose();
});

test('dtBatchOf: bad input names the trajectory', () => {
  const tr: Trajectory = {
    length: 1,
    obsDim: 3,
    actDim: 1,
    observations: new Float32Array(6),
    actions: new Float32Array(1),
    logProbs: new Float32Array(1),
    rewards: new Float32Array(1),
    costs: new Float32Array(1),
    terminated: false,
    truncated: true,
    policyVersion: 0,
    groupId: 'g7',
    start: { kind: 'seed', envId: 'x', seed: 0 },
  };
  assert.throws(() => dtBatchOf([tr], { K }), /group g7 has no targets/);
  assert.throws(() => dtBatchOf([{ ...tr, targets: new Float32Array(1) }], { K: 0 }), /K: expected a positive integer/);
  assert.throws(() => dtBatchOf([{ ...tr, targets: new Float32Array(1), actions: new Int32Array(1) }], { K }), /discrete actions/);
});
