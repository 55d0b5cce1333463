import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom, of } from 'rxjs';
import { initBackend } from '../lib/backend.ts';
import { loadD4rl } from '../lib/datasets/d4rl.ts';
import { d4rlTrajectories, sampleWindows, stateNormOf, windowBatch } from '../lib/datasets/windows.ts';
import { DecisionTransformer } from '../lib/models/decision-transformer.ts';
import { Rng } from '../lib/random.ts';
import { dtLearner, dtLearnerState, dtSupervisedUpdate, restoreDtLearner } from '../operators/dtSupervisedUpdate.ts';

const FILE = 'test/data/hopper-tiny.hdf5';
before(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

test('d4rlTrajectories: achieved returns-to-go as targets; stateNormOf matches a two-pass reference', async () => {
  const data = await loadD4rl(FILE);
  const trs = d4rlTrajectories(data, 'Hopper-v4');
  assert.equal(trs.length, 10);
  for (const tr of trs) {
    let g = 0;
    for (let t = tr.length - 1; t >= 0; t--) {
      g += tr.rewards[t]!;
      assert.ok(Math.abs(tr.targets![t]! - g) < 1e-4);
    }
    assert.equal(tr.observations.length, (tr.length + 1) * 11);
  }
  const norm = stateNormOf(data);
  for (const d of [0, 5, 10]) {
    const xs = Array.from({ length: data.n }, (_, i) => data.observations[i * 11 + d]!);
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
    assert.ok(Math.abs(norm.mean[d]! - m) < 1e-5 && Math.abs(norm.std[d]! - sd - 1e-6) < 1e-5, `dim ${d}`);
  }
});

test('sampleWindows weights trajectories by length; windowBatch left-pads', () => {
  const trs = [{ length: 30 }, { length: 10 }];
  const rng = new Rng(3);
  const ws = sampleWindows(trs, 4000, 5, rng);
  const frac = ws.filter((w) => w.index === 0).length / ws.length;
  assert.ok(Math.abs(frac - 0.75) < 0.03, `P(long) = ${frac}, expected 0.75`);
  assert.ok(ws.every((w) => w.length === Math.min(5, trs[w.index]!.length - w.start) && w.start < trs[w.index]!.length));
});

test('windowBatch: left padding, scaled targets, normalised states', async () => {
  const data = await loadD4rl(FILE);
  const trs = d4rlTrajectories(data, 'Hopper-v4');
  const norm = stateNormOf(data);
  const b = windowBatch(trs, [{ index: 2, start: 15, length: 3 }], { K: 5, rtgScale: 1e-3, stateNorm: norm });
  assert.deepEqual(Array.from(b.mask), [0, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(b.timesteps), [0, 0, 15, 16, 17]);
  assert.ok(Math.abs(b.returnsToGo[2]! - trs[2]!.targets![15]! * 1e-3) < 1e-9);
  assert.equal(b.returnsToGo[1], 0);
  const s = trs[2]!.observations[16 * 11 + 4]!;
  assert.ok(Math.abs(b.states[3 * 11 + 4]! - (s - norm.mean[4]!) / norm.std[4]!) < 1e-5);
  assert.throws(() => windowBatch(trs, [{ index: 2, start: 16, length: 3 }], { K: 5 }), /window 0 \[16, 19\) does not fit trajectory 2 of length 18/);
});

async function train(seed: number, steps: number) {
  const data = await loadD4rl(FILE);
  const trs = d4rlTrajectories(data, 'Hopper-v4');
  const stateNorm = stateNormOf(data);
  const dt = new DecisionTransformer({ stateDim: 11, actDim: 3, contextLength: 5, maxEpisodeSteps: 64, core: { dModel: 16, nLayers: 1, nHeads: 1 }, seed });
  const learner = dtLearner(dt, { seed });
  const op = dtSupervisedUpdate(learner, { steps, batchSize: 16, contextLength: 5, learningRate: 3e-3, warmupSteps: 2, stateNorm });
  const out = [];
  for (let i = 0; i < 3; i++) out.push((await lastValueFrom(of({ iteration: i, trajectories: trs }).pipe(op))).metrics);
  return { out, learner, dt };
}

test('dtSupervisedUpdate: NLL falls, the temperature moves toward the target entropy, seeded, no leak', async () => {
  const n0 = tf.memory().numTensors;
  const a = await train(1, 8);
  const nll = a.out.map((m) => m['dt/nll']!);
  assert.ok(nll[2]! < nll[0]! - 0.1, `NLL ${nll.join(' → ')}`);
  for (const m of a.out) for (const k of ['dt/nll', 'dt/entropy', 'dt/temperature', 'grad_norm', 'policy_version']) assert.ok(Number.isFinite(m[k]), k);
  assert.deepEqual(
    a.out.map((m) => m.policy_version),
    [1, 2, 3],
  );
  assert.equal(a.learner.step, 24);
  // Entropy above the target −|A| = −3: the dual step lowers α below its start 0.1.
  assert.ok(a.out[0]!['dt/entropy']! > -3);
  assert.ok(a.out[2]!['dt/temperature']! < 0.1);
  const b = await train(1, 8);
  assert.deepEqual(b.out, a.out, 'same seed, same metrics');
  // State round trip.
  const s = dtLearnerState(a.learner);
  restoreDtLearner(b.learner, { ...s, rng: { ...s.rng } });
  assert.deepEqual(dtLearnerState(b.learner), s);
  for (const r of [a, b]) {
    r.dt.dispose();
    r.learner.optimizer.dispose();
  }
  assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
});
