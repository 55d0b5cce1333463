import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom, of, range, map, toArray, concatMap } from 'rxjs';
import { initBackend } from '../lib/backend.ts';
import { CausalLM } from '../lib/models/lm.ts';
import { Rng } from '../lib/random.ts';
import { sftUpdate, sftStep, sftLoss, lmLearner, SFT_UPDATE_DEFAULTS, type SftExample, type LmLearner } from '../operators/sftUpdate.ts';
import { completionBatch, completionTokenLogProbs } from '../operators/lmUpdateInternals.ts';
import { NonFiniteUpdateError } from '../operators/policyUpdate.ts';
import { refSeqLogProb, snapshot, setWeights, randomDirection, dot, sameBits } from './helpers/lm-loss-reference.ts';

await initBackend({ backend: 'cpu', quiet: true });

const tiny = { arch: 'llama', vocabSize: 12, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, dFF: 32, maxPositions: 32 } as const;
const ex = (prompt: number[], completion: number[]): SftExample => ({ prompt: Int32Array.from(prompt), completion: Int32Array.from(completion) });
const examples = [ex([1, 4, 7], [5, 2]), ex([1, 9], [3, 3, 8, 2]), ex([1, 6, 6, 6, 10], [11])];

/** −Σ log p / Σ|y| from unpadded per-example forward passes, log-softmax by hand. */
const refLoss = (lm: CausalLM, exs: readonly SftExample[]) =>
  -exs.reduce((s, e) => s + refSeqLogProb(lm, e.prompt, e.completion), 0) / exs.reduce((s, e) => s + e.completion.length, 0);

const sgdLearner = (lm: CausalLM, lr: number): LmLearner => ({ lm, optimizer: tf.train.sgd(lr), version: 0, step: 0, rng: new Rng(0) });

test('SFT loss equals the completion-token NLL computed by hand from the logits', () => {
  const lm = new CausalLM(tiny, { seed: 1 });
  const L = tf.tidy(() => sftLoss(lm, examples).dataSync()[0]!);
  const R = refLoss(lm, examples);
  assert.ok(Math.abs(L - R) < 1e-5, `loss ${L} vs reference ${R}`);
  assert.ok(R > 1.5 && R < 4, `a fresh model's loss is near ln 12 = 2.48, got ${R}`);
  // The step reports the same pre-step loss.
  const s = sftStep(sgdLearner(lm, 0), examples, { ...SFT_UPDATE_DEFAULTS, maxGradNorm: Infinity });
  assert.ok(Math.abs(s.loss - R) < 1e-5);
  assert.equal(s.tokens, 7);
  lm.dispose();
});

test('SFT gradient matches finite differences along random directions; grad_norm is its norm', () => {
  const lm = new CausalLM(tiny, { seed: 2 });
  const base = snapshot(lm);
  const learner = sgdLearner(lm, 1);
  const s = sftStep(learner, examples, { ...SFT_UPDATE_DEFAULTS, maxGradNorm: Infinity });
  const after = snapshot(lm);
  const grad = base.map((b, i) => b.map((x, j) => x - after[i]![j]!)); // SGD with η = 1: Δθ = −g
  const gNorm = Math.sqrt(dot(grad, grad));
  assert.ok(Math.abs(gNorm - s.gradNorm) < 1e-4 * Math.max(1, s.gradNorm), `‖Δθ‖ ${gNorm} vs grad_norm ${s.gradNorm}`);
  const h = 1e-2;
  for (const seed of [1, 2, 3]) {
    const dir = randomDirection(lm, seed);
    setWeights(lm, base, dir, h);
    const up = refLoss(lm, examples);
    setWeights(lm, base, dir, -h);
    const down = refLoss(lm, examples);
    const fd = (up - down) / (2 * h);
    const an = dot(grad, dir);
    assert.ok(Math.abs(fd - an) < 2e-3 * Math.max(0.1, Math.abs(an)) + 2e-4, `direction ${seed}: finite difference ${fd} vs gradient ${an}`);
  }
  assert.equal(learner.step, 1);
  lm.dispose();
});

