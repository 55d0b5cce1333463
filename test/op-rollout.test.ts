import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { makeEnv, makeVectorEnv } from '../lib/envs/registry.ts';
import { Rng } from '../lib/random.ts';
import type { SnapshotStart } from '../lib/data.ts';
import { rollout, rolloutGroup, type StartsBatch } from '../operators/rollout.ts';
import type { Actor } from '../lib/actor.ts';
import { resetPoints, subTrajectories, tailBootstrap } from '../operators/subTrajectories.ts';
import { activePicks, activeSampling, ResetPool } from '../operators/activeSampling.ts';
import { runEvaluation, evaluate } from '../operators/evaluate.ts';
import { discountedReturns } from '../operators/returns.ts';

/** A seeded random actor on CartPole: p(push right) = 0.5 + 0.4·tanh(θ-ish feature). */
function coinActor(version = 3): Actor {
  return {
    version: () => version,
    act(obs, n, rng, det) {
      const action = new Int32Array(n);
      const logProb = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const p = 0.5 + 0.4 * Math.tanh(3 * obs[i * 4 + 2]! + obs[i * 4 + 3]!);
        action[i] = det ? (p > 0.5 ? 1 : 0) : rng.uniform() < p ? 1 : 0;
        logProb[i] = Math.log(action[i] ? p : 1 - p);
      }
      return { action, logProb };
    },
  };
}

test('rolloutGroup: G trajectories from one seed, consistent with a single env replay', async () => {
  const venv = await makeVectorEnv('CartPole-v1', 4, {}, { autoreset: 'disabled' });
  const g = rolloutGroup({ venv, actor: coinActor(), rng: new Rng(5, 'act') }, { kind: 'seed', envId: 'CartPole-v1', seed: 77 }, 'g');
  assert.equal(g.trajectories.length, 4);
  const env = await makeEnv('CartPole-v1');
  const first = env.reset(77).observation;
  for (const tr of g.trajectories) {
    assert.deepEqual([...tr.observations.subarray(0, 4)], [...first], 'every copy starts in the same state');
    assert.equal(tr.policyVersion, 3);
    assert.equal(tr.observations.length, (tr.length + 1) * 4);
    assert.ok(tr.terminated !== tr.truncated);
    // Replaying the recorded actions in a single env reproduces observations and rewards.
    env.reset(77);
    for (let t = 0; t < tr.length; t++) {
      const r = env.step(tr.actions[t]!);
      assert.deepEqual([...r.observation], [...tr.observations.subarray((t + 1) * 4, (t + 2) * 4)]);
      assert.equal(r.reward, tr.rewards[t]);
      if (t === tr.length - 1) assert.equal(r.terminated, tr.terminated);
    }
  }
  // Sampling differs across the group.
  assert.ok(new Set(g.trajectories.map((t) => t.length)).size > 1);
  venv.close();
  env.close();
});

test('rollout emits one batch per starts batch, in order, and respects maxSteps (async work: checked on real values, not marbles)', async () => {
  const venv = await makeVectorEnv('CartPole-v1', 3, {}, { autoreset: 'disabled' });
  const sb = (i: number): StartsBatch => ({
    iteration: i,
    starts: [
      { kind: 'seed', envId: 'CartPole-v1', seed: i },
      { kind: 'seed', envId: 'CartPole-v1', seed: 100 + i },
    ],
  });
  const out: number[][] = [];
  const { from, lastValueFrom, toArray } = await import('rxjs');
  const batches = await lastValueFrom(from([sb(0), sb(1), sb(2)]).pipe(rollout({ venv, actor: coinActor(), rng: new Rng(1), maxSteps: 5 }), toArray()));
  for (const b of batches) out.push([b.iteration, b.groups.length, b.metrics['rollout/episodes']!]);
  assert.deepEqual(out, [
    [0, 2, 6],
    [1, 2, 6],
    [2, 2, 6],
  ]);
  for (const b of batches)
    for (const g of b.groups) for (const t of g.trajectories) assert.ok(t.length <= 5 && (t.length === 5 ? t.truncated || t.terminated : t.terminated));
  venv.close();
});

