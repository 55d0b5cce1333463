/**
 * The Decision Transformer's training batch for `policyUpdate` (the `Learner.batchOf` contract)
 * and the `Policy` adapter that reads one value per trajectory step from it.
 *
 * One row per step, as the DT acted: step t of a trajectory is predicted from the ≤ K steps
 * t − K + 1 … t of that trajectory — (R̂·rtgScale, normalised s, a) tokens, left-padded with
 * mask 0 — so row r's last position K − 1 is the step whose action is scored. The returns-to-go
 * are the trajectory's `targets` (the *intended* ones the actor recorded; never relabeled here),
 * the timesteps its `timesteps` (or 0 … T − 1). A trajectory's window never reaches into another
 * trajectory: `dtActor` starts a fresh context at every group start (a snapshot start included).
 *
 * The values match `dtActor` bit for bit: it feeds fround(R̂)·rtgScale and (s − μ)/σ computed
 * in float64 from the float32 observation, which is what this builder does from the recorded
 * (float32) targets and observations, so `dtPolicy(dt).logProb(dtBatchOf(trs, { K }))` equals
 * the behaviour log-probs the DT stored when it acted with context K (up to float32 kernels).
 *
 * ```ts
 * const learner = { policy: dtPolicy(dt, { rng: new Rng(seed, 'entropy') }), optimizer, version: 0,
 *   batchOf: (trs) => dtBatchOf(trs, { K: 5, rtgScale: 1e-3, stateNorm }) };
 * batches$.pipe(returns(), groupAdvantages(), policyUpdate(learner, { ratioLevel: 'subtrajectory' }));
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Trajectory } from '../data.ts';
import { Rng } from '../random.ts';
import type { DecisionTransformer, DtBatch } from './decision-transformer.ts';
import type { ActOptions, ActResult, Policy } from './policy.ts';

/** Per-dimension state normalisation s ↦ (s − mean) / std (ODT: dataset mean and std + 1e-6). */
export interface StateNorm {
  readonly mean: Float32Array;
  readonly std: Float32Array;
}

/** (s − mean) / std of one state, in float64 (the one formula the actor and the batch builder share). */
export function normalizeState(state: ArrayLike<number>, norm: StateNorm | undefined, out?: Float64Array): Float64Array {
  const o = out ?? new Float64Array(state.length);
  if (!norm) {
    for (let i = 0; i < state.length; i++) o[i] = state[i]!;
    return o;
  }
  if (norm.mean.length !== state.length || norm.std.length !== state.length) {
    throw new RangeError(`normalizeState: state of size ${state.length}, but stateNorm has mean ${norm.mean.length} / std ${norm.std.length}`);
  }
  for (let i = 0; i < state.length; i++) o[i] = (state[i]! - norm.mean[i]!) / norm.std[i]!;
  return o;
}

export interface DtBatchOptions {
  /** Context length in steps: the one the DT acted with (ODT: 20 in training, 5 at evaluation). */
  readonly K: number;
  /** Factor on the targets (ODT: 1/1000 for MuJoCo). Default 1. */
  readonly rtgScale?: number;
  /** State normalisation applied to the observations. Default none. */
  readonly stateNorm?: StateNorm;
}

/**
 * The K-step windows of every step of `trajectories`, in trajectory order: a `DtBatch` with
 * B = Σ T_i rows of length K (row of step t: steps max(0, t − K + 1) … t, left-padded).
 * Trajectories need `targets`; continuous (Float32Array) actions.
 */
export function dtBatchOf(trajectories: readonly Trajectory[], opts: DtBatchOptions): DtBatch {
  const { K } = opts;
  if (!Number.isInteger(K) || K < 1) throw new RangeError(`dtBatchOf: K: expected a positive integer, got ${K}`);
  const scale = opts.rtgScale ?? 1;
  const first = trajectories[0];
  const S = first?.obsDim ?? 0;
  const A = first?.actDim ?? 0;
  let B = 0;
  for (const tr of trajectories) B += tr.length;
  const states = new Float32Array(B * K * S);
  const actions = new Float32Array(B * K * A);
  const returnsToGo = new Float32Array(B * K);
  const timesteps = new Int32Array(B * K);
  const mask = new Float32Array(B * K);
  const tmp = new Float64Array(S);
  let row = 0;
  for (const tr of trajectories) {
    const where = `dtBatchOf: trajectory of group ${tr.groupId}`;
    if (tr.obsDim !== S || tr.actDim !== A) throw new TypeError(`${where} has obsDim ${tr.obsDim} / actDim ${tr.actDim}, the first one ${S} / ${A}`);
    if (!(tr.actions instanceof Float32Array)) throw new TypeError(`${where} has discrete actions; a Decision Transformer needs continuous ones`);
    if (!tr.targets) throw new TypeError(`${where} has no targets (the returns-to-go the DT acted on)`);
    const T = tr.length;
    if (tr.targets.length !== T || tr.actions.length !== T * A || tr.observations.length < T * S) {
      throw new RangeError(`${where}: targets/actions/observations do not match its length ${T}`);
    }
    if (tr.timesteps && tr.timesteps.length !== T) throw new RangeError(`${where}: timesteps has length ${tr.timesteps.length}, expected ${T}`);
    // Normalised states and scaled targets of the whole trajectory, then copied into each window.
    const ns = new Float32Array(T * S);
    for (let t = 0; t < T; t++) ns.set(normalizeState(tr.observations.subarray(t * S, (t + 1) * S), opts.stateNorm, tmp), t * S);
    for (let t = 0; t < T; t++, row++) {
      const n = Math.min(K, t + 1);
      const from = t + 1 - n;
      const k0 = row * K + (K - n);
      states.set(ns.subarray(from * S, (t + 1) * S), k0 * S);
      actions.set(tr.actions.subarray(from * A, (t + 1) * A), k0 * A);
      for (let j = 0; j < n; j++) {
        const u = from + j;
        returnsToGo[k0 + j] = tr.targets[u]! * scale;
        timesteps[k0 + j] = tr.timesteps ? tr.timesteps[u]! : u;
        mask[k0 + j] = 1;
      }
    }
  }
  return { batchSize: B, length: K, states, actions, returnsToGo, timesteps, mask };
}

