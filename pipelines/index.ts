/** rxrl/pipelines — whole training pipelines composed from rxrl/operators. */
export * from './grpo-control.ts';
