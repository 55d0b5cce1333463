import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { TestScheduler } from 'rxjs/testing';
import { map, of } from 'rxjs';
import { policyUpdate, updateStep, NonFiniteUpdateError, POLICY_UPDATE_DEFAULTS, type Learner, type PolicyUpdateConfig } from '../operators/policyUpdate.ts';
import type { AdvantagedTrajectory, AdvantagedGroup, Trajectory } from '../lib/data.ts';
import type { Policy } from '../lib/models/policy.ts';
import { makeTrajectory } from './helpers/fixtures.ts';

await initBackend({ backend: 'cpu', quiet: true });

// A one-parameter "policy": log π(a_t) = θ·f_t + b_t, with a per-step feature f and offset b stored
// in the trajectory's observations (rows 0..T-1: [f, b]). Entropy per step: θ² f² (any smooth function).
type B = { f: Float32Array; b: Float32Array };
function toyPolicy(theta: number): Policy<B, unknown, unknown> & { theta: tf.Variable } {
  const v = tf.variable(tf.scalar(theta), true, `theta${Math.random()}`);
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

const trs = [
  traj([0.5, -1, 2], [-1, -0.5, -2], [-0.9, -0.2, -1.5], 1.3),
  traj([1, 0.3], [-0.7, -1.1], [-0.4, -1.2], -0.8),
  traj([-0.6, 0.9, 0.1, 1.5], [-0.3, -0.9, -1, -2.2], [-0.8, -0.5, -1.1, -0.6], 0.4),
];

/** Independent plain-JS loss, written from the formula. */
function refLoss(theta: number, cfg: PolicyUpdateConfig, refTheta: number): number {
  const lo = 1 - cfg.clipEps,
    hi = 1 + (cfg.clipEpsHigh ?? cfg.clipEps);
  const clip = (r: number) => Math.min(hi, Math.max(lo, r));
  const N = trs.length;
  const S = trs.reduce((s, t) => s + t.length, 0);
  const C = cfg.aggregationConstant ?? Math.max(...trs.map((t) => t.length));
  let surr = 0,
    kl = 0,
    ent = 0;
  for (const t of trs) {
    const T = t.length;
    const w = cfg.lossAggregation === 'token-mean' ? 1 / S : cfg.lossAggregation === 'sequence-mean' ? 1 / (N * T) : 1 / (N * C);
    let sumLogRatio = 0;
    for (let k = 0; k < T; k++) {
      const f = t.observations[2 * k]!,
        b = t.observations[2 * k + 1]!;
      const lp = theta * f + b;
      const lr = lp - t.logProbs[k]!;
      sumLogRatio += lr;
      const r = Math.exp(lr);
      if (cfg.ratioLevel === 'token') surr += w * Math.min(r * t.advantage, clip(r) * t.advantage);
      const d = refTheta * f + b - lp;
      kl += w * (cfg.klEstimator === 'k1' ? -d : Math.exp(d) - d - 1);
      ent += w * theta * theta * f * f;
    }
    if (cfg.ratioLevel !== 'token') {
      // one term per trajectory, counted on each of its T steps and aggregated like token terms:
      // token-mean T/S, sequence-mean 1/N (GSPO), constant T/(N·C)
      const s = Math.exp(cfg.ratioLevel === 'sequence' ? sumLogRatio / T : sumLogRatio);
      surr += T * w * Math.min(s * t.advantage, clip(s) * t.advantage);
    }
  }
  return -surr + cfg.klCoef * kl - cfg.entropyCoef * ent;
}

const cases: Partial<PolicyUpdateConfig>[] = [
  { ratioLevel: 'token', lossAggregation: 'token-mean' },
  { ratioLevel: 'token', lossAggregation: 'sequence-mean', clipEps: 0.1, clipEpsHigh: 0.28 },
  { ratioLevel: 'token', lossAggregation: 'constant', aggregationConstant: 10, klCoef: 0.3, klEstimator: 'k1' },
  { ratioLevel: 'sequence', lossAggregation: 'token-mean', klCoef: 0.5, klEstimator: 'k3', entropyCoef: 0.05 },
  { ratioLevel: 'subtrajectory', lossAggregation: 'sequence-mean', clipEps: 0.3 },
  { ratioLevel: 'sequence', lossAggregation: 'sequence-mean' },
  { ratioLevel: 'sequence', lossAggregation: 'constant', aggregationConstant: 6 },
  { ratioLevel: 'subtrajectory', lossAggregation: 'token-mean', clipEps: 0.3 },
];

for (const c of cases) {
  test(`loss and gradient match the formula by finite differences: ${JSON.stringify(c)}`, () => {
    const cfg: PolicyUpdateConfig = { ...POLICY_UPDATE_DEFAULTS, maxGradNorm: Infinity, ...c };
    for (const theta0 of [0.05, 0.4, -0.3]) {
      const pi = toyPolicy(theta0);
      const ref = toyPolicy(0.1);
      const lr = 0.01;
      const learner: Learner<B> = { policy: pi, optimizer: tf.train.sgd(lr), batchOf, version: 0, ref };
      const s = updateStep(learner, trs, cfg, cfg.aggregationConstant ?? 4);
      const L = refLoss(theta0, cfg, 0.1);
      assert.ok(Math.abs(s.loss - L) < 1e-5 * Math.max(1, Math.abs(L)), `loss ${s.loss} vs ${L}`);
      const h = 1e-5;
      const grad = (refLoss(theta0 + h, cfg, 0.1) - refLoss(theta0 - h, cfg, 0.1)) / (2 * h);
      assert.ok(Math.abs(s.gradNorm - Math.abs(grad)) < 1e-3 * Math.max(1, Math.abs(grad)), `|grad| ${s.gradNorm} vs ${Math.abs(grad)}`);
      const moved = pi.theta.dataSync()[0]!;
      assert.ok(Math.abs(moved - (theta0 - lr * grad)) < 1e-6, `θ ${moved} vs ${theta0 - lr * grad}`);
      pi.dispose();
      ref.dispose();
      learner.optimizer.dispose();
    }
  });
}

test('gradient clipping scales the step to maxGradNorm', () => {
  const pi = toyPolicy(0.4);
  const learner: Learner<B> = { policy: pi, optimizer: tf.train.sgd(1), batchOf, version: 0 };
  const cfg = { ...POLICY_UPDATE_DEFAULTS, maxGradNorm: 1e-3 };
  const s = updateStep(learner, trs, cfg, 4);
  assert.ok(s.gradNorm > 1e-3);
  const step = Math.abs(pi.theta.dataSync()[0]! - 0.4);
  assert.ok(Math.abs(step - 1e-3) < 1e-6, `step ${step}`);
  pi.dispose();
});

test('a NaN loss is an error raised before any weight changes', () => {
  const pi = toyPolicy(0.4);
  const learner: Learner<B> = { policy: pi, optimizer: tf.train.sgd(0.1), batchOf, version: 0 };
  const bad = [traj([1, Number.NaN], [0, 0], [-1, -1], 1)];
  const before = tf.memory().numTensors;
  assert.throws(
    () => updateStep(learner, bad, POLICY_UPDATE_DEFAULTS, 2),
    (e: unknown) => e instanceof NonFiniteUpdateError && /this step changed no weights/.test(e.message),
  );
  assert.equal(pi.theta.dataSync()[0], Math.fround(0.4));
  assert.equal(tf.memory().numTensors, before);
  pi.dispose();
});

test('policyUpdate emits one batch per batch, bumps the version, leaks no tensors (marbles)', () => {
  const pi = toyPolicy(0.2);
  const learner: Learner<B> = { policy: pi, optimizer: tf.train.adam(0.01), batchOf, version: 0 };
  const group: AdvantagedGroup = { groupId: 'g', start: trs[0]!.start, trajectories: trs };
  const batch = (i: number) => ({ iteration: i, groups: [group], metrics: { x: i } });
  // Warm up the optimizer's slot variables so the tensor count is comparable.
  updateStep(learner, trs, POLICY_UPDATE_DEFAULTS, 4);
  learner.version = 0;
  const before = tf.memory().numTensors;
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const src = cold('a-b-c|', { a: batch(0), b: batch(1), c: batch(2) });
    const out = src.pipe(
      policyUpdate(learner, { epochs: 2, minibatches: 2 }),
      map((b) => [b.iteration, b.metrics.x, b.metrics.policy_version, typeof b.metrics.clip_frac]),
    );
    expectObservable(out).toBe('a-b-c|', { a: [0, 0, 1, 'number'], b: [1, 1, 2, 'number'], c: [2, 2, 3, 'number'] });
  });
  assert.equal(learner.version, 3);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => policyUpdate(learner, { epochs: 0 }), /epochs: expected a positive integer, got 0/);
  assert.throws(() => policyUpdate(learner, { klCoef: 0.1 }), /klCoef > 0 needs a reference policy/);
  // Cost advantages that never went through primalDual are refused at run time.
  const uncombined: AdvantagedGroup = { ...group, trajectories: trs.map((t) => ({ ...t, costAdvantages: [0.5] })) };
  let caught: unknown;
  policyUpdate(learner)(of({ iteration: 0, groups: [uncombined], metrics: {} })).subscribe({ error: (e: unknown) => (caught = e) });
  assert.match(String(caught), /never combined with the reward advantage; put primalDual between constraintCost and policyUpdate/);
  pi.dispose();
});