test('resetPoints replays a trajectory and snapshots every k steps; subTrajectories scores with a mean-action tail', async () => {
  const env = await makeEnv('CartPole-v1');
  const venv = await makeVectorEnv('CartPole-v1', 4, {}, { autoreset: 'disabled' });
  const actor = coinActor();
  const g = rolloutGroup({ venv, actor, rng: new Rng(2) }, { kind: 'seed', envId: 'CartPole-v1', seed: 9 }, 'g');
  const longest = g.trajectories.reduce((a, b) => (b.length > a.length ? b : a));
  const points = resetPoints(env, longest, 5);
  assert.equal(points.length, Math.floor((longest.length - 1) / 5));
  const p = points[0]!;
  assert.equal(p.t, 5);
  assert.deepEqual([...p.observation], [...longest.observations.subarray(5 * 4, 6 * 4)]);
  // Sub-trajectories: L on-policy steps + H mean-action steps scored into tail_return.
  const L = 3,
    H = 4;
  const [batch] = await (await import('rxjs')).lastValueFrom(
    (await import('rxjs'))
      .of({ iteration: 0, starts: [p] })
      .pipe(subTrajectories({ venv, actor, rng: new Rng(3), length: L, horizon: H }), (await import('rxjs')).toArray()),
  );
  const sg = batch!.groups[0]!;
  for (const tr of sg.trajectories) {
    assert.ok(tr.length <= L);
    assert.deepEqual(
      [...tr.timesteps!],
      Array.from({ length: tr.length }, (_, i) => 5 + i),
    );
    // Independent check of the tail: restore, replay L actions, then follow the deterministic action H steps.
    env.restore(p.snapshot);
    let obs = p.observation;
    let ended = false;
    for (let t = 0; t < tr.length; t++) {
      const r = env.step(tr.actions[t]!);
      obs = r.observation;
      ended = r.terminated;
    }
    let tail = 0;
    for (let h = 0; h < H && !ended; h++) {
      const a = actor.act(obs, 1, new Rng(0), true).action[0]!;
      const r = env.step(a);
      tail += r.reward;
      obs = r.observation;
      ended = r.terminated || r.truncated;
    }
    assert.equal(tailBootstrap(tr), tail);
    const scored = discountedReturns(tr, { gamma: 1, bootstrap: tailBootstrap });
    assert.equal(scored.returns[0], tr.length + (tr.terminated ? 0 : tail));
  }
  env.close();
  venv.close();
});

test('rollout, subTrajectories and evaluate keep one output per input, in order (marbles)', async () => {
  const venv = await makeVectorEnv('CartPole-v1', 2, {}, { autoreset: 'disabled' });
  const env = await makeEnv('CartPole-v1');
  const actor = coinActor(7);
  const g = rolloutGroup({ venv, actor, rng: new Rng(4) }, { kind: 'seed', envId: 'CartPole-v1', seed: 1 }, 'x');
  const longest = g.trajectories.reduce((a, b) => (b.length > a.length ? b : a));
  const p = resetPoints(env, longest, 3)[0]!;
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const starts = cold('a--b-|', { a: 0, b: 1 }).pipe(map((i): StartsBatch => ({ iteration: i, starts: [{ kind: 'seed', envId: 'CartPole-v1', seed: i }] })));
    expectObservable(
      starts.pipe(
        rollout({ venv, actor, rng: new Rng(1) }),
        map((b) => [b.iteration, b.groups.length, b.metrics.policy_version]),
      ),
    ).toBe('a--b-|', { a: [0, 1, 7], b: [1, 1, 7] });
    const subs = cold('-a-b|', { a: 0, b: 1 }).pipe(map((i): StartsBatch => ({ iteration: i, starts: [p, p] })));
    expectObservable(
      subs.pipe(
        subTrajectories({ venv, actor, rng: new Rng(1), length: 2, horizon: 3 }),
        map((b) => [b.iteration, b.groups.map((x) => x.trajectories.length)]),
      ),
    ).toBe('-a-b|', { a: [0, [2, 2]], b: [1, [2, 2]] });
    const batches = cold('abc|', { a: 0, b: 1, c: 2 }).pipe(map((i) => ({ iteration: i, groups: [], metrics: {} })));
    const detActor: Actor = { ...actor, act: (o, n, r) => actor.act(o, n, r, true) };
    expectObservable(
      batches.pipe(
        evaluate({ venv, actor: detActor, every: 2 }),
        map((b) => [b.iteration, 'eval/return' in b.metrics]),
      ),
    ).toBe('abc|', { a: [0, true], b: [1, false], c: [2, true] });
  });
  assert.throws(() => subTrajectories({ venv, actor, rng: new Rng(1), length: 0, horizon: 3 }), /length: expected a positive integer, got 0/);
  venv.close();
  env.close();
});