export interface DtPolicyOptions {
  /** Noise stream of the sampled entropy estimate (`policyUpdate` calls `entropy(batch)` without one). */
  readonly rng?: Rng;
  /** Samples M of the entropy estimate. Default 1 (ODT). */
  readonly entropySamples?: number;
}

/**
 * A `Policy` over a `dtBatchOf` batch: `logProb` and `entropy` return [B], the value at each
 * row's last position (the step the row scores). `act` is the DT's own (windows in, last step out).
 * `dispose` disposes the DT.
 */
export function dtPolicy(dt: DecisionTransformer, opts: DtPolicyOptions = {}): Policy<DtBatch, DtBatch, Float32Array> {
  const last = (x: tf.Tensor2D, b: DtBatch): tf.Tensor1D => tf.reshape(tf.slice(x, [0, b.length - 1], [b.batchSize, 1]), [b.batchSize]);
  const defaultRng = opts.rng ?? new Rng(0, 'dt-entropy');
  return {
    get variables() {
      return dt.variables;
    },
    logProb: (b: DtBatch) => last(dt.actionLogProb(b), b),
    entropy: (b: DtBatch, rng?: Rng) => last(dt.entropy(b, rng ?? defaultRng, opts.entropySamples ?? 1), b),
    act: (b: DtBatch, rng: Rng, o?: ActOptions): ActResult<Float32Array> => dt.act(b, rng, o),
    dispose: () => dt.dispose(),
  };
}

/** Step `step` of `trajectory`: 0 ≤ step ≤ T, where step T is the state after its last action. */
export interface TrajectoryStep {
  readonly trajectory: Trajectory;
  readonly step: number;
}

export interface DtWindowOptions extends DtBatchOptions {
  /** Timesteps above this are fed as this (the DT's maxEpisodeSteps − 1: the state after a time-limit cut). Default: none. */
  readonly maxTimestep?: number;
}

/**
 * The context the DT acts from at each given step, one row per entry: the steps
 * max(0, step − K + 1) … step of that trajectory, left-padded (mask 0) — what `dtActor` fed when
 * it chose the action at `step`, and what `dtBatchOf`'s row of that step holds. `step` may be T,
 * the state after the last action (where the next action would be chosen): its return-to-go is
 * the last target minus the last reward (the actor's R̂_{t+1} = R̂_t − r_t, up to float rounding),
 * its timestep the last one plus 1, its action slot zeros. The action slot of the last position
 * never moves the prediction read there (causal attention: the state token comes first), so a row
 * serves for sampling a new action at `step` whatever that slot holds.
 *
 * @param rows trajectory steps (trajectories with `targets` and continuous actions)
 * @param opts K, rtgScale and stateNorm as `dtBatchOf`, plus `maxTimestep`
 * @returns a `DtBatch` of rows.length rows of length K
 * @example
 * const next = dtStepWindows(picks.map((p) => ({ trajectory: trs[p.index]!, step: p.start + 1 })), { K: 5, rtgScale: 1e-3, stateNorm });
 * const { action } = dt.act(next, rng, { deterministic: true }); // tanh μ at each s_{t+1}
 */
