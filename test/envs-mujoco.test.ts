import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMujocoEnv, mujocoHeapBytes, MUJOCO_ENV_IDS, type MujocoEnvId } from '../lib/envs/mujoco/index.ts';
import { EnvStateError, InvalidActionError, type Env, type EnvSnapshot, type StepResult } from '../lib/envs/types.ts';
import { Rng } from '../lib/random.ts';

const SIZES: Record<MujocoEnvId, { obs: number; act: number }> = {
  'Hopper-v4': { obs: 11, act: 3 },
  'HalfCheetah-v4': { obs: 17, act: 6 },
  'Walker2d-v4': { obs: 17, act: 6 },
};

function actions(n: number, dim: number, seed: number): Float32Array[] {
  const rng = new Rng(seed, 'test/actions');
  return Array.from({ length: n }, () => Float32Array.from({ length: dim }, () => rng.uniform(-1, 1)));
}

/** Steps through `acts`, stopping at the end of the episode. */
function rollout(env: Env, acts: readonly Float32Array[]): StepResult[] {
  const out: StepResult[] = [];
  for (const a of acts) {
    const r = env.step(a);
    out.push(r);
    if (r.terminated || r.truncated) break;
  }
  return out;
}

function assertSameArray(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    // Object.is: bit-identical up to NaN payloads, and -0 !== 0.
    assert.ok(Object.is(a[i], b[i]), `${what}[${i}]: ${a[i]} !== ${b[i]}`);
  }
}

function assertSameRollout(a: StepResult[], b: StepResult[]): void {
  assert.equal(a.length, b.length, 'rollout lengths');
  for (let t = 0; t < a.length; t++) {
    assertSameArray(a[t]!.observation, b[t]!.observation, `step ${t} observation`);
    assert.ok(a[t]!.reward === b[t]!.reward, `step ${t} reward ${a[t]!.reward} !== ${b[t]!.reward}`);
    assert.equal(a[t]!.terminated, b[t]!.terminated);
    assert.equal(a[t]!.truncated, b[t]!.truncated);
    assert.deepEqual(a[t]!.info, b[t]!.info);
  }
}

function assertSameSnapshot(a: EnvSnapshot, b: EnvSnapshot): void {
  assert.equal(a.id, b.id);
  assertSameArray(a.state, b.state, 'snapshot state');
  assert.equal(a.elapsedSteps, b.elapsedSteps);
  assert.deepEqual(a.rng, b.rng);
  assert.equal(a.done, b.done);
}

const sumSq = (a: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
};

test('spaces and observation sizes', async () => {
  for (const id of MUJOCO_ENV_IDS) {
    const env = await makeMujocoEnv(id);
    const { obs, act } = SIZES[id];
    assert.equal(env.id, id);
    assert.equal(env.maxEpisodeSteps, 1000);
    assert.deepEqual(env.observationSpace.shape, [obs]);
    assert.equal(env.actionSpace.kind, 'box');
    if (env.actionSpace.kind !== 'box') throw new Error('unreachable');
    assert.deepEqual(env.actionSpace.shape, [act]);
    assert.deepEqual(Array.from(env.actionSpace.low), new Array(act).fill(-1));
    assert.deepEqual(Array.from(env.actionSpace.high), new Array(act).fill(1));
    const { observation, info } = env.reset(0);
    assert.ok(observation instanceof Float32Array);
    assert.equal(observation.length, obs);
    assert.deepEqual(info, {});
    const r = env.step(new Float32Array(act));
    assert.equal(r.observation.length, obs);
    assert.equal(r.cost, 0);
    const keys = id === 'HalfCheetah-v4' ? ['reward_ctrl', 'reward_run', 'x_position', 'x_velocity'] : ['x_position', 'x_velocity'];
    assert.deepEqual(Object.keys(r.info).sort(), keys);
    env.close();

    const full = await makeMujocoEnv(id, { exclude_current_positions_from_observation: false });
    assert.deepEqual(full.observationSpace.shape, [obs + 1]);
    const o = full.reset(0).observation;
    assert.equal(o.length, obs + 1);
    assert.ok(Math.abs(o[0]!) <= (id === 'HalfCheetah-v4' ? 0.1 : 5e-3), 'qpos[0] first, within the reset noise');
    full.close();
  }
});

test('initial state: heights, noise scale', async () => {
  const hopper = await makeMujocoEnv('Hopper-v4');
  const o = hopper.reset(3).observation;
  assert.ok(Math.abs(o[0]! - 1.25) <= 5e-3 + 1e-6, `torso height ${o[0]}`);
  for (let i = 1; i < o.length; i++) assert.ok(Math.abs(o[i]!) <= 5e-3 + 1e-6);
  hopper.close();
  const cheetah = await makeMujocoEnv('HalfCheetah-v4');
  const c = cheetah.reset(3).observation;
  assert.ok(Math.abs(c[0]!) <= 0.1 + 1e-6, 'rootz has no ref: qpos[1] starts near 0');
  cheetah.close();
});

