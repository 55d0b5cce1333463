/**
 * End-to-end GRPO-DT on Hopper-v4 at CI size: a tiny DT pretrained (ODT's supervised update) on the
 * tiny Hopper dataset (`pretrainDt`, the shared ODT recipe), handed to the `grpo-dt` pipeline as `base.checkpoint`, finetuned with
 * reset-point groups and short sub-trajectories. Checks that the deterministic evaluation return
 * rises over the pretrained start, that no tensor leaks, that a resumed run matches an
 * uninterrupted one exactly, and that a reset point of another env is refused naming the group.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { DecisionTransformer } from '../lib/models/decision-transformer.ts';
import { makeEnv, makeVectorEnv } from '../lib/envs/registry.ts';
import { rolloutGroups } from '../operators/rollout.ts';
import { datasetResetPoints } from '../operators/subTrajectories.ts';
import { episodesOf, loadD4rl } from '../lib/datasets/d4rl.ts';
import { dtActor } from '../lib/models/dt-actor.ts';
import { Rng } from '../lib/random.ts';
import { runGrpoDt, type GrpoDtConfig } from '../pipelines/online-dt/grpo-dt.ts';
import type { DeepPartial } from '../pipelines/config.ts';
import { runPipeline } from '../pipelines/runner.ts';
import { pretrainDt, savePretrained } from '../pipelines/online-dt/pretrain.ts';

await initBackend({ quiet: true });

const TINY = join(import.meta.dirname, 'data', 'hopper-tiny.hdf5');
const MODEL = { dModel: 16, nLayers: 1, nHeads: 1, contextLength: 5, maxEpisodeSteps: 1000 };
const dir = mkdtempSync(join(tmpdir(), 'rxrl-grpo-dt-'));
const BASE = join(dir, 'base.safetensors');

/** The pretrained start: 150 steps of the shared ODT recipe on the tiny dataset, saved as a checkpoint. */
async function pretrain(): Promise<void> {
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
}
await pretrain();

const CONFIG: DeepPartial<GrpoDtConfig> = {
  seed: 2,
  iterations: 12,
  env: { id: 'Hopper-v4' },
  dataset: { path: TINY },
  base: { checkpoint: BASE },
  algorithm: {
    targetReturn: 200,
    contextLength: 5,
    startsPerIteration: 4,
    groupSize: 8,
    length: 5,
    horizon: 20,
    resetEvery: 5,
    seedEpisodes: 4,
    datasetEpisodes: 20,
    learningRate: 3e-3,
    update: { epochs: 2, minibatches: 2, klCoef: 0 },
  },
  evaluation: { every: 4, episodes: 6, maxSteps: 150 },
  checkpointEvery: 0,
};

test('GRPO-DT raises the evaluation return of its pretrained DT on Hopper-v4 (tiny); numTensors flat', async () => {
  const counts: number[] = [];
  const { history, summary, pretrained, dt } = await runGrpoDt(CONFIG, [{ write: () => void counts.push(tf.memory().numTensors) }]);
  const start = pretrained['eval/return']!;
  const end = summary['eval/return']!;
  console.log(
    `pretrained eval/return ${start.toFixed(1)} → after ${history.length} iterations ${end.toFixed(1)}; per-iteration:`,
    history.map((m) => m['eval/return']?.toFixed(1) ?? '-').join(' '),
  );
  assert.ok(end > start + 10, `eval/return ${end} did not rise over the pretrained ${start}`);
  assert.ok(history.every((m) => m['ratio/mean'] !== undefined && Number.isFinite(m['loss']!)));
  assert.ok(history.every((m) => m['active/pool_size']! >= 4));
  assert.equal(new Set(counts.slice(1)).size, 1, `numTensors per iteration: ${counts.join(', ')}`);
  dt.dispose();
});

test('grpo-dt resumes exactly: 3 + 3 iterations through a checkpoint equal 6 in one run (relabel ablation on)', async () => {
  const file = join(dir, 'grpo-dt.json');
  const short = {
    ...CONFIG,
    pipeline: 'grpo-dt',
    iterations: 6,
    evaluation: { every: 3, episodes: 2, maxSteps: 50 },
    algorithm: { ...CONFIG.algorithm, relabel: true },
  };
  writeFileSync(file, JSON.stringify(short));
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
  const timed = readFileSync(join(dir, 'full', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
  assert.ok(timed.every((m) => m['time/rollout_s']! > 0 && m['time/update_s']! > 0));
  assert.ok(rows.every((m) => m['relabel/target_shift']! > 0 && m['ratio/max'] !== undefined && m['clip_frac'] !== undefined));
});

test('intended returns-to-go keep the first ratio at 1; the hindsight-relabeling ablation moves it (ratio stats logged)', async () => {
  const one = (relabel: boolean) =>
    runGrpoDt({
      ...CONFIG,
      iterations: 1,
      algorithm: { ...CONFIG.algorithm, relabel, update: { epochs: 1, minibatches: 1 } },
      evaluation: { every: 100, episodes: 1, maxSteps: 5 },
    });
  const kept = await one(false);
  const relabeled = await one(true);
  kept.dt.dispose();
  relabeled.dt.dispose();
  const k = kept.history[0]!;
  const r = relabeled.history[0]!;
  assert.ok(Math.abs(k['ratio/mean']! - 1) < 1e-5 && k['ratio/max']! < 1 + 1e-5, `ratio/mean ${k['ratio/mean']}, ratio/max ${k['ratio/max']}`);
  assert.ok(r['relabel/target_shift']! > 0);
  assert.ok(Math.abs(r['ratio/max']! - 1) > 1e-3, `relabeled ratio/max ${r['ratio/max']}`);
  assert.ok(r['clip_frac'] !== undefined);
});

test('a dataset reset point that no longer reproduces is an error naming the group; intact ones pass', async () => {
  const data = await loadD4rl(TINY, { envId: 'Hopper-v4' });
  const ep = episodesOf(data).find((e) => e.length >= 12)!;
  const env = await makeEnv('Hopper-v4');
  try {
    const rec = { length: ep.length, observations: ep.observations, actions: ep.actions, qpos: ep.qpos!, qvel: ep.qvel! };
    assert.ok(datasetResetPoints(env, rec, 5, 'group d/0').length >= 1);
    const qvel = Float64Array.from(rec.qvel);
    for (let i = 0; i < qvel.length; i++) qvel[i] = qvel[i]! + 1;
    assert.throws(() => datasetResetPoints(env, { ...rec, qvel }, 5, 'group d/0'), /group d\/0: the reset point at step 5 does not reproduce on Hopper-v4/);
  } finally {
    env.close();
  }
});

test('a reset point from another env is an error naming the group', async () => {
  const hop = await makeEnv('Hopper-v4');
  hop.reset(0);
  const snap = { kind: 'snapshot' as const, snapshot: hop.snapshot(), observation: new Float32Array(11), t: 0 };
  hop.close();
  const venv = await makeVectorEnv('Walker2d-v4', 4, {}, { autoreset: 'disabled' });
  const dt = new DecisionTransformer({ stateDim: 17, actDim: 6, contextLength: 5, core: { dModel: 8, nLayers: 1, nHeads: 1 } });
  const actor = dtActor(dt, { targetReturn: 100, version: () => 0 });
  try {
    assert.throws(
      () => rolloutGroups({ venv, actor, rng: new Rng(0, 'a') }, [snap, snap], ['7/0', '7/1']),
      /group 7\/0: a reset point of Hopper-v4, but the env is Walker2d-v4/,
    );
  } finally {
    venv.close();
    dt.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
