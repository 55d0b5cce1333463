/**
 * QGRPO's parts on tiny shapes (cpu backend): `criticGroups` + `groupAdvantages` against a hand
 * computation of the twin critic (plain float64 loops over its weights) and of GRPO's advantage;
 * the one-row-per-trajectory DT batch (`dtWindowBatchOf` / `dtWindowPolicy`) against `dtBatchOf` /
 * `dtPolicy`; the context at the state after the last action (`dtStepWindows`); `dtCriticUpdate`
 * refusing a non-finite loss before any weight changes, and its state round trip; `PlainAdam`
 * against tf.train.adam.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom, of } from 'rxjs';
import { initBackend } from '../lib/backend.ts';
import type { Batch, ScoredGroup, ScoredTrajectory } from '../lib/data.ts';
import { DecisionTransformer } from '../lib/models/decision-transformer.ts';
import { dtBatchOf, dtPolicy, dtStepWindows, dtWindowBatchOf, dtWindowPolicy, normalizeState, type StateNorm } from '../lib/models/dt-batch.ts';
import { Rng } from '../lib/random.ts';
import { criticGroups, criticOutcome } from '../operators/criticGroups.ts';
import {
  DtCriticStateC,
  createDtCriticLearner,
  disposeDtCriticLearner,
  dtCriticLearnerState,
  dtCriticUpdate,
  restoreDtCriticLearner,
  type DtCriticLearner,
} from '../operators/dtCriticUpdate.ts';
import { groupAdvantages } from '../operators/groupAdvantages.ts';
import { NonFiniteUpdateError } from '../operators/policyUpdate.ts';
import { decodeOrThrow } from '../lib/codec.ts';
import { ParamStore } from '../lib/models/params.ts';
import { PlainAdam, PlainAdamStateC } from '../lib/models/plain-adam.ts';

await initBackend({ backend: 'cpu', quiet: true });

const S = 3;
const A = 2;
const K = 3;
const NORM: StateNorm = { mean: Float32Array.from([0.1, -0.2, 0.3]), std: Float32Array.from([1.5, 0.5, 2]) };
const WINDOW = { K, rtgScale: 0.01, stateNorm: NORM };

/** A DT trajectory of T steps with intended targets R̂_{t+1} = R̂_t − r_t (as `dtActor` records them). */
function episode(T: number, seed: number, opts: { terminated?: boolean; rewards?: number[] } = {}): ScoredTrajectory {
  const rng = new Rng(seed, 'episode');
  const rewards = Float32Array.from(opts.rewards ?? Array.from({ length: T }, () => rng.uniform(-1, 2)));
  const targets = new Float32Array(T);
  let rtg = 50;
  for (let t = 0; t < T; t++) {
    targets[t] = rtg;
    rtg -= rewards[t]!;
  }
  return {
    length: T,
    obsDim: S,
    actDim: A,
    observations: Float32Array.from(rng.normalArray((T + 1) * S)),
    actions: Float32Array.from(rng.uniformArray(T * A, -0.9, 0.9)),
    logProbs: new Float32Array(T),
    rewards,
    costs: new Float32Array(T),
    terminated: opts.terminated ?? false,
    truncated: !(opts.terminated ?? false),
    policyVersion: 0,
    groupId: `e${seed}`,
    start: { kind: 'seed', envId: 'Test-v0', seed },
    targets,
    timesteps: Int32Array.from({ length: T }, (_, t) => t),
    returns: new Float32Array(T),
    totalReward: rewards.reduce((a, b) => a + b, 0),
    totalCost: 0,
  };
}

const batchOf = (trs: ScoredTrajectory[]): Batch<ScoredGroup> => ({
  iteration: 7,
  groups: trs.map((tr) => ({ groupId: tr.groupId, start: tr.start, trajectories: [tr] })),
  metrics: { 'reward/mean': 1 },
});

/** A learner whose critic has hand-set weights (a fixed pattern, some units active, some not). */
function fixedLearner(dt: DecisionTransformer): DtCriticLearner {
  const l = createDtCriticLearner({ dt, window: WINDOW, hidden: [4], seed: 0, bufferSize: 8 });
  const rec: Record<string, { shape: number[]; data: Float32Array }> = {};
  let k = 0;
  for (const [name, v] of l.critic.params.map)
    rec[name] = { shape: [...v.shape], data: Float32Array.from({ length: v.size }, () => (((k++ * 7) % 11) - 5) / 8) };
  l.critic.params.load(rec);
  return l;
}