export function dtStepWindows(rows: readonly TrajectoryStep[], opts: DtWindowOptions): DtBatch {
  const { K } = opts;
  if (!Number.isInteger(K) || K < 1) throw new RangeError(`dtStepWindows: K: expected a positive integer, got ${K}`);
  const scale = opts.rtgScale ?? 1;
  const maxT = opts.maxTimestep ?? Number.POSITIVE_INFINITY;
  const first = rows[0]?.trajectory;
  const S = first?.obsDim ?? 0;
  const A = first?.actDim ?? 0;
  const B = rows.length;
  const states = new Float32Array(B * K * S);
  const actions = new Float32Array(B * K * A);
  const returnsToGo = new Float32Array(B * K);
  const timesteps = new Int32Array(B * K);
  const mask = new Float32Array(B * K);
  const tmp = new Float64Array(S);
  rows.forEach(({ trajectory: tr, step }, r) => {
    const where = `dtStepWindows: row ${r} (group ${tr.groupId}, step ${step})`;
    if (tr.obsDim !== S || tr.actDim !== A) throw new TypeError(`${where} has obsDim ${tr.obsDim} / actDim ${tr.actDim}, the first row's ${S} / ${A}`);
    if (!(tr.actions instanceof Float32Array)) throw new TypeError(`${where}: discrete actions; a Decision Transformer needs continuous ones`);
    if (!tr.targets) throw new TypeError(`${where}: the trajectory has no targets (the returns-to-go the DT acted on)`);
    const T = tr.length;
    if (!Number.isInteger(step) || step < 0 || step > T || (step === T && T === 0))
      throw new RangeError(`${where}: step outside [0, ${T}] of a trajectory of length ${T}`);
    if (tr.observations.length < (step + 1) * S) throw new RangeError(`${where}: the trajectory has no observation at that step`);
    const n = Math.min(K, step + 1);
    const from = step + 1 - n;
    const k0 = r * K + (K - n);
    for (let j = 0; j < n; j++) {
      const u = from + j;
      const k = k0 + j;
      states.set(normalizeState(tr.observations.subarray(u * S, (u + 1) * S), opts.stateNorm, tmp), k * S);
      if (u < T) {
        actions.set(tr.actions.subarray(u * A, (u + 1) * A), k * A);
        returnsToGo[k] = tr.targets[u]! * scale;
        timesteps[k] = Math.min(tr.timesteps ? tr.timesteps[u]! : u, maxT);
      } else {
        returnsToGo[k] = Math.fround(tr.targets[T - 1]! - tr.rewards[T - 1]!) * scale;
        timesteps[k] = Math.min((tr.timesteps ? tr.timesteps[T - 1]! : T - 1) + 1, maxT);
      }
      mask[k] = 1;
    }
  });
  return { batchSize: B, length: K, states, actions, returnsToGo, timesteps, mask };
}

/**
 * `dtBatchOf` for trajectories of at most K steps, in one row per trajectory instead of one per
 * step: row i is the window of trajectory i's last step, and each of its steps is read at its own
 * position (causal attention: position j sees the steps ≤ j, exactly its own `dtBatchOf` window, up
 * to float summation order). `dtWindowPolicy` reads the per-step values back in trajectory order.
 * QGRPO's groups are such trajectories: a context window whose last step is the scored action.
 *
 * @param trajectories each of 1 … K steps, with `targets`
 * @param opts K, rtgScale, stateNorm (as `dtBatchOf`)
 * @returns a `DtBatch` of trajectories.length rows
 * @example
 * const learner = { policy: dtWindowPolicy(dt), optimizer, version: 0, batchOf: (trs) => dtWindowBatchOf(trs, { K: 5, rtgScale: 1e-3, stateNorm }) };
 */
export function dtWindowBatchOf(trajectories: readonly Trajectory[], opts: DtBatchOptions): DtBatch {
  return dtStepWindows(
    trajectories.map((trajectory) => {
      if (trajectory.length < 1 || trajectory.length > opts.K) {
        throw new RangeError(`dtWindowBatchOf: trajectory of group ${trajectory.groupId} has ${trajectory.length} steps; expected 1 … K = ${opts.K}`);
      }
      return { trajectory, step: trajectory.length - 1 };
    }),
    opts,
  );
}

/**
 * A `Policy` over a `dtWindowBatchOf` batch: `logProb` and `entropy` return [Σ_i T_i], each row's
 * real (mask 1) positions in order — every trajectory's per-step values, as `dtPolicy` gives them
 * for `dtBatchOf`. `act` is the DT's own; `dispose` disposes the DT.
 *
 * @param dt the Decision Transformer
 * @param opts the entropy estimate's noise stream and sample count
 * @returns the policy
 * @example
 * const policy = dtWindowPolicy(dt, { rng: new Rng(seed, 'policyUpdate/entropy') });
 */
export function dtWindowPolicy(dt: DecisionTransformer, opts: DtPolicyOptions = {}): Policy<DtBatch, DtBatch, Float32Array> {
  const real = (x: tf.Tensor2D, b: DtBatch): tf.Tensor1D => {
    const flat = tf.reshape(x, [-1]) as tf.Tensor1D;
    const idx: number[] = [];
    for (let k = 0; k < b.mask.length; k++) if (b.mask[k] !== 0) idx.push(k);
    return idx.length === b.mask.length ? flat : tf.gather(flat, tf.tensor1d(idx, 'int32'));
  };
  const defaultRng = opts.rng ?? new Rng(0, 'dt-entropy');
  return {
    get variables() {
      return dt.variables;
    },
    logProb: (b: DtBatch) => real(dt.actionLogProb(b), b),
    entropy: (b: DtBatch, rng?: Rng) => real(dt.entropy(b, rng ?? defaultRng, opts.entropySamples ?? 1), b),
    act: (b: DtBatch, rng: Rng, o?: ActOptions): ActResult<Float32Array> => dt.act(b, rng, o),
    dispose: () => dt.dispose(),
  };
}
