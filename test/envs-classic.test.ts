import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CLASSIC_ENV_IDS, CartPoleConstrained, Pendulum, angleNormalize, makeClassicEnv } from '../lib/envs/classic/index.ts';
import { Rng } from '../lib/random.ts';
import { EnvStateError, InvalidActionError } from '../lib/envs/types.ts';
import type { Action, Env, StepResult } from '../lib/envs/types.ts';

const THETA_LIMIT = (12 * 2 * Math.PI) / 360;

/** A reproducible valid action for any of the classic envs. */
function randomAction(env: Env, rng: Rng): Action {
  if (env.actionSpace.kind === 'discrete') return rng.int(env.actionSpace.n);
  return Float32Array.of(rng.uniform(-2.5, 2.5)); // beyond the bounds too: clipped by the env
}

/** Runs `steps` steps (resetting on episode end) and returns every result. */
function rollout(env: Env, steps: number, actionSeed: number): StepResult[] {
  const rng = new Rng(actionSeed, 'actions');
  const out: StepResult[] = [];
  for (let i = 0; i < steps; i++) {
    const r = env.step(randomAction(env, rng));
    out.push(r);
    if (r.terminated || r.truncated) env.reset();
  }
  return out;
}

/** Bit-level equality of step results (Object.is on numbers, element-wise on observations). */
function assertSameResults(a: StepResult[], b: StepResult[]): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    assert.deepEqual(Array.from(x.observation), Array.from(y.observation), `observation at step ${i}`);
    assert.ok(Object.is(x.reward, y.reward), `reward at step ${i}`);
    assert.ok(Object.is(x.cost, y.cost), `cost at step ${i}`);
    assert.equal(x.terminated, y.terminated, `terminated at step ${i}`);
    assert.equal(x.truncated, y.truncated, `truncated at step ${i}`);
  }
}

/** A noisy balancing controller whose cart drifts right: it leaves any central band. */
function balanceWithDrift(o: Float32Array, rng: Rng): number {
  if (rng.uniform() < 0.1) return rng.int(2);
  return o[2]! + 0.5 * o[3]! + 0.01 > 0 ? 1 : 0;
}

function withState(env: Env, state: number[], elapsedSteps = 0): void {
  const s = env.snapshot();
  env.restore({ ...s, state: Float64Array.from(state), elapsedSteps, done: false });
}