test('same seed → same first observation and trajectory; different seeds differ', async () => {
  for (const id of MUJOCO_ENV_IDS) {
    const acts = actions(60, SIZES[id].act, 1);
    const a = await makeMujocoEnv(id);
    const b = await makeMujocoEnv(id);
    const oa = a.reset(11).observation;
    const ob = b.reset(11).observation;
    assertSameArray(oa, ob, `${id} first observation`);
    assertSameRollout(rollout(a, acts), rollout(b, acts));
    const oc = b.reset(12).observation;
    assert.ok(
      oc.some((v, i) => v !== oa[i]),
      `${id}: seeds 11 and 12 give the same observation`,
    );
    // reset() without a seed continues the generator made from options.seed.
    const c = await makeMujocoEnv(id, { seed: 11 });
    assertSameArray(c.reset().observation, oa, `${id} options.seed ≡ reset(seed)`);
    const second = c.reset().observation;
    assert.ok(
      second.some((v, i) => v !== oa[i]),
      `${id}: a second reset() repeats the first`,
    );
    a.close();
    b.close();
    c.close();
  }
});

test('snapshot → 50 steps → restore → the same 50 steps, bit-identical', async () => {
  for (const id of MUJOCO_ENV_IDS) {
    const env = await makeMujocoEnv(id, { seed: 4 });
    env.reset(5);
    // Mid-episode, so contacts and the solver's warm start are in play.
    for (const a of actions(5, SIZES[id].act, 2)) env.step(a);
    const snap = env.snapshot();
    const acts = actions(50, SIZES[id].act, 3);
    const first = rollout(env, acts);
    const afterFirst = env.reset().observation; // the generator continues from the snapshot too
    env.restore(snap);
    assertSameSnapshot(env.snapshot(), snap);
    const second = rollout(env, acts);
    assertSameRollout(first, second);
    assertSameArray(env.reset().observation, afterFirst, `${id} reset() after restore`);

    // Into a fresh env of the same id.
    const other = await makeMujocoEnv(id);
    other.restore(snap);
    assertSameRollout(rollout(other, acts), first);
    other.close();
    env.close();
  }
});

test('restore across ids and malformed snapshots are errors', async () => {
  const hopper = await makeMujocoEnv('Hopper-v4');
  const walker = await makeMujocoEnv('Walker2d-v4');
  hopper.reset(0);
  walker.reset(0);
  const snap = walker.snapshot();
  const before = hopper.snapshot();
  assert.throws(
    () => hopper.restore(snap),
    (e: unknown) => e instanceof EnvStateError && /Walker2d-v4/.test(e.message),
  );
  assert.throws(() => hopper.restore({ ...before, state: before.state.slice(1) }), EnvStateError);
  const nan = before.state.slice();
  nan[2] = Number.NaN;
  assert.throws(() => hopper.restore({ ...before, state: nan }), EnvStateError);
  assertSameSnapshot(hopper.snapshot(), before);
  hopper.close();
  walker.close();
});

test('Hopper terminates exactly when unhealthy; healthy reward paid every step; no step after the end', async () => {
  const env = await makeMujocoEnv('Hopper-v4');
  env.reset(0);
  const a = Float32Array.of(1, -1, 1); // drives it over quickly
  let r: StepResult | undefined;
  let steps = 0;
  for (; steps < 1000; steps++) {
    r = env.step(a);
    const o = r.observation;
    // Healthy test from the observation: z = qpos[1], angle = qpos[2]; state = qpos[2:] ++ qvel.
    const healthy = o[0]! > 0.7 && o[1]! > -0.2 && o[1]! < 0.2 && o.slice(1).every((v) => v > -100 && v < 100);
    assert.equal(r.terminated, !healthy, `step ${steps}: terminated ${r.terminated}, obs ${Array.from(o.slice(0, 2))}`);
    const expected = (r.info['x_velocity'] as number) + 1 - 1e-3 * sumSq(a);
    assert.ok(Math.abs(r.reward - expected) < 1e-12, `reward ${r.reward} vs ${expected}`);
    assert.equal(r.truncated, false);
    if (r.terminated) break;
  }
  assert.ok(r?.terminated, 'Hopper never became unhealthy');
  assert.ok(steps < 200, `took ${steps} steps`);
  assert.throws(() => env.step(a), EnvStateError);
  env.reset();
  env.step(a); // fine again after a reset

  // terminate_when_unhealthy: false → never terminates, no healthy reward once unhealthy.
  const free = await makeMujocoEnv('Hopper-v4', { terminate_when_unhealthy: false, maxEpisodeSteps: 300 });
  free.reset(0);
  let sawUnhealthy = false;
  for (let t = 0; t < 300; t++) {
    const s = free.step(a);
    assert.equal(s.terminated, false);
    const healthyReward = s.reward - ((s.info['x_velocity'] as number) - 1e-3 * sumSq(a));
    if (Math.abs(healthyReward) < 1e-9) sawUnhealthy = true;
    if (s.truncated) break;
  }
  assert.ok(sawUnhealthy);
  env.close();
  free.close();
});

