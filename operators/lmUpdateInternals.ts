/**
 * Shared internals of the language-model losses (`sftUpdate`, `dpoUpdate`): the learner state,
 * the right-padded (prompt, completion) batch, per-sequence completion log-probs, and one guarded
 * optimizer step (global-norm clipping, refusal of a non-finite loss or gradient before any weight
 * changes, decoupled weight decay).
 *
 * The batch has the layout of `lmBatchOf` (lib/models/lm-policy.ts): row b holds prompt x_b and
 * completion y_b, right-padded to one width W = max_b(|x_b| + |y_b|) − 1; the target at position
 * |x_b| − 1 + k is y_{b,k}, every other target (prompt, padding) is −1, which `logProbsOf` scores
 * as 0. So Σ_t tokenLogProbs[b, t] = log π_θ(y_b | x_b) = Σ_k log π_θ(y_{b,k} | x_b, y_{b,<k}).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as t from 'io-ts';
import type { CausalLM } from '../lib/models/lm.ts';
import type { LmBatch } from '../lib/models/lm-policy.ts';
import { Rng } from '../lib/random.ts';
import { NonFiniteUpdateError } from './policyUpdate.ts';

/**
 * What an LM fine-tuning update changes and a checkpoint must hold: the model's weights and the
 * optimizer's moments (`saveCheckpoint({ params: lm.params, optimizer })`), the counters and the
 * minibatch stream's state (`rng.state()`).
 */
export interface LmLearner {
  readonly lm: CausalLM;
  /** Adam (or any tfjs optimizer); with `weightDecay` > 0 the step is AdamW's. */
  readonly optimizer: tf.Optimizer;
  /** Incremented once per batch; emitted as `policy_version`. */
  version: number;
  /** Optimizer steps taken (one per minibatch). */
  step: number;
  /** Minibatch shuffling stream. */
  readonly rng: Rng;
  /** AdamW's decoupled weight decay λ (0: plain Adam); needs `learningRate`. */
  readonly weightDecay?: number;
  /** η of the optimizer, used only by the decoupled decay θ ← θ − η·λ·θ. */
  readonly learningRate?: number;
}

export interface LmLearnerOptions {
  /** η (default 1e-4). */
  learningRate?: number;
  /** Adam β₁, β₂, ε (defaults 0.9, 0.999, 1e-8: Kingma & Ba). */
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** AdamW λ, decoupled (Loshchilov & Hutter); applied to matrices only (rank ≥ 2). Default 0. */
  weightDecay?: number;
  /** Seed of the minibatch stream (default 0). */
  seed?: number;
  /** Key of the minibatch stream (default `lmUpdate/minibatch`). */
  key?: string;
}

/**
 * A fresh learner for `lm`: Adam (AdamW when `weightDecay` > 0), counters at 0, a seeded
 * minibatch stream.
 *
 * @param lm The model to train.
 * @param opts Optimizer hyperparameters and the minibatch seed.
 * @returns The learner state that `sftUpdate` (and, with a `ref`, `dpoUpdate`) receives.
 * @example
 * const learner = lmLearner(lm, { learningRate: 3e-4, weightDecay: 0.01, seed: 1 });
 * const state = { step: learner.step, version: learner.version, rng: learner.rng.state() };
 */
export function lmLearner(lm: CausalLM, opts: LmLearnerOptions = {}): LmLearner {
  const learningRate = opts.learningRate ?? 1e-4;
  const weightDecay = opts.weightDecay ?? 0;
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) throw new RangeError(`lmLearner: learningRate: expected a positive number, got ${learningRate}`);
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) throw new RangeError(`lmLearner: weightDecay: expected a non-negative number, got ${weightDecay}`);
  return {
    lm,
    optimizer: tf.train.adam(learningRate, opts.beta1 ?? 0.9, opts.beta2 ?? 0.999, opts.epsilon ?? 1e-8),
    version: 0,
    step: 0,
    rng: new Rng(opts.seed ?? 0, opts.key ?? 'lmUpdate/minibatch'),
    weightDecay,
    learningRate,
  };
}

/** A positive number, or Infinity (a gradient-norm clip that is off). */
export const PositiveNumberOrInfinity = new t.Type<number, number, unknown>(
  'a positive number or Infinity',
  (u): u is number => typeof u === 'number' && u > 0,
  (u, c) => (typeof u === 'number' && u > 0 ? t.success(u) : t.failure(u, c, `expected a positive number or Infinity, got ${String(u)}`)),
  t.identity,
);

/** Throws a RangeError naming the field if the learner state is unusable. */
export function checkLearner(what: string, learner: LmLearner): void {
  const wd = learner.weightDecay ?? 0;
  if (!(wd >= 0) || !Number.isFinite(wd)) throw new RangeError(`${what}: learner.weightDecay: expected a non-negative number, got ${wd}`);
  if (wd > 0 && !(learner.learningRate !== undefined && learner.learningRate > 0 && Number.isFinite(learner.learningRate))) {
    throw new RangeError(
      `${what}: learner.learningRate: expected a positive number with weightDecay ${wd} (the decoupled decay is η·λ), got ${learner.learningRate}`,
    );
  }
  if (!Number.isInteger(learner.step) || learner.step < 0) throw new RangeError(`${what}: learner.step: expected a non-negative integer, got ${learner.step}`);
  if (!Number.isInteger(learner.version) || learner.version < 0)
    throw new RangeError(`${what}: learner.version: expected a non-negative integer, got ${learner.version}`);
}

/** A (prompt, completion) pair of token sequences. */
export interface Completion {
  readonly prompt: Int32Array;
  readonly completion: Int32Array;
}