describe('classic envs: common contract', () => {
  it('lists the four ids and rejects unknown ids and options', () => {
    assert.deepEqual([...CLASSIC_ENV_IDS].sort(), ['CartPole-v1', 'CartPoleConstrained-v1', 'MountainCarContinuous-v0', 'Pendulum-v1']);
    assert.throws(() => makeClassicEnv('CartPole-v0'), /unknown env id "CartPole-v0".*CartPole-v1/);
    assert.throws(
      () => makeClassicEnv('CartPole-v1', { costBand: 1 }),
      (e: unknown) => e instanceof TypeError && /"costBand"/.test(e.message) && /seed, maxEpisodeSteps/.test(e.message),
    );
    assert.throws(() => makeClassicEnv('Pendulum-v1', { gravity: 9.8 }), /unknown option "gravity".*seed, maxEpisodeSteps, g/);
    assert.throws(() => makeClassicEnv('Pendulum-v1', { g: Number.NaN }), /option g must be a finite number/);
    assert.throws(() => makeClassicEnv('CartPoleConstrained-v1', { costBand: -1 }), /costBand/);
    assert.throws(() => makeClassicEnv('CartPole-v1', { maxEpisodeSteps: 0 }), /maxEpisodeSteps/);
    assert.throws(() => makeClassicEnv('CartPole-v1', { seed: 1.5 }), /seed/);
    // undefined values count as absent
    assert.equal(makeClassicEnv('CartPole-v1', { maxEpisodeSteps: undefined }).maxEpisodeSteps, 500);
  });

  it('has the registered time limits and spaces', () => {
    const limits: Record<string, number> = {
      'CartPole-v1': 500,
      'CartPoleConstrained-v1': 500,
      'Pendulum-v1': 200,
      'MountainCarContinuous-v0': 999,
    };
    for (const id of CLASSIC_ENV_IDS) {
      const env = makeClassicEnv(id);
      assert.equal(env.id, id);
      assert.equal(env.maxEpisodeSteps, limits[id]);
      assert.equal(makeClassicEnv(id, { maxEpisodeSteps: 7 }).maxEpisodeSteps, 7);
    }
    const cp = makeClassicEnv('CartPole-v1');
    assert.deepEqual(cp.actionSpace, { kind: 'discrete', n: 2 });
    assert.deepEqual(Array.from(cp.observationSpace.high), [4.8, 3.4028234663852886e38, Math.fround(THETA_LIMIT * 2), 3.4028234663852886e38].map(Math.fround));
    const pd = makeClassicEnv('Pendulum-v1');
    assert.deepEqual(Array.from(pd.observationSpace.high), [1, 1, 8]);
    assert.equal(pd.actionSpace.kind, 'box');
    if (pd.actionSpace.kind === 'box') assert.deepEqual(Array.from(pd.actionSpace.high), [2]);
    const mc = makeClassicEnv('MountainCarContinuous-v0');
    assert.deepEqual(Array.from(mc.observationSpace.low), [-1.2, -0.07].map(Math.fround));
  });

  for (const id of CLASSIC_ENV_IDS) {
    describe(id, () => {
      it('same seed gives the same sequence; different seeds differ', () => {
        const a = makeClassicEnv(id);
        const b = makeClassicEnv(id, { seed: 99 });
        const ra = a.reset(5);
        const rb = b.reset(5);
        assert.deepEqual(ra.observation, rb.observation);
        assertSameResults(rollout(a, 300, 1), rollout(b, 300, 1));

        const c = makeClassicEnv(id);
        assert.notDeepEqual(c.reset(6).observation, makeClassicEnv(id).reset(5).observation);

        // reset() without a seed continues the env's own generator, seeded by the `seed` option.
        const d = makeClassicEnv(id, { seed: 11 });
        const e = makeClassicEnv(id, { seed: 11 });
        const d1 = d.reset().observation;
        assert.deepEqual(d1, e.reset(11).observation, 'reset() ≡ reset(options.seed) the first time');
        const d2 = d.reset().observation;
        assert.notDeepEqual(d1, d2, 'the generator continues');
        assert.deepEqual(d2, e.reset().observation);
        assert.notDeepEqual(makeClassicEnv(id, { seed: 12 }).reset().observation, d1);
      });

      it('snapshot → k steps → restore → the same k steps, bit-identical', () => {
        const env = makeClassicEnv(id, { seed: 3, maxEpisodeSteps: 40 });
        env.reset();
        rollout(env, 25, 7);
        const snap = env.snapshot();
        const snapCopy = structuredClone(snap);
        const first = rollout(env, 120, 8); // crosses episode ends: the rng state matters
        const after = env.snapshot();
        env.restore(snap);
        const second = rollout(env, 120, 8);
        assertSameResults(first, second);
        assert.deepEqual(env.snapshot(), after);
        // a restore on a fresh env of the same id continues identically too
        const other = makeClassicEnv(id, { seed: 1234, maxEpisodeSteps: 40 });
        other.restore(snap);
        assertSameResults(rollout(other, 120, 8), first);
        // the snapshot is a copy, not a view of the live state
        assert.deepEqual(snap, snapCopy);
      });

      it('restoring another id’s snapshot errors', () => {
        const env = makeClassicEnv(id);
        env.reset(0);
        const foreign = CLASSIC_ENV_IDS.find((x) => x !== id)!;
        const f = makeClassicEnv(foreign);
        f.reset(0);
        assert.throws(() => env.restore(f.snapshot()), EnvStateError);
        const s = env.snapshot();
        assert.throws(() => env.restore({ ...s, state: new Float64Array(s.state.length + 1) }), EnvStateError);
      });

      it('steps before reset and after the end throw EnvStateError; close makes it unusable', () => {
        const env = makeClassicEnv(id, { maxEpisodeSteps: 3 });
        const rng = new Rng(0);
        assert.throws(() => env.step(randomAction(env, rng)), EnvStateError);
        env.reset(1);
        let r: StepResult | undefined;
        for (let i = 0; i < 3; i++) r = env.step(randomAction(env, rng));
        assert.ok(r!.terminated || r!.truncated);
        assert.equal(env.snapshot().done, true);
        assert.throws(() => env.step(randomAction(env, rng)), EnvStateError);
        env.reset();
        env.step(randomAction(env, rng));
        env.close();
        env.close();
        assert.throws(() => env.step(randomAction(env, rng)), EnvStateError);
        assert.throws(() => env.reset(), EnvStateError);
      });

      it('bad actions throw InvalidActionError and leave the snapshot unchanged', () => {
        const env = makeClassicEnv(id);
        env.reset(2);
        rollout(env, 3, 2);
        const before = env.snapshot();
        const bad: Action[] =
          env.actionSpace.kind === 'discrete'
            ? [2, -1, 0.5, Number.NaN, Infinity, [0, 1], [], Float32Array.of(1, 0), Float32Array.of(Number.NaN)]
            : [[Number.NaN], [Infinity], Float32Array.of(-Infinity), [0, 0], [], Float64Array.of(1, 2), Number.NaN, 0.1];
        for (const a of bad) {
          assert.throws(() => env.step(a), InvalidActionError, `action ${String(a)}`);
          assert.deepEqual(env.snapshot(), before);
        }
        env.step(env.actionSpace.kind === 'discrete' ? 1 : [0.5]); // still usable
      });

      it('null, strings and objects as actions, and null or NaN snapshots, are clear errors', () => {
        const env = makeClassicEnv(id);
        env.reset(4);
        const before = env.snapshot();
        for (const a of [null, undefined, '1', { 0: 1, length: 1 }, true, ['0.5'], [null]] as unknown as Action[]) {
          assert.throws(
            () => env.step(a),
            (e: unknown) => e instanceof InvalidActionError && e.message.startsWith(`${id}: `),
            `action ${JSON.stringify(a)}`,
          );
          assert.deepEqual(env.snapshot(), before);
        }
        for (const s of [null, undefined, 3, 'x']) {
          assert.throws(
            () => env.restore(s as never),
            (e: unknown) => e instanceof EnvStateError && /restore\(\) expects a snapshot object/.test(e.message),
            `restore(${String(s)})`,
          );
        }
        const nan = Float64Array.from(before.state);
        nan[0] = Number.NaN;
        assert.throws(
          () => env.restore({ ...before, state: nan }),
          (e: unknown) => e instanceof EnvStateError && /snapshot state\[0\] is NaN/.test(e.message),
        );
        assert.throws(() => env.restore({ ...before, done: 'no' as never }), /snapshot done must be a boolean/);
        assert.deepEqual(env.snapshot(), before);
      });
    });
  }
});

