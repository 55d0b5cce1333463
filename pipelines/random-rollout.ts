/**
 * `npm run random-rollout`: a uniform random
 * policy on Hopper-v4 for a budget of env steps; prints the first episodes, the episode-return
 * statistics with their D4RL-normalised score, and env steps per second.
 *
 *     npm run random-rollout                                      # Hopper-v4, 20,000 env steps, seed 0
 *     npm run random-rollout -- --env Walker2d-v4 --steps 50000 --seed 3
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { makeEnv, Rng, d4rlNormalizedScore, ENV_IDS } from '../lib/index.ts';
import { moments } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    env: { type: 'string', default: 'Hopper-v4' },
    steps: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '0' },
  },
});
const budget = Number(values.steps);
const seed = Number(values.seed);
if (!Number.isInteger(budget) || budget <= 0) throw new Error(`--steps: expected a positive integer, got ${values.steps}`);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed: expected a non-negative integer, got ${values.seed}`);
if (!ENV_IDS.includes(values.env!)) throw new Error(`--env: unknown id ${values.env}; known: ${ENV_IDS.join(', ')}`);

const env = await makeEnv(values.env!, { seed });
const rng = new Rng(seed, 'action');
const resets = new Rng(seed, 'env/reset');
const space = env.actionSpace;
const returns: number[] = [];
const lengths: number[] = [];
let steps = 0;
const fmt = (x: number | undefined, w = 10) => (x === undefined ? '-' : x.toFixed(2)).padStart(w);
console.log(`uniform random policy on ${env.id}, seed ${seed}, ${budget} env steps`);
console.log('episode  length      return  d4rl_score');
const t0 = performance.now();
while (steps < budget) {
  env.reset(resets.seed());
  let ret = 0;
  let len = 0;
  for (;;) {
    const action = space.kind === 'discrete' ? rng.int(space.n) : Float32Array.from(space.low, (lo, i) => rng.uniform(lo, space.high[i]!));
    const r = env.step(action);
    ret += r.reward;
    len++;
    if (r.terminated || r.truncated) break;
  }
  steps += len;
  returns.push(ret);
  lengths.push(len);
  if (returns.length <= 5)
    console.log(`${String(returns.length - 1).padStart(7)}  ${String(len).padStart(6)}  ${fmt(ret)}  ${fmt(d4rlNormalizedScore(env.id, ret))}`);
}
const secs = (performance.now() - t0) / 1000;
env.close();
const m = moments(returns);
console.log('    ...');
console.log(`episodes ${returns.length}, mean length ${moments(lengths).mean.toFixed(1)}`);
console.log(
  `return mean ${m.mean.toFixed(2)} ± ${m.std.toFixed(2)} (min ${m.min.toFixed(2)}, max ${m.max.toFixed(2)}), D4RL score ${fmt(d4rlNormalizedScore(env.id, m.mean), 0)}`,
);
console.log(`${steps} env steps in ${secs.toFixed(2)} s: ${Math.round(steps / secs)} env steps/s (action sampling included)`);
