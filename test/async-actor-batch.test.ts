/**
 * An actor holding several tasks steps them as one batch (`ActorPart.rolloutMany`): one policy call
 * per env step for k·G rows, each group drawing its noise from its own task's seed. Each group must
 * be what the task gives alone (`rollout`) — same actions, log-probs, rewards, observations — or a
 * group would depend on which tasks happened to share its batch. Checked group by group, for a
 * continuous policy (Hopper, Gaussian) and a discrete one (CartPole, categorical), with trained-looking
 * (non-initial) weights so that the policy's outputs matter; and the check can fail: without the
 * per-row streams (one stream for the whole batch) the groups differ.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import type { Group } from '../lib/data.ts';
import { taskGroupId, type AsyncTask } from '../lib/async/messages.ts';
import { grpoControlActor } from '../pipelines/grpo-control.ts';
import { decodePipelineConfig } from '../pipelines/registry.ts';
import { readPipelineFile } from '../pipelines/config-file.ts';
import { Rng } from '../lib/random.ts';
import { rolloutGroups } from '../operators/rollout.ts';
import type { Actor } from '../lib/actor.ts';
import { makeVectorEnv } from '../lib/envs/registry.ts';
import { makeModel } from '../lib/models/registry.ts';
import type { PromptStart } from '../lib/data.ts';
import { lmRlActor } from '../pipelines/hipo/rl.ts';
import { makeTaskAndBase, promptPicker } from '../pipelines/hipo/common.ts';
import { lmRolloutGroup, lmRolloutGroups } from '../operators/lmRollout.ts';

await initBackend({ quiet: true });

function sameGroup(a: Group, b: Group, label: string): void {
  assert.equal(a.groupId, b.groupId, label);
  assert.equal(a.trajectories.length, b.trajectories.length, label);
  a.trajectories.forEach((ta, i) => {
    const tb = b.trajectories[i]!;
    assert.equal(ta.length, tb.length, `${label} trajectory ${i}: length`);
    assert.deepEqual(Array.from(ta.actions), Array.from(tb.actions), `${label} trajectory ${i}: actions`);
    assert.deepEqual(Array.from(ta.logProbs), Array.from(tb.logProbs), `${label} trajectory ${i}: log-probs`);
    assert.deepEqual(Array.from(ta.rewards), Array.from(tb.rewards), `${label} trajectory ${i}: rewards`);
    assert.deepEqual(Array.from(ta.observations), Array.from(tb.observations), `${label} trajectory ${i}: observations`);
  });
}

const tasks = (envId: string, k: number): AsyncTask[] =>
  Array.from({ length: k }, (_, n) => ({ task: n, groupId: taskGroupId(n), start: { kind: 'seed', envId, seed: 1000 + 17 * n }, seed: 5000 + 31 * n }));

/** Weights away from the initialisation (each parameter scaled and shifted), so actions depend on them. */
function perturb(params: { map: Map<string, tf.Variable> } | { map: ReadonlyMap<string, tf.Variable> }): void {
  let j = 0;
  for (const v of params.map.values()) {
    const s = 1.5 + 0.1 * j++;
    tf.tidy(() => v.assign(tf.add(tf.mul(v, s), 0.01)));
  }
}

for (const [file, envId, k] of [
  ['pipelines/examples/grpo-hopper.yaml', 'Hopper-v4', 4],
  ['pipelines/examples/grpo-cartpole.yaml', 'CartPole-v1', 3],
] as const) {
  test(`${envId}: ${k} tasks stepped as one batch give each task's group alone`, async () => {
    const { config } = decodePipelineConfig(readPipelineFile(file), [`algorithm.startsPerIteration=${k}`, 'algorithm.groupSize=4']);
    const part = await grpoControlActor(config as Parameters<typeof grpoControlActor>[0]);
    try {
      assert.equal(part.maxTasks, k);
      perturb(part.params);
      const ts = tasks(envId, k);
      const before = tf.memory().numTensors;
      const together = part.rolloutMany!(ts, 3);
      const alone = ts.map((t) => part.rollout(t, 3));
      assert.equal(tf.memory().numTensors, before, 'no tensor leak');
      assert.equal(together.length, k);
      const lengths = new Set(together.flatMap((g) => g.trajectories.map((t) => t.length)));
      assert.ok(lengths.size > 1, `episodes of different lengths, so rows end at different steps (${[...lengths]})`);
      together.forEach((g, j) => sameGroup(g, alone[j]!, `task ${j}`));
      for (const g of together) for (const t of g.trajectories) assert.equal(t.policyVersion, 3);
      // Fewer tasks than maxTasks use the matching smaller batch.
      sameGroup(part.rolloutMany!(ts.slice(0, 2), 3)[1]!, alone[1]!, 'task 1 of a batch of 2');
      assert.throws(() => part.rolloutMany!(tasks(envId, k + 1), 3), /at most/);
    } finally {
      part.close();
    }
  });
}

