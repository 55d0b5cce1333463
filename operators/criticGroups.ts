// `criticGroups`: QGRPO's groups — G actions at visited states scored by a critic — documented on the exported `criticGroups` (hover it).
import * as tf from '@tensorflow/tfjs-core';
import { map, type OperatorFunction } from 'rxjs';
import type { Batch, ScoredGroup, ScoredTrajectory } from '../lib/data.ts';
import { sampleTanhGaussian } from '../lib/models/decision-transformer.ts';
import { dtStepWindows, normalizeState } from '../lib/models/dt-batch.ts';
import { meanStd } from '../lib/stats.ts';
import type { Rng } from '../lib/random.ts';
import type { DtCriticLearner } from './dtCriticUpdate.ts';

/** Which critic value scores an action. */
export type CriticScore = 'min' | 'q1';

export interface CriticGroupsConfig {
  /** M: visited states per batch (distinct steps when the batch has that many). */
  count: number;
  /** G: actions sampled from the DT at each state. */
  groupSize: number;
  /** `min`: min(Q_θ1, Q_θ2) (TD3's pessimistic value); `q1`: Q_θ1 (what TD3's actor ascends). */
  score: CriticScore;
  /** The draws of the states and of the actions. */
  rng: Rng;
  /** The policy version the actions are sampled with (the trajectories' `policyVersion`). */
  version: () => number;
}

/**
 * R_i of a `criticGroups` trajectory: its critic score `scores.q` — the `outcome` to give
 * `groupAdvantages`. A trajectory without one (not from `criticGroups`) is an error naming its group.
 *
 * @param tr a scored trajectory from `criticGroups`
 * @returns its score Q(s, a_i)
 * @example
 * groups$.pipe(groupAdvantages({ outcome: criticOutcome }));
 */
export function criticOutcome(tr: ScoredTrajectory): number {
  const q = tr.scores?.['q'];
  if (q === undefined)
    throw new RangeError(`criticOutcome: trajectory of group ${tr.groupId} has no critic score (scores.q); it did not come from criticGroups`);
  return q;
}

/**
 * `criticGroups` — QGRPO's groups: GRPO's group of G outcomes from one start, where the start is a
 * state the DT visited and each outcome is a critic's value of one action sampled there, so that
 * no simulator state is ever restored.
 *
 * In: `Batch<ScoredGroup>` of on-policy trajectories of a Decision Transformer (with their intended
 * returns-to-go); out: `Batch<ScoredGroup>` of M groups of G one-action trajectories. Per batch:
 *
 *   1. M steps (b, t) drawn uniformly without replacement over every step of the batch (with
 *      replacement when it has fewer than M): states from the current policy's visitation;
 *   2. at each, the DT's acting context c = (R̂, s, a) of steps t − K + 1 … t (`dtStepWindows`:
 *      the intended returns-to-go the DT acted on, never relabeled), one batched forward for μ, σ;
 *   3. G actions a_i = tanh(μ + σ ε_i) with their log π_θ(a_i | c) (the behaviour log-probs of the
 *      ratio; the actions come from the current DT, so the first ratio is 1);
 *   4. Q_i = min(Q_θ1(ŝ_t, a_i), Q_θ2(ŝ_t, a_i)) (or Q_θ1) from `learner.critic`.
 *
 * Trajectory i of group m is the context window with a_i in the last action slot: its steps are
 * the window's (≤ K), `mask` 1 only on the last (the context's steps count nowhere in
 * `policyUpdate`), `logProbs` log π_θ(a_i | c) there, rewards 0, `targets` and `timesteps` the
 * window's, `scores` { q: Q_i, q1, q2 }; its observation after the last step repeats s_t (no env
 * step was taken with a_i). `dtWindowBatchOf` / `dtWindowPolicy` batch them as one row each.
 * `groupAdvantages({ outcome: criticOutcome })` then gives A_i from Q_1 … Q_G.
 *
 * Emits `qgrpo/states` (M), `qgrpo/q_mean` (mean Q_i over every action), `qgrpo/q_std` (mean over
 * groups of the population std of Q within a group: the signal the advantages are made of).
 *
 * @param learner The critic side ({@link DtCriticLearner}: its DT samples the actions, its critic scores them, its `window` builds the contexts); read only here.
 * @param cfg M = `count`, G = `groupSize`, the `score`, the `rng` and the policy `version` (fields described on {@link CriticGroupsConfig}).
 * @returns An operator from a batch of DT trajectories to a batch of M critic-scored groups of G.
 * @throws RangeError for a bad count or group size; as a stream error, a batch with no steps.
 * @example
 * ```ts
 * episodes$.pipe(
 *   returns(), replayBuffer(critic.buffer), dtCriticUpdate(critic),
 *   criticGroups(critic, { count: 8, groupSize: 8, score: 'min', rng, version: () => learner.version }),
 *   groupAdvantages({ outcome: criticOutcome }),
 *   policyUpdate(learner), // batchOf: dtWindowBatchOf, policy: dtWindowPolicy
 * );
 * ```
 */
