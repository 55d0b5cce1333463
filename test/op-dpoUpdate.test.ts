import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { lastValueFrom, of, range, map, toArray } from 'rxjs';
import { initBackend } from '../lib/backend.ts';
import { CausalLM } from '../lib/models/lm.ts';
import { Rng } from '../lib/random.ts';
import { dpoUpdate, dpoStep, DPO_UPDATE_DEFAULTS, type DpoLearner, type DpoUpdateConfig, type PreferencePair } from '../operators/dpoUpdate.ts';
import { lmLearner } from '../operators/sftUpdate.ts';
import { NonFiniteUpdateError } from '../operators/policyUpdate.ts';
import { refSeqLogProb, snapshot, setWeights, randomDirection, dot, sameBits } from './helpers/lm-loss-reference.ts';

await initBackend({ backend: 'cpu', quiet: true });

const tiny = { arch: 'llama', vocabSize: 12, dModel: 16, nLayers: 1, nHeads: 2, nKvHeads: 1, dFF: 32, maxPositions: 32 } as const;
const I = (xs: number[]) => Int32Array.from(xs);
const pair = (prompt: number[], chosen: number[], rejected: number[]): PreferencePair => ({ prompt: I(prompt), chosen: I(chosen), rejected: I(rejected) });
const pairs = [pair([1, 4, 7], [5, 2], [6, 6, 2]), pair([1, 9], [3, 3, 8, 2], [10]), pair([1, 6, 6, 6, 10], [11], [4, 2])];

const logSigmoid = (z: number) => (z >= 0 ? -Math.log1p(Math.exp(-z)) : z - Math.log1p(Math.exp(z)));

/** The DPO loss and metrics in plain JS from unpadded per-sequence log-probs. */
function refDpo(lm: CausalLM, ref: CausalLM, ps: readonly PreferencePair[], beta: number, eps: number) {
  let loss = 0,
    chosen = 0,
    rejected = 0,
    correct = 0;
  for (const p of ps) {
    const rw = beta * (refSeqLogProb(lm, p.prompt, p.chosen) - refSeqLogProb(ref, p.prompt, p.chosen));
    const rl = beta * (refSeqLogProb(lm, p.prompt, p.rejected) - refSeqLogProb(ref, p.prompt, p.rejected));
    const z = rw - rl;
    loss += -(1 - eps) * logSigmoid(z) - eps * logSigmoid(-z);
    chosen += rw;
    rejected += rl;
    correct += z > 0 ? 1 : 0;
  }
  const n = ps.length;
  return { loss: loss / n, chosen: chosen / n, rejected: rejected / n, margin: (chosen - rejected) / n, accuracy: correct / n };
}

const refArrays = (ref: CausalLM, ps: readonly PreferencePair[]) => ({
  chosen: Float32Array.from(ps, (p) => refSeqLogProb(ref, p.prompt, p.chosen)),
  rejected: Float32Array.from(ps, (p) => refSeqLogProb(ref, p.prompt, p.rejected)),
});

const sgdLearner = (lm: CausalLM, ref: CausalLM, lr: number): DpoLearner => ({ lm, ref, optimizer: tf.train.sgd(lr), version: 0, step: 0, rng: new Rng(0) });

for (const c of [
  { beta: 0.1, labelSmoothing: 0 },
  { beta: 2, labelSmoothing: 0.2 },
]) {
  test(`DPO loss and metrics equal the formula computed by hand from the logits: ${JSON.stringify(c)}`, async () => {
    const lm = new CausalLM(tiny, { seed: 1 });
    const ref = new CausalLM(tiny, { seed: 2 });
    const R = refDpo(lm, ref, pairs, c.beta, c.labelSmoothing);
    const out = await lastValueFrom(of({ iteration: 0, pairs }).pipe(dpoUpdate(sgdLearner(lm, ref, 0), { ...c, maxGradNorm: Infinity })));
    const m = out.metrics;
    const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
    close(m['dpo/loss']!, R.loss, 'loss');
    close(m['dpo/chosen_reward']!, R.chosen, 'chosen reward');
    close(m['dpo/rejected_reward']!, R.rejected, 'rejected reward');
    close(m['dpo/reward_margin']!, R.margin, 'margin');
    assert.equal(m['dpo/accuracy'], R.accuracy);
    assert.ok(R.accuracy > 0 && R.accuracy < 1, `a mixed-accuracy fixture, got ${R.accuracy}`);
    assert.equal(m.policy_version, 1);
    lm.dispose();
    ref.dispose();
  });
}

