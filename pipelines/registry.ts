/**
 * Pipelines by name: what a pipeline file's `pipeline:` key selects, what `rxrl list` prints.
 *
 * A pipeline registers its file codec (every key optional, unknown keys rejected), the function
 * that fills in its defaults (the same defaults the TypeScript API uses) and its run function.
 * `decodePipelineConfig(raw, sets)` turns a raw file object plus `--set` overrides into the typed,
 * fully resolved config, or throws a `ConfigError` listing every bad path.
 */
import type * as t from 'io-ts';
import { isLeft } from 'fp-ts/lib/Either.js';
import { decode } from '../lib/codec.ts';
import type { MetricsSink } from '../operators/metrics.ts';
import { ConfigError, applySet, checkConfigTree, suggestion } from './config.ts';
import { ENV_IDS, envOptionNames, envOptionProblems } from '../lib/envs/registry.ts';
import type { PipelineContext, PipelineResult } from './context.ts';
import { GrpoControlFile, resolveGrpoControl, runGrpoControl, evaluateGrpoControl, type GrpoControlConfig } from './grpo-control.ts';

export interface PipelineDef<C extends { seed: number; iterations: number }> {
  readonly name: string;
  readonly description: string;
  readonly file: t.Type<unknown, unknown, unknown>;
  resolve(partial: unknown): C;
  run(config: C, sinks: MetricsSink[], ctx: PipelineContext): Promise<PipelineResult>;
  /** Evaluates the policy of a checkpoint written by this pipeline (`rxrl eval`). */
  evaluate?(config: C, checkpoint: string, episodes?: number): Promise<Record<string, number>>;
}

function define<C extends { seed: number; iterations: number }>(def: PipelineDef<C>): PipelineDef<C> {
  return def;
}

export const PIPELINES: Readonly<Record<string, PipelineDef<{ seed: number; iterations: number }>>> = {
  'grpo-control': define<GrpoControlConfig>({
    name: 'grpo-control',
    description: 'GRPO with reset-state groups on a control env with an MLP policy; optionally Lagrangian (constraint: {...})',
    file: GrpoControlFile as t.Type<unknown, unknown, unknown>,
    resolve: (p) => resolveGrpoControl(p as never),
    run: (config, sinks, ctx) => runGrpoControl(config, sinks, ctx),
    evaluate: (config, checkpoint, episodes) => evaluateGrpoControl(config, checkpoint, episodes),
  }) as unknown as PipelineDef<{ seed: number; iterations: number }>,
};

export function getPipeline(name: unknown, where = 'pipeline'): PipelineDef<{ seed: number; iterations: number }> {
  const names = Object.keys(PIPELINES);
  if (typeof name !== 'string') throw new ConfigError(`${where}: expected the name of a pipeline (${names.join(', ')}), got ${JSON.stringify(name) ?? 'nothing'}`);
  const def = PIPELINES[name];
  if (!def) throw new ConfigError(`${where}: unknown pipeline '${name}'; ${suggestion(name, names)}(known: ${names.join(', ')})`);
  return def;
}

/** Raw file object + `--set` overrides → the pipeline and its resolved config. */
export function decodePipelineConfig(
  raw: Record<string, unknown>,
  sets: readonly string[] = [],
  label = 'pipeline file',
): { def: PipelineDef<{ seed: number; iterations: number }>; config: { seed: number; iterations: number } & Record<string, unknown> } {
  const obj = structuredClone(checkConfigTree(raw, label));
  for (const s of sets) applySet(obj, s);
  const def = getPipeline(obj['pipeline'], `${label}: pipeline`);
  const problems: string[] = [];
  for (const k of ['seed', 'iterations']) if (!(k in obj)) problems.push(`${k}: required at the top level of every pipeline file`);
  const r = decode(def.file, obj);
  if (isLeft(r)) problems.push(...r.left);
  if (problems.length > 0 || isLeft(r)) throw invalid(label, def.name, problems);
  const config = def.resolve(r.right) as { seed: number; iterations: number } & Record<string, unknown>;
  problems.push(...envProblems(config['env']));
  if (problems.length > 0) throw invalid(label, def.name, problems);
  return { def, config };
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
