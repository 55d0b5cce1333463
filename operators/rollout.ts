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
 * ```ts
 * const venv = await makeVectorEnv('CartPole-v1', 8, {}, { autoreset: 'disabled' });
 * const actor = policyActor(policy, () => learner.version);
 * starts$.pipe(rollout({ venv, actor, rng: streams.get('action') }), returns(), ...);
 * ```
 */
import { concatMap, defer, of, type OperatorFunction } from 'rxjs';
import type { Batch, Group, Start, Trajectory } from '../lib/data.ts';
import type { Rng } from '../lib/random.ts';
import type { VectorEnv } from '../lib/envs/vector.ts';
import type { Policy } from '../lib/models/policy.ts';
import type { DecisionTransformer } from '../lib/models/decision-transformer.ts';
import { DtHistory, selectDtActions } from '../lib/models/generate.ts';

/** What acts in the env: G observations in, G actions and behaviour log-probs out. */
export interface Actor {
  /** The version of the policy that acts now (stamped on every trajectory). */
  version(): number;
  /** Called once per group before the first step (a DT clears its context, sets its target). */
  begin?(n: number, start: Start): void;
  /** Actions for the `n` rows of `observations` (n × obsDim); the policy's mode if `deterministic`. */
  act(observations: Float32Array, n: number, rng: Rng, deterministic?: boolean): { action: Int32Array | Float32Array; logProb: Float32Array };
  /** Return-conditioned actors: the targets they were conditioned on at this step (n values). */
  targets?(): Float32Array;
  /** Called after each step with the rewards the n rows received (a DT lowers its target). */
  observe?(rewards: Float64Array, observations: Float32Array): void;
}

/** An `Actor` over a plain policy acting on the current observation alone (its mode if `deterministic`). */
export function policyActor<B>(
  policy: Pick<Policy<B, Float32Array, Int32Array | Float32Array>, 'act'>,
  version: () => number,
  deterministic = false,
): Actor {
  return { version, act: (obs, _n, rng, det) => policy.act(obs, rng, { deterministic: det ?? deterministic }) };
}

/**
 * An `Actor` over a Decision Transformer, conditioned on a return-to-go target (ODT's acting):
 * each row starts a group with R̂_0 = `targetReturn`, sees the last K (R̂·scale, s, a) steps, and
 * after each step lowers its target by the reward received, R̂_{t+1} = R̂_t − r_t. The targets
 * the rows acted on are what `targets()` reports, so trajectories carry the *intended*
 * returns-to-go (never the achieved ones, unless a pipeline relabels them explicitly).
 */
export function dtActor(
  dt: DecisionTransformer,
  cfg: {
    /** R̂_0 of a group; a function of the start lets a mid-episode snapshot start use its remaining target. */
    targetReturn: number | ((start: Start) => number);
    scale?: number;
    contextLength?: number;
    version: () => number;
  },
): Actor {
  const scale = cfg.scale ?? 1;
  let histories: DtHistory[] = [];
  let rtg = new Float64Array(0);
  return {
    version: cfg.version,
    begin(n, start) {
      // Timesteps continue from a snapshot start's env time, as the trajectory's `timesteps` do.
      const t0 = start.kind === 'snapshot' ? start.t : 0;
      histories = Array.from({ length: n }, () => new DtHistory(dt.stateDim, dt.actDim, t0));
      rtg = new Float64Array(n).fill(typeof cfg.targetReturn === 'number' ? cfg.targetReturn : cfg.targetReturn(start));
    },
    act(observations, n, rng, deterministic) {
      if (histories.length !== n) throw new Error(`dtActor: begin(${n}) was not called for this group`);
      for (let i = 0; i < n; i++) histories[i]!.observe(observations.subarray(i * dt.stateDim, (i + 1) * dt.stateDim), rtg[i]! * scale);
      return selectDtActions(dt, histories, rng, { deterministic: deterministic ?? false, ...(cfg.contextLength ? { contextLength: cfg.contextLength } : {}) });
    },
    targets: () => Float32Array.from(rtg),
    observe(rewards) {
      for (let i = 0; i < rtg.length; i++) rtg[i] = rtg[i]! - rewards[i]!;
    },
  };
}

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
   * and costs go to `scores.tail_return` / `scores.tail_cost` (for `returns`' bootstrap), their
   * actions are not part of the trajectory. Used by sub-trajectory optimisation.
   */
  tail?: { steps: number };
}

