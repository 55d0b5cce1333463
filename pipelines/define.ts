/**
 * What a pipeline is to the registry, the same under Node and in a browser: `definePipeline`
 * wraps a pipeline's config codec, the file codec derived from it (every key optional, unknown keys
 * rejected), the function that fills in its defaults, its cross-field checks, the metric names it
 * emits and its run function, and hides the config type behind closures (an existential), so a
 * registry holds pipelines of different config types without casts. `lookupPipeline` and
 * `decodeWith` turn a raw file object plus `--set` overrides into the resolved, checked pipeline of
 * a registry, or throw a `ConfigError` listing every bad path. The registry is pipelines/registry.ts
 * (the same under Node and in a browser).
 */
import type { ActorPart } from '../lib/async/transport.ts';
import type * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { decode } from '../lib/codec.ts';
import type { CheckpointSource } from '../lib/io/checkpoint-codec.ts';
import type { MetricsSink } from '../operators/metrics.ts';
import { ConfigError, applySet, checkConfigTree, suggestion, type DeepPartial } from './config.ts';
import { ENV_IDS, envOptionNames, envOptionProblems } from '../lib/envs/registry.ts';
import type { PipelineContext, PipelineResult } from './context.ts';

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
  evaluate?(config: C, checkpoint: CheckpointSource, episodes?: number): Promise<Record<string, number>>;
  /** The actor side of an asynchronous run (`rxrl run --actors N | --broker URL`, `rxrl actor`). */
  actor?(config: C): Promise<ActorPart>;
}

/** A pipeline with its config resolved: what the runner and `rxrl eval` use. */
export interface ResolvedPipeline {
  readonly name: string;
  readonly config: BaseConfig;
  run(sinks: MetricsSink[], ctx: PipelineContext): Promise<PipelineResult>;
  evaluate?(checkpoint: CheckpointSource, episodes?: number): Promise<Record<string, number>>;
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
        ...(evaluate ? { evaluate: (checkpoint: CheckpointSource, episodes?: number) => evaluate(config, checkpoint, episodes) } : {}),
        ...(actor ? { actor: () => actor(config) } : {}),
      };
    },
  };
}

/**
 * The pipeline `name` of `registry`, or a `ConfigError` at `where` naming the known ones.
 * @param registry Pipelines by name.
 * @param name The file's `pipeline:` value.
 * @param where The path for errors (`file: pipeline`).
 * @param elsewhere Names this registry lacks on purpose, with why (e.g. Node-only pipelines in a browser).
 * @returns The registered pipeline.
 */
export function lookupPipeline(
  registry: Readonly<Record<string, Pipeline>>,
  name: unknown,
  where: string,
  elsewhere?: { names: readonly string[]; why: string },
): Pipeline {
  const names = Object.keys(registry);
  if (typeof name !== 'string')
    throw new ConfigError(`${where}: expected the name of a pipeline (${names.join(', ')}), got ${JSON.stringify(name) ?? 'nothing'}`);
  const def = registry[name];
  if (def) return def;
  if (elsewhere?.names.includes(name)) throw new ConfigError(`${where}: '${name}' ${elsewhere.why} (here: ${names.join(', ')})`);
  throw new ConfigError(`${where}: unknown pipeline '${name}'; ${suggestion(name, names)}(known: ${names.join(', ')})`);
}

/**
 * Raw file object + `--set` overrides → the resolved pipeline (`def`) and its config.
 * @param lookup Finds the pipeline of the file's `pipeline:` value.
 * @param raw The parsed file (not changed).
 * @param sets `path=value` overrides, applied before decoding.
 * @param label The file's name, for errors.
 * @returns The resolved pipeline and its config.
 */
export function decodeWith(
  lookup: (name: unknown, where: string) => Pipeline,
  raw: Record<string, unknown>,
  sets: readonly string[],
  label: string,
): { def: ResolvedPipeline; config: BaseConfig } {
  const obj = structuredClone(checkConfigTree(raw, label));
  for (const s of sets) applySet(obj, s);
  const def = lookup(obj['pipeline'], `${label}: pipeline`).decode(obj, label);
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
