/**
 * rxrl/operators — one RxJS operator per file. An on-policy iteration composes as
 *
 *   starts → rollout | subTrajectories → returns → groupAdvantages → [constraintCost → primalDual]
 *          → policyUpdate → evaluate → metrics
 *
 * Every operator maps `Batch<In>` to `Batch<Out>` (one item per iteration) and adds its metrics
 * under the names of docs/metrics.md; nothing in a stream holds a tensor.
 */
export * from './rollout.ts';
export * from './returns.ts';
export * from './hindsightRelabel.ts';
export * from './groupAdvantages.ts';
export * from './constraintCost.ts';
export * from './primalDual.ts';
export * from './policyUpdate.ts';
export * from './subTrajectories.ts';
export * from './activeSampling.ts';
export * from './replayBuffer.ts';
export * from './evaluate.ts';
export * from './metrics.ts';
export * from './lmRollout.ts';
export * from './collectTransitions.ts';
export * from './td3Update.ts';

/** The stream operators (what `rxrl list` prints). */
export const OPERATOR_NAMES = [
  'rollout',
  'lmRollout',
  'returns',
  'hindsightRelabel',
  'groupAdvantages',
  'constraintCost',
  'primalDual',
  'policyUpdate',
  'subTrajectories',
  'activeSampling',
  'replayBuffer',
  'evaluate',
  'metrics',
  'collectTransitions',
  'td3Update',
] as const;
