/**
 * The learner's side of `rxrl run FILE --actors N` and `rxrl run FILE --broker URL`: the transport,
 * the run's async settings (DIR/async.json) and its consumption log (DIR/consumed.jsonl).
 *
 *   DIR/async.json       { run, transport, broker?, actors?, maxStaleness, stale, queue }: checked on resume
 *   DIR/consumed.jsonl   one line per consumed group, in consumption order: { iteration, groupId,
 *                        task, entry, actor, policyVersion, learnerVersion }; lines after the
 *                        checkpoint are dropped on resume (they are consumed again, identically)
 *
 * ```ts
 * const rt = await asyncRuntime({ actors: 2 }, { runDir, pipeline: 'grpo-control', config, resume: false, done: 0 });
 * await def.run(sinks, { ...ctx, async: rt.context });
 * await rt.close(true);
 * ```
 */
import { fork, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../../lib/io/atomic.ts';
import { configHash } from '../../lib/async/config-hash.ts';
import { embeddedLearner } from '../../lib/async/embedded.ts';
import { checkBrokerUrl, checkRunName, redactUrl, redisLearner } from '../../lib/async/redis.ts';
import { AsyncError, type LearnerTransport } from '../../lib/async/transport.ts';
import type { ConsumedRecord } from '../../operators/consumeGroups.ts';
import { MAX_STALENESS_DEFAULTS, type MaxStalenessConfig } from '../../operators/maxStaleness.ts';
import type { AsyncLearnerContext } from '../context.ts';

/** How a run's groups are made: `--actors N` (children here) or `--broker URL` (Redis), and the lag bound. */
export interface AsyncRunOptions {
  /** N actor processes on this machine (0: one process, as without actors). */
  actors?: number;
  /** A Redis URL (`redis://[:password@]HOST:PORT[/db]`): actors join with `rxrl actor --broker URL --run NAME`. */
  broker?: string;
  /** The run's name on the broker (default: the run directory's name). */
  run?: string;
  maxStaleness?: number;
  stale?: 'drop' | 'keep';
  /** Groups in flight or waiting at most (default: one iteration's groups). */
  queue?: number;
}

/** Whether these options ask for actors at all (`--actors 0` does not). */
export function wantsActors(o: AsyncRunOptions | undefined): o is AsyncRunOptions {
  return o !== undefined && (o.broker !== undefined || (o.actors ?? 0) > 0);
}

interface Saved {
  run: string;
  transport: 'embedded' | 'redis';
  broker?: string;
  actors?: number;
  maxStaleness: number;
  stale: 'drop' | 'keep';
  queue: number | null;
}

export const ASYNC_FILE = 'async.json';
export const CONSUMED_FILE = 'consumed.jsonl';

/** The `pipelines/bin.mjs` a child actor runs (beside the sources, or at the package root for dist/). */
function binPath(): string {
  for (const rel of ['../bin.mjs', '../../../pipelines/bin.mjs']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new AsyncError('cannot find pipelines/bin.mjs to start actor processes');
}

/** Starts embedded actor `index`: `rxrl actor --embedded` over an IPC channel. */
export function spawnEmbeddedActor(index: number): ChildProcess {
  return fork(binPath(), ['actor', '--embedded', '--name', `actor-${index}`], {
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

/** Reads the consumption log (a torn last line, from a crash, is skipped). */
export function readConsumed(path: string): ConsumedRecord[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const out: ConsumedRecord[] = [];
  lines.forEach((l, i) => {
    try {
      out.push(JSON.parse(l) as ConsumedRecord);
    } catch {
      if (i !== lines.length - 1) throw new AsyncError(`${path}:${i + 1}: not JSON`);
    }
  });
  return out;
}

export interface AsyncRuntime {
  readonly context: AsyncLearnerContext;
  readonly transport: LearnerTransport;
  close(finished: boolean): Promise<void>;
}

/**
 * The transport and the files of an asynchronous run in `runDir`. `done` is the number of
 * iterations the resumed checkpoint holds (0 for a new run or a recomputed one): consumption log
 * lines of later iterations are dropped.
 */
export function asyncRuntime(
  opts: AsyncRunOptions,
  run: { runDir: string; pipeline: string; config: Record<string, unknown>; resume: boolean; continues: boolean; done: number },
): AsyncRuntime {
  const asyncPath = join(run.runDir, ASYNC_FILE);
  const saved = run.resume && existsSync(asyncPath) ? (JSON.parse(readFileSync(asyncPath, 'utf8')) as Saved) : undefined;
  const transportKind = opts.broker !== undefined ? 'redis' : 'embedded';
  if (opts.broker !== undefined && (opts.actors ?? 0) > 0)
    throw new AsyncError('--actors and --broker are exclusive (with a broker, start actors with rxrl actor)');
  if (opts.broker !== undefined) checkBrokerUrl(opts.broker);
  const name = opts.run ?? saved?.run ?? basename(run.runDir);
  checkRunName(name);
  const settings: Saved = {
    run: name,
    transport: transportKind,
    ...(opts.broker !== undefined ? { broker: redactUrl(opts.broker) } : { actors: opts.actors ?? 0 }),
    maxStaleness: opts.maxStaleness ?? saved?.maxStaleness ?? MAX_STALENESS_DEFAULTS.maxStaleness,
    stale: opts.stale ?? saved?.stale ?? MAX_STALENESS_DEFAULTS.stale,
    queue: opts.queue ?? saved?.queue ?? null,
  };
  if (saved) {
    for (const k of ['run', 'transport', 'maxStaleness', 'stale', 'queue'] as const) {
      if (saved[k] !== settings[k])
        throw new AsyncError(
          `cannot resume ${run.runDir}: ${ASYNC_FILE}: ${k} was ${JSON.stringify(saved[k])}, now ${JSON.stringify(settings[k])}; only the actors may change`,
        );
    }
  }
  writeFileAtomicSync(asyncPath, `${JSON.stringify(settings, null, 2)}\n`);
  const consumedPath = join(run.runDir, CONSUMED_FILE);
  const kept = run.resume ? readConsumed(consumedPath).filter((r) => r.iteration < run.done) : [];
  writeFileAtomicSync(consumedPath, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
  const transport = opts.broker !== undefined ? redisLearner(opts.broker, name) : embeddedLearner(opts.actors ?? 0, spawnEmbeddedActor);
  const staleness: MaxStalenessConfig = { maxStaleness: settings.maxStaleness, stale: settings.stale };
  return {
    transport,
    context: {
      transport,
      info: { run: name, pipeline: run.pipeline, config: run.config, configHash: configHash(run.config) },
      queue: settings.queue ?? undefined,
      staleness,
      resuming: run.resume && !run.continues,
      log: (r) => appendFileSync(consumedPath, `${JSON.stringify(r)}\n`),
    },
    close: (finished) => transport.close(finished),
  };
}
