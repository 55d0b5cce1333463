/**
 * MuJoCo locomotion environments (Gymnasium v4): Hopper-v4, HalfCheetah-v4, Walker2d-v4, on the
 * official MuJoCo WebAssembly build (`mujoco-js`).
 *
 * `makeMujocoEnv` is async because the wasm module loads asynchronously (once per process);
 * each id's model is compiled once and shared, each env owns its simulation data (free it with
 * `close()`).
 *
 * ```ts
 * const env = await makeMujocoEnv('HalfCheetah-v4', { seed: 3, ctrl_cost_weight: 0.05 });
 * let { observation } = env.reset();
 * const { reward, info } = env.step(new Float32Array(6));
 * env.close();
 * ```
 */
import type { Env, EnvOptions } from '../types.ts';
import { compiledModel, loadMujoco, MUJOCO_ENV_IDS, type MujocoEnvId } from './loader.ts';
import { LocomotionEnv, TASKS, parseParams } from './locomotion.ts';

export { mujocoHeapBytes, MUJOCO_ENV_IDS } from './loader.ts';
export type { MujocoEnvId } from './loader.ts';
export { TASKS, parseParams } from './locomotion.ts';

export async function makeMujocoEnv(id: MujocoEnvId, options: EnvOptions = {}): Promise<Env> {
  const spec = TASKS[id];
  if (spec === undefined) {
    throw new TypeError(`makeMujocoEnv: unknown id ${JSON.stringify(id)}; known ids: ${MUJOCO_ENV_IDS.join(', ')}`);
  }
  parseParams(spec, options); // option errors before the (slow, first-time) module load
  const [mujoco, model] = await Promise.all([loadMujoco(), compiledModel(id)]);
  return new LocomotionEnv(mujoco, model, spec, options);
}
