/**
 * `makeEnv(id, options)`: every environment by its Gymnasium id.
 *
 * Classic control envs are TypeScript; the locomotion envs run MuJoCo's official WebAssembly
 * build (`mujoco-js`), which loads asynchronously — so `makeEnv` is async for all ids.
 *
 * ```ts
 * const env = await makeEnv('Hopper-v4', { seed: 1 });
 * let { observation } = env.reset(42);
 * const r = env.step(new Float32Array([0.1, -0.2, 0.3]));
 * env.close();
 * ```
 */
import type { Env, EnvOptions } from './types.ts';
import { CLASSIC_ENV_IDS, makeClassicEnv } from './classic/index.ts';
import { MUJOCO_ENV_IDS, makeMujocoEnv } from './mujoco/index.ts';
import { VectorEnv, type VectorEnvOptions } from './vector.ts';

export const ENV_IDS: readonly string[] = [...CLASSIC_ENV_IDS, ...MUJOCO_ENV_IDS];

export class UnknownEnvError extends Error {
  override readonly name = 'UnknownEnvError';
}

function isOneOf<T extends string>(ids: readonly T[], id: string): id is T {
  return (ids as readonly string[]).includes(id);
}

export async function makeEnv(id: string, options: EnvOptions = {}): Promise<Env> {
  if (isOneOf(CLASSIC_ENV_IDS, id)) return makeClassicEnv(id, options);
  if (isOneOf(MUJOCO_ENV_IDS, id)) return makeMujocoEnv(id, options);
  throw new UnknownEnvError(`unknown env id ${JSON.stringify(id)}; known ids: ${ENV_IDS.join(', ')}`);
}

/** N copies of `id`; copy i gets `seed + i` as its own generator seed. */
export async function makeVectorEnv(
  id: string,
  n: number,
  options: EnvOptions = {},
  vectorOptions: VectorEnvOptions = {},
): Promise<VectorEnv> {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`makeVectorEnv: expected a positive number of copies, got ${n}`);
  const base = options.seed ?? 0;
  const envs: Env[] = [];
  for (let i = 0; i < n; i++) envs.push(await makeEnv(id, { ...options, seed: (base + i) >>> 0 }));
  return new VectorEnv(envs, vectorOptions);
}
