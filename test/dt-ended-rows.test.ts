import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { DecisionTransformer } from '../lib/models/decision-transformer.ts';
import { DtHistory, dtWindowBatch, selectDtActions } from '../lib/models/generate.ts';
import { Rng } from '../lib/random.ts';

test('selectDtActions: a row stepped past the timestep table (an ended row) takes its last entry; other rows unchanged', async () => {
  await initBackend({ quiet: true });
  const dt = new DecisionTransformer({ stateDim: 3, actDim: 2, contextLength: 4, maxEpisodeSteps: 10, core: { dModel: 8, nLayers: 1, nHeads: 1 }, seed: 5 });
  const rng = new Rng(1, 'states');
  const live = new DtHistory(3, 2, 0);
  const ended = new DtHistory(3, 2, 8);
  for (let t = 0; t < 4; t++) {
    live.observe(rng.normalArray(3), 1);
    ended.observe(rng.normalArray(3), 1);
    live.setAction([0.1, -0.1]);
    ended.setAction([0.2, 0.3]);
  }
  live.observe(rng.normalArray(3), 1);
  ended.observe(rng.normalArray(3), 1); // t0 + 4 = 12 > 9: past the table
  const before = tf.memory().numTensors;
  const got = selectDtActions(dt, [live, ended], new Rng(2, 'act'), { deterministic: true });
  assert.equal(tf.memory().numTensors, before);
  // The reference: the same windows with the ended row's timesteps clamped by hand.
  const batch = dtWindowBatch([live, ended], 4);
  assert.ok(
    batch.timesteps.some((t) => t > 9),
    'the fixture reaches past the table',
  );
  const clamped = { ...batch, timesteps: batch.timesteps.map((t) => Math.min(t, 9)) };
  const want = dt.act(clamped, new Rng(2, 'act'), { deterministic: true });
  assert.deepEqual(Array.from(got.action), Array.from(want.action));
  // Without the clamp the DT refuses the batch (what HalfCheetah's 1000-step episodes hit).
  assert.throws(() => dt.act(batch, new Rng(2, 'act'), { deterministic: true }), /timestep 1\d outside \[0, 10\)/);
  dt.dispose();
});
