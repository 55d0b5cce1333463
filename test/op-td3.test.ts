import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom, map, range, toArray } from 'rxjs';
import { initBackend } from '../lib/backend.ts';
import { makeVectorEnv } from '../lib/envs/registry.ts';
import { DeterministicActor, TwinCritic, polyakUpdate } from '../lib/models/critic.ts';
import type { ParamRecord } from '../lib/models/params.ts';
import { Rng } from '../lib/random.ts';
import { TransitionBuffer, type Transitions } from '../lib/transitions.ts';
import { collectTransitions, deterministicActor, explorationActions, randomActions } from '../operators/collectTransitions.ts';
import { runEvaluation } from '../operators/evaluate.ts';
import { NonFiniteUpdateError } from '../operators/policyUpdate.ts';
import {
  TD3_UPDATE_DEFAULTS,
  createTd3Learner,
  criticTarget,
  disposeTd3Learner,
  targetNoise,
  td3Step,
  td3Update,
  td3UpdateConfig,
} from '../operators/td3Update.ts';

await initBackend({ backend: 'wasm', threads: 1, quiet: true });

// ---- plain-JS reference of the networks (independent of tfjs) ----
type Rec = Record<string, ParamRecord>;
function jsMlp(rec: Rec, prefix: string, depth: number, x: number[]): number[] {
  const layer = (name: string, v: number[], relu: boolean) => {
    const w = rec[`${name}.weight`]!;
    const b = rec[`${name}.bias`]!;
    const [inD, outD] = w.shape as [number, number];
    assert.equal(v.length, inD);
    const out: number[] = [];
    for (let o = 0; o < outD; o++) {
      let z = b.data[o]!;
      for (let i = 0; i < inD; i++) z += v[i]! * w.data[i * outD + o]!;
      out.push(relu ? Math.max(0, z) : z);
    }
    return out;
  };
  let h = x;
  for (let i = 0; i < depth; i++) h = layer(`${prefix}.layers.${i}`, h, true);
  return layer(`${prefix}.out`, h, false);
}

function randomTransitions(n: number, obsDim: number, actDim: number, rng: Rng): Transitions {
  return {
    n,
    obsDim,
    actDim,
    obs: Float32Array.from(rng.normalArray(n * obsDim)),
    actions: Float32Array.from(rng.uniformArray(n * actDim, -1, 1)),
    rewards: Float32Array.from(rng.normalArray(n)),
    nextObs: Float32Array.from(rng.normalArray(n * obsDim)),
    dones: Float32Array.from({ length: n }, (_, i) => (i % 5 === 4 ? 1 : 0)),
  };
}

const snapshot = (rec: Rec) => Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, Array.from(v.data)]));
const same = (a: Rec, b: Rec) => Object.keys(a).every((k) => a[k]!.data.every((x, i) => x === b[k]!.data[i]));

test('critic target y = r + γ(1 − d) min_i Q′_i(s′, clip(π′(s′) + ε, low, high)) matches a plain-JS computation', () => {
  const learner = createTd3Learner({ obsDim: 2, low: [-2, -1], high: [2, 3], hidden: [5, 4], seed: 7, bufferCapacity: 10 });
  // Make the targets differ from the online nets, so reading the wrong ones would be caught.
  tf.tidy(() => {
    for (const v of learner.criticTarget.params.variables) v.assign(tf.add(v, 0.1));
    for (const v of learner.actorTarget.params.variables) v.assign(tf.mul(v, 1.5));
  });
  const mb: Transitions = {
    n: 3,
    obsDim: 2,
    actDim: 2,
    obs: new Float32Array(6),
    actions: new Float32Array(6),
    rewards: Float32Array.from([1, -0.5, 2]),
    nextObs: Float32Array.from([0.3, -1.2, 2.0, 0.5, -0.7, 0.1]),
    dones: Float32Array.from([0, 1, 0]),
  };
  // Row 2's noise pushes both dimensions outside the box, so the clip to [low, high] is exercised.
  const noise = Float32Array.from([0.1, -0.2, 0.05, 0.3, 10, -10]);
  const gamma = 0.9;
  const y = tf.tidy(() => Array.from(criticTarget(learner, mb, noise, gamma).dataSync()));
  const pi = learner.actorTarget.params.toRecord();
  const q = learner.criticTarget.params.toRecord();
  const low = [-2, -1];
  const high = [2, 3];
  for (let i = 0; i < 3; i++) {
    const s2 = [mb.nextObs[2 * i]!, mb.nextObs[2 * i + 1]!];
    const z = jsMlp(pi, 'pi', 2, s2);
    const a2 = z.map((v, j) => {
      const a = (high[j]! + low[j]!) / 2 + ((high[j]! - low[j]!) / 2) * Math.tanh(v);
      return Math.min(high[j]!, Math.max(low[j]!, a + noise[2 * i + j]!));
    });
    const x = [...s2, ...a2];
    const qmin = Math.min(jsMlp(q, 'q1', 2, x)[0]!, jsMlp(q, 'q2', 2, x)[0]!);
    const want = mb.rewards[i]! + gamma * (1 - mb.dones[i]!) * qmin;
    assert.ok(Math.abs(y[i]! - want) < 1e-5 * (1 + Math.abs(want)), `row ${i}: ${y[i]} vs ${want}`);
  }
  assert.ok(Math.abs(y[1]! - -0.5) < 1e-7, 'a terminal row does not bootstrap');
  disposeTd3Learner(learner);
});

