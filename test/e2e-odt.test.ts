/**
 * The online-DT baselines end to end on the 10-episode Hopper test file (pipelines/examples/
 * odt-hopper-tiny.yaml, shrunk further): `odt` resumes exactly (2 + 2 iterations write the same
 * metrics as 4, wall-time metrics aside), `odt` and `odt-td3` emit every metric they promise,
 * finite, and leak no tensor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { runPipeline } from '../pipelines/runner.ts';
import { pretrainConfigOf, resolveOdt, runOdt } from '../pipelines/online-dt/odt.ts';
import { pretrainDt, savePretrained } from '../pipelines/online-dt/pretrain.ts';

await initBackend({ quiet: true });

const FILE = join(import.meta.dirname, '..', 'pipelines', 'examples', 'odt-hopper-tiny.yaml');
const SMALL = ['pretrain.steps=4', 'update.steps=2', 'online.maxSteps=40', 'evaluation.every=2', 'evaluation.episodes=1', 'model.dModel=8'];
const quiet = { shouldStop: () => false };
const tmp = mkdtempSync(join(tmpdir(), 'rxrl-odt-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** metrics.jsonl's records without the wall-time metrics (the only ones that may differ). */
const records = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, number>).filter(([k]) => !k.startsWith('time/'))));

test('odt: 2 + 2 iterations (resumed) write the same metrics as 4 in one go; every metric finite; no tensor leak', async () => {
  const n0 = tf.memory().numTensors;
  const once = join(tmp, 'once');
  const twice = join(tmp, 'twice');
  await runPipeline({ file: FILE, sets: [...SMALL, 'iterations=4', 'checkpointEvery=1'], out: once, ...quiet });
  const n1 = tf.memory().numTensors;
  await runPipeline({ file: FILE, sets: [...SMALL, 'iterations=2', 'checkpointEvery=1'], out: twice, ...quiet });
  await runPipeline({ resume: twice, sets: ['iterations=4'], ...quiet });
  const a = records(once);
  const b = records(twice);
  assert.equal(a.length, 4);
  assert.deepEqual(b, a);
  // The online loop did something: env steps accumulate, the buffer took the rollouts, weights moved.
  assert.ok(a[3]!['rollout/total_env_steps']! > a[0]!['rollout/total_env_steps']!);
  assert.equal(
    a[3]!['rollout/total_env_steps'],
    a.reduce((s, r) => s + r['rollout/env_steps']!, 0),
  );
  assert.notEqual(a[3]!['dt/nll'], a[0]!['dt/nll']);
  const raw = JSON.parse(readFileSync(join(once, 'metrics.jsonl'), 'utf8').split('\n')[0]!) as Record<string, number>;
  for (const k of [
    'rollout/env_steps',
    'rollout/total_env_steps',
    'dt/nll',
    'dt/entropy',
    'dt/temperature',
    'grad_norm',
    'buffer/size',
    'eval/return',
    'eval/normalized_score',
    'time/rollout_s',
    'time/update_s',
  ])
    assert.ok(Number.isFinite(raw[k]), `${k} = ${raw[k]}`);
  assert.ok(raw['time/rollout_s']! > 0 && raw['time/update_s']! > 0);
  assert.equal(tf.memory().numTensors, n0, 'no tensor survives a run');
  assert.equal(n1, n0);
});

test('odt-td3: the critic trains on online transitions and its Q term reaches the DT loss; finite metrics; no tensor leak', async () => {
  const n0 = tf.memory().numTensors;
  const dir = join(tmp, 'td3');
  const sets = [...SMALL, 'pipeline=odt-td3', 'iterations=2', 'td3.hidden=[16, 16]', 'td3.batchSize=16', 'td3.criticSteps=3', 'td3.alpha=0.1'];
  await runPipeline({ file: FILE, sets, out: dir, ...quiet });
  const a = records(dir);
  assert.equal(a.length, 2);
  for (const r of a) {
    for (const k of ['td3/critic_loss', 'td3/q_mean', 'td3/critic_grad_norm', 'dt/q_term', 'dt/nll']) assert.ok(Number.isFinite(r[k]), `${k} = ${r[k]}`);
    assert.equal(r['td3/updates'], 3);
  }
  assert.ok(Number.isFinite(a[0]!['eval/return']));
  // Resume is exact with the critic too: 2 + 1 iterations = 3 in one go.
  await runPipeline({ resume: dir, sets: ['iterations=3'], ...quiet });
  const once = join(tmp, 'td3-once');
  await runPipeline({ file: FILE, sets: [...sets.filter((x) => !x.startsWith('iterations=')), 'iterations=3'], out: once, ...quiet });
  assert.deepEqual(records(dir), records(once));
  // α_Q = 0 is ODT exactly (the critic has its own random stream); α_Q = 0.1 changes the DT's updates.
  const zero = join(tmp, 'td3-zero');
  const odt = join(tmp, 'odt-2');
  await runPipeline({ file: FILE, sets: [...sets.filter((x) => !x.startsWith('td3.alpha')), 'td3.alpha=0'], out: zero, ...quiet });
  await runPipeline({ file: FILE, sets: [...SMALL, 'iterations=2'], out: odt, ...quiet });
  const nll = (dir: string) => records(dir).map((r) => r['dt/nll']);
  assert.deepEqual(nll(zero), nll(odt));
  assert.notDeepEqual(nll(dir).slice(0, 2), nll(odt));
  assert.equal(tf.memory().numTensors, n0, 'no tensor survives a run');
});

test('odt from base.checkpoint (a shared pretraining) runs exactly as odt pretraining in-process; a checkpoint of another pretraining is refused', async () => {
  const n0 = tf.memory().numTensors;
  const cfg = {
    seed: 1,
    iterations: 2,
    data: { path: 'test/data/hopper-tiny.hdf5' },
    model: { dModel: 8, nLayers: 1, nHeads: 1, contextLength: 5, maxEpisodeSteps: 1000 },
    pretrain: { steps: 4, batchSize: 16, warmupSteps: 10 },
    online: { envs: 2, bufferSize: 20, maxSteps: 40 },
    update: { steps: 2, batchSize: 16, warmupSteps: 10, learningRate: 1e-3 },
    evaluation: { every: 2, episodes: 1 },
  };
  const path = join(tmp, 'pretrained.safetensors');
  const pre = await pretrainDt(pretrainConfigOf(resolveOdt(cfg)));
  await savePretrained(path, pre);
  pre.dt.dispose();
  pre.learner.optimizer.dispose();
  const strip = (h: readonly Record<string, number>[]) => h.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('time/'))));
  const inProcess = await runOdt(cfg);
  const loaded = await runOdt({ ...cfg, base: { checkpoint: path } });
  assert.deepEqual(strip(loaded.history), strip(inProcess.history));
  inProcess.dt.dispose();
  loaded.dt.dispose();
  await assert.rejects(runOdt({ ...cfg, pretrain: { ...cfg.pretrain, steps: 5 }, base: { checkpoint: path } }), /steps/);
  assert.equal(tf.memory().numTensors, n0, 'no tensor survives a run');
});
