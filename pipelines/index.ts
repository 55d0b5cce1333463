/**
 * rxrl/pipelines under Node — whole training pipelines, the pipeline-file codec, the runner and
 * reports: everything of pipelines/core.ts (what a browser bundle gets) plus the pipelines that read
 * files, `readPipelineFile`, run directories and reports. `PIPELINES`, `getPipeline` and
 * `decodePipelineConfig` here are the full registry's (they shadow the core's).
 */
export * from './core.ts';
export * from './hipo/sft.ts';
export * from './hipo/hipo.ts';
export * from './hipo/grpo-lm.ts';
export * from './online-dt/grpo-dt.ts';
export * from './hipo/rft.ts';
export * from './hipo/dpo.ts';
export { runOdt, resolveOdt, OdtConfig, OdtFile, ODT_DEFAULTS, ODT_METRICS, type OnlineDtResult } from './online-dt/odt.ts';
export { runOdtTd3, resolveOdtTd3, OdtTd3Config, OdtTd3File, ODT_TD3_DEFAULTS, ODT_TD3_METRICS } from './online-dt/odt-td3.ts';
export { readPipelineFile } from './config-file.ts';
export { PIPELINES, getPipeline, decodePipelineConfig } from './registry.ts';
export { runPipeline, validatePipelineFile, resolveRunConfig, readRunMetrics, RunError, CHECKPOINT_FILE, type RunOptions, type RunOutcome } from './runner.ts';
export { writeReport, loadRun, renderLayerSharePng, type LayerShareRecord, type LayerShareOptions } from './report/index.ts';
