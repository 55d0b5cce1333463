/**
 * QGRPO (`grpo-dt` with `algorithm.scoring: critic`) end to end on Hopper-v4 at CI size: the tiny
 * DT of test/e2e-grpo-dt.test.ts pretrained on the tiny Hopper dataset, then on-policy episodes from
 * ordinary resets feed a TD3 twin critic whose Q-values score G sampled actions at M visited states.
 * Checks that the DT updates (weights move, ratios and losses finite) and that no tensor leaks, that
 * a resumed run writes the same metrics as an uninterrupted one, and that no env snapshot is ever
 * taken or restored: with snapshots made unavailable on every MuJoCo env, QGRPO runs and reset
 * scoring fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { LocomotionEnv } from '../lib/envs/mujoco/locomotion.ts';
import { runGrpoDt, type GrpoDtConfig } from '../pipelines/online-dt/grpo-dt.ts';
import type { DeepPartial } from '../pipelines/config.ts';
import { runPipeline } from '../pipelines/runner.ts';
import { pretrainDt, savePretrained } from '../pipelines/online-dt/pretrain.ts';

await initBackend({ quiet: true });

const TINY = join(import.meta.dirname, 'data', 'hopper-tiny.hdf5');
const MODEL = { dModel: 16, nLayers: 1, nHeads: 1, contextLength: 5, maxEpisodeSteps: 1000 };
const dir = mkdtempSync(join(tmpdir(), 'rxrl-qgrpo-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const BASE = join(dir, 'base.safetensors');

const pre = await pretrainDt({
  dataset: TINY,
  envId: 'Hopper-v4',
  seed: 3,
  model: MODEL,
  steps: 150,
  update: { batchSize: 32, learningRate: 1e-3, warmupSteps: 10 },
});
await savePretrained(BASE, pre);
pre.learner.optimizer.dispose();
pre.dt.dispose();

const CONFIG: DeepPartial<GrpoDtConfig> = {
  seed: 2,
  iterations: 6,
  env: { id: 'Hopper-v4' },
  dataset: { path: TINY },
  base: { checkpoint: BASE },
  algorithm: {
    scoring: 'critic',
    targetReturn: 200,
    contextLength: 5,
    startsPerIteration: 8,
    groupSize: 8,
    learningRate: 3e-3,
    critic: { episodes: 4, maxSteps: 60, hidden: [32, 32], learningRate: 1e-3, batchSize: 32, steps: 20, bufferSize: 16, warmupIterations: 1 },
    update: { epochs: 2, minibatches: 2, klCoef: 0 },
  },
  evaluation: { every: 3, episodes: 2, maxSteps: 60 },
  checkpointEvery: 0,
};

/** The DT's weights as one flat copy. */
const flat = (params: Iterable<tf.Variable>): Float32Array => {
  const parts = [...params].map((v) => v.dataSync() as Float32Array);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, (o += p.length) - p.length);
  return out;
};

