// `collectTransitions`: off-policy collection of single-step transitions — documented on the exported `collectTransitions` (hover it).
import { concatMap, defer, of, type OperatorFunction } from 'rxjs';
import type { VectorEnv } from '../lib/envs/vector.ts';
import type { DeterministicActor } from '../lib/models/critic.ts';
import type { Rng } from '../lib/random.ts';
import type { Transitions } from '../lib/transitions.ts';
import type { Actor } from '../lib/actor.ts';

/** One iteration's new transitions plus the metrics the operators have added so far. */
export interface TransitionBatch {
  readonly iteration: number;
  readonly transitions: Transitions;
  readonly metrics: Readonly<Record<string, number>>;
}

/** What persists between iterations of a collector (plain data, checkpointable). */
export interface CollectorState {
  /** Transitions collected so far (decides the random warm-up). */
  envSteps: number;
  /** Episodes finished so far. */
  episodes: number;
  /** Running return and length of each copy's current episode. */
  episodeReturn: Float64Array;
  episodeLength: Int32Array;
  /** False until the first `reset`. */
  started: boolean;
}

/** A fresh collector state for `numEnvs` copies. */
export function collectorState(numEnvs: number): CollectorState {
  return { envSteps: 0, episodes: 0, episodeReturn: new Float64Array(numEnvs), episodeLength: new Int32Array(numEnvs), started: false };
}

/**
 * Uniform random actions in the box: a_{i,j} ~ U(low_j, high_j) (TD3's warm-up policy).
 *
 * @param n number of rows
 * @param low lower bounds, one per action dimension
 * @param high upper bounds
 * @param rng the action stream
 * @returns n · actDim actions, row-major
 * @example
 * const a = randomActions(4, [-2], [2], rng);   // Float32Array(4), each in [−2, 2)
 */
export function randomActions(n: number, low: ArrayLike<number>, high: ArrayLike<number>, rng: Rng): Float32Array {
  const A = low.length;
  const out = new Float32Array(n * A);
  for (let i = 0; i < n; i++) for (let j = 0; j < A; j++) out[i * A + j] = rng.uniform(low[j]!, high[j]!);
  // Float32 rounding can reach `high` exactly, which is still in the closed box.
  return out;
}

/**
 * Gaussian exploration around the deterministic action: a = clip(π_φ(s) + ε, low, high) with
 * ε ~ N(0, (σ · a_max)²), a_max = (high − low)/2 per dimension (TD3: σ = 0.1).
 *
 * @param actor the deterministic policy π_φ
 * @param obs n · obsDim observations
 * @param rng the action stream (n · actDim normal draws)
 * @param sigma σ, as a fraction of a_max; 0 gives π_φ(s)
 * @returns n · actDim actions inside the box
 * @example
 * const a = explorationActions(learner.actor, venv.observations, rng, 0.1);
 */
export function explorationActions(actor: DeterministicActor, obs: Float32Array, rng: Rng, sigma = 0.1): Float32Array {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new RangeError(`explorationActions: sigma must be a finite number >= 0, got ${sigma}`);
  const a = actor.act(obs);
  const A = actor.actDim;
  if (sigma === 0) return a;
  for (let k = 0; k < a.length; k++) {
    const j = k % A;
    const v = a[k]! + rng.normal(0, sigma * actor.halfRange[j]!);
    a[k] = Math.min(actor.high[j]!, Math.max(actor.low[j]!, v));
  }
  return a;
}

/**
 * The deterministic actor as a rollout/evaluate `Actor`: π_φ(s) (plus exploration noise σ unless
 * the call asks for the deterministic action). Log-probabilities are not defined for a
 * deterministic policy and are reported as 0.
 *
 * @param actor the deterministic policy
 * @param version the learner's policy version, read at each group
 * @param sigma exploration noise as a fraction of a_max; default 0 (evaluation)
 * @returns an `Actor` for `rollout` and `evaluate`
 * @example
 * evaluate({ venv: evalEnv, actor: deterministicActor(learner.actor, () => learner.version), every: 10 });
 */