/** Q_i(s, a) in float64 from the critic's weights: w_o · relu(W_1ᵀ [s, a] + b_1) + b_o. */
function handQ(l: DtCriticLearner, which: 1 | 2, s: ArrayLike<number>, a: ArrayLike<number>): number {
  const p = l.critic.params;
  const W = p.get(`q${which}.layers.0.weight`).dataSync();
  const b = p.get(`q${which}.layers.0.bias`).dataSync();
  const wo = p.get(`q${which}.out.weight`).dataSync();
  const bo = p.get(`q${which}.out.bias`).dataSync();
  const x = [...Array.from(s), ...Array.from(a)];
  const H = b.length;
  let q = bo[0]!;
  for (let h = 0; h < H; h++) {
    let z = b[h]!;
    for (let i = 0; i < x.length; i++) z += x[i]! * W[i * H + h]!;
    q += Math.max(0, z) * wo[h]!;
  }
  return q;
}

test('criticGroups + groupAdvantages: Q = min of the twins and GRPO advantages equal a hand computation; contexts are the acting windows', async () => {
  const dt = new DecisionTransformer({ stateDim: S, actDim: A, contextLength: K, core: { dModel: 8, nLayers: 1, nHeads: 1 }, seed: 4 });
  const l = fixedLearner(dt);
  const trs = [episode(4, 1), episode(2, 2)];
  const M = 5;
  const G = 4;
  const scored = await lastValueFrom(of(batchOf(trs)).pipe(criticGroups(l, { count: M, groupSize: G, score: 'min', rng: new Rng(0, 'q'), version: () => 3 })));
  const adv = await lastValueFrom(of(scored).pipe(groupAdvantages({ outcome: criticOutcome })));
  assert.equal(scored.groups.length, M);
  assert.equal(scored.metrics['reward/mean'], 1, 'the incoming metrics pass through');
  const seen = new Set<string>();
  const allQ: number[] = [];
  const stds: number[] = [];
  scored.groups.forEach((g, m) => {
    assert.equal(g.trajectories.length, G);
    const first = g.trajectories[0]!;
    const src = trs.find((tr) => tr.start === first.start)!;
    const n = first.length;
    const t = first.timesteps![n - 1]!;
    seen.add(`${src.groupId}/${t}`);
    assert.equal(n, Math.min(K, t + 1));
    const qs: number[] = [];
    for (const tr of g.trajectories) {
      // The context: the recorded steps t − n + 1 … t, intended targets, the sampled action last.
      assert.deepEqual(Array.from(tr.observations.subarray(0, n * S)), Array.from(src.observations.subarray((t + 1 - n) * S, (t + 1) * S)));
      assert.deepEqual(Array.from(tr.targets!), Array.from(src.targets!.subarray(t + 1 - n, t + 1)));
      assert.deepEqual(Array.from(tr.actions.subarray(0, (n - 1) * A)), Array.from(src.actions.subarray((t + 1 - n) * A, t * A)));
      assert.deepEqual(Array.from(tr.mask!), [...new Array<number>(n - 1).fill(0), 1]);
      assert.equal(tr.policyVersion, 3);
      const a = tr.actions.subarray((n - 1) * A, n * A);
      const s = normalizeState(src.observations.subarray(t * S, (t + 1) * S), NORM);
      const q1 = handQ(l, 1, s, a);
      const q2 = handQ(l, 2, s, a);
      assert.ok(
        Math.abs(tr.scores!['q1']! - q1) < 1e-5 && Math.abs(tr.scores!['q2']! - q2) < 1e-5,
        `q1 ${tr.scores!['q1']} vs ${q1}, q2 ${tr.scores!['q2']} vs ${q2}`,
      );
      assert.ok(Math.abs(tr.scores!['q']! - Math.min(q1, q2)) < 1e-5);
      qs.push(Math.min(q1, q2));
    }
    // GRPO: A_i = (Q_i − mean Q) / (std Q (n − 1) + 1e-4).
    const mean = qs.reduce((x, y) => x + y, 0) / G;
    const std = Math.sqrt(qs.reduce((x, y) => x + (y - mean) ** 2, 0) / (G - 1));
    adv.groups[m]!.trajectories.forEach((tr, i) => {
      assert.ok(Math.abs(tr.advantage - (qs[i]! - mean) / (std + 1e-4)) < 1e-3, `group ${m}, action ${i}: ${tr.advantage}`);
    });
    allQ.push(...qs);
    stds.push(Math.sqrt(qs.reduce((x, y) => x + (y - mean) ** 2, 0) / G));
  });
  assert.equal(seen.size, M, 'M distinct visited steps (the batch has 6)');
  assert.ok(Math.abs(scored.metrics['qgrpo/q_mean']! - allQ.reduce((x, y) => x + y, 0) / allQ.length) < 1e-5);
  assert.ok(Math.abs(scored.metrics['qgrpo/q_std']! - stds.reduce((x, y) => x + y, 0) / M) < 1e-5);
  assert.ok(scored.metrics['qgrpo/q_std']! > 0);
  // The behaviour log-probs are the DT's, as the update reads them back (ratio 1 at the first step).
  const flat = scored.groups.flatMap((g) => g.trajectories);
  const lp = tf.tidy(() => dtWindowPolicy(dt).logProb(dtWindowBatchOf(flat, WINDOW)).dataSync());
  let o = 0;
  for (const tr of flat) {
    o += tr.length;
    assert.ok(Math.abs(lp[o - 1]! - tr.logProbs[tr.length - 1]!) < 1e-4, `log π ${lp[o - 1]} vs behaviour ${tr.logProbs[tr.length - 1]}`);
  }
  // q1 scoring reads the first critic only.
  const byQ1 = await lastValueFrom(of(batchOf(trs)).pipe(criticGroups(l, { count: 2, groupSize: 2, score: 'q1', rng: new Rng(1, 'q'), version: () => 0 })));
  for (const tr of byQ1.groups.flatMap((g) => g.trajectories)) assert.equal(tr.scores!['q'], tr.scores!['q1']);
  disposeDtCriticLearner(l);
  dt.dispose();
});