test('kl is measured whenever a reference exists, also with klCoef = 0 (and stays out of the loss)', () => {
  for (const klEstimator of ['k1', 'k3'] as const) {
    const cfg: PolicyUpdateConfig = { ...POLICY_UPDATE_DEFAULTS, maxGradNorm: Infinity, klCoef: 0, klEstimator };
    const pi = toyPolicy(0.4);
    const ref = toyPolicy(0.1);
    const learner: Learner<B> = { policy: pi, optimizer: tf.train.sgd(0.01), batchOf, version: 0, ref };
    const before = tf.memory().numTensors;
    const s = updateStep(learner, trs, cfg, 4);
    assert.equal(tf.memory().numTensors, before);
    // the KL term of refLoss alone: refLoss with klCoef 1 minus refLoss with klCoef 0
    const kl = refLoss(0.4, { ...cfg, klCoef: 1 }, 0.1) - refLoss(0.4, cfg, 0.1);
    assert.ok(Math.abs(kl) > 1e-3, 'the reference differs from the policy');
    assert.ok(Math.abs(s.kl - kl) < 1e-5, `${klEstimator}: kl ${s.kl} vs ${kl}`);
    assert.ok(Math.abs(s.loss - refLoss(0.4, cfg, 0.1)) < 1e-5, 'kl is not in the loss');
    pi.dispose();
    ref.dispose();
    learner.optimizer.dispose();
  }
});

