/**
 * CartPole-v1 and its constrained variant CartPoleConstrained-v1, after Gymnasium's
 * `classic_control/cartpole.py` (Barto, Sutton & Anderson 1983; equations of motion from
 * Florian 2007, "Correct equations for the dynamics of the cart-pole system").
 *
 * State s = (x, ẋ, θ, θ̇), float64. Action: Discrete(2), 0 pushes left, 1 pushes right with
 * F = ±force_mag. With M = m_c + m_p and half-length l:
 *
 *   temp = (F + m_p·l·θ̇²·sin θ) / M
 *   θ̈   = (g·sin θ − cos θ·temp) / (l·(4/3 − m_p·cos²θ / M))
 *   ẍ   = temp − m_p·l·θ̈·cos θ / M
 *
 * integrated with explicit Euler over τ = 0.02 s (positions use the old velocities).
 * Constants: g = 9.8, m_c = 1.0, m_p = 0.1, l = 0.5, force_mag = 10.
 *
 * - reset: every component ~ U(−0.05, 0.05), drawn in the order x, ẋ, θ, θ̇.
 * - reward: 1 on every step, including the terminating one (v1).
 * - terminated: |x| > 2.4 or |θ| > 12° (2π·12/360 rad), on the state after the step.
 * - truncated: at `maxEpisodeSteps` (registered 500).
 * - observation: Float32Array [x, ẋ, θ, θ̇], bounds ±(4.8, f32max, 24°, f32max) as Gymnasium.
 *
 * CartPoleConstrained-v1 is CartPole-v1 plus a safety cost: `cost` = 1 on each step whose
 * post-step cart position is outside a central band, |x| > `costBand`, else 0. Reward and
 * termination are unchanged. `costBand` defaults to 0.5 (a fifth of the 2.4 track half-width):
 * random policies, whose episodes last ~20 steps, rarely leave it, while balancing policies that
 * let the cart drift over a 500-step episode do — so the constraint binds exactly when the
 * policy gets good — and staying inside it is feasible for a balancing controller.
 *
 * Options: `seed`, `maxEpisodeSteps`; constrained only: `costBand` (> 0) and `xThreshold` (the
 * track half-width beyond which the episode terminates, default Gymnasium's 2.4). On the standard
 * track, leaving the band is already punished by the reward (drifting policies run off the track),
 * so a converged unconstrained policy often has little cost; a wider track (e.g. `xThreshold: 6`)
 * takes that implicit penalty away and makes the constraint the only reason to stay centred.
 * `resetXRange` (default: unset, Gymnasium's U(−0.05, 0.05)) starts the cart at x ~ U(−r, r):
 * with r beyond the band, a policy that merely balances pays cost wherever it starts, and meeting
 * the constraint means steering back to the centre — a constraint that binds at the optimum.
 *
 * ```ts
 * const env = new CartPole({ seed: 1 });
 * let { observation } = env.reset();
 * for (;;) {
 *   const r = env.step(observation[2]! > 0 ? 1 : 0);
 *   if (r.terminated || r.truncated) break;
 *   observation = r.observation;
 * }
 * ```
 */

import type { Rng } from '../../random.ts';
import { boxSpace, checkDiscreteAction } from '../types.ts';
import type { Action, DiscreteSpace, EnvOptions } from '../types.ts';
import { ClassicEnv, finiteOption } from './base.ts';
import type { OptionParsers, Transition } from './base.ts';

export const CARTPOLE = {
  gravity: 9.8,
  masscart: 1.0,
  masspole: 0.1,
  /** Half the pole's length. */
  length: 0.5,
  forceMag: 10.0,
  tau: 0.02,
  thetaThreshold: (12 * 2 * Math.PI) / 360,
  xThreshold: 2.4,
  resetBound: 0.05,
  maxEpisodeSteps: 500,
} as const;

export const CARTPOLE_CONSTRAINED_DEFAULT_COST_BAND = 0.5;

const F32_MAX = 3.4028234663852886e38;
const TOTAL_MASS = CARTPOLE.masspole + CARTPOLE.masscart;
const POLEMASS_LENGTH = CARTPOLE.masspole * CARTPOLE.length;
const high = (xThreshold: number) => [xThreshold * 2, F32_MAX, CARTPOLE.thetaThreshold * 2, F32_MAX];

