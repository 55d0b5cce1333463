/**
 * The pipelines that read no files, by name: what a browser runs (the playground, a bundle of
 * `rxrl/pipelines`), with the same codecs and errors as the CLI. Under Node, pipelines/registry.ts
 * holds these and the ones that read files (D4RL datasets, base checkpoints, Hugging Face folders),
 * which here are refused by name: `pipeline: 'odt' reads files and runs under Node only (here: …)`.
 */
import type { BaseConfig, Pipeline, ResolvedPipeline } from './define.ts';
import { decodeWith, definePipeline, lookupPipeline } from './define.ts';
import {
  GrpoControlFile,
  GRPO_CONTROL_METRICS,
  checkGrpoControl,
  resolveGrpoControl,
  runGrpoControl,
  evaluateGrpoControl,
  grpoControlActor,
} from './grpo-control.ts';
import { Td3File, TD3_METRICS, checkTd3, resolveTd3, runTd3, evaluateTd3 } from './td3.ts';
import { disposeTd3Learner } from '../operators/td3Update.ts';

/** grpo-control: GRPO with reset-state groups on a control env (optionally Lagrangian). */
export const GRPO_CONTROL_PIPELINE: Pipeline = definePipeline({
  name: 'grpo-control',
  description: 'GRPO with reset-state groups on a control env with an MLP policy; optionally Lagrangian (constraint: {...})',
  file: GrpoControlFile,
  metrics: GRPO_CONTROL_METRICS,
  resolve: resolveGrpoControl,
  check: checkGrpoControl,
  run: (config, sinks, ctx) => runGrpoControl(config, sinks, ctx),
  evaluate: evaluateGrpoControl,
  actor: grpoControlActor,
});

/** td3: TD3 on a Box-action env. */
export const TD3_PIPELINE: Pipeline = definePipeline({
  name: 'td3',
  description: 'TD3 (twin critics, delayed actor, target smoothing) on a Box-action env; N envs × k steps per iteration, a replay buffer',
  file: Td3File,
  metrics: TD3_METRICS,
  resolve: resolveTd3,
  check: checkTd3,
  run: async (config, sinks, ctx) => {
    const { learner, ...result } = await runTd3(config, sinks, ctx);
    disposeTd3Learner(learner);
    return result;
  },
  evaluate: evaluateTd3,
});

/** The pipelines of Node's registry that read files, so a browser cannot run them. */
export const NODE_ONLY_PIPELINES: readonly string[] = ['sft', 'hipo', 'grpo-lm', 'grpo-dt', 'rft', 'dpo', 'odt', 'odt-td3'];

/** The pipelines a browser runs, by name. */
export const PIPELINES: Readonly<Record<string, Pipeline>> = { 'grpo-control': GRPO_CONTROL_PIPELINE, td3: TD3_PIPELINE };

/**
 * The pipeline `name`, or a `ConfigError` at `where` (a Node-only pipeline is named as such).
 * @param name The file's `pipeline:` value.
 * @param where The path for errors.
 * @returns The registered pipeline.
 */
export function getPipeline(name: unknown, where = 'pipeline'): Pipeline {
  return lookupPipeline(PIPELINES, name, where, { names: NODE_ONLY_PIPELINES, why: 'reads files and runs under Node only' });
}

/**
 * Raw file object + `--set` overrides → the resolved pipeline (`def`) and its config; the same
 * errors as the CLI's `decodePipelineConfig` for the pipelines both have.
 * @param raw The parsed file (`parsePipelineText`).
 * @param sets `path=value` overrides.
 * @param label The file's name, for errors.
 * @returns The resolved pipeline and its config.
 */
export function decodePipelineConfig(
  raw: Record<string, unknown>,
  sets: readonly string[] = [],
  label = 'pipeline file',
): { def: ResolvedPipeline; config: BaseConfig } {
  return decodeWith(getPipeline, raw, sets, label);
}