for (const refSeed of [4, 3]) {
  test(`DPO gradient matches finite differences along random directions; the reference gets no update (${refSeed === 3 ? 'π_θ = π_ref, every margin 0' : 'π_θ ≠ π_ref'})`, () => {
    const lm = new CausalLM(tiny, { seed: 3 });
    const ref = new CausalLM(tiny, { seed: refSeed });
    const cfg: DpoUpdateConfig = { ...DPO_UPDATE_DEFAULTS, beta: 1, labelSmoothing: 0.1, maxGradNorm: Infinity };
    const base = snapshot(lm);
    const refBefore = snapshot(ref);
    const r = refArrays(ref, pairs);
    const s = dpoStep(sgdLearner(lm, ref, 1), pairs, r.chosen, r.rejected, cfg);
    const after = snapshot(lm);
    const grad = base.map((b, i) => b.map((x, j) => x - after[i]![j]!)); // SGD with η = 1: Δθ = −g
    assert.ok(Math.abs(Math.sqrt(dot(grad, grad)) - s.gradNorm) < 1e-4 * Math.max(1, s.gradNorm));
    assert.ok(sameBits(snapshot(ref), refBefore), 'the reference changed');
    const h = 1e-2;
    for (const seed of [1, 2, 3]) {
      const dir = randomDirection(lm, seed);
      setWeights(lm, base, dir, h);
      const up = refDpo(lm, ref, pairs, cfg.beta, cfg.labelSmoothing).loss;
      setWeights(lm, base, dir, -h);
      const down = refDpo(lm, ref, pairs, cfg.beta, cfg.labelSmoothing).loss;
      const fd = (up - down) / (2 * h);
      const an = dot(grad, dir);
      assert.ok(Math.abs(fd - an) < 2e-3 * Math.max(0.1, Math.abs(an)) + 2e-4, `direction ${seed}: finite difference ${fd} vs gradient ${an}`);
    }
    lm.dispose();
    ref.dispose();
  });
}

test("masking: padding ids and batch composition do not change a pair's sequence log-probs", () => {
  const lm = new CausalLM(tiny, { seed: 5 });
  const ref = new CausalLM(tiny, { seed: 6 });
  const cfg = { ...DPO_UPDATE_DEFAULTS, beta: 1, maxGradNorm: Infinity };
  const r = refArrays(ref, pairs);
  // The loss of the first pair alone (short) equals the loss computed in a batch where it is padded.
  const alone = dpoStep(sgdLearner(lm, ref, 0), [pairs[0]!], r.chosen.subarray(0, 1), r.rejected.subarray(0, 1), cfg);
  const R = refDpo(lm, ref, [pairs[0]!], 1, 0);
  assert.ok(Math.abs(alone.loss - R.loss) < 1e-5);
  const all = dpoStep(sgdLearner(lm, ref, 0), pairs, r.chosen, r.rejected, cfg);
  assert.ok(Math.abs(all.loss - refDpo(lm, ref, pairs, 1, 0).loss) < 1e-5);
  lm.dispose();
  ref.dispose();
});

// Toy preferences: prompt [BOS=1, a] prefers [f(a), EOS] over [g(a), EOS]; f(a) ≠ g(a) for every a.
const toy = Array.from({ length: 9 }, (_, i) => pair([1, 3 + i], [3 + ((i * 4 + 2) % 9), 2], [3 + ((i * 4 + 5) % 9), 2]));