test('target noise is N(0, (σ̃·a_max)²) clipped to ±c·a_max per dimension', () => {
  const actor = new DeterministicActor({ obsDim: 1, low: [-1, -4], high: [1, 4], hidden: [2], seed: 0 });
  const eps = targetNoise(actor, 4000, { policyNoise: 0.2, noiseClip: 0.5 }, new Rng(3));
  let clipped = 0;
  const sq = [0, 0];
  for (let k = 0; k < eps.length; k++) {
    const m = k % 2 === 0 ? 1 : 4;
    assert.ok(Math.abs(eps[k]!) <= 0.5 * m + 1e-6);
    if (Math.abs(eps[k]!) >= 0.5 * m - 1e-6) clipped++;
    sq[k % 2]! += eps[k]! ** 2;
  }
  // P(|z| > 2.5) ≈ 1.2 %: few samples clip; the std is ≈ 0.2·a_max (slightly less after the clip).
  assert.ok(clipped > 20 && clipped < 250, `clipped ${clipped}`);
  assert.ok(Math.abs(Math.sqrt(sq[0]! / 4000) - 0.2) < 0.01);
  assert.ok(Math.abs(Math.sqrt(sq[1]! / 4000) - 0.8) < 0.04);
  actor.dispose();
});

test('polyakUpdate sets θ′ ← τθ + (1 − τ)θ′ exactly, and τ = 0 / τ = 1 leave / copy', () => {
  const src = new TwinCritic({ obsDim: 3, actDim: 1, hidden: [4], seed: 1 });
  const tgt = new TwinCritic({ obsDim: 3, actDim: 1, hidden: [4], seed: 2 });
  const s = src.params.toRecord();
  const t0 = tgt.params.toRecord();
  polyakUpdate(tgt.params, src.params, 0.25);
  const t1 = tgt.params.toRecord();
  for (const k of Object.keys(s)) {
    for (let i = 0; i < s[k]!.data.length; i++) {
      const want = Math.fround(Math.fround(0.25 * s[k]!.data[i]!) + Math.fround(0.75 * t0[k]!.data[i]!));
      assert.ok(Math.abs(t1[k]!.data[i]! - want) <= 1e-7 * (1 + Math.abs(want)), `${k}[${i}]`);
    }
  }
  polyakUpdate(tgt.params, src.params, 0);
  assert.ok(same(tgt.params.toRecord(), t1));
  polyakUpdate(tgt.params, src.params, 1);
  assert.ok(same(tgt.params.toRecord(), s));
  assert.throws(() => polyakUpdate(tgt.params, src.params, 1.5), /tau must be in \[0, 1\], got 1.5/);
  const other = new TwinCritic({ obsDim: 3, actDim: 1, hidden: [5], seed: 1 });
  const before = tgt.params.toRecord();
  assert.throws(() => polyakUpdate(tgt.params, other.params, 0.5), /q1.layers.0.weight has shape \[4, 4\] in the target but \[4, 5\]/);
  assert.ok(same(tgt.params.toRecord(), before), 'a mismatch changes nothing');
  for (const n of [src, tgt, other]) n.dispose();
});