describe('CartPole-v1', () => {
  it('one step from a known state matches the equations of motion by hand', () => {
    const env = makeClassicEnv('CartPole-v1');
    env.reset(0);
    withState(env, [0.1, -0.2, 0.05, 0.3]);
    const r = env.step(1);
    // By hand, action 1 → F = +10 N; m_p·l = 0.1·0.5 = 0.05; M = 1.1; g = 9.8; τ = 0.02.
    const sin = Math.sin(0.05);
    const cos = Math.cos(0.05);
    const temp = (10 + 0.05 * 0.3 * 0.3 * sin) / 1.1;
    const thetaAcc = (9.8 * sin - cos * temp) / (0.5 * (4 / 3 - (0.1 * cos * cos) / 1.1));
    const xAcc = temp - (0.05 * thetaAcc * cos) / 1.1;
    const expected = [0.1 + 0.02 * -0.2, -0.2 + 0.02 * xAcc, 0.05 + 0.02 * 0.3, 0.3 + 0.02 * thetaAcc];
    // The same numbers from an independent evaluation (Python's math module).
    const literal = [0.096, -0.005625065781779709, 0.056, 0.02349585151852651];
    const state = Array.from(env.snapshot().state);
    for (let i = 0; i < 4; i++) {
      assert.ok(Math.abs(state[i]! - expected[i]!) < 1e-15, `state[${i}] ${state[i]} vs ${expected[i]}`);
      assert.ok(Math.abs(state[i]! - literal[i]!) < 1e-12, `state[${i}] ${state[i]} vs ${literal[i]}`);
      assert.equal(r.observation[i], Math.fround(state[i]!));
    }
    assert.equal(r.reward, 1);
    assert.equal(r.cost, 0);
    assert.equal(r.terminated, false);

    // action 0 pushes the other way: ẋ decreases
    withState(env, [0, 0, 0, 0]);
    const l = env.step(0);
    assert.ok(l.observation[1]! < 0 && l.observation[3]! > 0);
  });

  it('terminates exactly when |x| > 2.4 or |θ| > 12°, with reward 1 on every step', () => {
    const env = makeClassicEnv('CartPole-v1', { seed: 4, maxEpisodeSteps: 5000 });
    const rng = new Rng(4, 'policy');
    let terminations = 0;
    let episodes = 0;
    let xTerminations = 0;
    let o = env.reset().observation;
    for (let i = 0; i < 20000; i++) {
      // Even episodes act at random (the pole falls); odd ones balance with a slight drift to the
      // right (the cart runs off the track), so both limits get hit.
      const r = env.step(episodes % 2 === 0 ? rng.int(2) : balanceWithDrift(o, rng));
      o = r.observation;
      assert.equal(r.reward, 1);
      const x = r.observation[0]!;
      const th = r.observation[2]!;
      const nearEdge = Math.abs(Math.abs(x) - 2.4) < 1e-6 || Math.abs(Math.abs(th) - THETA_LIMIT) < 1e-7;
      if (!nearEdge) assert.equal(r.terminated, Math.abs(x) > 2.4 || Math.abs(th) > THETA_LIMIT, `step ${i}`);
      if (r.terminated) {
        terminations++;
        if (Math.abs(x) > 2.4) xTerminations++;
      }
      if (r.terminated || r.truncated) {
        episodes++;
        o = env.reset().observation;
      }
    }
    assert.ok(terminations > 40, `terminations ${terminations}`);
    assert.ok(xTerminations > 5 && terminations - xTerminations > 5, `x terminations ${xTerminations} of ${terminations}`);
  });

  it('truncates exactly at the maxEpisodeSteps override', () => {
    const env = makeClassicEnv('CartPole-v1', { maxEpisodeSteps: 6 });
    for (let ep = 0; ep < 3; ep++) {
      env.reset(ep);
      for (let t = 1; t <= 6; t++) {
        const r = env.step(t % 2); // alternate: cannot fall from U(±0.05) in 6 steps
        assert.equal(r.terminated, false);
        assert.equal(r.truncated, t === 6, `step ${t}`);
      }
      assert.throws(() => env.step(0), EnvStateError);
    }
  });
});

