import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { TestScheduler } from 'rxjs/testing';
import { map, range, lastValueFrom, toArray } from 'rxjs';
import { initBackend } from '../lib/backend.ts';
import { CausalLM } from '../lib/models/lm.ts';
import { lmPolicy, lmBatchOf } from '../lib/models/lm-policy.ts';
import { Rng } from '../lib/random.ts';
import type { PromptStart } from '../lib/data.ts';
import { lmRollout, lmRolloutGroup } from '../operators/lmRollout.ts';
import type { StartsBatch } from '../operators/rollout.ts';
import { returns } from '../operators/returns.ts';
import { groupAdvantages } from '../operators/groupAdvantages.ts';
import { policyUpdate, type Learner } from '../operators/policyUpdate.ts';

await initBackend({ backend: 'cpu', quiet: true });

const prompt = (id: string, tokens: number[]): PromptStart => ({ kind: 'prompt', promptId: id, tokens: Int32Array.from(tokens) });
const count3 = (_: PromptStart, y: Int32Array) => ({
  reward: y.filter((t) => t === 3).length / Math.max(1, y.length),
  scores: { threes: y.filter((t) => t === 3).length },
});

test('behaviour log-probs from generation equal lmPolicy log-probs recomputed on the batch', () => {
  const lm = new CausalLM({ arch: 'llama', vocabSize: 8, dModel: 16, nLayers: 2, nHeads: 2, nKvHeads: 1, maxPositions: 32 }, { seed: 3 });
  const starts = [prompt('a', [1, 2, 5]), prompt('b', [4])];
  const trs = starts.flatMap(
    (s) =>
      lmRolloutGroup({ lm, groupSize: 3, rng: new Rng(1), sampling: { maxNewTokens: 5, stopTokens: [7] }, version: () => 0, score: count3 }, s, s.promptId)
        .trajectories,
  );
  const pi = lmPolicy(lm);
  const lp = tf.tidy(() => pi.logProb(lmBatchOf(trs)).dataSync());
  const behaviour = trs.flatMap((t) => [...t.logProbs]);
  assert.equal(lp.length, behaviour.length);
  for (let i = 0; i < lp.length; i++) assert.ok(Math.abs(lp[i]! - behaviour[i]!) < 1e-5, `token ${i}: ${lp[i]} vs ${behaviour[i]}`);
  for (const t of trs) {
    assert.equal(t.rewards.length, t.length);
    assert.equal(t.rewards[t.length - 1], Math.fround(count3(t.start as PromptStart, t.actions as Int32Array).reward));
    assert.equal(t.terminated, t.actions[t.length - 1] === 7);
  }
  lm.dispose();
});

test('lmRollout emits one batch per input (marbles) and rejects env starts', () => {
  const lm = new CausalLM({ arch: 'gpt2', vocabSize: 8, dModel: 16, nLayers: 1, nHeads: 2, maxPositions: 32 }, { seed: 1 });
  const cfg = { lm, groupSize: 2, rng: new Rng(2), sampling: { maxNewTokens: 3 }, version: () => 5, score: count3 };
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const src = cold('a-b|', { a: 0, b: 1 }).pipe(map((i): StartsBatch => ({ iteration: i, starts: [prompt('p', [1, 2]), prompt('q', [3])] })));
    expectObservable(
      src.pipe(
        lmRollout(cfg),
        map((b) => [b.iteration, b.groups.length, b.metrics['rollout/episodes'], b.metrics.policy_version]),
      ),
    ).toBe('a-b|', { a: [0, 2, 4, 5], b: [1, 2, 4, 5] });
    const bad = cold('a|', { a: { iteration: 0, starts: [{ kind: 'seed' as const, envId: 'CartPole-v1', seed: 1 }] } });
    expectObservable(bad.pipe(lmRollout(cfg))).toBe(
      '#',
      undefined,
      new TypeError('lmRollout: start 0 of iteration 0 is a seed start; use rollout for env starts'),
    );
  });
  lm.dispose();
});

test('GRPO on a tiny LM raises the reward of a token-counting task; no tensor leaks', async () => {
  const lm = new CausalLM({ arch: 'qwen2', vocabSize: 8, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, maxPositions: 32 }, { seed: 4 });
  const learner: Learner<ReturnType<typeof lmBatchOf>> = { policy: lmPolicy(lm), optimizer: tf.train.adam(0.03), version: 0, batchOf: (t) => lmBatchOf(t) };
  const rng = new Rng(9, 'action');
  const counts: number[] = [];
  const history = await lastValueFrom(
    range(0, 12).pipe(
      map((i): StartsBatch => ({ iteration: i, starts: [prompt('a', [1, 2]), prompt('b', [5]), prompt('c', [6, 6, 1])] })),
      lmRollout({ lm, groupSize: 8, rng, sampling: { maxNewTokens: 6 }, version: () => learner.version, score: count3 }),
      returns(),
      groupAdvantages({ estimator: 'grpo' }),
      policyUpdate(learner, { epochs: 2, minibatches: 2, ratioLevel: 'sequence' }),
      map((b) => {
        counts.push(tf.memory().numTensors);
        return b.metrics['reward/mean']!;
      }),
      toArray(),
    ),
  );
  const early = (history[0]! + history[1]!) / 2;
  const late = (history.at(-1)! + history.at(-2)!) / 2;
  assert.ok(late > early + 0.2, `reward ${history.map((r) => r.toFixed(2)).join(' ')}`);
  assert.equal(new Set(counts.slice(1)).size, 1, `numTensors ${counts.join(', ')}`);
  learner.optimizer.dispose();
  lm.dispose();
});