/** Rolls out one group of G trajectories from `start`. */
export function rolloutGroup(cfg: RolloutConfig, start: Start, groupId: string): Group {
  const { venv, actor, rng } = cfg;
  const G = venv.numEnvs;
  if (venv.autoreset !== 'disabled') {
    throw new Error(`rollout: the VectorEnv must be built with autoreset 'disabled' (got '${venv.autoreset}')`);
  }
  const obsSpace = venv.observationSpace;
  const obsDim = obsSpace.shape.reduce((a, b) => a * b, 1);
  const discrete = venv.actionSpace.kind === 'discrete';
  const actDim = venv.actionSpace.kind === 'discrete' ? 1 : venv.actionSpace.shape.reduce((a, b) => a * b, 1);
  const limit = cfg.maxSteps ?? Number.POSITIVE_INFINITY;

  let obs: Float32Array;
  if (start.kind === 'seed') obs = venv.reset(new Array<number>(G).fill(start.seed)).observations;
  else if (start.kind === 'snapshot') {
    venv.restoreAll(start.snapshot, start.observation);
    obs = venv.observations;
  }
  else throw new Error(`rollout: a '${start.kind}' start needs a language-model rollout, not an env rollout`);

  actor.begin?.(G, start);
  const version = actor.version();
  const t0 = start.kind === 'snapshot' ? start.t : 0;
  const rows = Array.from({ length: G }, () => ({
    obs: [] as number[],
    act: [] as number[],
    logp: [] as number[],
    rew: [] as number[],
    cost: [] as number[],
    tgt: [] as number[],
    terminated: false,
    truncated: false,
    done: false,
  }));
  for (let i = 0; i < G; i++) for (let k = 0; k < obsDim; k++) rows[i]!.obs.push(obs[i * obsDim + k]!);

  let live = G;
  for (let step = 0; live > 0; step++) {
    const targets = actor.targets?.();
    const { action, logProb } = actor.act(obs, G, rng);
    const res = venv.step(action);
    actor.observe?.(res.rewards, res.observations);
    for (let i = 0; i < G; i++) {
      const row = rows[i]!;
      if (row.done) continue;
      for (let k = 0; k < actDim; k++) row.act.push(action[i * actDim + k]!);
      row.logp.push(logProb[i]!);
      row.rew.push(res.rewards[i]!);
      row.cost.push(res.costs[i]!);
      if (targets) row.tgt.push(targets[i]!);
      for (let k = 0; k < obsDim; k++) row.obs.push(res.observations[i * obsDim + k]!);
      if (res.terminated[i] || res.truncated[i] || step + 1 >= limit) {
        row.terminated = res.terminated[i] === 1;
        row.truncated = !row.terminated;
        row.done = true;
        live--;
      }
    }
    obs = res.observations;
  }

  const tailReturn = new Float64Array(G);
  const tailCost = new Float64Array(G);
  if (cfg.tail && cfg.tail.steps > 0) {
    // Rows cut by maxSteps (not ended by the env) continue with the actor's mode for H steps.
    const alive = new Uint8Array(G);
    for (let i = 0; i < G; i++) alive[i] = venv.active[i]!;
    for (let h = 0; h < cfg.tail.steps && alive.some((x) => x === 1); h++) {
      const { action } = actor.act(obs, G, rng, true);
      const res = venv.step(action);
      actor.observe?.(res.rewards, res.observations);
      for (let i = 0; i < G; i++) {
        if (!alive[i]) continue;
        tailReturn[i] = tailReturn[i]! + res.rewards[i]!;
        tailCost[i] = tailCost[i]! + res.costs[i]!;
        if (res.terminated[i] || res.truncated[i]) alive[i] = 0;
      }
      obs = res.observations;
    }
  }

  const trajectories: Trajectory[] = rows.map((row, i) => {
    const T = row.rew.length;
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
      groupId,
      start,
      timesteps: Int32Array.from({ length: T }, (_, i) => t0 + i),
    };
    const withTail = cfg.tail ? { ...tr, scores: { tail_return: tailReturn[i]!, tail_cost: tailCost[i]! } } : tr;
    return row.tgt.length > 0 ? { ...withTail, targets: Float32Array.from(row.tgt) } : withTail;
  });
  return { groupId, start, trajectories };
}

export function rollout(cfg: RolloutConfig): OperatorFunction<StartsBatch, Batch<Group>> {
  // concatMap: one iteration's rollouts finish before the next begins and — the env steps being
  // synchronous — before the batch is emitted downstream, so in an on-policy loop the next rollout
  // starts only after the update of the previous batch has run.
  return concatMap((sb) => defer(() => of(rolloutBatch(cfg, sb))));
}

function rolloutBatch(cfg: RolloutConfig, sb: StartsBatch): Batch<Group> {
  const groups = sb.starts.map((s, j) => rolloutGroup(cfg, s, `${sb.iteration}/${j}`));
  let steps = 0;
  for (const g of groups) for (const t of g.trajectories) steps += t.length;
  return {
    iteration: sb.iteration,
    groups,
    metrics: {
      ...sb.metrics,
      'rollout/env_steps': steps,
      'rollout/episodes': groups.length * cfg.venv.numEnvs,
      policy_version: cfg.actor.version(),
    },
  };
}
