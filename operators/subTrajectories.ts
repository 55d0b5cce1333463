// `subTrajectories`: sub-trajectory rollouts from reset points — documented on the exported `subTrajectories` (hover it).
import { map, type OperatorFunction } from 'rxjs';
import type { Batch, Group, SnapshotStart, Trajectory } from '../lib/data.ts';
import type { Env } from '../lib/envs/types.ts';
import { rollout, type RolloutConfig, type StartsBatch } from './rollout.ts';
import { moments } from '../lib/stats.ts';

export interface SubTrajectoriesConfig extends Omit<RolloutConfig, 'maxSteps' | 'tail'> {
  /** L: on-policy steps per sub-trajectory. */
  length: number;
  /** H: mean-action steps that score it. */
  horizon: number;
}

/**
 * `returns`' bootstrap for sub-trajectories: the mean-action tail's summed reward. That sum is
 * undiscounted, so it is only consistent with γ = 1: with γ < 1 it would weigh all H tail rewards
 * as if they arrived at step L. A sub-trajectory (one that carries `tail_return`) with γ < 1 is
 * therefore refused.
 */
export const tailBootstrap = (t: Trajectory, gamma = 1): number => {
  const tail = t.scores?.['tail_return'];
  if (tail === undefined) return 0;
  if (gamma !== 1) {
    throw new RangeError(
      `returns: the tail_return of sub-trajectory group ${t.groupId} is an undiscounted sum; use gamma 1 with sub-trajectories (got gamma ${gamma})`,
    );
  }
  return tail;
};

/** Snapshot starts every `every` steps along `trajectory` (t = every, 2·every, … < T), by replay. */
export function resetPoints(env: Env, trajectory: Trajectory, every: number): SnapshotStart[] {
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`resetPoints: every: expected a positive integer, got ${every}`);
  const { start, obsDim, actDim } = trajectory;
  let t0 = 0;
  if (start.kind === 'seed') {
    if (start.envId !== env.id) throw new Error(`resetPoints: trajectory of ${start.envId} replayed on ${env.id}`);
    env.reset(start.seed);
  } else if (start.kind === 'snapshot') {
    env.restore(start.snapshot);
    t0 = start.t;
  } else {
    throw new Error('resetPoints: a prompt start has no env state to replay');
  }
  const out: SnapshotStart[] = [];
  const discrete = trajectory.actions instanceof Int32Array;
  for (let t = 0; t < trajectory.length; t++) {
    if (t > 0 && t % every === 0) {
      out.push({ kind: 'snapshot', snapshot: env.snapshot(), observation: trajectory.observations.slice(t * obsDim, (t + 1) * obsDim), t: t0 + t });
    }
    const action = discrete ? trajectory.actions[t]! : trajectory.actions.subarray(t * actDim, (t + 1) * actDim);
    const r = env.step(action as number | Float32Array);
    for (let k = 0; k < obsDim; k++) {
      if (r.observation[k] !== trajectory.observations[(t + 1) * obsDim + k]) {
        throw new Error(
          `resetPoints: replaying group ${trajectory.groupId} diverged at step ${t + 1} (observation[${k}] ${r.observation[k]} ≠ recorded ${trajectory.observations[(t + 1) * obsDim + k]}); the env or the recorded actions are not deterministic`,
        );
      }
    }
    if (r.terminated || r.truncated) break;
  }
  return out;
}

/** A dataset episode with the simulator state of each row (D4RL's `infos/qpos`, `infos/qvel`). */
export interface RecordedEpisode {
  readonly length: number;
  readonly observations: Float32Array;
  readonly actions: Float32Array;
  readonly qpos: Float64Array;
  readonly qvel: Float64Array;
}

/**
 * Snapshot starts every `every` steps along a dataset episode, from its recorded qpos/qvel (a
 * MuJoCo snapshot `[time, qpos, qvel, …]` of `env` with those two written in, the rest as after a
 * reset). Each point is checked to reproduce: restored, stepped with the recorded action, its next
 * observation must match the recorded one within `tol` (absolute, per value); a mismatch (another
 * env's data, a different model) is an error naming `label`. `env` is left in an arbitrary state.
 */
