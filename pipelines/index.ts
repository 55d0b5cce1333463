/**
 * rxrl/pipelines under Node — whole training pipelines, the pipeline-file codec, the runner and
 * reports: everything of pipelines/core.ts (what a browser bundle gets: every pipeline, the loop,
 * the registry) plus `readPipelineFile`, run directories and reports.
 */
export * from './core.ts';
export { readPipelineFile } from './config-file.ts';
export { runPipeline, validatePipelineFile, resolveRunConfig, readRunMetrics, RunError, CHECKPOINT_FILE, type RunOptions, type RunOutcome } from './runner.ts';
export { writeReport, loadRun, renderLayerSharePng, type LayerShareRecord, type LayerShareOptions } from './report/index.ts';
