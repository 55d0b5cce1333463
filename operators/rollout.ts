// `rollout`: starts → groups of G trajectories from one start — documented on the exported `rollout` (hover it).
import { concatMap, defer, of, type OperatorFunction } from 'rxjs';
import type { Batch, Group, SnapshotStart, Start, Trajectory } from '../lib/data.ts';
import type { Rng } from '../lib/random.ts';
import type { VectorEnv } from '../lib/envs/vector.ts';
import { spaceSize } from '../lib/envs/types.ts';
import type { Actor } from '../lib/actor.ts';
import { runEpisodes } from '../lib/episodes.ts';

/** One iteration's starts (and metrics of how they were chosen, e.g. by `activeSampling`). */
export interface StartsBatch {
  readonly iteration: number;
  readonly starts: readonly Start[];
  readonly metrics?: Readonly<Record<string, number>>;
}

export interface RolloutConfig {
  /** G copies stepping in lockstep; their count is the group size. */
  venv: VectorEnv;
  actor: Actor;
  /** Generator for action sampling (the `action` stream of the run's `RngStreams`). */
  rng: Rng;
  /** Cut trajectories at this many steps (sets `truncated`). Default: the env's time limit. */
  maxSteps?: number;
  /**
   * Score a cut trajectory by following the actor's mode for H more steps: their summed rewards
   * and costs go to `scores.tail_return` / `scores.tail_cost` (for `returns`' bootstrap), their count to `scores.tail_steps`, their
   * actions are not part of the trajectory. Used by sub-trajectory optimisation.
   */
  tail?: { steps: number };
  /**
   * G when the vector holds several groups: the starts of an iteration step together, M = numEnvs / G
   * of them per batch (one actor call per env step for all M·G rows; the actor needs `beginRows`).
   * Default: numEnvs (one group at a time).
   */
  groupSize?: number;
}

/** Rolls out one group of G trajectories from `start`. */
export function rolloutGroup(cfg: RolloutConfig, start: Start, groupId: string): Group {
  return rolloutGroups(cfg, [start], [groupId])[0]!;
}

/** Where a snapshot start cannot be used: another env's state, or an ended episode. */
function checkStart(venv: VectorEnv, start: Start, groupId: string): void {
  if (start.kind === 'seed' && start.envId !== venv.id) throw new Error(`rollout: group ${groupId}: a reset seed of ${start.envId}, but the env is ${venv.id}`);
  if (start.kind === 'snapshot') {
    if (start.snapshot.id !== venv.id) throw new Error(`rollout: group ${groupId}: a reset point of ${start.snapshot.id}, but the env is ${venv.id}`);
    if (start.snapshot.done) throw new Error(`rollout: group ${groupId}: the reset point is the state of an ended episode`);
    if (start.observation.length !== venv.obsDim) {
      throw new Error(`rollout: group ${groupId}: the reset point's observation has ${start.observation.length} values, the env's ${venv.obsDim}`);
    }
  }
  if (start.kind === 'prompt') throw new Error(`rollout: a '${start.kind}' start needs a language-model rollout, not an env rollout`);
}

/**
 * Rolls out M groups of G = numEnvs / M trajectories, one per start, all M·G rows stepped together
 * (row i belongs to group ⌊i / G⌋).
 */