test('masking: only completion tokens are scored; padding and its token ids change nothing', () => {
  const lm = new CausalLM(tiny, { seed: 3 });
  const total = (rows: readonly SftExample[], pad: number) => tf.tidy(() => tf.sum(completionTokenLogProbs(lm, completionBatch(rows, pad))).dataSync()[0]!);
  // Padding id: the short rows are padded to the longest; any pad id gives the same sum.
  const s0 = total(examples, 0);
  for (const pad of [7, 11]) assert.equal(total(examples, pad), s0);
  // A batch's sum is the sum of its rows scored alone (no row sees another's padding).
  const alone = examples.reduce((s, e) => s + total([e], 0), 0);
  assert.ok(Math.abs(alone - s0) < 1e-5, `${alone} vs ${s0}`);
  // Moving token 4 from the completion into the prompt removes exactly log p(4 | 1) from the sum.
  const asPrompt = total([ex([1, 4], [7, 5])], 0);
  const asTarget = total([ex([1], [4, 7, 5])], 0);
  const lp4 = refSeqLogProb(lm, [1], [4]);
  assert.ok(Math.abs(asTarget - asPrompt - lp4) < 1e-5, `${asTarget} − ${asPrompt} vs log p(4|1) = ${lp4}`);
  // The targets at prompt and padding positions are −1; completion tokens at |x| − 1 + k.
  const b = completionBatch([ex([1, 4, 7], [5, 2]), ex([1], [3])], 9);
  assert.deepEqual([...b.targets], [-1, -1, 5, 2, 3, -1, -1, -1]);
  assert.deepEqual([...b.inputs], [1, 4, 7, 5, 1, 9, 9, 9]);
  assert.deepEqual([...b.mask], [1, 1, 1, 1, 1, 0, 0, 0]);
  assert.deepEqual([...b.index], [2, 3, 4]);
  lm.dispose();
});

// A toy mapping: prompt [BOS=1, a] → completion [f(a), EOS=2] with f a fixed permutation of 3..11.
const toy = Array.from({ length: 9 }, (_, i) => ex([1, 3 + i], [3 + ((i * 4 + 2) % 9), 2]));

test('SFT on a toy mapping drives the loss down (seeded, a few seconds), tensors flat, deterministic', async () => {
  const run = async () => {
    const lm = new CausalLM(tiny, { seed: 4 });
    const learner = lmLearner(lm, { learningRate: 1e-2, seed: 5 });
    const op = sftUpdate(learner, { epochs: 4, minibatches: 3 });
    const counts: number[] = [];
    const ms = await lastValueFrom(
      range(0, 8).pipe(
        map((i) => ({ iteration: i, examples: toy })),
        op,
        map((b) => {
          counts.push(tf.memory().numTensors);
          return b.metrics;
        }),
        toArray(),
      ),
    );
    const finalLoss = refLoss(lm, toy);
    const state = { version: learner.version, step: learner.step };
    lm.dispose();
    return { ms, counts, finalLoss, state };
  };
  const t0 = Date.now();
  const a = await run();
  const secs = (Date.now() - t0) / 1000;
  const first = a.ms[0]!;
  const last = a.ms[a.ms.length - 1]!;
  assert.ok(first['sft/loss']! > 2, `initial loss ${first['sft/loss']}`);
  assert.ok(a.finalLoss < 0.1, `final loss ${a.finalLoss} (first ${first['sft/loss']}, last batch ${last['sft/loss']})`);
  assert.equal(first['sft/tokens'], 18);
  assert.ok(first.grad_norm! > 0);
  assert.deepEqual(a.state, { version: 8, step: 8 * 4 * 3 });
  assert.equal(last.policy_version, 8);
  assert.ok(last['sft/loss']! < first['sft/loss']! / 10);
  assert.ok(
    a.counts.every((c) => c === a.counts[0]),
    `numTensors per batch ${a.counts.join(', ')}`,
  );
  assert.ok(secs < 30, `took ${secs}s`);
  const b = await run();
  assert.deepEqual(b.ms, a.ms);
});

