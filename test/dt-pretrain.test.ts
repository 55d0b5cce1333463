import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { loadPretrained, pretrainDt, savePretrained } from '../pipelines/online-dt/pretrain.ts';

before(async () => {
  await initBackend({ backend: 'cpu', quiet: true });
});

const CFG = {
  dataset: 'test/data/hopper-tiny.hdf5',
  envId: 'Hopper-v4',
  seed: 2,
  model: { dModel: 16, nLayers: 1, nHeads: 1, contextLength: 5, maxEpisodeSteps: 64 },
  steps: 3,
  update: { batchSize: 8, warmupSteps: 2, learningRate: 1e-3 },
};

test('pretrainDt → savePretrained → loadPretrained: same weights, state norm and temperature; another config is refused', async () => {
  const n0 = tf.memory().numTensors;
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-pretrain-'));
  try {
    const pre = await pretrainDt(CFG);
    assert.ok(Number.isFinite(pre.metrics['dt/nll']));
    assert.equal(pre.learner.step, 3);
    assert.equal(pre.trajectories.length, 10);
    const path = join(dir, 'pre.safetensors');
    await savePretrained(path, pre);
    const back = await loadPretrained(path, pre.config);
    assert.deepEqual(back.stateNorm, pre.stateNorm);
    assert.equal(back.learner.logTemperature, pre.learner.logTemperature);
    assert.equal(back.learner.step, 3);
    for (const [name, v] of pre.dt.params.map) assert.deepEqual(back.dt.params.get(name).dataSync(), v.dataSync(), name);
    await assert.rejects(loadPretrained(path, { ...pre.config, seed: 3 }), /seed/);
    // A different seed pretrains different weights (the check above could fail).
    const other = await pretrainDt({ ...CFG, seed: 3, steps: 0 });
    assert.notDeepEqual(other.dt.params.get('predict_action.mu.weight').dataSync(), pre.dt.params.get('predict_action.mu.weight').dataSync());
    for (const p of [pre, back, other]) {
      p.dt.dispose();
      p.learner.optimizer.dispose();
    }
    assert.equal(tf.memory().numTensors, n0, 'no tensor leaks');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