test('QGRPO on Hopper-v4 (tiny): the critic trains, the DT updates from Q-scored groups; numTensors flat', async () => {
  const counts: number[] = [];
  const start = await runGrpoDt({ ...CONFIG, iterations: 1 }); // iteration 0 is warm-up: weights as pretrained
  const w0 = flat(start.dt.params.map.values());
  start.dt.dispose();
  const { history, dt } = await runGrpoDt(CONFIG, [{ write: () => void counts.push(tf.memory().numTensors) }]);
  const w1 = flat(dt.params.map.values());
  dt.dispose();
  console.log(
    'td3/critic_loss',
    history.map((m) => m['td3/critic_loss']?.toFixed(3)).join(' '),
    '| qgrpo/q_std',
    history.map((m) => m['qgrpo/q_std']?.toFixed(3) ?? '-').join(' '),
    '| eval/return',
    history.map((m) => m['eval/return']?.toFixed(1) ?? '-').join(' '),
  );
  assert.equal(history.length, 6);
  // Warm-up: iteration 0 only collects and trains the critic.
  assert.equal(history[0]!['policy_version'], 0);
  assert.equal(history[0]!['qgrpo/states'], undefined);
  assert.equal(history[0]!['td3/updates'], 20);
  for (const m of history.slice(1)) {
    assert.equal(m['qgrpo/states'], 8);
    assert.ok(m['qgrpo/q_std']! > 0, 'the G actions of a state get different Q-values');
    assert.ok(Number.isFinite(m['loss']!) && Number.isFinite(m['td3/critic_loss']!) && Number.isFinite(m['qgrpo/q_mean']!));
    assert.ok(m['advantage/std']! > 0.5, `advantage/std ${m['advantage/std']}`);
  }
  assert.equal(history.at(-1)!['policy_version'], 5);
  assert.ok(history.every((m) => m['rollout/episodes'] === 4 && m['rollout/env_steps']! > 0));
  assert.equal(
    history.at(-1)!['env_steps/total'],
    history.reduce((s, m) => s + m['rollout/env_steps']!, 0),
  );
  // Fresh actions from the current DT: the first minibatch step's ratio is 1 (only the second epoch moves it).
  assert.ok(history[1]!['ratio/max']! >= 1 - 1e-4);
  let moved = 0;
  for (let k = 0; k < w0.length; k++) moved = Math.max(moved, Math.abs(w1[k]! - w0[k]!));
  assert.ok(moved > 1e-4, `the DT's weights moved by at most ${moved}`);
  assert.equal(new Set(counts.slice(2)).size, 1, `numTensors per iteration: ${counts.join(', ')}`);
});

test('QGRPO resumes exactly: 3 + 3 iterations through a checkpoint equal 6 in one run', async () => {
  const file = join(dir, 'qgrpo.json');
  writeFileSync(file, JSON.stringify({ ...CONFIG, pipeline: 'grpo-dt' }));
  const quiet = { sinks: [], onConfig: () => {} };
  await runPipeline({ file, out: join(dir, 'full'), ...quiet });
  await runPipeline({ file, sets: ['iterations=3', 'checkpointEvery=3'], out: join(dir, 'split'), ...quiet });
  await runPipeline({ resume: join(dir, 'split'), sets: ['iterations=6'], ...quiet });
  // Wall times (time/…) differ between runs; everything else must be identical.
  const lines = (d: string) =>
    readFileSync(join(dir, d, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, number>).filter(([k]) => !k.startsWith('time/')))));
  assert.equal(lines('full').length, 6);
  assert.deepEqual(lines('split'), lines('full'));
  const rows = lines('full').map((l) => JSON.parse(l) as Record<string, number>);
  assert.ok(rows.slice(1).every((m) => m['td3/critic_loss'] !== undefined && m['qgrpo/q_mean'] !== undefined && m['loss'] !== undefined));
});

test('QGRPO never snapshots or restores an env: with snapshots unavailable it runs, reset scoring fails', async () => {
  const proto = LocomotionEnv.prototype;
  const { snapshot, restore } = proto;
  let calls = 0;
  const unavailable = (): never => {
    calls++;
    throw new Error('snapshots are unavailable on this env');
  };
  proto.snapshot = unavailable;
  proto.restore = unavailable;
  try {
    const { history, dt } = await runGrpoDt({ ...CONFIG, iterations: 2 });
    dt.dispose();
    assert.equal(calls, 0);
    assert.equal(history.at(-1)!['policy_version'], 1);
    await assert.rejects(runGrpoDt({ ...CONFIG, iterations: 1, algorithm: { ...CONFIG.algorithm, scoring: 'reset' } }), /snapshots are unavailable/);
    assert.ok(calls > 0, 'reset scoring does use snapshots (the patch is where they are taken)');
  } finally {
    proto.snapshot = snapshot;
    proto.restore = restore;
  }
});