test('a NaN loss is refused before any weight or optimizer change; the error names the step', async () => {
  const lm = new CausalLM(tiny, { seed: 6 });
  const learner = lmLearner(lm, { learningRate: 1e-2, weightDecay: 0.1 });
  const head = lm.params.get('lm_head.weight') as tf.Variable;
  tf.tidy(() => head.assign(tf.where(tf.equal(tf.reshape(tf.range(0, head.size, 1, 'int32'), head.shape), 5), tf.fill(head.shape, Number.NaN), head)));
  const before = snapshot(lm);
  const nBefore = tf.memory().numTensors;
  const isRefusal = (e: unknown) => e instanceof NonFiniteUpdateError && /sftUpdate: non-finite loss \(loss NaN.*this step changed no weights/.test(e.message);
  await assert.rejects(lastValueFrom(of({ iteration: 0, examples: toy }).pipe(sftUpdate(learner))), isRefusal);
  assert.throws(() => sftStep(learner, toy, SFT_UPDATE_DEFAULTS), isRefusal);
  assert.ok(sameBits(snapshot(lm), before), 'weights changed');
  assert.equal(learner.step, 0);
  assert.equal(learner.version, 0);
  assert.equal(learner.optimizer.iterations, 0);
  assert.equal(tf.memory().numTensors, nBefore);
  lm.dispose();
});

test('the operator refuses bad configs and bad examples by name, and passes other fields through', async () => {
  const lm = new CausalLM(tiny, { seed: 7 });
  const learner = lmLearner(lm);
  assert.throws(() => sftUpdate(learner, { epochs: 0 }), /epochs: expected a positive integer, got 0/);
  assert.throws(() => sftUpdate(learner, { maxGradNorm: -1 }), /maxGradNorm: expected a positive number or Infinity, got -1/);
  assert.throws(() => sftUpdate({ ...learner, weightDecay: 0.1, learningRate: undefined }), /learner.learningRate/);
  const run = (examples: SftExample[]) => lastValueFrom(of({ iteration: 3, examples }).pipe(sftUpdate(learner)));
  await assert.rejects(run([toy[0]!, ex([1, 2], [3, 57])]), /sftUpdate: examples\.1\.completion: token 57 at index 1 is outside the vocabulary \[0, 12\)/);
  await assert.rejects(run([ex([], [3])]), /examples\.0\.prompt: expected at least one token/);
  const empty = await run([]);
  assert.deepEqual(empty.metrics, { 'sft/tokens': 0, policy_version: 0 });
  const out = await lastValueFrom(
    of({ iteration: 1, examples: toy, tag: 'kept', metrics: { 'reward/mean': 0.5 } }).pipe(concatMap((b) => of(b).pipe(sftUpdate(learner)))),
  );
  assert.equal(out.tag, 'kept');
  assert.equal(out.metrics['reward/mean'], 0.5);
  assert.equal(out.metrics.policy_version, 1);
  lm.dispose();
});

test('AdamW: the decoupled decay shrinks matrices by (1 − ηλ) on top of the Adam step', () => {
  const cfg = { ...SFT_UPDATE_DEFAULTS, maxGradNorm: Infinity };
  const lmA = new CausalLM(tiny, { seed: 8 });
  const lmB = new CausalLM(tiny, { seed: 8 });
  const base = snapshot(lmA);
  sftStep(lmLearner(lmA, { learningRate: 1e-2 }), toy, cfg);
  sftStep(lmLearner(lmB, { learningRate: 1e-2, weightDecay: 0.5 }), toy, cfg);
  const a = snapshot(lmA);
  const b = snapshot(lmB);
  lmA.variables.forEach((v, i) => {
    for (let j = 0; j < base[i]!.length; j += 7) {
      const want = v.rank >= 2 ? a[i]![j]! - 1e-2 * 0.5 * base[i]![j]! : a[i]![j]!;
      assert.ok(Math.abs(b[i]![j]! - want) < 1e-6, `${v.name}[${j}]: ${b[i]![j]} vs ${want}`);
    }
  });
  lmA.dispose();
  lmB.dispose();
});