test('Walker2d terminates when its torso falls', async () => {
  const env = await makeMujocoEnv('Walker2d-v4');
  env.reset(0);
  const zero = new Float32Array(6);
  let r: StepResult | undefined;
  for (let t = 0; t < 1000; t++) {
    r = env.step(zero);
    const o = r.observation;
    const healthy = o[0]! > 0.8 && o[0]! < 2 && o[1]! > -1 && o[1]! < 1;
    assert.equal(r.terminated, !healthy);
    if (r.terminated) break;
  }
  assert.ok(r?.terminated);
  env.close();
});

test('truncation at maxEpisodeSteps (HalfCheetah, 5 steps)', async () => {
  const env = await makeMujocoEnv('HalfCheetah-v4', { maxEpisodeSteps: 5 });
  assert.equal(env.maxEpisodeSteps, 5);
  env.reset(0);
  const acts = actions(5, 6, 9);
  for (let t = 1; t <= 5; t++) {
    const r = env.step(acts[t - 1]!);
    assert.equal(r.truncated, t === 5, `step ${t}`);
    assert.equal(r.terminated, false);
  }
  assert.throws(() => env.step(acts[0]!), EnvStateError);
  env.close();
});

test('bad actions throw InvalidActionError and change nothing', async () => {
  for (const id of MUJOCO_ENV_IDS) {
    const env = await makeMujocoEnv(id);
    const dim = SIZES[id].act;
    env.reset(1);
    env.step(new Float32Array(dim).fill(0.3));
    const before = env.snapshot();
    const bad: unknown[] = [
      new Float32Array(dim + 1),
      new Float32Array(dim - 1),
      [],
      0.5,
      Float64Array.from({ length: dim }, (_, i) => (i === dim - 1 ? Number.NaN : 0)),
      Array.from({ length: dim }, (_, i) => (i === 0 ? Number.POSITIVE_INFINITY : 0)),
      Array.from({ length: dim }, (_, i) => (i === 1 ? Number.NEGATIVE_INFINITY : 0)),
    ];
    for (const a of bad) {
      assert.throws(() => env.step(a as number[]), InvalidActionError);
      assertSameSnapshot(env.snapshot(), before);
    }
    // Still steppable, and no NaN got in.
    const r = env.step(Array.from({ length: dim }, () => 0.1));
    assert.ok(r.observation.every(Number.isFinite));
    env.close();
  }
});

test('options: v4 kwargs accepted, unknown keys and bad values rejected', async () => {
  await assert.rejects(makeMujocoEnv('Hopper-v4', { healthy_rewrd: 2 }), (e: unknown) => e instanceof TypeError && /healthy_rewrd/.test(e.message));
  await assert.rejects(makeMujocoEnv('HalfCheetah-v4', { healthy_reward: 1 }), /healthy_reward/);
  await assert.rejects(makeMujocoEnv('Walker2d-v4', { healthy_state_range: [-1, 1] }), /healthy_state_range/);
  await assert.rejects(makeMujocoEnv('Hopper-v4', { healthy_z_range: [1, 0] }), /healthy_z_range/);
  await assert.rejects(makeMujocoEnv('Hopper-v4', { ctrl_cost_weight: Number.NaN }), /ctrl_cost_weight/);
  await assert.rejects(makeMujocoEnv('Hopper-v4', { maxEpisodeSteps: 0 }), /maxEpisodeSteps/);
  await assert.rejects(makeMujocoEnv('Hopper-v4', { seed: -1 }), /seed/);

  const env = await makeMujocoEnv('Hopper-v4', {
    forward_reward_weight: 2,
    ctrl_cost_weight: 0.5,
    healthy_reward: 3,
    reset_noise_scale: 0,
    healthy_z_range: [0.5, Number.POSITIVE_INFINITY],
  });
  const o = env.reset(0).observation;
  assert.equal(o[0], 1.25); // no noise
  const a = Float32Array.of(0.5, -0.5, 0.25);
  const r = env.step(a);
  const expected = 2 * (r.info['x_velocity'] as number) + 3 - 0.5 * sumSq(a);
  assert.ok(Math.abs(r.reward - expected) < 1e-12);
  env.close();
});

