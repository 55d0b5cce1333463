/**
 * Pipelines by name: what a pipeline file's `pipeline:` key selects, what `rxrl list` prints.
 *
 * A pipeline registers its config codec, the file codec derived from it (every key optional,
 * unknown keys rejected), the function that fills in its defaults (the same defaults the
 * TypeScript API uses), its cross-field checks, the metric names it emits and its run function.
 * `definePipeline` hides the config type behind closures (an existential), so the registry holds
 * pipelines of different config types without casts. `decodePipelineConfig(raw, sets)` turns a
 * raw file object plus `--set` overrides into the resolved, checked pipeline, or throws a
 * `ConfigError` listing every bad path.
 */
import type * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { decode } from '../lib/codec.ts';
import type { MetricsSink } from '../operators/metrics.ts';
import { ConfigError, applySet, checkConfigTree, suggestion, type DeepPartial } from './config.ts';
import { ENV_IDS, envOptionNames, envOptionProblems } from '../lib/envs/registry.ts';
import type { PipelineContext, PipelineResult } from './context.ts';
import { OdtFile, ODT_METRICS, checkOdt, resolveOdt, runOdt } from './online-dt/odt.ts';
import { OdtTd3File, ODT_TD3_METRICS, checkOdtTd3, resolveOdtTd3, runOdtTd3 } from './online-dt/odt-td3.ts';
import {
  GrpoControlFile,
  GRPO_CONTROL_METRICS,
  checkGrpoControl,
  resolveGrpoControl,
  runGrpoControl,
  evaluateGrpoControl,
  grpoControlActor,
} from './grpo-control.ts';
import type { ActorPart } from '../lib/async/transport.ts';
import { SftFile, SFT_METRICS, checkSft, resolveSft, runSft } from './hipo/sft.ts';
import { HipoFile, HIPO_METRICS, checkHipo, hipoActor, resolveHipo, runHipo } from './hipo/hipo.ts';
import { GrpoLmFile, GRPO_LM_METRICS, checkGrpoLm, grpoLmActor, resolveGrpoLm, runGrpoLm } from './hipo/grpo-lm.ts';
import { Td3File, TD3_METRICS, checkTd3, resolveTd3, runTd3, evaluateTd3 } from './td3.ts';
import { disposeTd3Learner } from '../operators/td3Update.ts';
import { GrpoDtFile, GRPO_DT_METRICS, checkGrpoDt, resolveGrpoDt, runGrpoDt } from './online-dt/grpo-dt.ts';
import { RftFile, RFT_METRICS, checkRft, resolveRft, runRft } from './hipo/rft.ts';
import { DpoFile, DPO_METRICS, checkDpo, resolveDpo, runDpo } from './hipo/dpo.ts';

/** What every pipeline config has. */
export type BaseConfig = { seed: number; iterations: number } & Record<string, unknown>;

export interface PipelineDef<C extends BaseConfig> {
  readonly name: string;
  readonly description: string;
  /** The pipeline-file codec (derived from the config codec with `deepPartial`). */
  readonly file: t.Type<DeepPartial<C>, unknown, unknown>;
  /** Metric names the pipeline emits (docs/metrics.md); `stop.metric` is checked against them. */
  readonly metrics: readonly string[];
  resolve(partial: DeepPartial<C>): C;
  /** Cross-field problems of a resolved config, as `path: problem` lines. */
  check(config: C): string[];
  run(config: C, sinks: MetricsSink[], ctx: PipelineContext): Promise<PipelineResult>;
  /** Evaluates the policy of a checkpoint written by this pipeline (`rxrl eval`). */
  evaluate?(config: C, checkpoint: string, episodes?: number): Promise<Record<string, number>>;
  /** The actor side of an asynchronous run (`rxrl run --actors N | --broker URL`, `rxrl actor`). */
  actor?(config: C): Promise<ActorPart>;
}

/** A pipeline with its config resolved: what the runner and `rxrl eval` use. */
export interface ResolvedPipeline {
  readonly name: string;
  readonly config: BaseConfig;
  run(sinks: MetricsSink[], ctx: PipelineContext): Promise<PipelineResult>;
  evaluate?(checkpoint: string, episodes?: number): Promise<Record<string, number>>;
  actor?(): Promise<ActorPart>;
}

/** A registered pipeline, its config type hidden. */
export interface Pipeline {
  readonly name: string;
  readonly description: string;
  readonly metrics: readonly string[];
  /** It has an actor side (runs with --actors / --broker). */
  readonly hasActor: boolean;
  /** A raw config object → the resolved, checked pipeline; a `ConfigError` naming every bad path. */
  decode(raw: Record<string, unknown>, label: string): ResolvedPipeline;
}