test('Trajectory.mask: padding steps count nowhere — the update equals the one on the trajectories without them', () => {
  // Each trajectory of `trs` with padding steps inserted (mask 0), whose old log-probs are far off
  // (an unmasked ratio there would be e^±25 and clipped); plus one trajectory that is all padding.
  type Spec = [number[], number[], number[], number];
  const specs: Spec[] = [
    [[0.5, -1, 2], [-1, -0.5, -2], [-0.9, -0.2, -1.5], 1.3],
    [[1, 0.3], [-0.7, -1.1], [-0.4, -1.2], -0.8],
    [[-0.6, 0.9, 0.1, 1.5], [-0.3, -0.9, -1, -2.2], [-0.8, -0.5, -1.1, -0.6], 0.4],
  ];
  const padAt: number[][] = [[0, 1], [2], [4, 5, 6]]; // left padding, right padding, a padded tail
  const masked = specs.map(([f, b, old, adv], i) => {
    const F = [...f],
      Bv = [...b],
      O = [...old],
      M = f.map(() => 1);
    for (const p of padAt[i]!) {
      F.splice(p, 0, 1.7);
      Bv.splice(p, 0, -0.2);
      O.splice(p, 0, i % 2 ? 25 : -25);
      M.splice(p, 0, 0);
    }
    return { ...traj(F, Bv, O, adv), mask: Float32Array.from(M) };
  });
  masked.push({ ...traj([2, -2], [-0.1, -0.1], [-20, 20], 5), mask: new Float32Array(2) });
  const plain = specs.map(([f, b, old, adv]) => traj(f, b, old, adv));
  const configs: Partial<PolicyUpdateConfig>[] = [
    { ratioLevel: 'token', lossAggregation: 'token-mean', klCoef: 0.3, entropyCoef: 0.05 },
    { ratioLevel: 'token', lossAggregation: 'sequence-mean', klEstimator: 'k1', klCoef: 0.1 },
    { ratioLevel: 'token', lossAggregation: 'constant', aggregationConstant: 5 },
    { ratioLevel: 'sequence', lossAggregation: 'token-mean', entropyCoef: 0.05 },
    { ratioLevel: 'subtrajectory', lossAggregation: 'sequence-mean', klCoef: 0.2 },
  ];
  for (const c of configs) {
    const cfg: PolicyUpdateConfig = { ...POLICY_UPDATE_DEFAULTS, maxGradNorm: Infinity, ...c };
    const run = (set: AdvantagedTrajectory[]) => {
      const pi = toyPolicy(0.3);
      const ref = toyPolicy(0.1);
      const learner: Learner<B> = { policy: pi, optimizer: tf.train.sgd(0.01), batchOf, version: 0, ref };
      const s = updateStep(learner, set, cfg, cfg.aggregationConstant ?? 4);
      const theta = pi.theta.dataSync()[0]!;
      pi.dispose();
      ref.dispose();
      learner.optimizer.dispose();
      return { ...s, theta };
    };
    const m = run(masked);
    const p = run(plain);
    for (const k of ['loss', 'kl', 'entropy', 'gradNorm', 'clipFrac', 'ratioMean', 'ratioMax', 'theta'] as const) {
      assert.ok(Math.abs(m[k] - p[k]) < 1e-5 * Math.max(1, Math.abs(p[k])), `${JSON.stringify(c)} ${k}: masked ${m[k]} vs without padding ${p[k]}`);
    }
  }
  // a minibatch of padding only is refused like an empty one
  const pi = toyPolicy(0.3);
  const learner: Learner<B> = { policy: pi, optimizer: tf.train.sgd(0.01), batchOf, version: 0 };
  assert.throws(() => updateStep(learner, [masked[3]!], POLICY_UPDATE_DEFAULTS, 4), /no steps/);
  pi.dispose();
  learner.optimizer.dispose();
});