class CartPoleBase extends ClassicEnv {
  declare readonly actionSpace: DiscreteSpace;
  /** Half-width of the track: |x| beyond it terminates the episode. */
  protected readonly xThreshold: number;

  protected constructor(id: string, options: EnvOptions, specific: OptionParsers, xThreshold: number = CARTPOLE.xThreshold) {
    super(
      id,
      4,
      CARTPOLE.maxEpisodeSteps,
      boxSpace(
        high(xThreshold).map((h) => -h),
        high(xThreshold),
      ),
      { kind: 'discrete', n: 2 },
      options,
      specific,
    );
    this.xThreshold = xThreshold;
  }

  protected resetState(rng: Rng): void {
    const b = CARTPOLE.resetBound;
    for (let i = 0; i < 4; i++) this.state[i] = rng.uniform(-b, b);
  }

  /** Advances the physics; returns whether the new state is terminal. */
  protected integrate(action: Action): boolean {
    const a = checkDiscreteAction(this.id, action, this.actionSpace);
    const s = this.state;
    const x = s[0]!;
    const xDot = s[1]!;
    const theta = s[2]!;
    const thetaDot = s[3]!;
    const force = a === 1 ? CARTPOLE.forceMag : -CARTPOLE.forceMag;
    const cos = Math.cos(theta);
    const sin = Math.sin(theta);
    const temp = (force + POLEMASS_LENGTH * thetaDot * thetaDot * sin) / TOTAL_MASS;
    const thetaAcc = (CARTPOLE.gravity * sin - cos * temp) / (CARTPOLE.length * (4.0 / 3.0 - (CARTPOLE.masspole * cos * cos) / TOTAL_MASS));
    const xAcc = temp - (POLEMASS_LENGTH * thetaAcc * cos) / TOTAL_MASS;
    const tau = CARTPOLE.tau;
    const nx = x + tau * xDot;
    const nTheta = theta + tau * thetaDot;
    s[0] = nx;
    s[1] = xDot + tau * xAcc;
    s[2] = nTheta;
    s[3] = thetaDot + tau * thetaAcc;
    return nx < -this.xThreshold || nx > this.xThreshold || nTheta < -CARTPOLE.thetaThreshold || nTheta > CARTPOLE.thetaThreshold;
  }

  protected advance(action: Action): Transition {
    return { reward: 1, cost: 0, terminated: this.integrate(action) };
  }

  protected observe(): Float32Array {
    const o = new Float32Array(4);
    o.set(this.state);
    return o;
  }
}

/** Gymnasium's CartPole-v1. */
export class CartPole extends CartPoleBase {
  constructor(options: EnvOptions = {}) {
    super('CartPole-v1', options, {});
  }
}

/** CartPole-v1 with cost 1 per step spent at |x| > `costBand` (default 0.5). */
export class CartPoleConstrained extends CartPoleBase {
  readonly costBand: number;

  constructor(options: EnvOptions = {}) {
    super(
      'CartPoleConstrained-v1',
      options,
      {
        costBand: finiteOption('costBand', (v) => v > 0, 'a positive finite number'),
        xThreshold: finiteOption('xThreshold', (v) => v > 0, 'a positive finite number'),
        resetXRange: finiteOption('resetXRange', (v) => v >= 0, 'a non-negative finite number'),
      },
      typeof options['xThreshold'] === 'number' && options['xThreshold'] > 0 ? options['xThreshold'] : CARTPOLE.xThreshold,
    );
    this.costBand = (this.optionValues['costBand'] as number | undefined) ?? CARTPOLE_CONSTRAINED_DEFAULT_COST_BAND;
  }

  protected override resetState(rng: Rng): void {
    super.resetState(rng);
    const range = this.optionValues['resetXRange'] as number | undefined;
    // x ~ U(−range, range) drawn after the other components, so the default draws match CartPole-v1.
    if (range !== undefined) this.state[0] = rng.uniform(-range, range);
  }

  protected override advance(action: Action): Transition {
    const terminated = this.integrate(action);
    const x = this.state[0]!;
    return { reward: 1, cost: x > this.costBand || x < -this.costBand ? 1 : 0, terminated };
  }
}
