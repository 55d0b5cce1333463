// `evaluate`: periodic deterministic evaluation episodes — documented on the exported `evaluate` (hover it).
import * as t from 'io-ts';
import { map, type MonoTypeOperatorFunction } from 'rxjs';
import { NonNegativeInt, PositiveInt, Uint32 } from '../lib/codec.ts';
import type { Batch } from '../lib/data.ts';
import type { VectorEnv } from '../lib/envs/vector.ts';
import { d4rlNormalizedScore } from '../lib/d4rl.ts';
import { Rng } from '../lib/random.ts';
import { moments } from '../lib/stats.ts';
import type { Actor } from '../lib/actor.ts';
import { runEpisodes } from '../lib/episodes.ts';

/**
 * The evaluation's plain-data knobs (all optional):
 *
 * - `every`: evaluate every `every` iterations (and on iteration 0). Default 10.
 * - `lastIteration`: also evaluate on this iteration (the last one).
 * - `seed`: first evaluation seed. Default 1_000_000 (away from training seeds).
 * - `maxSteps`: cap on episode length. Default: the env's time limit.
 */
export const EvaluateProps = { every: PositiveInt, lastIteration: NonNegativeInt, seed: Uint32, maxSteps: PositiveInt };
export const EvaluateOptions = t.partial(EvaluateProps, 'EvaluateOptions');

export type EvaluateConfig = t.TypeOf<typeof EvaluateOptions> & {
  /** One copy per evaluation episode (autoreset 'disabled'). */
  venv: VectorEnv;
  actor: Actor;
};

export interface EvalResult {
  'eval/return': number;
  'eval/return_std': number;
  'eval/length': number;
  'eval/cost': number;
  'eval/normalized_score'?: number;
}

/** Runs one evaluation: every copy of `venv` plays one episode from seed `seed + i`. */
export function runEvaluation(cfg: EvaluateConfig): EvalResult {
  const { venv, actor } = cfg;
  const n = venv.numEnvs;
  const seed = cfg.seed ?? 1_000_000;
  const obs = venv.reset(Array.from({ length: n }, (_, i) => seed + i)).observations;
  const rng = new Rng(seed, 'eval'); // only used by stochastic actors
  actor.begin?.(n, { kind: 'seed', envId: venv.id, seed });
  const ret = new Float64Array(n);
  const cost = new Float64Array(n);
  const len = new Float64Array(n);
  runEpisodes(venv, actor, rng, obs, cfg.maxSteps === undefined ? {} : { maxSteps: cfg.maxSteps }, (i, s) => {
    ret[i] = ret[i]! + s.result.rewards[i]!;
    cost[i] = cost[i]! + s.result.costs[i]!;
    len[i] = len[i]! + 1;
  });
  const m = moments([...ret]);
  const out: EvalResult = {
    'eval/return': m.mean,
    'eval/return_std': m.std,
    'eval/length': moments([...len]).mean,
    'eval/cost': moments([...cost]).mean,
  };
  const score = d4rlNormalizedScore(venv.id, m.mean);
  if (score !== undefined) out['eval/normalized_score'] = score;
  return out;
}

/**
 * `evaluate` — periodic deterministic evaluation episodes.
 *
 * In and out: `Batch<G>` (passed through). On iterations where `iteration % every === 0` and on
 * the last one (`iterations − 1`, if given) it runs `episodes` episodes of the actor (an actor
 * built with `deterministic = true` takes the mode of the policy) on fresh copies of the env,
 * from the fixed seeds `seed, seed + 1, …` — the same states at every evaluation, so curves
 * compare — and adds
 *
 *   eval/return           = mean_k Σ_t r_t       (undiscounted)
 *   eval/return_std, eval/length, eval/cost (mean Σ_t c_t)
 *   eval/normalized_score = 100 · (return − random) / (expert − random)   (D4RL, where defined)
 *
 * @param cfg The evaluation `venv` (one copy per episode, autoreset `'disabled'`), the `actor`, and the plain-data knobs `every`, `lastIteration`, `seed`, `maxSteps` (described on {@link EvaluateProps}).
 * @returns An operator that passes each `Batch<G>` on, with the `eval/*` metrics added on evaluation iterations.
 * @throws RangeError for an `every` that is not a positive integer.
 * @example
 * ```ts
 * const evalEnv = await makeVectorEnv('Hopper-v4', 10, {}, { autoreset: 'disabled' });
 * const actor = policyActor(policy, () => learner.version, true); // deterministic
 * batches$.pipe(policyUpdate(learner), evaluate({ venv: evalEnv, actor, every: 10 }));
 * ```
 */
export function evaluate<G>(cfg: EvaluateConfig): MonoTypeOperatorFunction<Batch<G>> {
  const every = cfg.every ?? 10;
  if (!Number.isInteger(every) || every < 1) throw new RangeError(`evaluate: every: expected a positive integer, got ${every}`);
  return map((batch) => {
    if (batch.iteration % every !== 0 && batch.iteration !== cfg.lastIteration) return batch;
    return { ...batch, metrics: { ...batch.metrics, ...runEvaluation(cfg) } };
  });
}
