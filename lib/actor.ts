/**
 * `Actor` — what acts in a vectorised env: the G current observations in, G actions and their
 * behaviour log-probabilities out. `rollout` and `evaluate` step envs with one; `policyActor` wraps
 * a policy acting on the current observation alone, `dtActor` (models/dt-actor.ts) a Decision
 * Transformer conditioned on a return-to-go.
 *
 * ```ts
 * const actor = policyActor(new MlpPolicy({ obsDim: 4, actionSpace: { kind: 'discrete', n: 2 } }), () => 0);
 * const { action, logProb } = actor.act(observations, 8, new Rng(0, 'action'));
 * ```
 */
import type { Start } from './data.ts';
import type { Policy } from './models/policy.ts';
import type { Rng } from './random.ts';

/** What acts in the env: G observations in, G actions and behaviour log-probs out. */
export interface Actor {
  /** The version of the policy that acts now (stamped on every trajectory). */
  version(): number;
  /** Called once per group before the first step (a DT clears its context, sets its target). */
  begin?(n: number, start: Start): void;
  /** Several groups in one batch: row i starts from `starts[i]` (rows of a group are adjacent). */
  beginRows?(starts: readonly Start[]): void;
  /** Actions for the `n` rows of `observations` (n × obsDim); the policy's mode if `deterministic`. */
  act(observations: Float32Array, n: number, rng: Rng, deterministic?: boolean): { action: Int32Array | Float32Array; logProb: Float32Array };
  /** Return-conditioned actors: the targets they were conditioned on at this step (n values). */
  targets?(): Float32Array;
  /** Called after each step with the rewards the n rows received (a DT lowers its target). */
  observe?(rewards: Float64Array, observations: Float32Array): void;
}

/** An `Actor` over a plain policy acting on the current observation alone (its mode if `deterministic`). */
export function policyActor<B>(policy: Pick<Policy<B, Float32Array, Int32Array | Float32Array>, 'act'>, version: () => number, deterministic = false): Actor {
  // beginRows: a plain policy keeps no per-row state, so rows of several groups can share a batch.
  return { version, beginRows: () => {}, act: (obs, _n, rng, det) => policy.act(obs, rng, { deterministic: det ?? deterministic }) };
}