/** Throws a RangeError naming `path` unless `seq` is a non-empty Int32Array of ids in [0, vocab). */
export function checkTokens(what: string, seq: unknown, path: string, vocab: number): void {
  if (!(seq instanceof Int32Array))
    throw new TypeError(
      `${what}: ${path}: expected an Int32Array of token ids, got ${seq === null ? 'null' : typeof seq === 'object' ? ((seq as object).constructor?.name ?? 'an object') : typeof seq}`,
    );
  if (seq.length === 0) throw new RangeError(`${what}: ${path}: expected at least one token, got none`);
  for (let i = 0; i < seq.length; i++) {
    const v = seq[i]!;
    if (v < 0 || v >= vocab) throw new RangeError(`${what}: ${path}: token ${v} at index ${i} is outside the vocabulary [0, ${vocab})`);
  }
}

/**
 * The right-padded batch of (prompt, completion) rows, in the layout of `lmBatchOf`, plus the
 * number of completion tokens. Prompts and completions must be non-empty (the first completion
 * token is scored given the prompt).
 */
export function completionBatch(rows: readonly Completion[], pad = 0): LmBatch & { tokens: number } {
  const B = rows.length;
  const width = Math.max(1, ...rows.map((r) => r.prompt.length + r.completion.length - 1));
  const inputs = new Int32Array(B * width).fill(pad);
  const targets = new Int32Array(B * width).fill(-1);
  const mask = new Float32Array(B * width);
  let tokens = 0;
  for (const r of rows) tokens += r.completion.length;
  const index = new Int32Array(tokens);
  let o = 0;
  rows.forEach((r, b) => {
    const P = r.prompt.length;
    const Y = r.completion.length;
    const at = (j: number) => (j < P ? r.prompt[j]! : r.completion[j - P]!);
    for (let j = 0; j < P + Y - 1; j++) {
      inputs[b * width + j] = at(j);
      mask[b * width + j] = 1;
    }
    for (let k = 0; k < Y; k++) {
      const pos = b * width + P - 1 + k;
      targets[pos] = r.completion[k]!;
      index[o++] = pos;
    }
  });
  return { inputs, targets, mask, index, rows: B, width, tokens };
}

/**
 * log π_θ of every target of `batch` under `lm`: [B, W], 0 at prompt and padding positions.
 * Creates tensors: call inside `tf.tidy` or `tf.variableGrads`.
 */
export function completionTokenLogProbs(lm: CausalLM, batch: LmBatch): tf.Tensor2D {
  const shape: [number, number] = [batch.rows, batch.width];
  return lm.tokenLogProbs(tf.tensor2d(batch.inputs, shape, 'int32'), tf.tensor2d(batch.targets, shape, 'int32'), {
    attentionMask: tf.tensor2d(batch.mask, shape),
  });
}

/** log π_θ(y_b | x_b) = Σ_k log π_θ(y_{b,k} | x_b, y_{b,<k}) per row: [B]. Inside a tidy. */
export function sequenceLogProbs(lm: CausalLM, batch: LmBatch): tf.Tensor1D {
  return tf.sum(completionTokenLogProbs(lm, batch), 1) as tf.Tensor1D;
}

/** Fisher–Yates shuffle of 0..n−1 with `rng`, cut into `count` interleaved minibatches. */
export function minibatchIndices(n: number, count: number, rng: Rng): number[][] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const m = Math.min(count, n);
  return Array.from({ length: m }, (_, k) => order.filter((_, i) => i % m === k));
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  /** The scalar side values the objective kept, read with the loss. */
  side: number[];
}

/**
 * One optimizer step on `objective` (a scalar to minimise; it may `tf.keep` scalar side values
 * and return them). Reads the loss, the global gradient norm and the side values in one device
 * read; a NaN or ±Inf loss or norm throws `NonFiniteUpdateError` before any weight changes.
 * Otherwise: gradients scaled by min(1, maxGradNorm / ‖g‖), decoupled decay, optimizer step.
 */
export function guardedStep(
  what: string,
  learner: LmLearner,
  objective: () => { loss: tf.Scalar; side: tf.Scalar[] },
  maxGradNorm: number,
  appliedInBatch: number,
): StepResult {
  const vars = learner.lm.variables.filter((v) => v.trainable);
  return tf.tidy(() => {
    let side: tf.Scalar[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const r = objective();
      side = r.side.map((s) => tf.keep(s));
      return r.loss;
    }, vars);
    const names = Object.keys(grads);
    const norm = tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads[n]!)))));
    const read = tf.stack([value, norm, ...side]).dataSync();
    for (const s of side) s.dispose();
    const loss = read[0]!;
    const gradNorm = read[1]!;
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      throw new NonFiniteUpdateError(
        `${what}: non-finite ${Number.isFinite(loss) ? 'gradient norm' : 'loss'} (loss ${loss}, grad norm ${gradNorm}) at policy version ${learner.version}, optimizer step ${learner.step}; this step changed no weights${appliedInBatch > 0 ? ` (${appliedInBatch} earlier minibatch step${appliedInBatch === 1 ? ' was' : 's were'} applied in this batch)` : ''}`,
      );
    }
    const scale = Math.min(1, maxGradNorm / (gradNorm + 1e-6));
    const applied: tf.NamedTensorMap = {};
    for (const n of names) applied[n] = scale < 1 ? tf.mul(grads[n]!, scale) : grads[n]!;
    const decay = (learner.weightDecay ?? 0) * (learner.learningRate ?? 0);
    if (decay > 0) {
      // AdamW (PyTorch order): θ ← θ·(1 − η·λ), then the Adam step; matrices only.
      for (const v of vars) if (v.rank >= 2) v.assign(tf.mul(v, 1 - decay));
    }
    learner.optimizer.applyGradients(applied);
    learner.step++;
    return { loss, gradNorm, side: Array.from(read.subarray(2)) };
  });
}