test('DPO on toy preferences raises accuracy and margin (seeded, a few seconds), tensors flat, deterministic', async () => {
  const run = async () => {
    const lm = new CausalLM(tiny, { seed: 7 });
    const ref = new CausalLM(tiny, { seed: 7 }); // the same initial weights: π_θ = π_ref at the start
    const learner: DpoLearner = { ...lmLearner(lm, { learningRate: 1e-2, seed: 8 }), ref };
    const initial = refDpo(lm, ref, toy, 0.5, 0);
    const counts: number[] = [];
    const ms = await lastValueFrom(
      range(0, 6).pipe(
        map((i) => ({ iteration: i, pairs: toy })),
        dpoUpdate(learner, { beta: 0.5, epochs: 2, minibatches: 3 }),
        map((b) => {
          counts.push(tf.memory().numTensors);
          return b.metrics;
        }),
        toArray(),
      ),
    );
    const final = refDpo(lm, ref, toy, 0.5, 0);
    const state = { version: learner.version, step: learner.step };
    lm.dispose();
    ref.dispose();
    return { ms, counts, initial, final, state };
  };
  const a = await run();
  const first = a.ms[0]!;
  // At π_θ = π_ref every margin is 0: loss ln 2, accuracy 0.
  assert.ok(Math.abs(a.initial.loss - Math.LN2) < 1e-12 && a.initial.accuracy === 0, `initial ${JSON.stringify(a.initial)}`);
  assert.ok(first['dpo/loss']! > 0.6, `first batch loss ${first['dpo/loss']}`);
  assert.ok(first['dpo/accuracy']! < 0.6, `first batch accuracy ${first['dpo/accuracy']}`);
  assert.equal(a.final.accuracy, 1, `final accuracy ${a.final.accuracy}`);
  assert.ok(a.final.margin > 1, `final margin ${a.final.margin}`);
  assert.ok(a.final.loss < 0.3, `final loss ${a.final.loss}`);
  assert.ok(a.final.chosen > 0 && a.final.rejected < 0, `rewards ${a.final.chosen}, ${a.final.rejected}`);
  assert.deepEqual(a.state, { version: 6, step: 36 });
  assert.ok(
    a.counts.every((c) => c === a.counts[0]),
    `numTensors per batch ${a.counts.join(', ')}`,
  );
  const b = await run();
  assert.deepEqual(b.ms, a.ms);
});

test('a NaN in the policy is refused before any weight or optimizer change', async () => {
  const lm = new CausalLM(tiny, { seed: 9 });
  const ref = new CausalLM(tiny, { seed: 9 });
  const learner: DpoLearner = { ...lmLearner(lm, { learningRate: 1e-2 }), ref };
  const head = lm.params.get('lm_head.weight') as tf.Variable;
  tf.tidy(() => head.assign(tf.where(tf.equal(tf.reshape(tf.range(0, head.size, 1, 'int32'), head.shape), 3), tf.fill(head.shape, Number.NaN), head)));
  const before = snapshot(lm);
  const refBefore = snapshot(ref);
  const nBefore = tf.memory().numTensors;
  await assert.rejects(
    lastValueFrom(of({ iteration: 0, pairs: toy }).pipe(dpoUpdate(learner))),
    (e: unknown) => e instanceof NonFiniteUpdateError && /dpoUpdate: non-finite loss .*this step changed no weights/.test(e.message),
  );
  assert.ok(sameBits(snapshot(lm), before), 'weights changed');
  assert.ok(sameBits(snapshot(ref), refBefore), 'reference changed');
  assert.deepEqual([learner.step, learner.version, learner.optimizer.iterations], [0, 0, 0]);
  assert.equal(tf.memory().numTensors, nBefore);
  lm.dispose();
  ref.dispose();
});

test('dpoUpdate refuses bad configs, a missing or shared reference, and bad pairs by name', async () => {
  const lm = new CausalLM(tiny, { seed: 10 });
  const ref = new CausalLM(tiny, { seed: 10 });
  const learner: DpoLearner = { ...lmLearner(lm), ref };
  assert.throws(() => dpoUpdate(learner, { beta: 0 }), /beta: expected a positive number, got 0/);
  assert.throws(() => dpoUpdate(learner, { labelSmoothing: 0.5 }), /labelSmoothing: expected a number in \[0, 0\.5\)/);
  assert.throws(() => dpoUpdate({ ...learner, ref: lm }), /separate, frozen copy/);
  const other = new CausalLM({ ...tiny, vocabSize: 13 });
  assert.throws(() => dpoUpdate({ ...learner, ref: other }), /vocabulary 13 differs/);
  other.dispose();
  const run = (ps: PreferencePair[]) => lastValueFrom(of({ iteration: 0, pairs: ps }).pipe(dpoUpdate(learner)));
  await assert.rejects(run([toy[0]!, pair([1], [3], [])]), /dpoUpdate: pairs\.1\.rejected: expected at least one token, got none/);
  await assert.rejects(run([pair([1], [12], [3])]), /pairs\.0\.chosen: token 12 at index 0 is outside the vocabulary \[0, 12\)/);
  assert.deepEqual((await run([])).metrics, { policy_version: 0 });
  lm.dispose();
  ref.dispose();
});