export function deterministicActor(actor: DeterministicActor, version: () => number, sigma = 0): Actor {
  return {
    version,
    act: (obs, n, rng, deterministic) => ({
      action: deterministic || sigma === 0 ? actor.act(obs) : explorationActions(actor, obs, rng, sigma),
      logProb: new Float32Array(n),
    }),
  };
}

export interface CollectTransitionsConfig {
  /** N copies, autoreset `'next-step'`. */
  venv: VectorEnv;
  /** The deterministic policy π_φ that explores. */
  actor: DeterministicActor;
  /** The action stream (random warm-up actions and exploration noise). */
  rng: Rng;
  /** Vector steps per iteration (k); default 1 (one env step per copy, TD3's loop). */
  steps?: number;
  /** Uniform random actions until this many transitions were collected; TD3 default 25 000. */
  startSteps?: number;
  /** σ of the Gaussian exploration noise, as a fraction of a_max; TD3 default 0.1. */
  explorationNoise?: number;
  /** Seed of the first `venv.reset` (copy i gets seed + i); default 0. */
  seed?: number;
  /** Persisting state (pass a restored one to resume); default a fresh `collectorState`. */
  state?: CollectorState;
}

/** Collects one iteration's transitions (the body of the operator, usable directly). */
export function collectStep(cfg: CollectTransitionsConfig, state: CollectorState, iteration: number): TransitionBatch {
  const { venv, actor, rng } = cfg;
  const N = venv.numEnvs;
  const O = venv.obsDim;
  const A = actor.actDim;
  const k = cfg.steps ?? 1;
  const startSteps = cfg.startSteps ?? 25_000;
  const sigma = cfg.explorationNoise ?? 0.1;
  if (!state.started) {
    venv.reset(cfg.seed ?? 0);
    state.started = true;
  }
  const obs = new Float32Array(N * k * O);
  const next = new Float32Array(N * k * O);
  const act = new Float32Array(N * k * A);
  const rew = new Float32Array(N * k);
  const done = new Float32Array(N * k);
  let n = 0;
  const finished: number[] = [];
  const lengths: number[] = [];
  for (let step = 0; step < k; step++) {
    const s = venv.observations;
    const a = state.envSteps < startSteps ? randomActions(N, actor.low, actor.high, rng) : explorationActions(actor, s, rng, sigma);
    const res = venv.step(a);
    for (let i = 0; i < N; i++) {
      if (!res.stepped[i]) continue;
      obs.set(s.subarray(i * O, (i + 1) * O), n * O);
      next.set(res.observations.subarray(i * O, (i + 1) * O), n * O);
      act.set(a.subarray(i * A, (i + 1) * A), n * A);
      rew[n] = res.rewards[i]!;
      done[n] = res.terminated[i]!;
      n++;
      state.envSteps++;
      state.episodeReturn[i] = state.episodeReturn[i]! + res.rewards[i]!;
      state.episodeLength[i] = state.episodeLength[i]! + 1;
      if (res.terminated[i] || res.truncated[i]) {
        finished.push(state.episodeReturn[i]!);
        lengths.push(state.episodeLength[i]!);
        state.episodeReturn[i] = 0;
        state.episodeLength[i] = 0;
        state.episodes++;
      }
    }
  }
  const transitions: Transitions = {
    n,
    obsDim: O,
    actDim: A,
    obs: obs.slice(0, n * O),
    actions: act.slice(0, n * A),
    rewards: rew.slice(0, n),
    nextObs: next.slice(0, n * O),
    dones: done.slice(0, n),
  };
  const metrics: Record<string, number> = {
    'rollout/env_steps': n,
    'rollout/total_env_steps': state.envSteps,
    'rollout/episodes': finished.length,
  };
  if (finished.length > 0) {
    metrics['rollout/episode_return'] = finished.reduce((x, y) => x + y, 0) / finished.length;
    metrics['rollout/episode_length'] = lengths.reduce((x, y) => x + y, 0) / lengths.length;
  }
  return { iteration, transitions, metrics };
}

