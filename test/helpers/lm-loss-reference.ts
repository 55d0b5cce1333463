/**
 * Plain-JS references for the LM losses: sequence log-probs from the model's logits (one
 * unpadded forward pass per sequence, log-softmax in float64 by hand), and helpers for finite
 * differences along a random direction in weight space.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CausalLM } from '../../lib/models/lm.ts';
import { Rng } from '../../lib/random.ts';

/** Σ_k log π(y_k | x, y_<k) from `lm.forward` on the unpadded sequence x ⧺ y[:−1]. */
export function refSeqLogProb(lm: CausalLM, prompt: ArrayLike<number>, completion: ArrayLike<number>): number {
  const seq = [...Array.from(prompt), ...Array.from(completion)];
  const x = seq.slice(0, -1);
  const logits = tf.tidy(() => lm.forward(tf.tensor2d(x, [1, x.length], 'int32')).logits.arraySync()[0]!) as number[][];
  let s = 0;
  for (let k = 0; k < completion.length; k++) {
    const row = logits[prompt.length - 1 + k]!;
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    s += row[completion[k]!]! - lse;
  }
  return s;
}

/** A snapshot of every variable's values. */
export function snapshot(lm: CausalLM): Float32Array[] {
  return lm.variables.map((v) => v.dataSync().slice() as Float32Array);
}

/** Sets every variable to `base + h·dir`. */
export function setWeights(lm: CausalLM, base: Float32Array[], dir: Float32Array[], h: number): void {
  lm.variables.forEach((v, i) => {
    const b = base[i]!;
    const d = dir[i]!;
    const x = new Float32Array(b.length);
    for (let j = 0; j < b.length; j++) x[j] = b[j]! + h * d[j]!;
    tf.tidy(() => v.assign(tf.tensor(x, v.shape)));
  });
}

/** A seeded random direction of unit norm over all variables. */
export function randomDirection(lm: CausalLM, seed: number): Float32Array[] {
  const rng = new Rng(seed, 'fd-direction');
  const dir = lm.variables.map((v) => Float32Array.from(rng.normalArray(v.size)));
  const norm = Math.sqrt(dir.reduce((s, d) => s + d.reduce((a, x) => a + x * x, 0), 0));
  return dir.map((d) => d.map((x) => x / norm));
}

/** ⟨a, b⟩ over all variables. */
export function dot(a: Float32Array[], b: Float32Array[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a[i]!.length; j++) s += a[i]![j]! * b[i]![j]!;
  return s;
}

/** Bitwise equality of two snapshots (NaN equals NaN). */
export function sameBits(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.from(x.buffer).equals(Buffer.from(b[i]!.buffer)));
}
