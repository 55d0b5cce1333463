/**
 * A causal language model as a `Policy` over completions, for `policyUpdate`.
 *
 * A trajectory of an LM is a completion y_1..y_T of a prompt x (its `start.tokens`). The batch
 * right-pads every prompt+completion to one length L and scores, in one forward pass,
 *
 *   log π_θ(y_k | x, y_<k)   at target position |x| − 1 + k of row b,
 *
 * returned flattened in trajectory order (the contract of `Learner.batchOf`): positions that are
 * prompt or padding get target −1, which `tokenLogProbs` scores as 0, and are not gathered.
 *
 * ```ts
 * const learner = { policy: lmPolicy(lm), optimizer: tf.train.adam(1e-4), version: 0, batchOf: lmBatchOf };
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Trajectory } from '../data.ts';
import type { CausalLM } from './lm.ts';
import type { Policy } from './policy.ts';

export interface LmBatch {
  /** [B, L−1] int32 inputs (prompt+completion without the last token), right-padded with `pad`. */
  readonly inputs: Int32Array;
  /** [B, L−1] targets: the completion tokens at their positions, −1 elsewhere. */
  readonly targets: Int32Array;
  /** [B, L−1] 1 on real tokens. */
  readonly mask: Float32Array;
  /** Flat indices into [B·(L−1)] of every completion token, in trajectory order. */
  readonly index: Int32Array;
  readonly rows: number;
  readonly width: number;
}

export function lmBatchOf(trajectories: readonly Trajectory[], pad = 0): LmBatch {
  const rows = trajectories.length;
  const prompts = trajectories.map((t) => {
    if (t.start.kind !== 'prompt') throw new TypeError(`lmBatchOf: trajectory of group ${t.groupId} has a ${t.start.kind} start, not a prompt`);
    if (!(t.actions instanceof Int32Array)) throw new TypeError(`lmBatchOf: trajectory of group ${t.groupId} has float actions, not tokens`);
    return t.start.tokens;
  });
  const width = Math.max(1, ...trajectories.map((t, b) => prompts[b]!.length + t.length - 1));
  const inputs = new Int32Array(rows * width).fill(pad);
  const targets = new Int32Array(rows * width).fill(-1);
  const mask = new Float32Array(rows * width);
  let S = 0;
  for (const t of trajectories) S += t.length;
  const index = new Int32Array(S);
  let o = 0;
  trajectories.forEach((t, b) => {
    const p = prompts[b]!;
    const seq = new Int32Array(p.length + t.length);
    seq.set(p);
    seq.set(t.actions as Int32Array, p.length);
    for (let j = 0; j < seq.length - 1; j++) {
      inputs[b * width + j] = seq[j]!;
      mask[b * width + j] = 1;
    }
    for (let k = 0; k < t.length; k++) {
      const pos = p.length - 1 + k;
      targets[b * width + pos] = seq[pos + 1]!;
      index[o++] = b * width + pos;
    }
  });
  return { inputs, targets, mask, index, rows, width };
}

/** The completion-level policy view of `lm` (acting is `generate`; `act` is not used). */
export function lmPolicy(lm: CausalLM): Policy<LmBatch, never, never> {
  // No tf.tidy here: this runs inside policyUpdate's tidy and variableGrads, which free the
  // intermediates after the backward pass.
  const perToken = (batch: LmBatch, which: 'logp' | 'entropy'): tf.Tensor => {
    const inputs = tf.tensor2d(batch.inputs, [batch.rows, batch.width], 'int32');
    const mask = tf.tensor2d(batch.mask, [batch.rows, batch.width]);
    const values =
      which === 'logp'
        ? lm.tokenLogProbs(inputs, tf.tensor2d(batch.targets, [batch.rows, batch.width], 'int32'), { attentionMask: mask })
        : lm.entropy(inputs, { attentionMask: mask });
    return tf.gather(tf.reshape(values, [-1]), tf.tensor1d(batch.index, 'int32'));
  };
  return {
    get variables() {
      return lm.variables;
    },
    logProb: (batch) => perToken(batch, 'logp'),
    entropy: (batch) => perToken(batch, 'entropy'),
    act: () => {
      throw new Error('lmPolicy: sample completions with generate() (see operators/lmRollout.ts)');
    },
    dispose: () => lm.dispose(),
  };
}