export function rolloutGroups(cfg: RolloutConfig, starts: readonly Start[], groupIds: readonly string[]): Group[] {
  const { venv, actor, rng } = cfg;
  const N = venv.numEnvs;
  const M = starts.length;
  if (M === 0 || N % M !== 0) throw new RangeError(`rollout: ${M} starts cannot share ${N} env copies evenly`);
  const G = N / M;
  if (venv.autoreset !== 'disabled') {
    throw new Error(`rollout: the VectorEnv must be built with autoreset 'disabled' (got '${venv.autoreset}')`);
  }
  starts.forEach((s, j) => checkStart(venv, s, groupIds[j]!));
  const obsDim = spaceSize(venv.observationSpace);
  const discrete = venv.actionSpace.kind === 'discrete';
  const actDim = spaceSize(venv.actionSpace);
  const rowStarts = Array.from({ length: N }, (_, i) => starts[Math.floor(i / G)]!);

  let obs: Float32Array;
  const first = starts[0]!;
  if (M === 1 && first.kind === 'seed') obs = venv.reset(new Array<number>(G).fill(first.seed)).observations;
  else if (M === 1 && first.kind === 'snapshot') {
    venv.restoreAll(first.snapshot, first.observation);
    obs = venv.observations;
  } else if (starts.every((s) => s.kind === 'seed')) {
    obs = venv.reset(rowStarts.map((s) => (s.kind === 'seed' ? s.seed : 0))).observations;
  } else if (starts.every((s) => s.kind === 'snapshot')) {
    const snaps = rowStarts.map((s) => (s as SnapshotStart).snapshot);
    const o = new Float32Array(N * obsDim);
    rowStarts.forEach((s, i) => o.set((s as SnapshotStart).observation, i * obsDim));
    venv.restoreRows(snaps, o);
    obs = venv.observations;
  } else throw new Error(`rollout: the starts of one batch must all be seeds or all snapshots (groups ${groupIds.join(', ')})`);

  if (M === 1) actor.begin?.(G, first);
  else if (actor.beginRows) actor.beginRows(rowStarts);
  else throw new Error('rollout: stepping several groups in one batch needs an actor with beginRows');
  const version = actor.version();
  const rows = Array.from({ length: N }, () => ({
    obs: [] as number[],
    act: [] as number[],
    logp: [] as number[],
    rew: [] as number[],
    cost: [] as number[],
    tgt: [] as number[],
    terminated: false,
    truncated: false,
  }));
  for (let i = 0; i < N; i++) for (let k = 0; k < obsDim; k++) rows[i]!.obs.push(obs[i * obsDim + k]!);

  obs = runEpisodes(venv, actor, rng, obs, cfg.maxSteps === undefined ? {} : { maxSteps: cfg.maxSteps }, (i, s, ended) => {
    const row = rows[i]!;
    for (let k = 0; k < actDim; k++) row.act.push(s.action[i * actDim + k]!);
    row.logp.push(s.logProb[i]!);
    row.rew.push(s.result.rewards[i]!);
    row.cost.push(s.result.costs[i]!);
    if (s.targets) row.tgt.push(s.targets[i]!);
    for (let k = 0; k < obsDim; k++) row.obs.push(s.result.observations[i * obsDim + k]!);
    if (ended) {
      row.terminated = s.result.terminated[i] === 1;
      row.truncated = !row.terminated;
    }
  });

  const tailReturn = new Float64Array(N);
  const tailCost = new Float64Array(N);
  const tailSteps = new Float64Array(N);
  if (cfg.tail && cfg.tail.steps > 0) {
    // Rows cut by maxSteps (not ended by the env) continue with the actor's mode for H steps.
    const live = Uint8Array.from(venv.active);
    runEpisodes(venv, actor, rng, obs, { maxSteps: cfg.tail.steps, deterministic: true, live }, (i, s) => {
      tailReturn[i] = tailReturn[i]! + s.result.rewards[i]!;
      tailCost[i] = tailCost[i]! + s.result.costs[i]!;
      tailSteps[i] = tailSteps[i]! + 1;
    });
  }

  const trajectories: Trajectory[] = rows.map((row, i) => {
    const T = row.rew.length;
    const start = rowStarts[i]!;
    const t0 = start.kind === 'snapshot' ? start.t : 0;
    const tr: Trajectory = {
      length: T,
      obsDim,
      actDim,
      observations: Float32Array.from(row.obs),
      actions: discrete ? Int32Array.from(row.act) : Float32Array.from(row.act),
      logProbs: Float32Array.from(row.logp),
      rewards: Float32Array.from(row.rew),
      costs: Float32Array.from(row.cost),
      terminated: row.terminated,
      truncated: row.truncated,
      policyVersion: version,
      groupId: groupIds[Math.floor(i / G)]!,
      start,
      timesteps: Int32Array.from({ length: T }, (_, i) => t0 + i),
    };
    const withTail = cfg.tail ? { ...tr, scores: { tail_return: tailReturn[i]!, tail_cost: tailCost[i]!, tail_steps: tailSteps[i]! } } : tr;
    return row.tgt.length > 0 ? { ...withTail, targets: Float32Array.from(row.tgt) } : withTail;
  });
  return starts.map((start, j) => ({ groupId: groupIds[j]!, start, trajectories: trajectories.slice(j * G, (j + 1) * G) }));
}

