/**
 * Env steps per second, single env and vectorised, for every registered env.
 *
 *     npm run bench:env                     # all envs
 *     npm run bench:env -- Hopper-v4        # one env
 *
 * Actions are drawn up front (uniform over the action space, fixed seed) so the figure is the
 * simulator's cost plus the env wrapper's, not the sampler's. Episodes that end are reset.
 * Prints a markdown table; docs/environments.md holds the figures measured on this machine.
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import { makeEnv, makeVectorEnv, ENV_IDS, Rng, type Env, type Space } from '../../lib/index.ts';

const VECTOR_N = 16;
const ids = process.argv.slice(2).length > 0 ? process.argv.slice(2) : [...ENV_IDS];

function actionPool(space: Space, n: number, rng: Rng): (number | Float32Array)[] {
  return Array.from({ length: n }, () =>
    space.kind === 'discrete' ? rng.int(space.n) : Float32Array.from(space.low, (lo, i) => rng.uniform(lo, space.high[i]!)),
  );
}

function timeSingle(env: Env, seconds: number): number {
  const pool = actionPool(env.actionSpace, 4096, new Rng(0, 'bench'));
  env.reset(0);
  let steps = 0;
  let resets = 1;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < seconds * 1000) {
    for (let i = 0; i < 1000; i++) {
      const r = env.step(pool[steps & 4095]!);
      steps++;
      if (r.terminated || r.truncated) env.reset(resets++);
    }
    now = performance.now();
  }
  return steps / ((now - t0) / 1000);
}

async function timeVector(id: string, seconds: number): Promise<number> {
  const venv = await makeVectorEnv(id, VECTOR_N, { seed: 0 }, { autoreset: 'next-step' });
  const space = venv.actionSpace;
  const dim = space.kind === 'discrete' ? 1 : space.shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(1, 'bench');
  const pool = Array.from({ length: 64 }, () => {
    if (space.kind === 'discrete') return Int32Array.from({ length: VECTOR_N }, () => rng.int(space.n));
    return Float32Array.from({ length: VECTOR_N * dim }, (_, j) => rng.uniform(space.low[j % dim]!, space.high[j % dim]!));
  });
  venv.reset(Array.from({ length: VECTOR_N }, (_, i) => i));
  let calls = 0;
  const t0 = performance.now();
  let now = t0;
  while (now - t0 < seconds * 1000) {
    for (let i = 0; i < 50; i++) venv.step(pool[calls++ & 63]!);
    now = performance.now();
  }
  venv.close();
  return (calls * VECTOR_N) / ((now - t0) / 1000);
}

console.log(`env steps/s on ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, one core, vectorised N=${VECTOR_N}`);
console.log('| env | single env steps/s | vectorised env steps/s |');
console.log('|---|---:|---:|');
for (const id of ids) {
  const env = await makeEnv(id, { seed: 0 });
  timeSingle(env, 0.3); // warm-up (JIT)
  const single = timeSingle(env, 2);
  env.close();
  const vec = await timeVector(id, 2);
  console.log(`| ${id} | ${Math.round(single).toLocaleString('en-US')} | ${Math.round(vec).toLocaleString('en-US')} |`);
}
