/**
 * The `rxrl` command line.
 *
 *   rxrl run FILE [--set k=v ...] [--out DIR] [--resume DIR] [--tensorboard]   train; writes a run directory
 *   rxrl validate FILE [--set k=v ...]                         decode a pipeline file, print the resolved config
 *   rxrl eval CHECKPOINT [--episodes N]                        evaluate a run's checkpoint
 *   rxrl list                                                  pipelines, envs and operators
 *   rxrl report DIR [DIR ...] [--out OUT] [--title T]          HTML + PNG learning curves
 *   rxrl actor --broker URL --run NAME                         an actor of a run over Redis
 *   rxrl replay DIR [--out OUT]                                a run with actors (--archive) again, from its archive
 *
 * Errors print one clear message (every bad path of a pipeline file) and exit non-zero:
 * 1 for bad input or a failed run, 2 for a usage error, 130 after a second Ctrl-C. A stack trace
 * is printed only for an unexpected error (a bug) or with `--debug` (any command).
 */
import { parseArgs } from 'node:util';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import { ENV_IDS } from '../lib/envs/registry.ts';
import { MODELS } from '../lib/models/registry.ts';
import { formatNumber, type MetricsSink } from '../operators/metrics.ts';
import { PIPELINES, getPipeline } from './registry.ts';
import { runPipeline, validatePipelineFile, CHECKPOINT_FILE } from './runner.ts';
import { readCheckpointBytes, readCheckpointFile } from '../lib/io/checkpoint.ts';
import { wantsActors, type AsyncRunOptions } from './async/runtime.ts';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const USAGE = `usage:
  rxrl run FILE [--set key=value ...] [--out DIR] [--resume DIR] [--tensorboard]
           [--actors N | --broker redis://HOST:PORT [--run NAME]] [--max-staleness K] [--stale drop|keep] [--queue N] [--archive]
  rxrl run --resume DIR [--set iterations=N] [--actors N | --broker URL]
  rxrl actor --broker redis://HOST:PORT --run NAME [--name ID] [--claim-after MS] [--batch K]
  rxrl replay DIR [--out OUT]        (DIR: a run with --archive; OUT default DIR-replay)
  rxrl validate FILE [--set key=value ...]
  rxrl eval CHECKPOINT [--episodes N]
  rxrl list
  rxrl report DIR [DIR ...] [--out OUT] [--title TITLE]
  --debug (any command): print the stack trace of an error`;

const KEY_METRICS = ['reward/mean', 'cost/mean', 'lambda', 'eval/return', 'eval/normalized_score'];

/** A progress bar (TTY) or one line every few iterations (logs), fed as a metrics sink. */
export function progressSink(total: number, first: number, stream: NodeJS.WriteStream = process.stderr): MetricsSink {
  if (stream.isTTY) {
    const bar = new SingleBar(
      { format: 'done {value}/{total} iterations {bar} {percentage}% | ETA {eta_formatted} | {metrics}', stream, hideCursor: true, etaBuffer: 5 },
      Presets.shades_classic,
    );
    bar.start(total, first, { metrics: '' });
    return {
      write: (m) => {
        const shown = KEY_METRICS.filter((k) => m[k] !== undefined)
          .map((k) => `${k} ${formatNumber(m[k]!)}`)
          .join('  ');
        bar.update(m.iteration + 1, { metrics: shown });
      },
      close: () => bar.stop(),
    };
  }
  const t0 = Date.now();
  const every = Math.max(1, Math.round(total / 20));
  return {
    write: (m) => {
      if ((m.iteration + 1) % every !== 0 && m.iteration + 1 !== total) return;
      const done = m.iteration + 1 - first;
      const eta = done > 0 ? ((Date.now() - t0) / done) * (total - m.iteration - 1) : 0;
      const shown = KEY_METRICS.filter((k) => m[k] !== undefined)
        .map((k) => `${k} ${formatNumber(m[k]!)}`)
        .join('  ');
      stream.write(`iteration ${m.iteration} (${m.iteration + 1}/${total} done)  ETA ${Math.round(eta / 1000)}s  ${shown}\n`);
    },
  };
}