test('activeSampling: greedy takes the most uncertain, ε-uniform and softmax frequencies match', () => {
  const u = [0.1, 2, 0.5, 3, 1];
  const greedy = activePicks(u, { count: 3, epsilon: 0, mode: 'greedy', temperature: 1 }, new Rng(1));
  assert.deepEqual(greedy.picks, [3, 1, 4]);
  const rng = new Rng(2);
  const n = 20000;
  const counts = [0, 0, 0, 0, 0];
  for (let i = 0; i < n; i++) counts[activePicks(u, { count: 1, epsilon: 0, mode: 'softmax', temperature: 2 }, rng).picks[0]!]!++;
  const z = u.reduce((s, x) => s + Math.exp(x / 2), 0);
  u.forEach((x, i) => assert.ok(Math.abs(counts[i]! / n - Math.exp(x / 2) / z) < 0.012, `p[${i}]`));
  const unif = [0, 0, 0, 0, 0];
  for (let i = 0; i < n; i++) unif[activePicks(u, { count: 1, epsilon: 1, mode: 'greedy', temperature: 1 }, rng).picks[0]!]!++;
  unif.forEach((c) => assert.ok(Math.abs(c / n - 0.2) < 0.012));
  assert.throws(() => activePicks(u, { count: 6, epsilon: 0, mode: 'greedy', temperature: 1 }, rng), /pool of 5/);

  const pool = new ResetPool(3);
  const mk = (t: number): SnapshotStart => ({
    kind: 'snapshot',
    snapshot: { id: 'X', state: new Float64Array(1), elapsedSteps: t, rng: { s: [1, 2, 3, 4], spare: null }, done: false },
    observation: new Float32Array([t]),
    t,
  });
  pool.add([mk(1), mk(2), mk(3), mk(4)]);
  assert.deepEqual(
    pool.all().map((s) => s.t),
    [2, 3, 4],
  );
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const out = cold('a-b|', { a: 0, b: 1 }).pipe(
      activeSampling(pool, { count: 2, epsilon: 0, uncertainty: (s) => s.map((x) => x.observation[0]!) }, new Rng(0)),
      map((b) => [b.iteration, b.starts.map((s) => (s as SnapshotStart).t), b.metrics!['active/uncertainty_mean']]),
    );
    expectObservable(out).toBe('a-b|', { a: [0, [4, 3], 3.5], b: [1, [4, 3], 3.5] });
  });
});

test('runEvaluation: deterministic episodes from fixed seeds, equal to a manual loop', async () => {
  const venv = await makeVectorEnv('CartPole-v1', 3, {}, { autoreset: 'disabled' });
  const actor = coinActor();
  const res = runEvaluation({ venv, actor: { ...actor, act: (o, n, r) => actor.act(o, n, r, true) }, seed: 50 });
  const env = await makeEnv('CartPole-v1');
  let total = 0;
  for (let i = 0; i < 3; i++) {
    let obs = env.reset(50 + i).observation;
    for (;;) {
      const r = env.step(actor.act(obs, 1, new Rng(0), true).action[0]!);
      total += r.reward;
      obs = r.observation;
      if (r.terminated || r.truncated) break;
    }
  }
  assert.equal(res['eval/return'], total / 3);
  assert.equal(res['eval/normalized_score'], undefined);
  venv.close();
  env.close();
});

test('a DT actor records the intended returns-to-go; returns keeps them, hindsightRelabel rewrites them', async () => {
  const { initBackend } = await import('../lib/backend.ts');
  await initBackend({ backend: 'cpu', quiet: true });
  const { DecisionTransformer } = await import('../lib/models/decision-transformer.ts');
  const { dtActor } = await import('../lib/models/dt-actor.ts');
  const { relabelTrajectory } = await import('../operators/hindsightRelabel.ts');
  const dt = new DecisionTransformer({ stateDim: 3, actDim: 1, contextLength: 4, maxEpisodeSteps: 200, core: { dModel: 16, nLayers: 1, nHeads: 2 }, seed: 1 });
  const venv = await makeVectorEnv('Pendulum-v1', 3, {}, { autoreset: 'disabled' });
  const target = -150;
  const g = rolloutGroup(
    { venv, actor: dtActor(dt, { targetReturn: target, scale: 1 / 100, version: () => 2 }), rng: new Rng(1), maxSteps: 12 },
    { kind: 'seed', envId: 'Pendulum-v1', seed: 3 },
    'dt',
  );
  for (const tr of g.trajectories) {
    const tg = tr.targets!;
    assert.equal(tg.length, tr.length);
    assert.equal(tg[0], target);
    for (let t = 1; t < tr.length; t++) assert.ok(Math.abs(tg[t]! - (tg[t - 1]! - tr.rewards[t - 1]!)) < 1e-3, `R̂_${t}`);
    const scored = discountedReturns(tr, { gamma: 1 });
    assert.deepEqual([...scored.targets!], [...tg], 'returns leaves the intended targets');
    const relabelled = relabelTrajectory(scored).trajectory;
    assert.ok(Math.abs(relabelled.targets![0]! - scored.totalReward) < 1e-3, 'hindsight relabel: R̂_0 = achieved return');
    assert.ok(Math.abs(relabelled.targets![0]! - target) > 1, 'the achieved return differs from the intended one');
  }
  venv.close();
  dt.dispose();
});
