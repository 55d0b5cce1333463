import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLeft, isRight } from 'fp-ts/lib/Either.js';
import { Trajectory, Group, AdvantagedTrajectory, trajectoryShapeErrors } from '../lib/data.ts';
import { decode, decodeJSON, encodeJSON, decodeOrThrow, DecodeError } from '../lib/codec.ts';

function traj(): Trajectory {
  return {
    length: 3,
    obsDim: 2,
    actDim: 1,
    observations: Float32Array.from([0.1, -0, 1e-40, 3.5, 4, 5, 6, 7]),
    actions: Int32Array.from([0, 1, 1]),
    logProbs: Float32Array.from([-0.69, -0.1, -2.3]),
    rewards: Float32Array.from([1, 1, 1]),
    costs: Float32Array.from([0, 1, 0]),
    terminated: true,
    truncated: false,
    policyVersion: 4,
    groupId: 'g7',
    start: { kind: 'seed', envId: 'CartPole-v1', seed: 123 },
    targets: Float32Array.from([3, 2, 1]),
    timesteps: Int32Array.from([0, 1, 2]),
  };
}

test('JSON round trip keeps typed arrays bit-exactly', () => {
  const tr = traj();
  const back = decodeJSON(Trajectory, encodeJSON(Trajectory, tr));
  assert.ok(isRight(back));
  const b = back.right;
  assert.ok(b.observations instanceof Float32Array);
  assert.ok(b.actions instanceof Int32Array);
  assert.ok(b.timesteps instanceof Int32Array);
  assert.deepEqual(new Uint8Array(b.observations.buffer), new Uint8Array(tr.observations.buffer));
  assert.ok(Object.is(b.observations[1], -0));
  assert.equal(b.observations[2], tr.observations[2]); // subnormal survives
  assert.deepEqual(b, tr);
});

test('groups with snapshot and prompt starts round-trip', () => {
  const snapshot = {
    id: 'Hopper-v4',
    state: Float64Array.from([0.5, 1.25, Math.PI]),
    elapsedSteps: 10,
    rng: { s: [1, 2, 3, 4] as [number, number, number, number], spare: null },
    done: false,
  };
  const g: Group = {
    groupId: 'p1',
    start: { kind: 'prompt', promptId: 'p1', tokens: Int32Array.from([5, 6, 7]), systemTokens: 2, meta: { rule: 'answer in French' } },
    trajectories: [{ ...traj(), start: { kind: 'snapshot', snapshot, observation: Float32Array.from([1, 2]), t: 10 } }],
  };
  const back = decodeJSON(Group, encodeJSON(Group, g));
  assert.ok(isRight(back));
  assert.deepEqual(back.right, g);
  assert.ok(back.right.trajectories[0]!.start.kind === 'snapshot');
});

test('bad data fails with the path of the bad field', () => {
  const g = {
    groupId: 'g',
    start: { kind: 'seed', envId: 'X', seed: 1 },
    trajectories: [traj(), { ...traj(), rewards: Float32Array.from([1, Number.NaN, 0]) }],
  };
  const r = decode(Group, g);
  assert.ok(isLeft(r));
  assert.ok(
    r.left.some((l) => l.startsWith('trajectories.1.rewards') && /finite.*NaN at index 1/.test(l)),
    r.left.join('\n'),
  );

  const bad = { ...traj(), policyVersion: -1 };
  const r2 = decode(Trajectory, bad);
  assert.ok(isLeft(r2));
  assert.ok(
    r2.left.some((l) => l.startsWith('policyVersion: expected a non-negative integer, got -1')),
    r2.left.join('\n'),
  );

  const wrongArray = JSON.parse(encodeJSON(Trajectory, traj()));
  wrongArray.logProbs = [1, 2, 3];
  const r3 = decode(Trajectory, wrongArray);
  assert.ok(isLeft(r3));
  assert.ok(
    r3.left.some((l) => l.startsWith('logProbs: expected a Float32Array')),
    r3.left.join('\n'),
  );

  assert.ok(isLeft(decodeJSON(Trajectory, '{"length": 3,')));
  const garbled = JSON.parse(encodeJSON(Trajectory, traj()));
  garbled.rewards.b64 = '%%%%';
  const r4 = decode(Trajectory, garbled);
  assert.ok(isLeft(r4) && r4.left.some((l) => l.startsWith('rewards: expected canonical base64')), 'bad base64 is an error, not an empty array');
  garbled.rewards.b64 = 'AACAPw==AACAPw==';
  assert.ok(isLeft(decode(Trajectory, garbled)), 'inner padding is an error, not a silent truncation');
  assert.equal(Trajectory.is({ ...traj(), rewards: Float32Array.from([Number.NaN, 0, 0]) }), false, 'is() agrees with decode on NaN');
  assert.throws(
    () => decodeOrThrow(Trajectory, { ...traj(), groupId: 5 }),
    (e: unknown) => e instanceof DecodeError && /groupId/.test(e.message),
  );
});

test('shape errors name the field and the expected length', () => {
  assert.deepEqual(trajectoryShapeErrors(traj()), []);
  const errs = trajectoryShapeErrors({ ...traj(), costs: new Float32Array(2) });
  assert.deepEqual(errs, ['trajectory.costs: expected length 3, got 2']);
});

test('refined types require the fields their operators add', () => {
  const r = decode(AdvantagedTrajectory, traj());
  assert.ok(isLeft(r));
  assert.ok(r.left.some((l) => l.startsWith('returns')));
  assert.ok(r.left.some((l) => l.startsWith('advantage')));
});