test('policy delay: the actor and the targets change only on every 2nd critic step; the critics on every step', () => {
  const learner = createTd3Learner({ obsDim: 3, low: [-1], high: [1], hidden: [8, 8], seed: 3, bufferCapacity: 100 });
  learner.buffer.add(randomTransitions(100, 3, 1, new Rng(5)));
  const cfg = td3UpdateConfig({ batchSize: 16, policyDelay: 2 });
  for (let step = 1; step <= 6; step++) {
    const actor0 = learner.actor.params.toRecord();
    const critic0 = learner.critic.params.toRecord();
    const at0 = learner.actorTarget.params.toRecord();
    const ct0 = learner.criticTarget.params.toRecord();
    const st = td3Step(learner, cfg);
    const actorStep = step % 2 === 0;
    assert.equal(learner.criticSteps, step);
    assert.equal(learner.version, Math.floor(step / 2));
    assert.equal(st.actorLoss !== undefined, actorStep, `step ${step}: actor loss reported`);
    assert.ok(!same(critic0, learner.critic.params.toRecord()), `step ${step}: critics changed`);
    assert.equal(same(actor0, learner.actor.params.toRecord()), !actorStep, `step ${step}: actor`);
    assert.equal(same(at0, learner.actorTarget.params.toRecord()), !actorStep, `step ${step}: actor target`);
    assert.equal(same(ct0, learner.criticTarget.params.toRecord()), !actorStep, `step ${step}: critic target`);
  }
  disposeTd3Learner(learner);
});

test('a non-finite critic loss throws before any weight changes', () => {
  const learner = createTd3Learner({ obsDim: 3, low: [-1], high: [1], hidden: [8], seed: 3, bufferCapacity: 10 });
  const cfg = td3UpdateConfig({ batchSize: 4 });
  const mb = randomTransitions(4, 3, 1, new Rng(1));
  mb.rewards[2] = Number.NaN;
  const before = snapshot(learner.critic.params.toRecord());
  const n0 = tf.memory().numTensors;
  assert.throws(
    () => td3Step(learner, cfg, mb),
    (e: unknown) => e instanceof NonFiniteUpdateError && /non-finite critic loss.*changed no weights/.test(e.message),
  );
  assert.deepEqual(snapshot(learner.critic.params.toRecord()), before);
  assert.equal(learner.criticSteps, 0);
  assert.equal(tf.memory().numTensors, n0, 'no tensor leaks on the error path');
  disposeTd3Learner(learner);
});

test("config codec: defaults are the paper's; a bad value is refused naming the key", () => {
  assert.deepEqual(td3UpdateConfig(), TD3_UPDATE_DEFAULTS);
  assert.equal(TD3_UPDATE_DEFAULTS.gamma, 0.99);
  assert.equal(TD3_UPDATE_DEFAULTS.tau, 0.005);
  assert.equal(TD3_UPDATE_DEFAULTS.policyDelay, 2);
  assert.equal(TD3_UPDATE_DEFAULTS.batchSize, 256);
  assert.throws(() => td3UpdateConfig({ batchSize: 0 }), /batchSize: expected a positive integer, got 0/);
  assert.throws(() => td3UpdateConfig({ gamma: 1.5 }), /gamma: expected a number in \[0, 1\], got 1.5/);
});

test('transition buffer: seeded sampling is deterministic, the ring wraps around, the state round-trips', () => {
  const rows = randomTransitions(7, 2, 1, new Rng(9));
  const buf = new TransitionBuffer({ capacity: 5, obsDim: 2, actDim: 1 });
  assert.equal(
    buf.add({
      ...rows,
      n: 3,
      obs: rows.obs.slice(0, 6),
      nextObs: rows.nextObs.slice(0, 6),
      actions: rows.actions.slice(0, 3),
      rewards: rows.rewards.slice(0, 3),
      dones: rows.dones.slice(0, 3),
    }),
    0,
  );
  assert.equal(buf.size, 3);
  const rest = {
    ...rows,
    n: 4,
    obs: rows.obs.slice(6),
    nextObs: rows.nextObs.slice(6),
    actions: rows.actions.slice(3),
    rewards: rows.rewards.slice(3),
    dones: rows.dones.slice(3),
  };
  assert.equal(buf.add(rest), 2, 'two oldest rows overwritten');
  assert.equal(buf.size, 5);
  assert.equal(buf.added, 7);
  // Storage order after wrapping: rows 5, 6 overwrote slots 0, 1; slots 2..4 hold rows 2..4.
  const all = buf.gather([0, 1, 2, 3, 4]);
  assert.deepEqual(
    Array.from(all.rewards),
    [5, 6, 2, 3, 4].map((i) => rows.rewards[i]!),
  );
  assert.deepEqual(Array.from(all.obs.slice(0, 2)), Array.from(rows.obs.slice(10, 12)));
  assert.deepEqual(Array.from(all.nextObs.slice(2, 4)), Array.from(rows.nextObs.slice(12, 14)));
  assert.deepEqual(
    Array.from(all.dones),
    [5, 6, 2, 3, 4].map((i) => rows.dones[i]!),
  );

  const a = buf.sample(50, new Rng(4, 's'));
  const b = buf.sample(50, new Rng(4, 's'));
  assert.deepEqual(a, b);
  // Reference: the same indices drawn independently with Rng.int over the 5 rows.
  const r = new Rng(4, 's');
  const want = Array.from({ length: 50 }, () => all.rewards[r.int(5)]!);
  assert.deepEqual(Array.from(a.rewards), want);
  assert.ok(new Set(want).size === 5, 'every row can be drawn');

  const back = TransitionBuffer.fromState(JSON.parse(JSON.stringify(buf.state())));
  assert.equal(back.size, 5);
  assert.equal(back.added, 7);
  assert.deepEqual(back.sample(50, new Rng(4, 's')), a);
  // The write position survives: the next row overwrites slot 2 in both.
  const one = randomTransitions(1, 2, 1, new Rng(11));
  buf.add(one);
  back.add(one);
  assert.deepEqual(back.gather([0, 1, 2, 3, 4]), buf.gather([0, 1, 2, 3, 4]));
  assert.equal(buf.gather([2]).rewards[0], one.rewards[0]);

  const bad = randomTransitions(2, 2, 1, new Rng(1));
  bad.rewards[1] = Number.POSITIVE_INFINITY;
  assert.throws(() => buf.add(bad), /transitions.rewards\[1\] \(row 1\) is Infinity/);
  assert.throws(() => buf.add(randomTransitions(2, 3, 1, new Rng(1))), /obsDim 3, actDim 1; the buffer holds obsDim 2, actDim 1/);
  assert.throws(() => TransitionBuffer.fromState({ version: 1, capacity: 0 }), /capacity: expected a positive integer/);
  assert.throws(() => new TransitionBuffer({ capacity: 1.5, obsDim: 1, actDim: 1 }), /capacity: expected a positive integer, got 1.5/);
});

