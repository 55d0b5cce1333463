/**
 * Decision-Transformer training windows from trajectories (ODT's `get_batch`, Zheng et al. 2022).
 *
 * - `d4rlTrajectories(data, envId)`: a D4RL dataset's complete episodes as `Trajectory` values
 *   whose `targets` are the achieved returns-to-go g_t = Σ_{k≥t} r_k (raw, unscaled; what hindsight
 *   relabeling gives online trajectories, so offline and replayed data look alike);
 * - `stateNormOf(data)`: per-dimension mean and std + 1e-6 of the observations (ODT);
 * - `sampleWindows(trs, n, K, rng)`: n windows, trajectory j picked with P(j) = T_j / Σ_i T_i
 *   (every step equally likely), a start s uniform in [0, T_j − 1], steps [s, min(s + K, T_j));
 * - `windowBatch(trs, windows, opts)`: the windows as a left-padded `DtBatch` (mask 0 on
 *   padding), R̂ · rtgScale, normalised states, timesteps clipped to maxTimestep.
 *
 * ```ts
 * const data = await loadD4rl('hopper-medium-v2.hdf5', { envId: 'Hopper-v4' });
 * const trs = d4rlTrajectories(data, 'Hopper-v4');
 * const batch = windowBatch(trs, sampleWindows(trs, 256, 20, rng), { K: 20, rtgScale: 1e-3, stateNorm: stateNormOf(data) });
 * ```
 */
import type { Trajectory } from '../data.ts';
import type { DtBatch } from '../models/decision-transformer.ts';
import { type StateNorm, normalizeState } from '../models/dt-batch.ts';
import type { Rng } from '../random.ts';
import { type D4rlDataset, episodesOf } from './d4rl.ts';

/** The complete episodes of `data` as trajectories with achieved returns-to-go as targets. */
export function d4rlTrajectories(data: D4rlDataset, envId: string): Trajectory[] {
  const { obsDim: S, actDim: A } = data;
  return episodesOf(data).map((ep, i) => {
    const T = ep.length;
    const observations = new Float32Array((T + 1) * S);
    observations.set(ep.observations);
    // The final observation: next_observations' last row when the file has it, else the last state again.
    observations.set(ep.nextObservations ? ep.nextObservations.subarray((T - 1) * S, T * S) : ep.observations.subarray((T - 1) * S, T * S), T * S);
    const targets = new Float32Array(T);
    let g = 0;
    for (let t = T - 1; t >= 0; t--) {
      g += ep.rewards[t]!;
      targets[t] = g;
    }
    return {
      length: T,
      obsDim: S,
      actDim: A,
      observations,
      actions: ep.actions.slice(),
      logProbs: new Float32Array(T),
      rewards: ep.rewards.slice(),
      costs: new Float32Array(T),
      terminated: ep.terminated,
      truncated: !ep.terminated,
      policyVersion: 0,
      groupId: `offline/${i}`,
      start: { kind: 'seed', envId, seed: 0 },
      targets,
      timesteps: Int32Array.from({ length: T }, (_, k) => k),
    };
  });
}

/** Mean and std (+ 1e-6, ODT) of every observation dimension, over all rows of `data`. */
export function stateNormOf(data: Pick<D4rlDataset, 'n' | 'obsDim' | 'observations'>): StateNorm {
  const { n, obsDim: S, observations: o } = data;
  if (n === 0) throw new RangeError('stateNormOf: the dataset has no rows');
  const mean = new Float64Array(S);
  const sq = new Float64Array(S);
  for (let i = 0; i < n; i++) for (let d = 0; d < S; d++) mean[d] = mean[d]! + o[i * S + d]!;
  for (let d = 0; d < S; d++) mean[d] = mean[d]! / n;
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < S; d++) {
      const x = o[i * S + d]! - mean[d]!;
      sq[d] = sq[d]! + x * x;
    }
  }
  return { mean: Float32Array.from(mean), std: Float32Array.from(sq, (s) => Math.sqrt(s / n) + 1e-6) };
}

/** A window: steps [start, start + length) of trajectory `index`. */
export interface Window {
  readonly index: number;
  readonly start: number;
  readonly length: number;
}

/** n windows of ≤ K steps, trajectories weighted by length, starts uniform (ODT). */
export function sampleWindows(trajectories: readonly Pick<Trajectory, 'length'>[], n: number, K: number, rng: Rng): Window[] {
  const cum = new Float64Array(trajectories.length);
  let total = 0;
  trajectories.forEach((tr, i) => {
    total += tr.length;
    cum[i] = total;
  });
  if (total === 0) throw new RangeError('sampleWindows: no trajectory has a step');
  const out: Window[] = [];
  for (let k = 0; k < n; k++) {
    const u = rng.uniform() * total;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    const T = trajectories[lo]!.length;
    const start = Math.min(T - 1, Math.floor(rng.uniform() * T));
    out.push({ index: lo, start, length: Math.min(K, T - start) });
  }
  return out;
}

export interface WindowBatchOptions {
  readonly K: number;
  /** Factor on the targets (ODT MuJoCo: 1/1000). Default 1. */
  readonly rtgScale?: number;
  readonly stateNorm?: StateNorm;
  /** Timesteps are clipped to this (the DT's maxEpisodeSteps − 1). Default no clip. */
  readonly maxTimestep?: number;
}

/** The windows as a left-padded `DtBatch`; every real position is a training target. */
export function windowBatch(trajectories: readonly Trajectory[], windows: readonly Window[], opts: WindowBatchOptions): DtBatch {
  const { K } = opts;
  const scale = opts.rtgScale ?? 1;
  const maxT = opts.maxTimestep ?? Number.MAX_SAFE_INTEGER;
  const first = trajectories[0];
  if (!first) throw new RangeError('windowBatch: no trajectories');
  const S = first.obsDim;
  const A = first.actDim;
  const B = windows.length;
  const states = new Float32Array(B * K * S);
  const actions = new Float32Array(B * K * A);
  const returnsToGo = new Float32Array(B * K);
  const timesteps = new Int32Array(B * K);
  const mask = new Float32Array(B * K);
  const tmp = new Float64Array(S);
  windows.forEach((w, b) => {
    const tr = trajectories[w.index];
    if (!tr) throw new RangeError(`windowBatch: window ${b} names trajectory ${w.index}, but there are ${trajectories.length}`);
    if (tr.obsDim !== S || tr.actDim !== A) throw new TypeError(`windowBatch: trajectory of group ${tr.groupId} does not match the first one's sizes`);
    if (!tr.targets) throw new TypeError(`windowBatch: trajectory of group ${tr.groupId} has no targets`);
    if (!(w.length >= 1 && w.length <= K && w.start >= 0 && w.start + w.length <= tr.length)) {
      throw new RangeError(
        `windowBatch: window ${b} [${w.start}, ${w.start + w.length}) does not fit trajectory ${w.index} of length ${tr.length} with K ${K}`,
      );
    }
    const pad = K - w.length;
    for (let j = 0; j < w.length; j++) {
      const t = w.start + j;
      const k = b * K + pad + j;
      states.set(normalizeState(tr.observations.subarray(t * S, (t + 1) * S), opts.stateNorm, tmp), k * S);
      actions.set((tr.actions as Float32Array).subarray(t * A, (t + 1) * A), k * A);
      returnsToGo[k] = tr.targets[t]! * scale;
      timesteps[k] = Math.min(tr.timesteps ? tr.timesteps[t]! : t, maxT);
      mask[k] = 1;
    }
  });
  return { batchSize: B, length: K, states, actions, returnsToGo, timesteps, mask };
}