export function definePipeline<C extends BaseConfig>(def: PipelineDef<C>): Pipeline {
  return {
    name: def.name,
    description: def.description,
    metrics: def.metrics,
    hasActor: def.actor !== undefined,
    decode(raw, label) {
      const problems: string[] = [];
      for (const k of ['seed', 'iterations']) if (!(k in raw)) problems.push(`${k}: required at the top level of every pipeline file`);
      const r = decode(def.file, raw);
      if (isLeft(r)) problems.push(...r.left);
      if (problems.length > 0 || isLeft(r)) throw invalid(label, def.name, problems);
      const config = def.resolve(r.right);
      const cross = [...envProblems(config['env']), ...def.check(config)];
      if (cross.length > 0) throw invalid(label, def.name, cross);
      const evaluate = def.evaluate;
      const actor = def.actor;
      return {
        name: def.name,
        config,
        run: (sinks, ctx) => def.run(config, sinks, ctx),
        ...(evaluate ? { evaluate: (checkpoint: string, episodes?: number) => evaluate(config, checkpoint, episodes) } : {}),
        ...(actor ? { actor: () => actor(config) } : {}),
      };
    },
  };
}

export const PIPELINES: Readonly<Record<string, Pipeline>> = {
  'grpo-control': definePipeline({
    name: 'grpo-control',
    description: 'GRPO with reset-state groups on a control env with an MLP policy; optionally Lagrangian (constraint: {...})',
    file: GrpoControlFile,
    metrics: GRPO_CONTROL_METRICS,
    resolve: resolveGrpoControl,
    check: checkGrpoControl,
    run: (config, sinks, ctx) => runGrpoControl(config, sinks, ctx),
    evaluate: evaluateGrpoControl,
    actor: grpoControlActor,
  }),
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
  td3: definePipeline({
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
  }),
  'grpo-dt': definePipeline({
    name: 'grpo-dt',
    description:
      'GRPO-DT: online finetuning of a pretrained Decision Transformer with pure RL gradients (reset-point groups, sub-trajectories, no hindsight relabeling)',
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

export function getPipeline(name: unknown, where = 'pipeline'): Pipeline {
  const names = Object.keys(PIPELINES);
  if (typeof name !== 'string')
    throw new ConfigError(`${where}: expected the name of a pipeline (${names.join(', ')}), got ${JSON.stringify(name) ?? 'nothing'}`);
  const def = PIPELINES[name];
  if (!def) throw new ConfigError(`${where}: unknown pipeline '${name}'; ${suggestion(name, names)}(known: ${names.join(', ')})`);
  return def;
}

/** Raw file object + `--set` overrides → the resolved pipeline (`def`) and its config. */
export function decodePipelineConfig(
  raw: Record<string, unknown>,
  sets: readonly string[] = [],
  label = 'pipeline file',
): { def: ResolvedPipeline; config: BaseConfig } {
  const obj = structuredClone(checkConfigTree(raw, label));
  for (const s of sets) applySet(obj, s);
  const def = getPipeline(obj['pipeline'], `${label}: pipeline`).decode(obj, label);
  return { def, config: def.config };
}

/** One problem on one line (`file: path: why`); several as an indented list, one per line. */
function invalid(label: string, pipeline: string, problems: string[]): ConfigError {
  const msg = problems.length === 1 ? `${label}: ${problems[0]!}` : `${label}: invalid ${pipeline} pipeline:\n  ${problems.join('\n  ')}`;
  return new ConfigError(msg, problems);
}

/**
 * What `run` would refuse when it builds the env, checked at decode time (so `validate` catches it
 * and a bad id leaves no run directory): the id, and the options against those the env declares.
 */
function envProblems(env: unknown): string[] {
  if (typeof env !== 'object' || env === null) return [];
  const { id, options } = env as { id?: unknown; options?: unknown };
  if (typeof id !== 'string') return [];
  if (!ENV_IDS.includes(id)) return [`env.id: unknown env '${id}'; ${suggestion(id, ENV_IDS)}(known: ${ENV_IDS.join(', ')})`];
  const opts = typeof options === 'object' && options !== null ? (options as Record<string, unknown>) : {};
  const names = envOptionNames(id);
  return envOptionProblems(id, opts).map((p) =>
    p.key === undefined
      ? `env.options: ${p.message}`
      : names.includes(p.key)
        ? `env.options.${p.key}: ${p.message}`
        : `env.options.${p.key}: unknown option of ${id}; ${suggestion(p.key, names)}(valid: ${names.join(', ')})`,
  );
}