/**
 * `rollout` — a stream of starts → groups of G trajectories from the same start, vectorised.
 *
 * In: `StartsBatch` = `{ iteration, starts }`, one per iteration; out: `Batch<Group>` with one
 * group per start. For each start the G copies of a `VectorEnv` (autoreset disabled) are put in
 * the same state — `reset(seed)` on every copy for a seed start, `restoreAll(snapshot)` for a
 * snapshot start — and then stepped together: the actor sees the G current observations, returns
 * G actions and their behaviour log-probabilities log π_θold(a_t | ·), and the copies advance
 * until each one terminates, truncates (env time limit) or reaches `maxSteps`. The only
 * randomness that makes the G trajectories differ is the actor's sampling (and the env's, if any),
 * which is what GRPO's group baseline needs.
 *
 * Each trajectory records observations (T + 1 rows), actions, behaviour log-probs, rewards, costs,
 * the flags, the policy version that acted and — for return-conditioned actors — the intended
 * return-to-go targets the actor was conditioned on (`Actor.targets`), which nothing downstream
 * rewrites unless the pipeline uses `hindsightRelabel`.
 * Emits `rollout/env_steps`, `rollout/episodes`, `policy_version`.
 *
 * @param cfg The G-copy `VectorEnv` (autoreset `'disabled'`), the `Actor`, the action `Rng` and the optional `maxSteps` (fields described on {@link RolloutConfig}).
 * @returns An operator from each `StartsBatch` to a `Batch<Group>` with one group of G trajectories per start and the rollout metrics added.
 * @example
 * ```ts
 * const venv = await makeVectorEnv('CartPole-v1', 8, {}, { autoreset: 'disabled' });
 * const actor = policyActor(policy, () => learner.version);
 * starts$.pipe(rollout({ venv, actor, rng: streams.get('action') }), returns(), groupAdvantages());
 * ```
 */
export function rollout(cfg: RolloutConfig): OperatorFunction<StartsBatch, Batch<Group>> {
  // concatMap: one iteration's rollouts finish before the next begins and — the env steps being
  // synchronous — before the batch is emitted downstream, so in an on-policy loop the next rollout
  // starts only after the update of the previous batch has run.
  return concatMap((sb) => defer(() => of(rolloutBatch(cfg, sb))));
}

function rolloutBatch(cfg: RolloutConfig, sb: StartsBatch): Batch<Group> {
  const G = cfg.groupSize ?? cfg.venv.numEnvs;
  const M = cfg.venv.numEnvs / G;
  if (!Number.isInteger(M) || M < 1) throw new RangeError(`rollout: groupSize ${G} does not divide the ${cfg.venv.numEnvs} env copies`);
  if (sb.starts.length % M !== 0)
    throw new RangeError(`rollout: ${sb.starts.length} starts do not fill batches of ${M} groups (${cfg.venv.numEnvs} copies / G ${G})`);
  const groups: Group[] = [];
  for (let j = 0; j < sb.starts.length; j += M) {
    const chunk = sb.starts.slice(j, j + M);
    groups.push(
      ...rolloutGroups(
        cfg,
        chunk,
        chunk.map((_, k) => `${sb.iteration}/${j + k}`),
      ),
    );
  }
  let steps = 0;
  for (const g of groups) for (const t of g.trajectories) steps += t.length;
  return {
    iteration: sb.iteration,
    groups,
    metrics: {
      ...sb.metrics,
      'rollout/env_steps': steps,
      'rollout/episodes': groups.length * (cfg.groupSize ?? cfg.venv.numEnvs),
      policy_version: cfg.actor.version(),
    },
  };
}