describe('CartPoleConstrained-v1', () => {
  it('cost is 1 exactly when |x| > costBand; reward and termination as CartPole-v1', () => {
    for (const band of [undefined, 0.3]) {
      const env = new CartPoleConstrained(band === undefined ? { seed: 8 } : { seed: 8, costBand: band });
      const plain = makeClassicEnv('CartPole-v1', { seed: 8 });
      const b = band ?? 0.5;
      assert.equal(env.costBand, b);
      const rng = new Rng(8, 'policy');
      let o = env.reset().observation;
      plain.reset();
      let costly = 0;
      let free = 0;
      for (let i = 0; i < 5000; i++) {
        const a = balanceWithDrift(o, rng);
        const r = env.step(a);
        o = r.observation;
        const p = plain.step(a);
        assert.deepEqual(r.observation, p.observation);
        assert.equal(r.reward, p.reward);
        assert.equal(r.terminated, p.terminated);
        assert.equal(r.truncated, p.truncated);
        assert.equal(p.cost, 0);
        const x = env.snapshot().state[0]!; // the post-step float64 position
        assert.equal(r.cost, Math.abs(x) > b ? 1 : 0, `step ${i}: x=${x}`);
        if (r.cost === 1) costly++;
        else free++;
        if (r.terminated || r.truncated) {
          o = env.reset().observation;
          plain.reset();
        }
      }
      assert.ok(costly > 50 && free > 50, `costly ${costly}, free ${free}`);
    }
  });

  it('cost at the band edge from a set state', () => {
    const env = new CartPoleConstrained({ costBand: 0.5 });
    env.reset(0);
    withState(env, [0.5, 0, 0, 0]); // x' = 0.5 + τ·0 = 0.5: on the edge, not outside
    assert.equal(env.step(1).cost, 0);
    withState(env, [0.5, 0.1, 0, 0]); // x' = 0.502
    assert.equal(env.step(1).cost, 1);
    withState(env, [-0.5, -0.1, 0, 0]);
    assert.equal(env.step(0).cost, 1);
  });
});