/**
 * `collectTransitions` — off-policy data collection: a stream of iterations → one batch of
 * single-step transitions (s, a, r, s', d) per iteration, stepping a `VectorEnv` of N copies
 * (autoreset `'next-step'`) for k vector steps.
 *
 * Acting (TD3, Fujimoto et al. 2018, §6.1 and the authors' code):
 *
 *   a = U(low, high)                                           while env steps < `startSteps`
 *   a = clip(π_φ(s) + ε, low, high),  ε ~ N(0, (σ · a_max)²)     afterwards (σ = `explorationNoise`)
 *
 * with a_max = (high − low)/2 per dimension. Each step, every copy whose action was applied
 * (`stepped`) gives one transition; d = 1 only on termination (a time-limit truncation still
 * bootstraps). A copy whose episode ended is reset by the env on the following step, which yields
 * no transition, so an iteration holds at most N·k transitions. The episode bookkeeping (running
 * returns, env-step count) lives in an explicit `CollectorState` that a checkpoint can carry next
 * to `venv.snapshot()`.
 *
 * Emits `rollout/env_steps` (transitions this iteration), `rollout/total_env_steps`,
 * `rollout/episodes` (episodes that ended this iteration) and, when some did,
 * `rollout/episode_return` (their mean undiscounted return Σ_t r_t) and `rollout/episode_length`.
 *
 * The operator: `{ iteration }` → `TransitionBatch`, one batch per input (in order; the next
 * iteration's steps wait until the previous batch has gone downstream, so with `td3Update` after
 * it every action is taken by the weights of the latest update).
 *
 * @param cfg The `venv` (autoreset `'next-step'`), the deterministic `actor`, the action `rng`, TD3's acting constants and the optional restored `state` (fields described on {@link CollectTransitionsConfig}).
 * @returns An operator from `{ iteration }` to one `TransitionBatch` per input, with the `rollout/*` metrics.
 * @throws Error/RangeError for a venv without `next-step` autoreset, a discrete action space, an actor that does not fit, a bad `steps`/`startSteps`, or a `state` for another number of envs.
 * @example
 * ```ts
 * const venv = await makeVectorEnv('Pendulum-v1', 4, { seed: 1 }); // autoreset 'next-step'
 * const learner = createTd3Learner({ obsDim: 3, low: [-2], high: [2], seed: 0 });
 * const collect = collectTransitions({ venv, actor: learner.actor, rng: streams.get('action'), startSteps: 1000 });
 * range(0, 1000).pipe(map((iteration) => ({ iteration })), collect, td3Update(learner), metrics({ sinks })).subscribe();
 * ```
 */
export function collectTransitions(cfg: CollectTransitionsConfig): OperatorFunction<{ readonly iteration: number }, TransitionBatch> {
  if (cfg.venv.autoreset !== 'next-step') {
    throw new Error(`collectTransitions: the VectorEnv must be built with autoreset 'next-step' (got '${cfg.venv.autoreset}')`);
  }
  if (cfg.venv.actionSpace.kind !== 'box') throw new Error(`collectTransitions: ${cfg.venv.id} has a discrete action space; TD3 needs a Box`);
  if (cfg.venv.actDim !== cfg.actor.actDim || cfg.venv.obsDim !== cfg.actor.obsDim) {
    throw new RangeError(
      `collectTransitions: the actor (obsDim ${cfg.actor.obsDim}, actDim ${cfg.actor.actDim}) does not fit ${cfg.venv.id} (obsDim ${cfg.venv.obsDim}, actDim ${cfg.venv.actDim})`,
    );
  }
  const k = cfg.steps ?? 1;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`collectTransitions: steps must be a positive integer, got ${k}`);
  const ss = cfg.startSteps ?? 25_000;
  if (!Number.isInteger(ss) || ss < 0) throw new RangeError(`collectTransitions: startSteps must be a non-negative integer, got ${ss}`);
  const state = cfg.state ?? collectorState(cfg.venv.numEnvs);
  if (state.episodeReturn.length !== cfg.venv.numEnvs) {
    throw new RangeError(`collectTransitions: state is for ${state.episodeReturn.length} envs, the VectorEnv has ${cfg.venv.numEnvs}`);
  }
  return concatMap((it) => defer(() => of(collectStep(cfg, state, it.iteration))));
}