test('a non-finite critic value stops QGRPO at the advantages, naming the group', async () => {
  const dt = new DecisionTransformer({ stateDim: S, actDim: A, contextLength: K, core: { dModel: 8, nLayers: 1, nHeads: 1 }, seed: 4 });
  const l = fixedLearner(dt);
  tf.tidy(() => l.critic.params.get('q2.out.bias').assign(tf.tensor1d([Number.NaN])));
  const scored = of(batchOf([episode(4, 1)])).pipe(
    criticGroups(l, { count: 2, groupSize: 3, score: 'min', rng: new Rng(0, 'q'), version: () => 0 }),
    groupAdvantages({ outcome: criticOutcome }),
  );
  await assert.rejects(lastValueFrom(scored), /outcome of group '7\/q0', trajectory 0 is NaN/);
  disposeDtCriticLearner(l);
  dt.dispose();
});

test('dtWindowBatchOf / dtWindowPolicy give dtBatchOf / dtPolicy per-step values, one row per trajectory', () => {
  const dt = new DecisionTransformer({ stateDim: S, actDim: A, contextLength: K, core: { dModel: 8, nLayers: 1, nHeads: 1 }, seed: 5 });
  const trs = [episode(3, 1), episode(1, 2), episode(2, 3)];
  const wb = dtWindowBatchOf(trs, WINDOW);
  assert.equal(wb.batchSize, 3);
  const rng = () => new Rng(9, 'entropy');
  const [a, b, ea] = tf.tidy(() => [
    dtWindowPolicy(dt).logProb(wb).dataSync(),
    dtPolicy(dt).logProb(dtBatchOf(trs, WINDOW)).dataSync(),
    dtWindowPolicy(dt).entropy(wb, rng()).dataSync(),
  ]);
  assert.equal(a.length, 6);
  for (let k = 0; k < 6; k++) assert.ok(Math.abs(a[k]! - b[k]!) < 1e-4, `step ${k}: ${a[k]} vs ${b[k]}`);
  assert.ok(ea.every(Number.isFinite));
  assert.throws(() => dtWindowBatchOf([episode(4, 4)], WINDOW), /has 4 steps; expected 1 … K = 3/);
  dt.dispose();
});

test('dtStepWindows at the state after the last action: the next context, target R̂_T = R̂_{T−1} − r_{T−1}, timestep clipped', () => {
  const full = episode(4, 6);
  const cut: ScoredTrajectory = {
    ...full,
    length: 3,
    observations: full.observations.slice(0, 4 * S),
    actions: full.actions.slice(0, 3 * A),
    rewards: full.rewards.slice(0, 3),
    targets: full.targets!.slice(0, 3),
    timesteps: full.timesteps!.slice(0, 3),
  };
  const want = dtStepWindows([{ trajectory: full, step: 3 }], WINDOW);
  const got = dtStepWindows([{ trajectory: cut, step: 3 }], WINDOW);
  assert.deepEqual(got.states, want.states);
  assert.deepEqual(got.timesteps, want.timesteps);
  assert.deepEqual(got.mask, want.mask);
  assert.deepEqual(got.actions.subarray(0, (K - 1) * A), want.actions.subarray(0, (K - 1) * A));
  for (let k = 0; k < K; k++) assert.ok(Math.abs(got.returnsToGo[k]! - want.returnsToGo[k]!) < 1e-6);
  assert.deepEqual(Array.from(got.actions.subarray((K - 1) * A)), [0, 0], 'no action was taken at step T');
  assert.equal(dtStepWindows([{ trajectory: cut, step: 3 }], { ...WINDOW, maxTimestep: 2 }).timesteps[K - 1], 2);
  assert.throws(() => dtStepWindows([{ trajectory: cut, step: 4 }], WINDOW), /step outside \[0, 3\]/);
});

