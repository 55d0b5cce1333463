/**
 * rxrl/pipelines, the part that runs in a browser too (what the `browser` export condition
 * resolves to): every pipeline, the shared iteration loop, the pipeline-file codec with
 * `parsePipelineText`, and the registry whose `decodePipelineConfig` gives the CLI's errors. The
 * files a pipeline reads (a D4RL dataset, a base checkpoint) come from `#platform/files`: in a
 * browser, the bytes the page handed to `provideFiles` (rxrl). pipelines/index.ts (Node) adds the
 * runner (run directories), `readPipelineFile` and reports.
 */
export * from './grpo-control.ts';
export * from './td3.ts';
export * from './hipo/sft.ts';
export * from './hipo/hipo.ts';
export * from './hipo/grpo-lm.ts';
export * from './online-dt/grpo-dt.ts';
export * from './hipo/rft.ts';
export * from './hipo/dpo.ts';
export { makeSuite, makeLm, type SuiteSection, type ModelSection } from './hipo/common.ts';
export { runOdt, resolveOdt, OdtConfig, OdtFile, ODT_DEFAULTS, ODT_METRICS, type OnlineDtResult } from './online-dt/odt.ts';
export { runOdtTd3, resolveOdtTd3, OdtTd3Config, OdtTd3File, ODT_TD3_DEFAULTS, ODT_TD3_METRICS } from './online-dt/odt-td3.ts';
export * from './context.ts';
export { runLoop, runSummary, stopRule, StopRule, type PipelineState, type LoopSpec } from './loop.ts';
export { runCheckpointBytes } from './run-checkpoint.ts';
export { section, oneOf, resolve, applySet, parsePipelineText, suggestion, ConfigError, MAX_CONFIG_BYTES, type DeepPartial } from './config.ts';
export { definePipeline, type BaseConfig, type Pipeline, type PipelineDef, type ResolvedPipeline } from './define.ts';
export { PIPELINES, getPipeline, decodePipelineConfig, NODE_ONLY_PIPELINES } from './registry.ts';
