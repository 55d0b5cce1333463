/**
 * Pendulum-v1, after Gymnasium's `classic_control/pendulum.py`: swing a frictionless pendulum
 * up and hold it upright with a bounded torque.
 *
 * State s = (θ, θ̇), float64, θ = 0 upright. Action: Box([−2], [2]); the torque u is the action
 * clipped to ±max_torque. One step with g (option, default 10.0), m = 1, l = 1, dt = 0.05:
 *
 *   reward = −(norm(θ)² + 0.1·θ̇² + 0.001·u²)          (on the state before the step)
 *   θ̇'    = clip(θ̇ + (3g/(2l)·sin θ + 3/(m·l²)·u)·dt, −8, 8)
 *   θ'     = θ + θ̇'·dt
 *
 * where norm(θ) = ((θ + π) mod 2π) − π with a floored modulo (as Python's `%`), in [−π, π).
 *
 * - reset: θ ~ U(−π, π), then θ̇ ~ U(−1, 1).
 * - never terminates; truncated at `maxEpisodeSteps` (registered 200).
 * - observation: Float32Array [cos θ, sin θ, θ̇], bounds ±(1, 1, 8).
 *
 * Options: `seed`, `maxEpisodeSteps`, `g` (finite number).
 *
 * ```ts
 * const env = new Pendulum({ g: 9.81 });
 * env.reset(3);
 * const { reward } = env.step([0.5]);
 * ```
 */

import type { Rng } from '../../random.ts';
import { boxSpace, checkBoxAction } from '../types.ts';
import type { Action, BoxSpace, EnvOptions } from '../types.ts';
import { ClassicEnv, finiteOption } from './base.ts';
import type { Transition } from './base.ts';

export const PENDULUM = {
  maxSpeed: 8,
  maxTorque: 2.0,
  dt: 0.05,
  g: 10.0,
  m: 1.0,
  l: 1.0,
  maxEpisodeSteps: 200,
} as const;

const TWO_PI = 2 * Math.PI;

/** ((θ + π) mod 2π) − π with a floored modulo, as Gymnasium's `angle_normalize`. */
export function angleNormalize(theta: number): number {
  let m = (theta + Math.PI) % TWO_PI;
  if (m < 0) m += TWO_PI;
  return m - Math.PI;
}

export class Pendulum extends ClassicEnv {
  declare readonly actionSpace: BoxSpace;
  readonly g: number;

  constructor(options: EnvOptions = {}) {
    super(
      'Pendulum-v1',
      2,
      PENDULUM.maxEpisodeSteps,
      boxSpace([-1, -1, -PENDULUM.maxSpeed], [1, 1, PENDULUM.maxSpeed]),
      boxSpace([-PENDULUM.maxTorque], [PENDULUM.maxTorque]),
      options,
      { g: finiteOption('g') },
    );
    this.g = (this.optionValues['g'] as number | undefined) ?? PENDULUM.g;
  }

  protected resetState(rng: Rng): void {
    this.state[0] = rng.uniform(-Math.PI, Math.PI);
    this.state[1] = rng.uniform(-1, 1);
  }

  protected advance(action: Action): Transition {
    const a = checkBoxAction(this.id, action, this.actionSpace)[0]!;
    const { maxTorque, maxSpeed, dt, m, l } = PENDULUM;
    const u = a > maxTorque ? maxTorque : a < -maxTorque ? -maxTorque : a;
    const s = this.state;
    const th = s[0]!;
    const thDot = s[1]!;
    const thN = angleNormalize(th);
    const costs = thN * thN + 0.1 * thDot * thDot + 0.001 * (u * u);
    let newThDot = thDot + (((3 * this.g) / (2 * l)) * Math.sin(th) + (3.0 / (m * l * l)) * u) * dt;
    if (newThDot > maxSpeed) newThDot = maxSpeed;
    else if (newThDot < -maxSpeed) newThDot = -maxSpeed;
    s[0] = th + newThDot * dt;
    s[1] = newThDot;
    return { reward: -costs, cost: 0, terminated: false };
  }

  protected observe(): Float32Array {
    const o = new Float32Array(3);
    const th = this.state[0]!;
    o[0] = Math.cos(th);
    o[1] = Math.sin(th);
    o[2] = this.state[1]!;
    return o;
  }
}