/** A two-column table of name/value rows. */
export function table(rows: [string, string][], title?: string): string {
  const w = Math.max(...rows.map((r) => r[0].length), 6);
  const v = Math.max(...rows.map((r) => r[1].length), 5);
  const line = `+${'-'.repeat(w + 2)}+${'-'.repeat(v + 2)}+`;
  const out = [line, `| ${'metric'.padEnd(w)} | ${'value'.padStart(v)} |`, line, ...rows.map(([a, b]) => `| ${a.padEnd(w)} | ${b.padStart(v)} |`), line];
  return (title ? `${title}\n` : '') + out.join('\n');
}

async function cmdRun(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      set: { type: 'string', multiple: true },
      out: { type: 'string' },
      resume: { type: 'string' },
      tensorboard: { type: 'boolean' },
      actors: { type: 'string' },
      broker: { type: 'string' },
      run: { type: 'string' },
      'max-staleness': { type: 'string' },
      stale: { type: 'string' },
      queue: { type: 'string' },
      archive: { type: 'boolean' },
    },
  });
  if (positionals.length > 1) throw new UsageError(`run takes one pipeline file, got ${positionals.length}`);
  const asyncOpts = asyncOptions(values);
  const file = positionals[0];
  if (!file && !values.resume) throw new UsageError('run needs a pipeline file (or --resume DIR)');
  if (values.out && values.resume) throw new UsageError('--out and --resume are exclusive (a resumed run writes to its own directory)');
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    process.stderr.write('\nrxrl: stopping after the current update (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  try {
    // The progress sink needs the total, known only after the config resolves: a small wrapper.
    let bar: MetricsSink | undefined;
    const lazy: MetricsSink = {
      write: (m) => {
        bar ??= progressSink(Number(config.iterations), m.iteration);
        bar.write(m);
      },
      close: () => bar?.close?.(),
    };
    let config: Record<string, unknown> = {};
    const outcome = await runPipeline({
      ...(file ? { file } : {}),
      ...(values.set ? { sets: values.set } : {}),
      ...(values.out ? { out: values.out } : {}),
      ...(values.resume ? { resume: values.resume } : {}),
      ...(values.tensorboard ? { tensorboard: true } : {}),
      ...(asyncOpts ? { async: asyncOpts } : {}),
      sinks: [lazy],
      shouldStop: () => stop,
      onConfig: (c) => (config = c),
    });
    const rows: [string, string][] = Object.entries(outcome.result.summary).map(([k, v]) => [k, formatNumber(v)]);
    console.log(
      table(
        rows,
        `\n${String(outcome.config['pipeline'])} · seed ${outcome.config.seed} · ${outcome.result.lastIteration + 1}/${outcome.config.iterations} iterations${outcome.stopped ? ' (stopped)' : ''}`,
      ),
    );
    console.log(`run directory: ${outcome.runDir}`);
    return outcome.stopped ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

function intFlag(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name}: expected an integer ≥ ${min}, got ${v}`);
  return n;
}

/** The async flags of `run` (undefined: none given). */
function asyncOptions(values: Record<string, string | boolean | string[] | undefined>): AsyncRunOptions | undefined {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const stale = str('stale');
  if (stale !== undefined && stale !== 'drop' && stale !== 'keep') throw new UsageError(`--stale: expected drop or keep, got ${stale}`);
  const actors = intFlag('actors', str('actors'), 0);
  const out: AsyncRunOptions = {
    ...(actors !== undefined ? { actors } : {}),
    ...(str('broker') !== undefined ? { broker: str('broker')! } : {}),
    ...(str('run') !== undefined ? { run: str('run')! } : {}),
    ...(str('max-staleness') !== undefined ? { maxStaleness: intFlag('max-staleness', str('max-staleness'), 0)! } : {}),
    ...(stale ? { stale } : {}),
    ...(str('queue') !== undefined ? { queue: intFlag('queue', str('queue'), 1)! } : {}),
    ...(values['archive'] === true ? { archive: true } : {}),
  };
  if (out.actors !== undefined && out.actors > 0 && out.broker !== undefined)
    throw new UsageError('--actors and --broker are exclusive (with a broker, start actors with rxrl actor)');
  const needsActors = out.run !== undefined || out.maxStaleness !== undefined || out.stale !== undefined || out.queue !== undefined || out.archive;
  if (needsActors && !wantsActors(out)) throw new UsageError('--run, --max-staleness, --stale, --queue and --archive need --actors N (N ≥ 1) or --broker URL');
  return Object.keys(out).length > 0 ? out : undefined;
}

async function cmdActor(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      broker: { type: 'string' },
      run: { type: 'string' },
      name: { type: 'string' },
      'claim-after': { type: 'string' },
      batch: { type: 'string' },
      embedded: { type: 'boolean' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`actor takes no positional arguments, got ${positionals.join(' ')}`);
  const { initBackend } = await import('../lib/backend.ts');
  const { runActor } = await import('./async/actor.ts');
  let transport: import('../lib/async/transport.ts').ActorTransport;
  let batch: number | undefined;
  if (values.embedded && values.batch !== undefined)
    throw new UsageError('actor --embedded: --batch is not an option (the learner hands each child its share)');
  if (values.embedded) {
    const { embeddedActor } = await import('../lib/async/embedded.ts');
    transport = embeddedActor(values.name ?? `actor-${process.pid}`);
  } else {
    if (!values.broker) throw new UsageError('actor needs --broker redis://HOST:PORT');
    if (!values.run) throw new UsageError('actor needs --run NAME (the learner prints it; default: its run directory name)');
    const { redisActor } = await import('../lib/async/redis.ts');
    const claim = intFlag('claim-after', values['claim-after'], 0);
    batch = intFlag('batch', values.batch, 1);
    transport = redisActor(values.broker, values.run, {
      ...(values.name ? { name: values.name } : {}),
      ...(claim !== undefined ? { claimAfterMs: claim } : {}),
    });
  }
  await initBackend({ quiet: true });
  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
  };
  process.on('SIGINT', onSignal);
  try {
    const { groups } = await runActor(transport, { shouldStop: () => stop, ...(batch !== undefined ? { batch } : {}) });
    if (!values.embedded) console.log(`rxrl actor ${transport.name}: ${groups} groups published to ${transport.where}`);
    return stop ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
  }
}

async function cmdReplay(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' } } });
  if (positionals.length !== 1) throw new UsageError('replay takes one run directory (a run made with --archive)');
  const dir = positionals[0]!.replace(/\/+$/, '');
  const { replayRun } = await import('./async/replay.ts');
  const out = values.out ?? `${dir}-replay`;
  const r = await replayRun(dir, { out });
  if (r.difference) {
    console.error(`rxrl replay: ${r.runDir} differs from ${dir}: ${r.difference}`);
    return 1;
  }
  console.log(
    `rxrl replay: ${r.iterations} iterations fed ${dir}'s archived groups in its order: metrics.jsonl identical (timing keys aside: time/…, async/learner_idle_frac, async/queue_depth)`,
  );
  console.log(`run directory: ${r.runDir}`);
  return 0;
}