test('dtCriticUpdate: a non-finite loss throws before the critic changes; the state round-trips exactly', async () => {
  const dt = new DecisionTransformer({ stateDim: S, actDim: A, contextLength: K, core: { dModel: 8, nLayers: 1, nHeads: 1 }, seed: 4 });
  const l = createDtCriticLearner({ dt, window: WINDOW, hidden: [8], seed: 1, bufferSize: 4 });
  const trs = [episode(5, 1, { terminated: true }), episode(3, 2)];
  l.buffer.add(trs);
  const cfg = { batchSize: 8, steps: 3 };
  const b1 = await lastValueFrom(of(batchOf(trs)).pipe(dtCriticUpdate(l, cfg)));
  assert.equal(b1.metrics['td3/updates'], 3);
  assert.ok(Number.isFinite(b1.metrics['td3/critic_loss']!) && b1.metrics['td3/critic_loss']! > 0);
  // Save, take 3 steps, restore into a fresh learner, take the same 3 steps: identical.
  const saved = decodeOrThrow(DtCriticStateC, dtCriticLearnerState(l), 'state');
  const next = await lastValueFrom(of(batchOf(trs)).pipe(dtCriticUpdate(l, cfg)));
  const l2 = createDtCriticLearner({ dt, window: WINDOW, hidden: [8], seed: 99, bufferSize: 4 });
  restoreDtCriticLearner(l2, saved);
  const again = await lastValueFrom(of(batchOf(trs)).pipe(dtCriticUpdate(l2, cfg)));
  assert.deepEqual(again.metrics, next.metrics);
  assert.deepEqual(l2.critic.params.toRecord(), l.critic.params.toRecord());
  assert.deepEqual(l2.target.params.toRecord(), l.target.params.toRecord());
  // A reward of +Inf: the TD target and loss are not finite; nothing changes.
  const bad = createDtCriticLearner({ dt, window: WINDOW, hidden: [8], seed: 1, bufferSize: 4 });
  bad.buffer.add([episode(1, 3, { rewards: [Number.POSITIVE_INFINITY] })]);
  const before = bad.critic.params.toRecord();
  await assert.rejects(
    lastValueFrom(of(batchOf(trs)).pipe(dtCriticUpdate(bad, cfg))),
    (e: unknown) => e instanceof NonFiniteUpdateError && /critic step 0/.test(e.message),
  );
  assert.deepEqual(bad.critic.params.toRecord(), before);
  assert.equal(bad.optimizer.t, 0);
  for (const x of [l, l2, bad]) disposeDtCriticLearner(x);
  dt.dispose();
});

test("PlainAdam (the critic's optimizer) takes tf.train.adam's steps; its state round-trips", () => {
  const make = () => {
    const ps = new ParamStore(3);
    ps.add('w', [2, 3], { kind: 'normal', std: 1 });
    ps.add('b', [3], { kind: 'normal', std: 1 });
    return ps;
  };
  const a = make();
  const b = make();
  const plain = new PlainAdam(a, 0.05);
  const ref = tf.train.adam(0.05, 0.9, 0.999, 1e-8);
  const x = tf.tensor2d([
    [1, -2],
    [0.5, 3],
  ]);
  const loss = (ps: ParamStore) => () => tf.sum(tf.square(tf.add(tf.matMul(x, ps.get('w')), ps.get('b')))) as tf.Scalar;
  for (let k = 0; k < 5; k++) {
    tf.tidy(() => plain.applyGradients(tf.variableGrads(loss(a), a.variables).grads));
    tf.tidy(() => void ref.minimize(loss(b), false, b.variables));
  }
  for (const name of ['w', 'b']) {
    const p = a.get(name).dataSync();
    const q = b.get(name).dataSync();
    for (let i = 0; i < p.length; i++) assert.ok(Math.abs(p[i]! - q[i]!) < 1e-5, `${name}[${i}]: ${p[i]} vs tf.train.adam ${q[i]}`);
  }
  const saved = decodeOrThrow(PlainAdamStateC, plain.state(), 'adam state');
  const again = new PlainAdam(make(), 0.05);
  again.load(saved);
  assert.equal(again.t, 5);
  assert.deepEqual(again.m.toRecord(), plain.m.toRecord());
  assert.deepEqual(again.v.toRecord(), plain.v.toRecord());
  for (const o of [plain, again, ref]) o.dispose();
  x.dispose();
  a.dispose();
  b.dispose();
});
