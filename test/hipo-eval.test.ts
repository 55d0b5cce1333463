import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { generate } from '../lib/models/generate.ts';
import { Rng } from '../lib/random.ts';
import { evaluateHierarchy, makeLm, makeSuite, SUITE_DEFAULTS, taskOfSuite } from '../pipelines/hipo/common.ts';

test('hierarchy evaluation: sampled metrics are the suite scores of temperature-1 answers from a fixed stream; repeatable; no leak', async () => {
  await initBackend({ quiet: true });
  const suite = makeSuite({ ...SUITE_DEFAULTS, trainSize: 20, evalSize: 4, heldOutSize: 6 });
  const task = taskOfSuite(suite);
  const lm = makeLm({ arch: 'llama', width: 16, layers: 1, heads: 2 }, suite, 3);
  const before = tf.memory().numTensors;
  const a = evaluateHierarchy(lm, task, { prompts: 6, inDistribution: false });
  const b = evaluateHierarchy(lm, task, { prompts: 6, inDistribution: false });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(a, b);
  // Independent recomputation of the sampled held-out conflict scores.
  const prompts = task.heldOut.conflicting.slice(0, 6);
  const out = generate(
    lm,
    prompts.map((p) => p.tokens),
    new Rng(0, 'eval/sampled'),
    { maxNewTokens: task.maxAnswerTokens, temperature: 1, stopTokens: [...task.stopTokens], padToken: task.padToken },
  );
  const scores = prompts.map((p, k) => p.score(out.tokens[k]!));
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(a['eval/sampled/compliance/conflict']! - mean(scores.map((s) => s.compliance))) < 1e-12);
  assert.ok(Math.abs(a['eval/sampled/utility/conflict']! - mean(scores.map((s) => s.utility))) < 1e-12);
  // An untrained model sampled at temperature 1 does not answer like its greedy self on every prompt.
  const greedy = generate(
    lm,
    prompts.map((p) => p.tokens),
    new Rng(0, 'eval/greedy'),
    {
      maxNewTokens: task.maxAnswerTokens,
      temperature: 0,
      stopTokens: [...task.stopTokens],
      padToken: task.padToken,
    },
  );
  assert.ok(out.tokens.some((t, k) => t.join() !== greedy.tokens[k]!.join()));
  for (const k of ['compliance/conflict', 'compliance/aligned', 'utility/aligned', 'utility/conflict']) {
    const v = a[`eval/sampled/${k}`]!;
    assert.ok(v >= 0 && v <= 1, k);
  }
  lm.dispose();
});
