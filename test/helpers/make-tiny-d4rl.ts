/**
 * Writes the tiny D4RL-layout dataset the tests use: a uniform-random policy on Hopper-v4 for a
 * few short episodes (time limit 20, so some episodes fall — `terminals` — and some are cut —
 * `timeouts`), with `next_observations` and `infos/qpos` / `infos/qvel` taken from the env's
 * snapshot before each step (the state that produced `observations[t]`), so reset points exist.
 *
 * Regenerate (deterministic: same seed → byte-identical arrays):
 *
 *   npx tsx test/helpers/make-tiny-d4rl.ts test/data/hopper-tiny.hdf5
 *
 * Options: `--episodes N` (default 10), `--max-steps T` (default 20), `--seed S` (default 0).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { compiledModel } from '../../lib/envs/mujoco/loader.ts';
import { makeEnv } from '../../lib/envs/registry.ts';
import { Rng } from '../../lib/random.ts';
import { writeD4rl, type D4rlDataset } from '../../lib/datasets/d4rl.ts';

export interface TinyOptions {
  episodes?: number;
  maxSteps?: number;
  seed?: number;
}

/** Rolls out the random policy and returns the dataset (not written). */
export async function makeTinyHopper(options: TinyOptions = {}): Promise<D4rlDataset> {
  const episodes = options.episodes ?? 10;
  const maxSteps = options.maxSteps ?? 20;
  const seed = options.seed ?? 0;
  const envId = 'Hopper-v4';
  const env = await makeEnv(envId, { seed, maxEpisodeSteps: maxSteps });
  const model = await compiledModel(envId);
  const { nq, nv } = model;
  const obsDim = env.observationSpace.shape[0]!;
  const space = env.actionSpace;
  if (space.kind !== 'box') throw new Error(`${envId}: expected a box action space`);
  const actDim = space.shape[0]!;
  const rng = new Rng(seed, 'tiny-d4rl/policy');
  const obs: number[] = [];
  const next: number[] = [];
  const acts: number[] = [];
  const rews: number[] = [];
  const terms: number[] = [];
  const touts: number[] = [];
  const qpos: number[] = [];
  const qvel: number[] = [];
  try {
    for (let ep = 0; ep < episodes; ep++) {
      let { observation } = env.reset(seed * 1000 + ep);
      for (;;) {
        const state = env.snapshot().state; // [time, qpos(nq), qvel(nv), ...]
        qpos.push(...state.subarray(1, 1 + nq));
        qvel.push(...state.subarray(1 + nq, 1 + nq + nv));
        const action = new Float32Array(actDim);
        for (let j = 0; j < actDim; j++) action[j] = rng.uniform(space.low[j]!, space.high[j]!);
        const r = env.step(action);
        obs.push(...observation);
        acts.push(...action);
        rews.push(r.reward);
        next.push(...r.observation);
        terms.push(r.terminated ? 1 : 0);
        touts.push(r.truncated && !r.terminated ? 1 : 0);
        observation = r.observation;
        if (r.terminated || r.truncated) break;
      }
    }
  } finally {
    env.close();
  }
  return {
    n: rews.length,
    obsDim,
    actDim,
    observations: Float32Array.from(obs),
    actions: Float32Array.from(acts),
    rewards: Float32Array.from(rews),
    terminals: Uint8Array.from(terms),
    timeouts: Uint8Array.from(touts),
    nextObservations: Float32Array.from(next),
    qpos: Float64Array.from(qpos),
    nq,
    qvel: Float64Array.from(qvel),
    nv,
  };
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  const { values, positionals } = parseArgs({
    options: { episodes: { type: 'string' }, 'max-steps': { type: 'string' }, seed: { type: 'string' } },
    allowPositionals: true,
  });
  const out = positionals[0];
  if (out === undefined) {
    console.error('usage: npx tsx test/helpers/make-tiny-d4rl.ts OUT.hdf5 [--episodes N] [--max-steps T] [--seed S]');
    process.exit(2);
  }
  const opts: TinyOptions = {};
  if (values.episodes !== undefined) opts.episodes = Number(values.episodes);
  if (values['max-steps'] !== undefined) opts.maxSteps = Number(values['max-steps']);
  if (values.seed !== undefined) opts.seed = Number(values.seed);
  const data = await makeTinyHopper(opts);
  const command = `npx tsx test/helpers/make-tiny-d4rl.ts ${process.argv.slice(2).join(' ')}`;
  await writeD4rl(out, data, {
    attrs: { env_id: 'Hopper-v4', policy: 'uniform random', generator: command },
  });
  const t = data.terminals.reduce((a, b) => a + b, 0);
  const o = data.timeouts.reduce((a, b) => a + b, 0);
  console.log(`${out}: ${data.n} transitions, ${t} terminals, ${o} timeouts`);
}
