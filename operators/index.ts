/**
 * rxrl/operators under Node: every operator (operators/core.ts, what a browser bundle gets) plus
 * the JSONL metrics file sink and reader (lib/io/metrics-jsonl.ts), and the operators of the
 * asynchronous actor–learner (consumeGroups → maxStaleness → returns → … → policyUpdate on the
 * learner, rollout → publishGroups on each actor), which hash configs with node:crypto.
 */
export * from './core.ts';
export * from './consumeGroups.ts';
export * from './maxStaleness.ts';
export * from './publishGroups.ts';
export { jsonlSink, readJsonl, readJsonlFile, MetricsFileError, type JsonlSink, type JsonlSinkOptions } from '../lib/io/metrics-jsonl.ts';
