/**
 * GRPO (and its Lagrangian variant) for control envs with an MLP policy, composed only of rxrl's
 * operators: starts → rollout (G copies from one reset state) → returns → groupAdvantages →
 * [constraintCost → primalDual] → policyUpdate → metrics. One item per iteration; the loop is
 * on-policy (the next rollout waits for the update).
 *
 * ```ts
 * const result = await runGrpoControl({ env: { id: 'CartPole-v1' }, iterations: 30, seed: 1 });
 * console.log(result.history.at(-1)?.['reward/mean']);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { range, lastValueFrom, map, toArray, takeWhile } from 'rxjs';
import { makeVectorEnv } from '../lib/envs/registry.ts';
import { RngStreams } from '../lib/random.ts';
import { MlpPolicy } from '../lib/models/mlp.ts';
import type { MetricsRecord } from '../lib/data.ts';
import { rollout, policyActor, type StartsBatch } from '../operators/rollout.ts';
import { returns } from '../operators/returns.ts';
import { groupAdvantages, type GroupAdvantagesConfig } from '../operators/groupAdvantages.ts';
import { constraintCost } from '../operators/constraintCost.ts';
import { primalDual, LagrangeState, type LagrangeConfig, type PrimalDualConfig } from '../operators/primalDual.ts';
import { policyUpdate, stepBatchOf, type Learner, type PolicyUpdateConfig } from '../operators/policyUpdate.ts';
import { metrics, type MetricsSink } from '../operators/metrics.ts';

export interface GrpoControlConfig {
  seed: number;
  iterations: number;
  env: { id: string; options?: Record<string, unknown> };
  /** Starts (reset states) per iteration and rollouts per start (G). */
  startsPerIteration: number;
  groupSize: number;
  policy: { hidden: number[]; activation: 'tanh' | 'relu' };
  learningRate: number;
  advantages: Partial<GroupAdvantagesConfig>;
  update: Partial<PolicyUpdateConfig>;
  /** Stop early after the first iteration whose metrics satisfy this (that iteration is kept). */
  stopWhen?: (metrics: MetricsRecord) => boolean;
  /** A cost constraint handled by primal-dual updates (omit for unconstrained GRPO). */
  constraint?: { limit: number; lagrange?: Partial<LagrangeConfig>; primalDual?: Partial<PrimalDualConfig> };
}

export const GRPO_CONTROL_DEFAULTS: GrpoControlConfig = {
  seed: 0,
  iterations: 30,
  env: { id: 'CartPole-v1' },
  startsPerIteration: 4,
  groupSize: 16,
  policy: { hidden: [64, 64], activation: 'tanh' },
  learningRate: 0.02,
  advantages: { estimator: 'grpo' },
  update: { epochs: 4, minibatches: 4, clipEps: 0.2, maxGradNorm: 0.5 },
};

export interface GrpoControlResult {
  history: MetricsRecord[];
  policy: MlpPolicy;
  lagrange?: LagrangeState;
}

export async function runGrpoControl(
  config: Partial<GrpoControlConfig> = {},
  sinks: MetricsSink[] = [],
): Promise<GrpoControlResult> {
  const cfg: GrpoControlConfig = { ...GRPO_CONTROL_DEFAULTS, ...config };
  const streams = new RngStreams(cfg.seed);
  const venv = await makeVectorEnv(cfg.env.id, cfg.groupSize, { ...cfg.env.options, seed: cfg.seed }, { autoreset: 'disabled' });
  const policy = new MlpPolicy({
    obsDim: venv.obsDim,
    actionSpace: venv.actionSpace,
    hidden: cfg.policy.hidden,
    activation: cfg.policy.activation,
    seed: streams.get('init').seed(),
  });
  const learner: Learner<ReturnType<typeof stepBatchOf>> = {
    policy,
    optimizer: tf.train.adam(cfg.learningRate),
    version: 0,
    batchOf: stepBatchOf,
  };
  const resets = streams.get('env/reset');
  const lagrange = cfg.constraint
    ? new LagrangeState({ ...cfg.constraint.lagrange, constraints: [{ name: 'cost', limit: cfg.constraint.limit }] })
    : undefined;

  const starts = (iteration: number): StartsBatch => ({
    iteration,
    starts: Array.from({ length: cfg.startsPerIteration }, () => ({ kind: 'seed' as const, envId: cfg.env.id, seed: resets.seed() })),
  });
  try {
    const scored = range(0, cfg.iterations).pipe(
      map(starts),
      rollout({ venv, actor: policyActor(policy, () => learner.version), rng: streams.get('action') }),
      returns(),
      groupAdvantages(cfg.advantages),
    );
    const updated = lagrange
      ? scored.pipe(constraintCost({ ...cfg.advantages, costs: [{ name: 'cost' }] }), primalDual(lagrange, cfg.constraint?.primalDual), policyUpdate(learner, cfg.update))
      : scored.pipe(policyUpdate(learner, cfg.update));
    const history = await lastValueFrom(
      updated.pipe(
        metrics({ sinks }),
        map((b) => ({ iteration: b.iteration, ...b.metrics }) as MetricsRecord),
        takeWhile((m) => !cfg.stopWhen?.(m), true),
        toArray(),
      ),
    );
    return lagrange ? { history, policy, lagrange } : { history, policy };
  } finally {
    venv.close();
    learner.optimizer.dispose();
  }
}
