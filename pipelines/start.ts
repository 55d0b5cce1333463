/**
 * `npm start`: the embedded default job. For now (foundation stage) it runs a random policy on
 * Hopper-v4 for a fixed budget of env steps and prints each episode's return, its D4RL-normalised
 * score, and the env steps per second.
 *
 *     npm start                      # 5 episodes, seed 0
 *     npm start -- --episodes 20 --env Walker2d-v4 --seed 3
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { makeEnv, Rng, d4rlNormalizedScore, ENV_IDS } from '../lib/index.ts';

const { values } = parseArgs({
  options: {
    env: { type: 'string', default: 'Hopper-v4' },
    episodes: { type: 'string', default: '5' },
    seed: { type: 'string', default: '0' },
  },
});
const episodes = Number(values.episodes);
const seed = Number(values.seed);
if (!Number.isInteger(episodes) || episodes <= 0) throw new Error(`--episodes: expected a positive integer, got ${values.episodes}`);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed: expected a non-negative integer, got ${values.seed}`);
if (!ENV_IDS.includes(values.env!)) throw new Error(`--env: unknown id ${values.env}; known: ${ENV_IDS.join(', ')}`);

const env = await makeEnv(values.env!, { seed });
const rng = new Rng(seed, 'action');
const resets = new Rng(seed, 'env/reset');
const space = env.actionSpace;
let steps = 0;
const t0 = performance.now();
console.log(`random policy on ${env.id}, seed ${seed}`);
console.log('episode  length      return  d4rl_score');
for (let ep = 0; ep < episodes; ep++) {
  env.reset(resets.seed());
  let ret = 0;
  let len = 0;
  for (;;) {
    const action =
      space.kind === 'discrete'
        ? rng.int(space.n)
        : Float32Array.from(space.low, (lo, i) => rng.uniform(lo, space.high[i]!));
    const r = env.step(action);
    ret += r.reward;
    len++;
    if (r.terminated || r.truncated) break;
  }
  steps += len;
  const score = d4rlNormalizedScore(env.id, ret);
  console.log(`${String(ep).padStart(7)}  ${String(len).padStart(6)}  ${ret.toFixed(2).padStart(10)}  ${score === undefined ? '-' : score.toFixed(2).padStart(10)}`);
}
const secs = (performance.now() - t0) / 1000;
console.log(`${steps} env steps in ${secs.toFixed(2)} s: ${Math.round(steps / secs)} env steps/s (policy sampling included)`);
env.close();
