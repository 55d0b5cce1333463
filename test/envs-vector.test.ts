import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { makeClassicEnv } from '../lib/envs/classic/index.ts';
import { EnvStateError, InvalidActionError } from '../lib/envs/types.ts';
import type { Env, StepResult } from '../lib/envs/types.ts';
import { VectorEnv } from '../lib/envs/vector.ts';
import type { VectorStepResult } from '../lib/envs/vector.ts';
import { Rng } from '../lib/random.ts';

/** CartPole copies with time limits 2, 3 and 500 (they all use the `seed: i` option). */
function cartpoles(): Env[] {
  return [2, 3, 500].map((max, i) => makeClassicEnv('CartPole-v1', { seed: i, maxEpisodeSteps: max }));
}

function row(a: Float32Array, i: number, d: number): number[] {
  return Array.from(a.subarray(i * d, (i + 1) * d));
}

describe('VectorEnv', () => {
  it('reset seeds: a number gives seed + i, an array one seed each, none continues each generator', () => {
    const vec = VectorEnv.from(3, (i) => makeClassicEnv('Pendulum-v1', { seed: 10 + i }));
    assert.equal(vec.obsDim, 3);
    assert.equal(vec.actDim, 1);
    const r = vec.reset(100);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(row(r.observations, i, 3), Array.from(makeClassicEnv('Pendulum-v1').reset(100 + i).observation));
    }
    const a = vec.reset([7, undefined, 9]);
    assert.deepEqual(row(a.observations, 0, 3), Array.from(makeClassicEnv('Pendulum-v1').reset(7).observation));
    assert.deepEqual(row(a.observations, 2, 3), Array.from(makeClassicEnv('Pendulum-v1').reset(9).observation));
    const fresh = VectorEnv.from(3, (i) => makeClassicEnv('Pendulum-v1', { seed: 10 + i })).reset();
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(row(fresh.observations, i, 3), Array.from(makeClassicEnv('Pendulum-v1', { seed: 10 + i }).reset().observation));
    }
    assert.throws(() => vec.reset([1, 2]), /expected 3 seeds, got 2/);
  });

  it("autoreset 'next-step': an ended copy is reset on the next step, its action ignored", () => {
    const vec = new VectorEnv(cartpoles());
    const refs = cartpoles();
    const r0 = vec.reset();
    refs.forEach((e, i) => assert.deepEqual(row(r0.observations, i, 4), Array.from(e.reset().observation)));
    const results: VectorStepResult[] = [];
    // Step 3 gives copy 0 the invalid action 9: its action must be ignored (it is autoresetting).
    const actions = [
      [1, 0, 1],
      [0, 1, 0],
      [9, 0, 1],
      [1, 1, 0],
    ];
    for (const a of actions) results.push(vec.step(Int32Array.from(a)));

    // Copy 0 (limit 2): truncated at step 2, reset at step 3, stepped again at step 4.
    const e0 = refs[0]!;
    const s1 = e0.step(1);
    const s2 = e0.step(0);
    assert.ok(s2.truncated && !s1.truncated);
    const reset0 = e0.reset().observation; // continues copy 0's own generator
    const s4 = e0.step(1);
    const check = (res: VectorStepResult, i: number, ref: StepResult) => {
      assert.deepEqual(row(res.observations, i, 4), Array.from(ref.observation));
      assert.equal(res.rewards[i], ref.reward);
      assert.equal(res.terminated[i], ref.terminated ? 1 : 0);
      assert.equal(res.truncated[i], ref.truncated ? 1 : 0);
      assert.equal(res.stepped[i], 1);
    };
    check(results[0]!, 0, s1);
    check(results[1]!, 0, s2);
    const auto = results[2]!;
    assert.deepEqual(row(auto.observations, 0, 4), Array.from(reset0));
    assert.equal(auto.rewards[0], 0);
    assert.equal(auto.costs[0], 0);
    assert.equal(auto.terminated[0], 0);
    assert.equal(auto.truncated[0], 0);
    assert.equal(auto.stepped[0], 0);
    check(results[3]!, 0, s4);

    // Copy 1 (limit 3): truncated at step 3, autoreset at step 4.
    assert.equal(results[2]!.truncated[1], 1);
    assert.equal(results[3]!.stepped[1], 0);
    assert.equal(results[3]!.rewards[1], 0);
    // Copy 2 runs on.
    assert.deepEqual(Array.from(results.map((r) => r.stepped[2])), [1, 1, 1, 1]);
    assert.deepEqual(Array.from(vec.active), [1, 1, 1]);
  });

  it("autoreset 'disabled': ended copies freeze with their flags, actions ignored, active mask", () => {
    const vec = new VectorEnv(cartpoles(), { autoreset: 'disabled' });
    assert.deepEqual(Array.from(vec.active), [0, 0, 0]);
    vec.reset();
    assert.deepEqual(Array.from(vec.active), [1, 1, 1]);
    vec.step([1, 1, 1]);
    const r2 = vec.step([0, 0, 0]);
    assert.equal(r2.truncated[0], 1);
    assert.deepEqual(Array.from(vec.active), [0, 1, 1]);
    const last0 = row(r2.observations, 0, 4);
    // Copy 0's action is ignored (not even validated); its row repeats.
    const r3 = vec.step([7, 1, 1]);
    assert.deepEqual(row(r3.observations, 0, 4), last0);
    assert.equal(r3.rewards[0], 0);
    assert.equal(r3.costs[0], 0);
    assert.equal(r3.truncated[0], 1);
    assert.equal(r3.terminated[0], 0);
    assert.equal(r3.stepped[0], 0);
    assert.equal(r3.truncated[1], 1);
    assert.equal(r3.stepped[1], 1);
    assert.equal(r3.rewards[1], 1);
    assert.deepEqual(Array.from(vec.active), [0, 0, 1]);
    const r4 = vec.step([Number.NaN, -3, 0]);
    assert.deepEqual(Array.from(r4.stepped), [0, 0, 1]);
    assert.deepEqual(row(r4.observations, 1, 4), row(r3.observations, 1, 4));
    // A live copy's bad action still throws.
    assert.throws(() => vec.step([0, 0, 2]), InvalidActionError);
    // reset with a mask revives only copy 0
    const rm = vec.reset(undefined, { mask: [1, 0, 0] });
    assert.deepEqual(Array.from(vec.active), [1, 0, 1]);
    assert.deepEqual(row(rm.observations, 1, 4), row(r4.observations, 1, 4));
    vec.reset();
    assert.deepEqual(Array.from(vec.active), [1, 1, 1]);
  });

  it('restoreAll gives identical rows under identical actions (a group from one reset state)', () => {
    for (const id of ['Pendulum-v1', 'CartPole-v1', 'MountainCarContinuous-v0']) {
      const n = 4;
      const vec = VectorEnv.from(n, (i) => makeClassicEnv(id, { seed: i, maxEpisodeSteps: 60 }), { autoreset: 'disabled' });
      vec.reset(50); // some unrelated state first
      const start = makeClassicEnv(id, { maxEpisodeSteps: 60 });
      const { observation } = start.reset(123);
      const snap = start.snapshot();
      vec.restoreAll(snap, observation);
      for (let i = 0; i < n; i++) assert.deepEqual(row(vec.observations, i, vec.obsDim), Array.from(observation));
      const rng = new Rng(1, 'actions');
      const discrete = vec.actionSpace.kind === 'discrete';
      let steps = 0;
      while (vec.active.includes(1)) {
        const a = discrete ? rng.int(2) : rng.uniform(-1, 1);
        const r = vec.step(new Float32Array(n).fill(a));
        const ref = start.step(discrete ? a : [Math.fround(a)]);
        for (let i = 0; i < n; i++) {
          assert.deepEqual(row(r.observations, i, vec.obsDim), Array.from(ref.observation));
          assert.ok(Object.is(r.rewards[i], ref.reward));
          assert.equal(r.terminated[i], ref.terminated ? 1 : 0);
          assert.equal(r.truncated[i], ref.truncated ? 1 : 0);
        }
        steps++;
      }
      assert.ok(steps >= 1 && steps <= 60);
      vec.envList.forEach((e) => assert.deepEqual(e.snapshot(), start.snapshot()));
      // different actions per row diverge
      vec.restoreAll(snap);
      const r = vec.step(discrete ? [0, 1, 0, 1] : [-1, 1, -1, 1]);
      assert.notDeepEqual(row(r.observations, 0, vec.obsDim), row(r.observations, 1, vec.obsDim));
      assert.deepEqual(row(r.observations, 0, vec.obsDim), row(r.observations, 2, vec.obsDim));
    }
  });

  it('restoreAll rejects foreign and ended snapshots', () => {
    const vec = VectorEnv.from(2, (i) => makeClassicEnv('CartPole-v1', { seed: i }));
    const p = makeClassicEnv('Pendulum-v1');
    p.reset(0);
    assert.throws(() => vec.restoreAll(p.snapshot()), EnvStateError);
    const c = makeClassicEnv('CartPole-v1', { maxEpisodeSteps: 1 });
    c.reset(0);
    c.step(0);
    assert.throws(() => vec.restoreAll(c.snapshot()), /live episode/);
  });

  it('snapshot → k steps → restore → the same k steps', () => {
    const vec = VectorEnv.from(3, (i) => makeClassicEnv('CartPole-v1', { seed: i, maxEpisodeSteps: 15 }));
    vec.reset(4);
    const rng = new Rng(2);
    const act = () => Int32Array.from([rng.int(2), rng.int(2), rng.int(2)]);
    for (let t = 0; t < 7; t++) vec.step(act());
    const snap = vec.snapshot();
    const actions = Array.from({ length: 40 }, act);
    const first = actions.map((a) => vec.step(a));
    vec.restore(snap);
    const second = actions.map((a) => vec.step(a));
    assert.deepEqual(second, first);
    assert.ok(
      first.some((r) => r.stepped.includes(0)),
      'the window crosses autoresets',
    );
  });

  it('validates action lengths and values before any copy moves', () => {
    const vec = VectorEnv.from(3, (i) => makeClassicEnv('Pendulum-v1', { seed: i }));
    assert.throws(() => vec.step([0, 0, 0]), EnvStateError); // before reset
    vec.reset(1);
    const before = vec.snapshot();
    assert.throws(
      () => vec.step([0, 0]),
      (e: unknown) => e instanceof InvalidActionError && /expected 3 actions \(3 envs × 1\), got 2/.test(e.message),
    );
    assert.throws(() => vec.step(new Float32Array(4)), InvalidActionError);
    assert.throws(() => vec.step([0, 0, Number.NaN]), /action 2\[0\]/);
    assert.deepEqual(vec.snapshot(), before);

    const cp = VectorEnv.from(2, (i) => makeClassicEnv('CartPole-v1', { seed: i }));
    cp.reset(0);
    const cpBefore = cp.snapshot();
    assert.throws(() => cp.step([1, 2]), /action 1 must be an integer in \[0, 2\)/);
    assert.throws(() => cp.step([0.5, 1]), InvalidActionError);
    assert.throws(() => cp.step([1]), /expected 2 actions/);
    assert.deepEqual(cp.snapshot(), cpBefore);
    cp.step(Float32Array.of(1, 0)); // integral floats are fine
  });

  it('rejects mismatched copies; close closes every copy', () => {
    assert.throws(() => new VectorEnv([]), RangeError);
    assert.throws(() => new VectorEnv([makeClassicEnv('CartPole-v1'), makeClassicEnv('Pendulum-v1')]), TypeError);
    const e = makeClassicEnv('CartPole-v1');
    assert.throws(() => new VectorEnv([e, e]), /same object/);
    assert.throws(() => new VectorEnv([e], { autoreset: 'same-step' as never }), /autoreset/);
    const vec = VectorEnv.from(2, (i) => makeClassicEnv('CartPole-v1', { seed: i }));
    vec.reset();
    vec.close();
    vec.close();
    assert.throws(() => vec.step([0, 0]), EnvStateError);
    assert.throws(() => vec.envList[0]!.reset(), EnvStateError);
  });
});