test('exploration: random warm-up actions fill the box; Gaussian noise around π(s) stays in the box', () => {
  const rng = new Rng(2);
  const ra = randomActions(2000, [-2, 0], [2, 1], rng);
  const d0 = ra.filter((_, k) => k % 2 === 0);
  const d1 = ra.filter((_, k) => k % 2 === 1);
  assert.ok(Math.min(...d0) >= -2 && Math.max(...d0) <= 2 && Math.min(...d0) < -1.9 && Math.max(...d0) > 1.9);
  assert.ok(Math.min(...d1) >= 0 && Math.max(...d1) <= 1 && Math.abs(d1.reduce((x, y) => x + y, 0) / d1.length - 0.5) < 0.05);
  const actor = new DeterministicActor({ obsDim: 2, low: [-2], high: [2], hidden: [4], seed: 1 });
  const obs = new Float32Array(2 * 500).fill(0.5);
  const mode = actor.act(obs)[0]!;
  const ea = explorationActions(actor, obs, new Rng(3), 0.1);
  let m = 0;
  let v = 0;
  for (const x of ea) m += x / ea.length;
  for (const x of ea) v += (x - m) ** 2 / ea.length;
  assert.ok(Math.abs(m - mode) < 0.03, `mean ${m} vs π(s) ${mode}`);
  assert.ok(Math.abs(Math.sqrt(v) - 0.2) < 0.02, 'σ = 0.1·a_max = 0.2');
  assert.ok(ea.every((x) => x >= -2 && x <= 2));
  assert.deepEqual(explorationActions(actor, obs.subarray(0, 2), new Rng(3), 0), actor.act(obs.subarray(0, 2)));
  actor.dispose();
});

/** A short collect → update run; returns the per-iteration metrics and the tensor count after each. */
async function shortRun(seed: number, iterations: number) {
  const venv = await makeVectorEnv('Pendulum-v1', 2, { seed });
  const learner = createTd3Learner({ obsDim: 3, low: [-2], high: [2], hidden: [16, 16], seed, bufferCapacity: 500 });
  const counts: number[] = [];
  const out = await lastValueFrom(
    range(0, iterations).pipe(
      map((iteration) => ({ iteration })),
      collectTransitions({ venv, actor: learner.actor, rng: new Rng(seed, 'action'), steps: 10, startSteps: 40, seed }),
      td3Update(learner, { batchSize: 16, learningStarts: 30 }),
      map((b) => {
        counts.push(tf.memory().numTensors);
        return b.metrics;
      }),
      toArray(),
    ),
  );
  disposeTd3Learner(learner);
  venv.close();
  return { out, counts };
}