/** Input files a valid config names that do not exist (yet): `run` refuses them, `validate` only notes them. */
function missingFiles(config: Record<string, unknown>): string[] {
  const at = (k: string, f: string) => {
    const o = config[k];
    const v = typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[f] : undefined;
    return typeof v === 'string' ? v : undefined;
  };
  const out: string[] = [];
  for (const [k, f] of [
    ['data', 'path'],
    ['base', 'checkpoint'],
  ] as const) {
    const path = at(k, f);
    if (path !== undefined && !existsSync(path)) out.push(`${k}.${f}: ${path} does not exist (yet); run refuses the file until it does`);
  }
  return out;
}

function cmdValidate(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { set: { type: 'string', multiple: true } } });
  if (positionals.length !== 1) throw new UsageError('validate takes one pipeline file');
  const { pipeline, config } = validatePipelineFile(positionals[0]!, values.set ?? []);
  console.log(`${positionals[0]}: valid ${pipeline} pipeline`);
  for (const note of missingFiles(config)) console.error(`note: ${note}`);
  console.log(JSON.stringify(config, null, 2));
  return 0;
}

async function cmdEval(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { episodes: { type: 'string' } } });
  if (positionals.length !== 1) throw new UsageError('eval takes one checkpoint (a run directory or its checkpoint.safetensors)');
  let path = positionals[0]!;
  if (existsSync(join(path, CHECKPOINT_FILE))) path = join(path, CHECKPOINT_FILE);
  const episodes = values.episodes === undefined ? undefined : Number(values.episodes);
  if (episodes !== undefined && (!Number.isInteger(episodes) || episodes < 1))
    throw new UsageError(`--episodes: expected a positive integer, got ${values.episodes}`);
  const source = { bytes: await readCheckpointFile(path), label: path };
  const ck = await readCheckpointBytes(source.bytes, { label: path });
  const config = ck.config as Record<string, unknown>;
  const def = getPipeline(config['pipeline'], `${path}: config.pipeline`).decode({ ...config, iterations: 1 }, `${path}: config`);
  if (!def.evaluate) throw new UsageError(`pipeline ${def.name} has no evaluation`);
  const { initBackend } = await import('../lib/backend.ts');
  await initBackend();
  const result = await def.evaluate(source, episodes);
  console.log(
    table(
      Object.entries(result).map(([k, v]) => [k, formatNumber(v)]),
      `${def.name} checkpoint ${path} (${dirname(path)})`,
    ),
  );
  return 0;
}

