// `sftUpdate`: supervised fine-tuning of a causal LM (completion-token NLL) — documented on the exported `sftUpdate` (hover it).
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import { map, type OperatorFunction } from 'rxjs';
import { Int32, NonNegativeInt, PositiveInt, decodeOrThrow } from '../lib/codec.ts';
import type { CausalLM } from '../lib/models/lm.ts';
import {
  PositiveNumberOrInfinity,
  checkLearner,
  checkTokens,
  completionBatch,
  completionTokenLogProbs,
  guardedStep,
  minibatchIndices,
  type LmLearner,
} from './lmUpdateInternals.ts';

export { lmLearner, completionBatch, type LmLearner, type LmLearnerOptions } from './lmUpdateInternals.ts';

/** One supervised example: a prompt x and the target completion y that should follow it. */
export const SftExample = t.type({ prompt: Int32, completion: Int32 }, 'SftExample');
export type SftExample = t.TypeOf<typeof SftExample>;

/** One iteration's supervised examples (plain data); `metrics` from earlier operators are kept. */
export const SftBatch = t.intersection(
  [t.type({ iteration: NonNegativeInt, examples: t.readonlyArray(SftExample) }), t.partial({ metrics: t.record(t.string, t.number) })],
  'SftBatch',
);
export type SftBatch = t.TypeOf<typeof SftBatch>;

/** The configuration of `sftUpdate`. */
export const SftUpdateConfig = t.type(
  {
    /** Passes over the batch's examples. */
    epochs: PositiveInt,
    /** Optimizer steps per epoch, on random disjoint slices of the examples. */
    minibatches: PositiveInt,
    /** Global gradient-norm clip (Infinity: off). */
    maxGradNorm: PositiveNumberOrInfinity,
  },
  'SftUpdateConfig',
);
export type SftUpdateConfig = t.TypeOf<typeof SftUpdateConfig>;

/** One epoch, one full-batch step, clip at 1 (the Hugging Face Trainer / TRL SFTTrainer default `max_grad_norm`). */
export const SFT_UPDATE_DEFAULTS: SftUpdateConfig = { epochs: 1, minibatches: 1, maxGradNorm: 1 };

/**
 * The SFT loss of `examples` under `lm`: −(1/Σ_i|y_i|) Σ_i Σ_k log π_θ(y_{i,k} | x_i, y_{i,<k}).
 * A scalar tensor; call inside `tf.tidy` or `tf.variableGrads`.
 */
export function sftLoss(lm: CausalLM, examples: readonly SftExample[]): tf.Scalar {
  const batch = completionBatch(examples);
  return tf.div(tf.neg(tf.sum(completionTokenLogProbs(lm, batch))), batch.tokens) as tf.Scalar;
}

/**
 * One optimizer step of SFT on `examples` (see `sftUpdate`). Throws `NonFiniteUpdateError`
 * before any weight changes if the loss or the gradient norm is not finite.
 */
export function sftStep(
  learner: LmLearner,
  examples: readonly SftExample[],
  cfg: SftUpdateConfig,
  appliedInBatch = 0,
): { loss: number; gradNorm: number; tokens: number } {
  const tokens = examples.reduce((s, e) => s + e.completion.length, 0);
  const r = guardedStep('sftUpdate', learner, () => ({ loss: sftLoss(learner.lm, examples), side: [] }), cfg.maxGradNorm, appliedInBatch);
  return { loss: r.loss, gradNorm: r.gradNorm, tokens };
}

/**
 * Supervised fine-tuning (SFT) of a causal language model on (prompt, completion) pairs.
 *
 * For each batch, for `epochs` passes over `minibatches` random disjoint slices ℬ of its
 * examples (shuffled by `learner.rng`), one optimizer step on the token-level negative
 * log-likelihood of the completion tokens only:
 *
 *   L(θ) = −(1 / Σ_{i∈ℬ} |y_i|) · Σ_{i∈ℬ} Σ_{k=1}^{|y_i|} log π_θ(y_{i,k} | x_i, y_{i,<k})
 *
 * where x_i is the prompt and y_i the target completion. Prompt tokens and right-padding are
 * masked out (target −1, scored 0; padding is also masked from attention). The global gradient
 * norm ‖∇L‖ is clipped to `maxGradNorm`; with `learner.weightDecay` λ > 0 the step is AdamW's.
 * The loss and the gradient norm are read before any weight changes: a NaN or ±Inf throws
 * `NonFiniteUpdateError` and that step changes nothing. Each batch bumps `learner.version`;
 * `learner.step` counts optimizer steps. No tensor leaves the operator.
 *
 * Metrics: `sft/loss` (the pre-step loss, token-weighted mean over the batch's steps),
 * `sft/tokens` (completion tokens in the batch), `grad_norm` (mean pre-clip norm over the steps),
 * `policy_version`.
 *
 * @param learner The model, optimizer, counters and minibatch stream (`lmLearner(lm, …)`); mutated.
 * @param config Partial {@link SftUpdateConfig}; missing keys from {@link SFT_UPDATE_DEFAULTS}.
 * @returns An operator from each batch to the same batch with the metrics added.
 * @throws DecodeError for a bad config (naming the key); at run time a RangeError naming the
 *   example (`examples.3.completion: token 57 at index 2 is outside the vocabulary [0, 12)`) and
 *   `NonFiniteUpdateError` for a NaN/Inf loss or gradient.
 * @example
 * const learner = lmLearner(lm, { learningRate: 1e-3, seed: 1 });
 * const batch = { iteration: 0, examples: [{ prompt: Int32Array.of(1, 4), completion: Int32Array.of(7, 2) }] };
 * of(batch).pipe(sftUpdate(learner, { epochs: 2, minibatches: 1 })).subscribe((b) => {
 *   console.log(b.metrics['sft/loss'], b.metrics.policy_version);
 * });
 */
export function sftUpdate<B extends SftBatch>(
  learner: LmLearner,
  config: Partial<SftUpdateConfig> = {},
): OperatorFunction<B, B & { readonly metrics: Readonly<Record<string, number>> }> {
  const cfg = decodeOrThrow(SftUpdateConfig, { ...SFT_UPDATE_DEFAULTS, ...config }, 'sftUpdate config');
  checkLearner('sftUpdate', learner);
  const V = learner.lm.config.vocabSize;
  return map((batch) => {
    const examples = batch.examples;
    examples.forEach((e, i) => {
      checkTokens('sftUpdate', e.prompt, `examples.${i}.prompt`, V);
      checkTokens('sftUpdate', e.completion, `examples.${i}.completion`, V);
    });
    const tokens = examples.reduce((s, e) => s + e.completion.length, 0);
    if (examples.length === 0) return { ...batch, metrics: { ...batch.metrics, 'sft/tokens': 0, policy_version: learner.version } };
    let lossSum = 0;
    let tokenSum = 0;
    let normSum = 0;
    let n = 0;
    for (let e = 0; e < cfg.epochs; e++) {
      for (const idx of minibatchIndices(examples.length, cfg.minibatches, learner.rng)) {
        const s = sftStep(
          learner,
          idx.map((k) => examples[k]!),
          cfg,
          n,
        );
        lossSum += s.loss * s.tokens;
        tokenSum += s.tokens;
        normSum += s.gradNorm;
        n++;
      }
    }
    learner.version++;
    return {
      ...batch,
      metrics: { ...batch.metrics, 'sft/loss': lossSum / tokenSum, 'sft/tokens': tokens, grad_norm: normSum / n, policy_version: learner.version },
    };
  });
}
