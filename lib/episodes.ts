/**
 * The episode loop shared by `rollout` and `evaluate`: the n copies of a `VectorEnv` (autoreset
 * 'disabled') step in lockstep under one `Actor` until every row has ended — terminated,
 * truncated by the env, or cut after `maxSteps` steps. Before each step the actor's `targets()`
 * (return-conditioned actors) are read, then `act` gives the n actions, the env steps, and
 * `observe` hands the actor the rewards. Finished rows keep being passed to the actor (the
 * VectorEnv ignores their actions); only rows live before a step are reported to `onRow`.
 *
 * ```ts
 * const ret = new Float64Array(venv.numEnvs);
 * const obs = venv.reset(seeds).observations;
 * runEpisodes(venv, actor, rng, obs, {}, (i, s) => { ret[i] = ret[i]! + s.result.rewards[i]!; });
 * ```
 */
import type { Actor } from './actor.ts';
import type { VectorEnv, VectorStepResult } from './envs/vector.ts';
import type { Rng } from './random.ts';

/** One lockstep step, as a row that was live before it sees it. */
export interface EpisodeStep {
  /** Steps taken before this one (0 for the first). */
  readonly t: number;
  readonly action: Int32Array | Float32Array;
  readonly logProb: Float32Array;
  /** The actor's targets before it acted (return-conditioned actors only). */
  readonly targets: Float32Array | undefined;
  readonly result: VectorStepResult;
}

export interface EpisodeOptions {
  /** Cut every row after this many steps. Default: none (the env's own limits). */
  readonly maxSteps?: number;
  /** Passed to `actor.act` (the policy's mode when true; the actor's own default when undefined). */
  readonly deterministic?: boolean;
  /** Rows that take part (1) — the others count as already ended. Default: all rows. */
  readonly live?: Uint8Array;
}

/**
 * Steps `venv` from observations `obs` until every live row has ended, calling
 * `onRow(i, step, ended)` for each row i live before the step (`ended`: this step ended it).
 * Returns the observations after the last step.
 */
export function runEpisodes(
  venv: VectorEnv,
  actor: Actor,
  rng: Rng,
  obs: Float32Array,
  options: EpisodeOptions,
  onRow: (i: number, step: EpisodeStep, ended: boolean) => void,
): Float32Array {
  const n = venv.numEnvs;
  const limit = options.maxSteps ?? Number.POSITIVE_INFINITY;
  const done = new Uint8Array(n);
  let live = n;
  if (options.live) {
    for (let i = 0; i < n; i++) if (!options.live[i]) done[i] = 1;
    live = n - done.reduce((a, b) => a + b, 0);
  }
  for (let t = 0; live > 0; t++) {
    const targets = actor.targets?.();
    const { action, logProb } = actor.act(obs, n, rng, options.deterministic);
    const result = venv.step(action);
    actor.observe?.(result.rewards, result.observations);
    const step: EpisodeStep = { t, action, logProb, targets, result };
    for (let i = 0; i < n; i++) {
      if (done[i]) continue;
      const ended = result.terminated[i] === 1 || result.truncated[i] === 1 || t + 1 >= limit;
      onRow(i, step, ended);
      if (ended) {
        done[i] = 1;
        live--;
      }
    }
    obs = result.observations;
  }
  return obs;
}