async function cmdList(): Promise<number> {
  const { OPERATOR_NAMES } = await import('../operators/index.ts');
  console.log('pipelines:');
  for (const p of Object.values(PIPELINES)) console.log(`  ${p.name.padEnd(16)} ${p.description}`);
  console.log('envs:');
  console.log(`  ${ENV_IDS.join(', ')}`);
  console.log('models:');
  for (const [k, m] of Object.entries(MODELS)) console.log(`  ${k.padEnd(20)} ${m.description}`);
  console.log('operators:');
  console.log(`  ${OPERATOR_NAMES.join(', ')}`);
  return 0;
}

/**
 * Errors a user can cause (bad files, bad flags, a run directory or checkpoint that does not fit):
 * one line, no stack. Any other class is a bug and prints its stack.
 */
export const USER_ERRORS: readonly string[] = [
  'ConfigError',
  'RunError',
  'CheckpointError',
  'DecodeError',
  'SafetensorsError',
  'UnknownEnvError',
  'InvalidActionError',
  'EnvStateError',
  'NonFiniteUpdateError',
  'BackendError',
  'ReportError',
  'D4rlError',
  'Hdf5Error',
  'AsyncError',
  'WeightsError',
];

export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const [cmd, ...rest] = argv.filter((a) => a !== '--debug');
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'validate':
        return cmdValidate(rest);
      case 'eval':
        return await cmdEval(rest);
      case 'actor':
        return await cmdActor(rest);
      case 'replay':
        return await cmdReplay(rest);
      case 'list':
        return await cmdList();
      case 'report':
        if (rest.length === 0) throw new UsageError('report needs at least one run directory');
        // Loaded on demand: the chart renderer is the slowest import of the CLI.
        await (await import('./report/index.ts')).reportCommand(rest);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    const err = e as Error;
    if (
      err instanceof UsageError ||
      (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
      (err as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'
    ) {
      process.stderr.write(`rxrl: ${debug ? (err.stack ?? err.message) : err.message}\n${USAGE}\n`);
      return 2;
    }
    if (!(err instanceof Error)) {
      process.stderr.write(`rxrl: internal error: ${String(e)}\n`);
      return 1;
    }
    if (debug) process.stderr.write(`rxrl: ${err.stack ?? err.message}\n`);
    else if (USER_ERRORS.includes(err.name)) process.stderr.write(`rxrl: ${err.message}\n`);
    else process.stderr.write(`rxrl: internal error (a bug; please report it with this trace):\n${err.stack ?? err.message}\n`);
    return 1;
  }
}
