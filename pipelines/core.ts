/**
 * rxrl/pipelines, the part that runs in a browser too (what the `browser` export condition
 * resolves to): the pipelines that read no files (grpo-control, td3), the shared iteration loop,
 * the pipeline-file codec with `parsePipelineText`, and a registry of those pipelines whose
 * `decodePipelineConfig` gives the CLI's errors. pipelines/index.ts (Node) adds the pipelines that
 * read files, the runner (run directories), `readPipelineFile` and reports.
 */
export * from './grpo-control.ts';
export * from './td3.ts';
export * from './context.ts';
export { runLoop, runSummary, stopRule, StopRule, type PipelineState, type LoopSpec } from './loop.ts';
export { runCheckpointBytes } from './run-checkpoint.ts';
export { section, oneOf, resolve, applySet, parsePipelineText, suggestion, ConfigError, MAX_CONFIG_BYTES, type DeepPartial } from './config.ts';
export { definePipeline, type BaseConfig, type Pipeline, type PipelineDef, type ResolvedPipeline } from './define.ts';
export { PIPELINES, getPipeline, decodePipelineConfig, NODE_ONLY_PIPELINES } from './registry-core.ts';