export function criticGroups(learner: DtCriticLearner, cfg: CriticGroupsConfig): OperatorFunction<Batch<ScoredGroup>, Batch<ScoredGroup>> {
  const M = cfg.count;
  const G = cfg.groupSize;
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`criticGroups: count: expected a positive integer, got ${M}`);
  if (!Number.isInteger(G) || G < 1) throw new RangeError(`criticGroups: groupSize: expected a positive integer, got ${G}`);
  if (cfg.score !== 'min' && cfg.score !== 'q1') throw new RangeError(`criticGroups: score: expected 'min' or 'q1', got ${String(cfg.score)}`);
  return map((batch) => {
    const { dt, critic, window } = learner;
    const S = dt.stateDim;
    const A = dt.actDim;
    const K = window.K;
    const trs = batch.groups.flatMap((g) => g.trajectories).filter((tr) => tr.length > 0);
    const offsets: number[] = [];
    let total = 0;
    for (const tr of trs) {
      offsets.push(total);
      total += tr.length;
    }
    if (total === 0) throw new RangeError(`criticGroups: batch ${batch.iteration} has no steps to score actions at`);
    // 1. M steps: a partial Fisher–Yates shuffle of the step indices (with replacement if too few).
    const picked: number[] = [];
    if (total >= M) {
      const idx = Int32Array.from({ length: total }, (_, k) => k);
      for (let k = 0; k < M; k++) {
        const j = k + cfg.rng.int(total - k);
        [idx[k], idx[j]] = [idx[j]!, idx[k]!];
        picked.push(idx[k]!);
      }
    } else for (let k = 0; k < M; k++) picked.push(cfg.rng.int(total));
    const at = picked.map((flat) => {
      let b = 0;
      while (b + 1 < trs.length && offsets[b + 1]! <= flat) b++;
      return { trajectory: trs[b]!, step: flat - offsets[b]! };
    });
    // 2–4. One forward for the M contexts, G samples each, one critic pass for the M·G pairs.
    const ctx = dtStepWindows(at, { ...window, maxTimestep: dt.maxEpisodeSteps - 1 });
    const [mean, logStd] = tf.tidy(() => {
      const d = dt.lastStepDist(ctx);
      return [d.mean.dataSync() as Float32Array, d.logStd.dataSync() as Float32Array];
    });
    const meanRep = new Float32Array(M * G * A);
    const logStdRep = new Float32Array(M * G * A);
    const states = new Float32Array(M * G * S);
    for (let m = 0; m < M; m++) {
      const { trajectory: tr, step } = at[m]!;
      const s = Float32Array.from(normalizeState(tr.observations.subarray(step * S, (step + 1) * S), window.stateNorm));
      for (let i = 0; i < G; i++) {
        const r = m * G + i;
        meanRep.set(mean.subarray(m * A, (m + 1) * A), r * A);
        logStdRep.set(logStd.subarray(m * A, (m + 1) * A), r * A);
        states.set(s, r * S);
      }
    }
    const { action, logProb } = sampleTanhGaussian(meanRep, logStdRep, M * G, A, cfg.rng);
    const [q1, q2] = tf.tidy(() => {
      const [a, b] = critic.both(tf.tensor2d(states, [M * G, S]), tf.tensor2d(action, [M * G, A]));
      return [a.dataSync() as Float32Array, b.dataSync() as Float32Array];
    });
    const version = cfg.version();
    const groups: ScoredGroup[] = at.map(({ trajectory: tr, step }, m) => {
      const n = Math.min(K, step + 1);
      const from = step + 1 - n;
      const observations = new Float32Array((n + 1) * S);
      observations.set(tr.observations.subarray(from * S, (step + 1) * S));
      observations.set(tr.observations.subarray(step * S, (step + 1) * S), n * S);
      const mask = new Float32Array(n);
      mask[n - 1] = 1;
      const targets = tr.targets!.slice(from, step + 1);
      const timesteps = tr.timesteps ? tr.timesteps.slice(from, step + 1) : Int32Array.from({ length: n }, (_, j) => from + j);
      const groupId = `${batch.iteration}/q${m}`;
      const trajectories = Array.from({ length: G }, (_, i): ScoredTrajectory => {
        const r = m * G + i;
        const actions = new Float32Array(n * A);
        actions.set((tr.actions as Float32Array).subarray(from * A, step * A));
        actions.set(action.subarray(r * A, (r + 1) * A), (n - 1) * A);
        const logProbs = new Float32Array(n);
        logProbs[n - 1] = logProb[r]!;
        const a = q1[r]!;
        const b = q2[r]!;
        return {
          length: n,
          obsDim: S,
          actDim: A,
          observations,
          actions,
          logProbs,
          rewards: new Float32Array(n),
          costs: new Float32Array(n),
          terminated: false,
          truncated: true,
          policyVersion: version,
          groupId,
          start: tr.start,
          targets,
          timesteps,
          mask,
          scores: { q: cfg.score === 'min' ? Math.min(a, b) : a, q1: a, q2: b },
          returns: new Float32Array(n),
          totalReward: 0,
          totalCost: 0,
        };
      });
      return { groupId, start: tr.start, trajectories };
    });
    const qs = groups.flatMap((g) => g.trajectories.map(criticOutcome));
    const within = groups.map((g) => meanStd(g.trajectories.map(criticOutcome), 0).std);
    return {
      ...batch,
      groups,
      metrics: {
        ...batch.metrics,
        'qgrpo/states': M,
        'qgrpo/q_mean': meanStd(qs, 0).mean,
        'qgrpo/q_std': meanStd(within, 0).mean,
      },
    };
  });
}