describe('Pendulum-v1', () => {
  it('one step by hand: reward on the old state, clipped torque, Euler update', () => {
    const env = new Pendulum();
    env.reset(0);
    withState(env, [3.5, -1.5]);
    const r = env.step([2.7]); // torque clipped to 2
    // θ_norm = 3.5 − 2π; reward = −(θ_norm² + 0.1·1.5² + 0.001·2²)
    const thN = 3.5 - 2 * Math.PI;
    assert.ok(Math.abs(r.reward - -(thN * thN + 0.1 * 2.25 + 0.001 * 4)) < 1e-14);
    assert.ok(Math.abs(r.reward - -7.975120454100327) < 1e-12); // Python's math module
    // θ̇' = −1.5 + (3·10/2·sin 3.5 + 3·2)·0.05; θ' = 3.5 + θ̇'·0.05
    const thDot = -1.5 + (15 * Math.sin(3.5) + 6) * 0.05;
    const th = 3.5 + thDot * 0.05;
    const [s0, s1] = env.snapshot().state;
    assert.ok(Math.abs(s1! - thDot) < 1e-15 && Math.abs(s1! - -1.4630874207672149) < 1e-12);
    assert.ok(Math.abs(s0! - th) < 1e-15 && Math.abs(s0! - 3.4268456289616394) < 1e-12);
    assert.deepEqual(Array.from(r.observation), [Math.cos(th), Math.sin(th), thDot].map(Math.fround));
    assert.equal(r.terminated, false);
    assert.equal(r.cost, 0);

    // speed clip at 8 and the g option
    const g = new Pendulum({ g: 9.81 });
    g.reset(0);
    withState(g, [1, 7.9]);
    const rg = g.step([-0.5]);
    const raw = 7.9 + (1.5 * 9.81 * Math.sin(1) + 3 * -0.5) * 0.05;
    assert.ok(raw > 8);
    assert.equal(g.snapshot().state[1], 8);
    assert.equal(g.snapshot().state[0], 1 + 8 * 0.05);
    assert.ok(Math.abs(rg.reward - -(1 + 0.1 * 7.9 * 7.9 + 0.001 * 0.25)) < 1e-14);
  });

  it('angle normalisation is floored like Python’s %', () => {
    assert.ok(Math.abs(angleNormalize(-3.5) - (-3.5 + 2 * Math.PI)) < 1e-15);
    assert.ok(Math.abs(angleNormalize(10) - (10 - 4 * Math.PI)) < 1e-14);
    assert.equal(angleNormalize(0), 0);
    assert.equal(angleNormalize(Math.PI), -Math.PI);
  });

  it('reset ranges, never terminates, truncates exactly at 200', () => {
    const env = makeClassicEnv('Pendulum-v1', { seed: 5 });
    for (let ep = 0; ep < 3; ep++) {
      const { observation: o } = env.reset();
      assert.ok(Math.abs(o[0]! * o[0]! + o[1]! * o[1]! - 1) < 1e-6);
      assert.ok(Math.abs(o[2]!) <= 1);
      for (let t = 1; t <= 200; t++) {
        const r = env.step([Math.sin(t)]);
        assert.equal(r.terminated, false);
        assert.equal(r.truncated, t === 200, `step ${t}`);
        assert.ok(r.reward <= 0 && r.reward >= -(Math.PI ** 2 + 0.1 * 64 + 0.001 * 4));
        assert.ok(Math.abs(r.observation[2]!) <= 8);
      }
      assert.throws(() => env.step([0]), EnvStateError);
    }
  });
});

