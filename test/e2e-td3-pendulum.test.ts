/**
 * The `td3` pipeline end to end: the Pendulum example learns (the deterministic evaluation return
 * rises far above a random policy's) with no tensor leak; 2 + 2 iterations with a resume write a
 * metrics.jsonl byte-identical to 4 in one go, mid-episode and with updates in every iteration;
 * the checkpoint holds the four networks, both Adam optimizers and the replay buffer as tensors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { readCheckpoint } from '../lib/io/checkpoint.ts';
import { readPipelineFile } from '../pipelines/config-file.ts';
import { runPipeline, CHECKPOINT_FILE } from '../pipelines/runner.ts';
import { runTd3, type Td3Config } from '../pipelines/td3.ts';
import { disposeTd3Learner } from '../operators/td3Update.ts';
import type { DeepPartial } from '../pipelines/config.ts';

await initBackend({ backend: 'wasm', threads: 1, quiet: true });

const EXAMPLES = join(import.meta.dirname, '..', 'pipelines', 'examples');
const tmp = mkdtempSync(join(tmpdir(), 'rxrl-td3-'));
const quiet = { shouldStop: () => false };

test('td3 on Pendulum-v1 (the example file): eval return from ≈ −1200 to above −600 in 40 iterations; no tensor leak', async () => {
  const file = readPipelineFile(join(EXAMPLES, 'td3-pendulum.yaml')) as DeepPartial<Td3Config>;
  const start = tf.memory().numTensors;
  const t0 = Date.now();
  const { history, summary, learner } = await runTd3(file);
  const evals = history.filter((m) => m['eval/return'] !== undefined);
  console.log(
    `# td3 Pendulum: eval ${evals.map((m) => `${m.iteration}:${m['eval/return']!.toFixed(0)}`).join(' ')}; summary ${summary['eval/return']!.toFixed(1)}; ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  assert.equal(history.length, 40);
  assert.ok(evals[0]!['eval/return']! < -900, `iteration 0 (untrained) ${evals[0]!['eval/return']}`);
  assert.ok(summary['eval/return']! > -600, `trained ${summary['eval/return']}`);
  // 4 envs × 1000 steps, less the autoreset step after each 200-step episode (4 per env) that yields no transition.
  const steps = 4 * 1000 - 4 * 4;
  assert.equal(history.at(-1)!['rollout/total_env_steps'], steps);
  assert.equal(history.at(-1)!['buffer/size'], steps);
  // Updates start once 1000 transitions are in: 2 per transition after that; the actor every 2nd.
  const updates = history.reduce((s, m) => s + m['td3/updates']!, 0);
  assert.equal(updates, 2 * (steps - 1000));
  assert.equal(history.at(-1)!.policy_version, updates / 2);
  const weights = learner.actor.variables.length + learner.critic.variables.length;
  // Networks and targets (2 · weights), the Adam moments m, v (2 · weights) and each Adam's β₁ᵗ, β₂ᵗ (4).
  assert.equal(tf.memory().numTensors - start, 2 * weights + 2 * weights + 4, 'the four networks and the two optimizers, nothing else');
  disposeTd3Learner(learner);
  assert.equal(tf.memory().numTensors, start);
});

test('td3 resume: 2 + 2 iterations give a metrics.jsonl byte-identical to 4; the checkpoint holds networks, both optimizers and the buffer', async () => {
  const file = join(EXAMPLES, 'td3-pendulum.yaml');
  // Updates from the first iteration on, mid-episode at every checkpoint (Pendulum episodes are 200 steps).
  const sets = [
    'algorithm.numEnvs=2',
    'algorithm.stepsPerIteration=15',
    'algorithm.startSteps=20',
    'algorithm.update.learningStarts=20',
    'algorithm.update.batchSize=16',
    'networks.hidden=[16,16]',
    'evaluation.every=3',
    'evaluation.episodes=2',
    'checkpointEvery=1',
  ];
  const one = join(tmp, 'one');
  const two = join(tmp, 'two');
  await runPipeline({ file, sets: [...sets, 'iterations=4'], out: one, ...quiet });
  await runPipeline({ file, sets: [...sets, 'iterations=2'], out: two, ...quiet });
  await runPipeline({ file, sets: [...sets, 'iterations=4'], resume: two, ...quiet });
  const a = readFileSync(join(one, 'metrics.jsonl'), 'utf8');
  const b = readFileSync(join(two, 'metrics.jsonl'), 'utf8');
  assert.equal(a.trim().split('\n').length, 4);
  assert.ok(
    a.split('\n').every((l) => l === '' || JSON.parse(l)['td3/updates'] > 0),
    'every iteration updates',
  );
  assert.equal(b, a);
  assert.deepEqual(JSON.parse(readFileSync(join(two, 'summary.json'), 'utf8')), JSON.parse(readFileSync(join(one, 'summary.json'), 'utf8')));

  const ck = await readCheckpoint(join(two, CHECKPOINT_FILE));
  for (const store of ['actor', 'critic', 'actorTarget', 'criticTarget'])
    assert.ok(
      Object.keys(ck.params).some((k) => k.startsWith(`${store}/`)),
      store,
    );
  assert.deepEqual(Object.keys(ck.optimizers).sort(), ['actor', 'critic']);
  assert.equal(ck.optimizer, null);
  assert.ok(ck.optimizers['critic']!.slots.some((s) => s.param === 'critic/q2.out.weight' && s.slot === 'v'));
  const buffer = ck.state['buffer'] as { rows: { n: number; obs: Float32Array } };
  assert.equal(buffer.rows.n, 4 * 2 * 15);
  assert.ok(buffer.rows.obs instanceof Float32Array && buffer.rows.obs.length === 4 * 2 * 15 * 3);
});

test('checkpoint with named optimizers: both restore exactly; a missing or mistyped one is refused before anything changes', async () => {
  const { saveCheckpoint, loadCheckpoint } = await import('../lib/io/checkpoint.ts');
  const make = () => {
    const a = tf.variable(tf.tensor1d([1, 2, 3]));
    const b = tf.variable(tf.tensor2d([[0.5, -1]]));
    return { a, b, optA: tf.train.adam(0.1), optB: tf.train.adam(0.01) };
  };
  const step = (m: ReturnType<typeof make>) => {
    m.optA.minimize(() => tf.sum(tf.square(m.a)), false, [m.a]);
    m.optB.minimize(() => tf.sum(tf.square(m.b)), false, [m.b]);
  };
  const src = make();
  step(src);
  step(src);
  const path = join(tmp, 'named.safetensors');
  await saveCheckpoint(path, { params: { a: src.a, b: src.b }, optimizers: { actor: src.optA, critic: src.optB }, config: null });
  const dst = make();
  const start = tf.memory().numTensors;
  await loadCheckpoint(path, { params: { a: dst.a, b: dst.b }, optimizers: { actor: dst.optA, critic: dst.optB } });
  step(src);
  step(dst);
  assert.deepEqual(Array.from(dst.a.dataSync()), Array.from(src.a.dataSync()), 'one more step is bit-identical');
  assert.deepEqual(Array.from(dst.b.dataSync()), Array.from(src.b.dataSync()));
  assert.ok(tf.memory().numTensors - start <= 4, 'only the new Adam moments');
  const other = make();
  const before = Array.from(other.a.dataSync());
  await assert.rejects(
    loadCheckpoint(path, { params: { a: other.a, b: other.b }, optimizers: { actor: other.optA, policy: other.optB } }),
    /has no optimizer policy state/,
  );
  await assert.rejects(
    loadCheckpoint(path, { params: { a: other.a, b: other.b }, optimizers: { actor: tf.train.sgd(0.1) } }),
    /holds Adam optimizer actor state; this run's optimizer is SGD/,
  );
  assert.deepEqual(Array.from(other.a.dataSync()), before, 'nothing assigned');
  await assert.rejects(saveCheckpoint(path, { params: { a: src.a }, optimizers: { vars: src.optA }, config: null }), /optimizer name 'vars'/);
  for (const m of [src, dst, other]) {
    m.a.dispose();
    m.b.dispose();
    m.optA.dispose();
    m.optB.dispose();
  }
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