export function datasetResetPoints(env: Env, episode: RecordedEpisode, every: number, label: string, tol = 1e-2): SnapshotStart[] {
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`datasetResetPoints: every: expected a positive integer, got ${every}`);
  const T = episode.length;
  const obsDim = episode.observations.length / T;
  const actDim = episode.actions.length / T;
  const nq = episode.qpos.length / T;
  const nv = episode.qvel.length / T;
  if (obsDim !== env.observationSpace.shape.reduce((a, b) => a * b, 1)) {
    throw new Error(`${label}: observations of size ${obsDim}, but ${env.id} observes ${env.observationSpace.shape.join('×')}`);
  }
  env.reset(0);
  const template = env.snapshot();
  if (template.state.length < 1 + nq + nv) throw new Error(`${label}: ${env.id} has no qpos(${nq})/qvel(${nv}) state to reset to`);
  const out: SnapshotStart[] = [];
  for (let t = every; t < T - 1; t += every) {
    const state = Float64Array.from(template.state);
    state.set(episode.qpos.subarray(t * nq, (t + 1) * nq), 1);
    state.set(episode.qvel.subarray(t * nv, (t + 1) * nv), 1 + nq);
    const snapshot = { ...template, state, elapsedSteps: t, done: false };
    env.restore(snapshot);
    const r = env.step(episode.actions.subarray(t * actDim, (t + 1) * actDim));
    for (let k = 0; k < obsDim; k++) {
      const want = episode.observations[(t + 1) * obsDim + k]!;
      if (!(Math.abs(r.observation[k]! - want) <= tol * Math.max(1, Math.abs(want)))) {
        throw new Error(
          `${label}: the reset point at step ${t} does not reproduce on ${env.id} (next observation[${k}] ${r.observation[k]} ≠ recorded ${want}); the dataset is of another env or model`,
        );
      }
    }
    out.push({ kind: 'snapshot', snapshot, observation: episode.observations.slice(t * obsDim, (t + 1) * obsDim), t });
  }
  return out;
}

/**
 * `subTrajectories` — sub-trajectory optimisation from reset points along trajectories.
 *
 * Instead of whole episodes, a group is G rollouts of length L from one *reset state* taken from
 * the middle of an earlier trajectory: the G copies act on-policy for L steps (these actions, with
 * their behaviour log-probs, are what the update trains on), then each follows the policy's mean
 * action for H more steps, whose summed reward scores the sub-trajectory:
 *
 *   score_i = Σ_{t<L} r_t  +  tail_i,    tail_i = Σ_{L≤t<L+H} r_t  (mean actions; 0 if the episode ended)
 *
 * `returns({ bootstrap: tailBootstrap })` folds tail_i into the returns (γ = 1 only: tail_i is
 * undiscounted, so `returns` with γ < 1 refuses sub-trajectories), and
 * `groupAdvantages({ outcome: 'first-step-return' })` ranks the G sub-trajectories by that score
 * (the default outcome, the summed reward, would ignore the tail). Short groups give many more independent comparisons per env
 * step than whole episodes, and the joint likelihood ratio over L steps (`policyUpdate`'s
 * `ratioLevel: 'subtrajectory'`) matches the unit that was scored.
 *
 * Reset points come from `resetPoints(env, trajectory, every)`: the env is deterministic given its
 * start and the actions, so replaying a trajectory's recorded actions reproduces its states; every
 * `every` steps the state is snapshotted (and the replayed observation is checked against the
 * recorded one, bit for bit, so a non-deterministic env is an error, not silent drift).
 *
 * In: `StartsBatch` of snapshot starts (from a pool, e.g. through `activeSampling`); out:
 * `Batch<Group>` of G sub-trajectories per start. Emits `rollout/*`, `subtraj/tail_return`.
 *
 * @param cfg `rollout`'s env, actor and `Rng`, plus L = `length` and H = `horizon` (fields described on {@link SubTrajectoriesConfig}).
 * @returns An operator from a `StartsBatch` of snapshot starts to a `Batch<Group>` of G sub-trajectories per start, each with `scores.tail_return`.
 * @example
 * ```ts
 * const pool = trajectories.flatMap((t) => resetPoints(env, t, 25));
 * picks$.pipe(
 *   subTrajectories({ venv, actor, rng, length: 20, horizon: 50 }),
 *   returns({ bootstrap: tailBootstrap }),
 *   groupAdvantages({ outcome: 'first-step-return' }),
 * );
 * ```
 */
export function subTrajectories(cfg: SubTrajectoriesConfig): OperatorFunction<StartsBatch, Batch<Group>> {
  if (!Number.isInteger(cfg.length) || cfg.length < 1) throw new RangeError(`subTrajectories: length: expected a positive integer, got ${cfg.length}`);
  if (!Number.isInteger(cfg.horizon) || cfg.horizon < 0) throw new RangeError(`subTrajectories: horizon: expected a non-negative integer, got ${cfg.horizon}`);
  const roll = rollout({ ...cfg, maxSteps: cfg.length, tail: { steps: cfg.horizon } });
  return (source) =>
    source.pipe(
      roll,
      map((b) => {
        const tails = b.groups.flatMap((g) => g.trajectories.map((t) => tailBootstrap(t)));
        return { ...b, metrics: { ...b.metrics, 'subtraj/tail_return': moments(tails).mean } };
      }),
    );
}