describe('MountainCarContinuous-v0', () => {
  it('terminates exactly on reaching position 0.45, with +100 on that step', () => {
    const env = makeClassicEnv('MountainCarContinuous-v0', { seed: 6 });
    let goals = 0;
    for (let ep = 0; ep < 5; ep++) {
      let { observation: o } = env.reset();
      assert.ok(o[0]! >= -0.6 && o[0]! < -0.4 && o[1] === 0);
      for (let t = 1; ; t++) {
        const a = o[1]! >= 0 ? 1.5 : -1; // bang-bang on the velocity's sign (1.5 is clipped)
        const r = env.step([a]);
        o = r.observation;
        const atGoal = o[0]! >= Math.fround(0.45);
        assert.equal(r.terminated, atGoal, `episode ${ep} step ${t}: x=${o[0]}`);
        // Gymnasium squares the raw action for the penalty
        assert.ok(Math.abs(r.reward - ((atGoal ? 100 : 0) - 0.1 * a * a)) < 1e-12);
        assert.ok(o[0]! >= Math.fround(-1.2) && o[0]! <= Math.fround(0.6) && Math.abs(o[1]!) <= Math.fround(0.07));
        if (r.terminated) {
          goals++;
          break;
        }
        assert.ok(!r.truncated && t < 999, 'bang-bang reaches the goal well before the limit');
      }
      assert.throws(() => env.step([0]), EnvStateError);
    }
    assert.equal(goals, 5);
  });

  it('rounds [x, v] to float32 after every step, as Gymnasium does (float64 within a step)', () => {
    // Reference written from the formulas: float64 arithmetic inside a step, the state stored as
    // float32 (Gymnasium: `self.state = np.array([position, velocity], dtype=np.float32)`); the
    // state drawn by reset stays float64 until the first step.
    const ref = (x: number, v: number, a: number): [number, number, number] => {
      const f = Math.min(Math.max(a, -1), 1);
      let nv = v + f * 0.0015 - 0.0025 * Math.cos(3 * x);
      nv = Math.min(Math.max(nv, -0.07), 0.07);
      const nx = Math.min(Math.max(x + nv, -1.2), 0.6);
      if (nx === -1.2 && nv < 0) nv = 0;
      const done = nx >= 0.45 && nv >= 0;
      return [Math.fround(nx), Math.fround(nv), (done ? 100 : 0) - a * a * 0.1]; // Gymnasium: math.pow(a, 2) * 0.1
    };
    const env = makeClassicEnv('MountainCarContinuous-v0', { seed: 11 });
    env.reset();
    const x0 = -0.5234567; // not float32-representable
    withState(env, [x0, 0]);
    let x = x0;
    let v = 0;
    for (let t = 0; t < 250; t++) {
      const a = t < 120 ? 1.3 * Math.sin(0.37 * t) : v >= 0 ? 1 : -1;
      const r = env.step([a]);
      const [nx, nv, reward] = ref(x, v, a);
      x = nx;
      v = nv;
      const s = env.snapshot().state;
      assert.equal(s[0], x, `step ${t}: position`);
      assert.equal(s[1], v, `step ${t}: velocity`);
      assert.equal(Math.fround(s[0]!), s[0], `step ${t}: position is float32`);
      assert.equal(Math.fround(s[1]!), s[1], `step ${t}: velocity is float32`);
      assert.equal(r.observation[0], x);
      assert.equal(r.reward, reward);
      if (r.terminated) break;
    }
  });

  it('inelastic left wall and truncation at the override', () => {
    const env = makeClassicEnv('MountainCarContinuous-v0', { maxEpisodeSteps: 4 });
    env.reset(0);
    withState(env, [-1.19, -0.05]);
    const r = env.step([-1]);
    assert.deepEqual(Array.from(env.snapshot().state), [Math.fround(-1.2), 0]);
    assert.equal(r.terminated, false);
    for (let t = 2; t <= 4; t++) assert.equal(env.step([0]).truncated, t === 4);
  });
});