test('without per-row streams (one stream for the batch) the groups differ: the check above can fail', async () => {
  const G = 4;
  const env1 = await makeVectorEnv('Hopper-v4', G, { seed: 1 }, { autoreset: 'disabled' });
  const env2 = await makeVectorEnv('Hopper-v4', 2 * G, { seed: 1 }, { autoreset: 'disabled' });
  const policy = makeModel('mlp', { obsDim: env1.obsDim, actionSpace: env1.actionSpace, hidden: [16], activation: 'tanh', seed: 0 });
  try {
    const ts = tasks('Hopper-v4', 2);
    const actor: Actor = { version: () => 0, beginRows: () => {}, act: (obs, _n, rng, det) => policy.act(obs, rng, { deterministic: det ?? false }) };
    const together = rolloutGroups(
      { venv: env2, actor, rng: new Rng(ts[0]!.seed, 'action') },
      ts.map((t) => t.start),
      ts.map((t) => t.groupId),
    );
    const alone = rolloutGroups({ venv: env1, actor, rng: new Rng(ts[1]!.seed, 'action') }, [ts[1]!.start], [ts[1]!.groupId])[0]!;
    assert.throws(() => sameGroup(together[1]!, alone, 'task 1'), /actions|length/);
  } finally {
    env1.close();
    env2.close();
    policy.dispose();
  }
});

test("hipo: tasks sampled as one generate call give each task's group alone (tokens exact, log-probs to rounding)", async () => {
  const k = 3;
  const { config } = decodePipelineConfig(readPipelineFile('pipelines/examples/hipo.yaml'), [
    `algorithm.promptsPerIteration=${k}`,
    'algorithm.groupSize=4',
    'suite.trainSize=40',
    'model.width=16',
    'model.layers=1',
  ]);
  const cfg = config as unknown as Parameters<typeof lmRlActor>[0];
  const part = await lmRlActor(cfg, (s) => ({ reward: s.utility, cost: 1 - s.compliance }));
  const { task, base } = await makeTaskAndBase(cfg, { untrained: true });
  try {
    assert.equal(part.maxTasks, k);
    perturb(part.params);
    const pick = promptPicker(task, new Rng(3, 'prompts'), 0.5);
    const ts: AsyncTask[] = Array.from({ length: k }, (_, n) => ({ task: n, groupId: taskGroupId(n), start: pick(), seed: 700 + 13 * n }));
    assert.ok(
      new Set(ts.map((t) => (t.start.kind === 'prompt' ? t.start.tokens.length : 0))).size > 1,
      'prompts of different lengths (left padding in the batch)',
    );
    const before = tf.memory().numTensors;
    const together = part.rolloutMany!(ts, 2);
    const alone = ts.map((t) => part.rollout(t, 2));
    assert.equal(tf.memory().numTensors, before, 'no tensor leak');
    together.forEach((g, j) => {
      const a = alone[j]!;
      assert.equal(g.groupId, a.groupId);
      g.trajectories.forEach((tr, i) => {
        const ta = a.trajectories[i]!;
        assert.deepEqual(Array.from(tr.actions), Array.from(ta.actions), `task ${j} completion ${i}: tokens`);
        tr.logProbs.forEach((lp, s) =>
          assert.ok(Math.abs(lp - ta.logProbs[s]!) < 1e-4, `task ${j} completion ${i} token ${s}: log-prob ${lp} vs ${ta.logProbs[s]}`),
        );
        assert.deepEqual(Array.from(tr.rewards), Array.from(ta.rewards));
        assert.equal(tr.policyVersion, 2);
      });
    });
    // One stream for the whole batch (every row drawing from the same Rng) samples other tokens for
    // the later groups than they get alone: the check above can fail.
    const sampling = { maxNewTokens: task.maxAnswerTokens, temperature: 1, stopTokens: [...task.stopTokens], padToken: task.padToken };
    const lmCfg = { lm: base, groupSize: 4, sampling, version: () => 0, score: () => ({ reward: 0 }) };
    const one = new Rng(ts[0]!.seed, 'sample');
    const shared = lmRolloutGroups(
      lmCfg,
      ts.map((t) => ({ start: t.start as PromptStart, groupId: t.groupId, rng: one })),
    );
    const solo = lmRolloutGroup({ ...lmCfg, rng: new Rng(ts[2]!.seed, 'sample') }, ts[2]!.start as PromptStart, ts[2]!.groupId);
    assert.notDeepEqual(
      shared[2]!.trajectories.map((t) => Array.from(t.actions)),
      solo.trajectories.map((t) => Array.from(t.actions)),
    );
  } finally {
    part.close();
    base.dispose();
  }
});
