/**
 * Pipelines by name: what a pipeline file's `pipeline:` key selects, what `rxrl list` prints —
 * the same under Node and in a browser (`rxrl/pipelines` of both). A pipeline that reads files (a
 * D4RL dataset, a base checkpoint or run directory) reads them through `#platform/files`: the disk
 * under Node, in a browser the bytes its page handed to `provideFiles`. `definePipeline`
 * (pipelines/define.ts) hides each config type behind closures. `decodePipelineConfig(raw, sets)`
 * turns a raw file object plus `--set` overrides into the resolved, checked pipeline, or throws a
 * `ConfigError` listing every bad path.
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
import { OdtFile, ODT_METRICS, checkOdt, resolveOdt, runOdt } from './online-dt/odt.ts';
import { OdtTd3File, ODT_TD3_METRICS, checkOdtTd3, resolveOdtTd3, runOdtTd3 } from './online-dt/odt-td3.ts';
import { SftFile, SFT_METRICS, checkSft, resolveSft, runSft } from './hipo/sft.ts';
import { HipoFile, HIPO_METRICS, checkHipo, hipoActor, resolveHipo, runHipo } from './hipo/hipo.ts';
import { GrpoLmFile, GRPO_LM_METRICS, checkGrpoLm, grpoLmActor, resolveGrpoLm, runGrpoLm } from './hipo/grpo-lm.ts';
import { GrpoDtFile, GRPO_DT_METRICS, checkGrpoDt, resolveGrpoDt, runGrpoDt } from './online-dt/grpo-dt.ts';
import { RftFile, RFT_METRICS, checkRft, resolveRft, runRft } from './hipo/rft.ts';
import { DpoFile, DPO_METRICS, checkDpo, resolveDpo, runDpo } from './hipo/dpo.ts';

/** grpo-control: GRPO with reset-state groups on a control env (optionally Lagrangian). */
const GRPO_CONTROL_PIPELINE: Pipeline = definePipeline({
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
const TD3_PIPELINE: Pipeline = definePipeline({
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

/** Every pipeline, by name, in the order `rxrl list` prints them. */
export const PIPELINES: Readonly<Record<string, Pipeline>> = {
  'grpo-control': GRPO_CONTROL_PIPELINE,
  sft: definePipeline({
    name: 'sft',
    description: 'HIPO base model: SFT from scratch on the instruction-hierarchy suite with user-following targets (llama | qwen2 | phi)',
    file: SftFile,
    metrics: SFT_METRICS,
    resolve: resolveSft,
    check: checkSft,
    run: async (config, sinks, ctx) => {
      const { lm, ...result } = await runSft(config, sinks, ctx);
      lm.dispose();
      return result;
    },
  }),
  hipo: definePipeline({
    name: 'hipo',
    description: 'HIPO: max user utility s.t. system-prompt compliance, primal-dual GRPO on an LM (base: sft run or in-process SFT)',
    file: HipoFile,
    metrics: HIPO_METRICS,
    resolve: resolveHipo,
    check: checkHipo,
    run: (config, sinks, ctx) => runHipo(config, sinks, ctx),
    actor: hipoActor,
  }),
  'grpo-lm': definePipeline({
    name: 'grpo-lm',
    description: "HIPO's baselines: utility-only GRPO (mode utility) or fixed-weight scalarisation utility − w·cost (mode fixed-weight)",
    file: GrpoLmFile,
    metrics: GRPO_LM_METRICS,
    resolve: resolveGrpoLm,
    check: checkGrpoLm,
    run: (config, sinks, ctx) => runGrpoLm(config, sinks, ctx),
    actor: grpoLmActor,
  }),
  td3: TD3_PIPELINE,
  'grpo-dt': definePipeline({
    name: 'grpo-dt',
    description:
      'GRPO-DT: online finetuning of a pretrained Decision Transformer with pure RL gradients (reset-point groups, sub-trajectories, no hindsight relabeling; scoring critic: QGRPO, no env snapshots)',
    file: GrpoDtFile,
    metrics: GRPO_DT_METRICS,
    resolve: resolveGrpoDt,
    check: checkGrpoDt,
    run: (config, sinks, ctx) => runGrpoDt(config, sinks, ctx),
  }),
  rft: definePipeline({
    name: 'rft',
    description: "HIPO's imitation baseline: rejection-sampling fine-tuning (SFT on the current model's compliant, most useful samples)",
    file: RftFile,
    metrics: RFT_METRICS,
    resolve: resolveRft,
    check: checkRft,
    run: (config, sinks, ctx) => runRft(config, sinks, ctx),
  }),
  dpo: definePipeline({
    name: 'dpo',
    description: "HIPO's preference baseline: DPO on (compliant, most useful ≻ worse) pairs of the base model's own samples (ref = base)",
    file: DpoFile,
    metrics: DPO_METRICS,
    resolve: resolveDpo,
    check: checkDpo,
    run: (config, sinks, ctx) => runDpo(config, sinks, ctx),
  }),
  odt: definePipeline({
    name: 'odt',
    description: 'Online Decision Transformer: offline-pretrained DT finetuned online with hindsight relabeling and NLL − α·entropy (D4RL file)',
    file: OdtFile,
    metrics: ODT_METRICS,
    resolve: resolveOdt,
    check: checkOdt,
    run: async (config, sinks, ctx) => {
      const r = await runOdt(config, sinks, ctx);
      r.dt.dispose();
      return r;
    },
  }),
  'odt-td3': definePipeline({
    name: 'odt-td3',
    description: "ODT plus a TD3 critic's −α_Q·Q in the DT's loss ('RL gradients as vitamin', NeurIPS 2024)",
    file: OdtTd3File,
    metrics: ODT_TD3_METRICS,
    resolve: resolveOdtTd3,
    check: checkOdtTd3,
    run: async (config, sinks, ctx) => {
      const r = await runOdtTd3(config, sinks, ctx);
      r.dt.dispose();
      return r;
    },
  }),
};

/**
 * Pipelines a build of rxrl lacks on purpose, named in the error for them: none today (every
 * pipeline runs under Node and in a browser; kept for one that needs a Node-only part).
 */
export const NODE_ONLY_PIPELINES: readonly string[] = [];

/**
 * The pipeline `name`, or a `ConfigError` at `where` naming the known ones.
 * @param name The file's `pipeline:` value.
 * @param where The path for errors.
 * @returns The registered pipeline.
 */
export function getPipeline(name: unknown, where = 'pipeline'): Pipeline {
  return lookupPipeline(PIPELINES, name, where, { names: NODE_ONLY_PIPELINES, why: 'runs under Node only' });
}

/**
 * Raw file object + `--set` overrides → the resolved pipeline (`def`) and its config.
 * @param raw The parsed file (`parsePipelineText`, or `readPipelineFile` under Node).
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