test('HalfCheetah reward = reward_run + reward_ctrl, reward_ctrl = −0.1·Σa², x_velocity = Δx/dt', async () => {
  const env = await makeMujocoEnv('HalfCheetah-v4');
  env.reset(2);
  let x = Number.NaN;
  for (const [t, a] of actions(30, 6, 4).entries()) {
    const r = env.step(a);
    const run = r.info['reward_run'] as number;
    const ctrl = r.info['reward_ctrl'] as number;
    assert.equal(r.reward, run + ctrl);
    assert.ok(Math.abs(ctrl - -0.1 * sumSq(a)) < 1e-14);
    assert.equal(run, r.info['x_velocity']);
    const xNew = r.info['x_position'] as number;
    if (t > 0) assert.ok(Math.abs((r.info['x_velocity'] as number) - (xNew - x) / 0.05) < 1e-9);
    x = xNew;
  }
  env.close();
});

test('Hopper reward = x_velocity + 1 − 1e-3·Σa², x_velocity = Δx/dt', async () => {
  const env = await makeMujocoEnv('Hopper-v4');
  env.reset(2);
  let x = Number.NaN;
  for (const [t, a] of actions(10, 3, 5).entries()) {
    const r = env.step(a);
    const v = r.info['x_velocity'] as number;
    assert.ok(Math.abs(r.reward - (v + 1 - 1e-3 * sumSq(a))) < 1e-12);
    const xNew = r.info['x_position'] as number;
    if (t > 0) assert.ok(Math.abs(v - (xNew - x) / 0.008) < 1e-9);
    x = xNew;
    if (r.terminated) break;
  }
  env.close();
});

test('no wasm memory growth over 10,000 resets and 50 make/close cycles; close is idempotent', async () => {
  const env = await makeMujocoEnv('Hopper-v4');
  env.reset(0);
  env.step([0.1, 0.1, 0.1]);
  const before = mujocoHeapBytes();
  assert.ok(before > 0);
  for (let i = 0; i < 10_000; i++) env.reset();
  assert.equal(mujocoHeapBytes(), before);
  env.close();
  env.close();
  assert.throws(() => env.reset(), EnvStateError);
  assert.throws(() => env.step([0, 0, 0]), EnvStateError);
  assert.throws(() => env.snapshot(), EnvStateError);

  // MjData is freed on close: its memory is reused by the next env.
  for (let i = 0; i < 50; i++) {
    const e = await makeMujocoEnv('Walker2d-v4');
    e.reset(i);
    e.step(new Float32Array(6));
    e.close();
  }
  assert.equal(mujocoHeapBytes(), before);
});

function sideView(e: Env): Float32Array {
  if (!e.sideView) throw new Error(`${e.id} has no sideView`);
  return e.sideView();
}

test('sideView: the Hopper capsules where the model puts them, in metres; drawing changes no trajectory', async () => {
  const env = await makeMujocoEnv('Hopper-v4');
  const o = env.reset(3).observation;
  const v = sideView(env);
  assert.equal(v.length, 4 * 5, 'torso, thigh, leg, foot');
  const capsule = (i: number) => Array.from(v.subarray(5 * i, 5 * i + 5));
  const [tx0, tz0, tx1, tz1, tr] = capsule(0);
  // torso: fromto 0 0 0.2 → 0 0 −0.2 about the torso body at height qpos[1] (= observation[0])
  const mid = (tz0! + tz1!) / 2;
  assert.ok(Math.abs(mid - o[0]!) < 0.01, `torso centre ${mid} vs height ${o[0]}`);
  assert.ok(Math.abs(Math.hypot(tx1! - tx0!, tz1! - tz0!) - 0.4) < 1e-4, 'torso length 0.4');
  assert.ok(Math.abs(tr! - 0.05) < 1e-6);
  const [, fz0, , fz1, fr] = capsule(3);
  assert.ok(Math.abs(fr! - 0.06) < 1e-6, 'foot radius');
  assert.ok(Math.abs(fz0! - 0.1) < 0.02 && Math.abs(fz1! - 0.1) < 0.02, `the foot lies on the floor plane + radius: ${fz0}, ${fz1}`);
  env.close();
  // Two envs, same seed and actions; one draws every step: identical observations.
  const [a, b] = [await makeMujocoEnv('Hopper-v4'), await makeMujocoEnv('Hopper-v4')];
  a.reset(5);
  b.reset(5);
  for (const act of actions(40, 3, 9)) {
    const ra = a.step(act);
    sideView(b);
    const rb = b.step(act);
    assertSameArray(ra.observation, rb.observation, 'observation');
    if (ra.terminated) break;
  }
  a.close();
  b.close();
});
