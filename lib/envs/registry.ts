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
import { CLASSIC_ENV_IDS, makeClassicEnv, type ClassicEnv } from './classic/index.ts';
import { MUJOCO_ENV_IDS, makeMujocoEnv, TASKS, parseParams } from './mujoco/index.ts';
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

/** The options env `id` declares (`seed`, `maxEpisodeSteps` and its own); throws `UnknownEnvError`. */
export function envOptionNames(id: string): readonly string[] {
  if (isOneOf(CLASSIC_ENV_IDS, id)) return (makeClassicEnv(id) as ClassicEnv).optionNames;
  if (isOneOf(MUJOCO_ENV_IDS, id)) return ['seed', 'maxEpisodeSteps', ...Object.keys(TASKS[id].options)];
  throw new UnknownEnvError(`unknown env id ${JSON.stringify(id)}; known ids: ${ENV_IDS.join(', ')}`);
}

/** One problem with an env's options: the option at fault (absent for the id itself) and why. */
export interface EnvOptionProblem {
  readonly key?: string;
  readonly message: string;
}

/**
 * Checks an env id and its options without building the env (MuJoCo is not loaded): unknown ids,
 * undeclared option names, then the values (by the env's own option parsers). `[]` when fine.
 */
export function envOptionProblems(id: string, options: Record<string, unknown>): EnvOptionProblem[] {
  if (!ENV_IDS.includes(id)) return [{ message: `unknown env id ${JSON.stringify(id)}; known ids: ${ENV_IDS.join(', ')}` }];
  const names = envOptionNames(id);
  const unknown = Object.keys(options).filter((k) => !names.includes(k));
  if (unknown.length > 0) return unknown.map((key) => ({ key, message: `unknown option of ${id} (valid: ${names.join(', ')})` }));
  try {
    if (isOneOf(CLASSIC_ENV_IDS, id)) makeClassicEnv(id, options).close();
    else if (isOneOf(MUJOCO_ENV_IDS, id)) parseParams(TASKS[id], options);
  } catch (e) {
    const message = (e as Error).message;
    const key = names.find((n) => message.includes(`option ${n} `));
    return [{ ...(key ? { key } : {}), message: message.replace(`${id}: `, '') }];
  }
  return [];
}

/** N copies of `id`; copy i gets `seed + i` as its own generator seed. */
export async function makeVectorEnv(id: string, n: number, options: EnvOptions = {}, vectorOptions: VectorEnvOptions = {}): Promise<VectorEnv> {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`makeVectorEnv: expected a positive number of copies, got ${n}`);
  const base = options.seed ?? 0;
  const envs: Env[] = [];
  for (let i = 0; i < n; i++) envs.push(await makeEnv(id, { ...options, seed: (base + i) >>> 0 }));
  return new VectorEnv(envs, vectorOptions);
}
