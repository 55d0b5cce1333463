/**
 * MountainCarContinuous-v0, after Gymnasium's `classic_control/continuous_mountain_car.py`
 * (Moore 1990): drive an under-powered car out of a valley, y = sin(3x), to the flag at
 * x = 0.45.
 *
 * State s = (x, v). As in Gymnasium, a step computes in float64 and then rounds the new state to
 * float32 (`self.state = np.array([position, velocity], dtype=np.float32)`); the state drawn by
 * reset stays float64 until the first step. Action: Box([−1], [1]); the force f is the action
 * clipped to [−1, 1]. One step, with power 0.0015:
 *
 *   v' = clip(v + f·power − 0.0025·cos(3x), −0.07, 0.07)
 *   x' = clip(x + v', −1.2, 0.6);  v' = 0 if x' = −1.2 and v' < 0 (inelastic left wall)
 *   terminated = x' ≥ 0.45 and v' ≥ goal_velocity (default 0)
 *   reward = 100·[terminated] − 0.1·a²
 *
 * Note on the action penalty: Gymnasium squares the *raw* action `action[0]` (unclipped), so an
 * action of 3 costs 0.9 although it pushes like 1; this file does the same, so returns are
 * comparable with Gymnasium's. The float64-then-round step is exactly Gymnasium's under NumPy 1;
 * under NumPy ≥ 2 (NEP 50 promotion) Gymnasium evaluates a few intermediates in float32 when the
 * action is a float32 array, which moves the state by at most about one float32 ulp (measured:
 * ≤ 1.2e-7 over a 254-step episode against Gymnasium 1.3.0 with NumPy 2.4), without accumulating.
 *
 * - reset: x ~ U(−0.6, −0.4), v = 0.
 * - truncated at `maxEpisodeSteps` (registered 999).
 * - observation: Float32Array [x, v], bounds [−1.2, −0.07] … [0.6, 0.07].
 *
 * Options: `seed`, `maxEpisodeSteps`, `goalVelocity` (finite number, default 0).
 *
 * ```ts
 * const env = new MountainCarContinuous({ seed: 7 });
 * let { observation } = env.reset();
 * const r = env.step([observation[1]! >= 0 ? 1 : -1]); // bang-bang on the velocity's sign
 * ```
 */

import type { Rng } from '../../random.ts';
import { boxSpace, checkBoxAction } from '../types.ts';
import type { Action, BoxSpace, EnvOptions } from '../types.ts';
import { ClassicEnv, finiteOption } from './base.ts';
import type { Transition } from './base.ts';

export const MOUNTAIN_CAR_CONTINUOUS = {
  minAction: -1.0,
  maxAction: 1.0,
  minPosition: -1.2,
  maxPosition: 0.6,
  maxSpeed: 0.07,
  goalPosition: 0.45,
  goalVelocity: 0,
  power: 0.0015,
  maxEpisodeSteps: 999,
} as const;

export class MountainCarContinuous extends ClassicEnv {
  declare readonly actionSpace: BoxSpace;
  readonly goalVelocity: number;

  constructor(options: EnvOptions = {}) {
    const c = MOUNTAIN_CAR_CONTINUOUS;
    super(
      'MountainCarContinuous-v0',
      2,
      c.maxEpisodeSteps,
      boxSpace([c.minPosition, -c.maxSpeed], [c.maxPosition, c.maxSpeed]),
      boxSpace([c.minAction], [c.maxAction]),
      options,
      { goalVelocity: finiteOption('goalVelocity') },
    );
    this.goalVelocity = (this.optionValues['goalVelocity'] as number | undefined) ?? c.goalVelocity;
  }

  protected resetState(rng: Rng): void {
    this.state[0] = rng.uniform(-0.6, -0.4);
    this.state[1] = 0;
  }

  protected advance(action: Action): Transition {
    const a = checkBoxAction(this.id, action, this.actionSpace)[0]!;
    const c = MOUNTAIN_CAR_CONTINUOUS;
    const force = Math.min(Math.max(a, c.minAction), c.maxAction);
    const s = this.state;
    let position = s[0]!;
    let velocity = s[1]!;
    velocity += force * c.power - 0.0025 * Math.cos(3 * position);
    if (velocity > c.maxSpeed) velocity = c.maxSpeed;
    if (velocity < -c.maxSpeed) velocity = -c.maxSpeed;
    position += velocity;
    if (position > c.maxPosition) position = c.maxPosition;
    if (position < c.minPosition) position = c.minPosition;
    if (position === c.minPosition && velocity < 0) velocity = 0;
    s[0] = Math.fround(position); // Gymnasium stores the state as float32 after every step
    s[1] = Math.fround(velocity);
    const terminated = position >= c.goalPosition && velocity >= this.goalVelocity;
    const reward = (terminated ? 100.0 : 0) - a * a * 0.1;
    return { reward, cost: 0, terminated };
  }

  protected observe(): Float32Array {
    const o = new Float32Array(2);
    o[0] = this.state[0]!;
    o[1] = this.state[1]!;
    return o;
  }
}