test('collect → update: numTensors flat over iterations, transitions counted, same seed → same metrics', async () => {
  const start = tf.memory().numTensors;
  const { out, counts } = await shortRun(3, 25);
  // Iteration 0 has no update (20 transitions < learningStarts 30); optimizer moments appear at the first one.
  assert.equal(out[0]!['td3/updates'], 0);
  assert.equal(out[1]!['td3/updates'], 10, '40 transitions received, 10 beyond learningStarts');
  assert.ok(
    counts.slice(2).every((c) => c === counts[2]),
    `tensor counts ${counts.join(',')}`,
  );
  assert.equal(tf.memory().numTensors, start, 'disposing the learner frees everything');
  // 2 envs × 10 steps; Pendulum truncates at 200, and the autoreset row after it yields no transition.
  assert.equal(
    out.reduce((s, m) => s + m['rollout/env_steps']!, 0),
    out[out.length - 1]!['rollout/total_env_steps'],
  );
  assert.equal(out[0]!['rollout/env_steps'], 20);
  const withEpisodes = out.filter((m) => m['rollout/episodes']! > 0);
  assert.equal(withEpisodes.length, 1, 'the first episodes end at step 200 (iteration 19)');
  assert.equal(withEpisodes[0]!['rollout/episode_length'], 200);
  assert.equal(out[20]!['rollout/env_steps'], 18, 'the two autoreset rows give no transition');
  assert.equal(out[24]!.policy_version, Math.floor(out.reduce((s, m) => s + m['td3/updates']!, 0) / 2));
  assert.ok(out.slice(1).every((m) => Number.isFinite(m['td3/critic_loss']) && Number.isFinite(m['td3/q_mean'])));
  const again = await shortRun(3, 25);
  assert.deepEqual(again.out, out);
});

test('collectTransitions refuses a VectorEnv without next-step autoreset or of the wrong size', async () => {
  const actor = new DeterministicActor({ obsDim: 3, low: [-2], high: [2], hidden: [4] });
  const frozen = await makeVectorEnv('Pendulum-v1', 1, {}, { autoreset: 'disabled' });
  assert.throws(() => collectTransitions({ venv: frozen, actor, rng: new Rng(0) }), /autoreset 'next-step'/);
  const cart = await makeVectorEnv('CartPole-v1', 1);
  assert.throws(() => collectTransitions({ venv: cart, actor, rng: new Rng(0) }), /discrete action space/);
  const mc = await makeVectorEnv('MountainCarContinuous-v0', 1);
  assert.throws(() => collectTransitions({ venv: mc, actor, rng: new Rng(0) }), /does not fit MountainCarContinuous-v0 \(obsDim 2, actDim 1\)/);
  actor.dispose();
});

test('TD3 learns Pendulum-v1: 64×64 nets raise the deterministic return far above its random start (seeded)', async () => {
  const ITERS = Number(process.env.TD3_TEST_ITERS ?? 40);
  const venv = await makeVectorEnv('Pendulum-v1', 4, { seed: 1 });
  const evalEnv = await makeVectorEnv('Pendulum-v1', 10, { seed: 100 }, { autoreset: 'disabled' });
  const learner = createTd3Learner({ obsDim: 3, low: [-2], high: [2], hidden: [64, 64], seed: 0, actorLr: 1e-3, criticLr: 1e-3, bufferCapacity: 10_000 });
  const actor = deterministicActor(learner.actor, () => learner.version);
  const evaluate = () => runEvaluation({ venv: evalEnv, actor, seed: 1000 })['eval/return'];
  const before = evaluate();
  const start = tf.memory().numTensors;
  const out = await lastValueFrom(
    range(0, ITERS).pipe(
      map((iteration) => ({ iteration })),
      collectTransitions({ venv, actor: learner.actor, rng: new Rng(0, 'action'), steps: 25, startSteps: 1000 }),
      // γ = 0.98 (Pendulum's tuned value, as in RL Zoo) and 2 updates per env step: ~6000 updates suffice.
      td3Update(learner, { batchSize: 64, learningStarts: 1000, updatesPerStep: 2, gamma: 0.98 }),
      toArray(),
    ),
  );
  const after = evaluate();
  const updates = out.reduce((s, m) => s + m.metrics['td3/updates']!, 0);
  console.log(`# Pendulum TD3: eval return ${before.toFixed(1)} → ${after.toFixed(1)} after ${ITERS * 100} env steps, ${updates} updates`);
  // A uniform random policy scores about −1200 on Pendulum; a swing-up policy about −150 to −400.
  assert.ok(before < -900, `untrained policy ${before}`);
  assert.ok(after > -600, `trained policy ${after}`);
  const weights = learner.actor.variables.length + learner.critic.variables.length;
  assert.equal(tf.memory().numTensors - start, 2 * weights, 'only the Adam moments (two per weight tensor) appear');
  disposeTd3Learner(learner);
  venv.close();
  evalEnv.close();
});
