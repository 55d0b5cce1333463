/**
 * rxrl/operators, the same under Node and in a browser (what the `browser` export condition
 * resolves to; operators/index.ts adds the JSONL file sink for Node) — one RxJS operator per
 * file. An on-policy iteration composes as
 *
 *   starts → rollout | subTrajectories → returns → groupAdvantages → [constraintCost → primalDual]
 *          → policyUpdate → evaluate → metrics
 *
 * and QGRPO's (no env snapshots) as rollout → returns → replayBuffer → dtCriticUpdate → criticGroups
 * → groupAdvantages → policyUpdate.
 *
 * Every operator maps `Batch<In>` to `Batch<Out>` (one item per iteration) and adds its metrics
 * under the names of docs/metrics.md; nothing in a stream holds a tensor.
 */
export * from './rollout.ts';
// What `rollout`/`evaluate` act with and `policyUpdate` batches with live in lib (beside the models
// they serve); re-exported so a pipeline written against rxrl/operators finds them here too.
export { type Actor, policyActor } from '../lib/actor.ts';
export { dtActor } from '../lib/models/dt-actor.ts';
export { stepBatchOf } from '../lib/models/mlp.ts';
export {
  LagrangeState,
  LAGRANGE_DEFAULTS,
  resolveLagrangeConfig,
  type LagrangeConfig,
  type LagrangeStateJSON,
  type LagrangeStep,
  type LagrangeUpdateRule,
  type ConstraintSpec,
} from '../lib/lagrange.ts';
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
export * from './sftUpdate.ts';
export * from './dpoUpdate.ts';
export * from './collectTransitions.ts';
export * from './td3Update.ts';
export * from './dtCriticUpdate.ts';
export * from './criticGroups.ts';

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
  'dtCriticUpdate',
  'criticGroups',
  'sftUpdate',
  'dpoUpdate',
  // Node only (operators/index.ts): the asynchronous actor–learner's.
  'consumeGroups',
  'maxStaleness',
  'publishGroups',
] as const;
