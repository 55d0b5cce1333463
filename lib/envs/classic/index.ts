/**
 * The classic-control envs, by Gymnasium id: CartPole-v1, CartPoleConstrained-v1, Pendulum-v1,
 * MountainCarContinuous-v0. Each implements `Env` (see `../types.ts`) with Gymnasium's constants,
 * dynamics and time limits; see each file's doc comment for the equations and options.
 *
 * ```ts
 * const env = makeClassicEnv('CartPole-v1', { seed: 0, maxEpisodeSteps: 200 });
 * const { observation } = env.reset(42);
 * const { reward, terminated, truncated } = env.step(1);
 * ```
 */

import type { Env, EnvOptions } from '../types.ts';
import { CartPole, CartPoleConstrained } from './cartpole.ts';
import { MountainCarContinuous } from './mountain-car-continuous.ts';
import { Pendulum } from './pendulum.ts';

export { ClassicEnv } from './base.ts';
export { CartPoleConstrained } from './cartpole.ts';
export { Pendulum, angleNormalize } from './pendulum.ts';

const FACTORIES = {
  'CartPole-v1': (o: EnvOptions) => new CartPole(o),
  'CartPoleConstrained-v1': (o: EnvOptions) => new CartPoleConstrained(o),
  'Pendulum-v1': (o: EnvOptions) => new Pendulum(o),
  'MountainCarContinuous-v0': (o: EnvOptions) => new MountainCarContinuous(o),
} as const;

export type ClassicEnvId = keyof typeof FACTORIES;

export const CLASSIC_ENV_IDS: readonly ClassicEnvId[] = Object.freeze(Object.keys(FACTORIES) as ClassicEnvId[]);

export function isClassicEnvId(id: string): id is ClassicEnvId {
  return Object.hasOwn(FACTORIES, id);
}

/** A classic-control env by id; throws on an unknown id (listing the known ones) or option. */
export function makeClassicEnv(id: string, options: EnvOptions = {}): Env {
  if (!isClassicEnvId(id)) {
    throw new RangeError(`makeClassicEnv: unknown env id "${id}"; known ids are ${CLASSIC_ENV_IDS.join(', ')}`);
  }
  return FACTORIES[id](options);
}
