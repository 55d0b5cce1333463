/**
 * The learner's side of `rxrl run FILE --actors N` and `rxrl run FILE --broker URL`: the transport,
 * the run's async settings (DIR/async.json) and its consumption log (DIR/consumed.jsonl).
 *
 *   DIR/async.json       { run, transport, broker?, actors?, replayOf?, maxStaleness, stale, queue,
 *                        archive }: checked on resume
 *   DIR/consumed.jsonl   one line per consumed group, in consumption order: { iteration, groupId,
 *                        task, entry, actor, policyVersion, learnerVersion, rolloutMs, idleMs };
 *                        lines after the checkpoint are dropped on resume (they are consumed again,
 *                        identically)
 *   DIR/entries.jsonl    with `--archive`: every stream entry the learner took, in order, as
 *                        { iteration, id, text, published? } (the envelope as it arrived; what the
 *                        transport said of the run's published tasks, when asked); truncated on resume
 *                        like consumed.jsonl. `rxrl replay DIR` feeds it to a fresh learner
 *                        (`replay: DIR`, the replay transport), which must reproduce metrics.jsonl
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
import { readArchive, replayLearner } from '../../lib/async/replay.ts';
import { AsyncError, type ArchivedEntry, type LearnerTransport } from '../../lib/async/transport.ts';
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
  /** Archive every stream entry the learner takes (DIR/entries.jsonl), for `rxrl replay`. */
  archive?: boolean;
  /** A run directory written with `archive`: its entries, in its order, are the groups (no actors). */
  replay?: string;
}

/** Whether these options ask for actors at all (`--actors 0` does not). */
export function wantsActors(o: AsyncRunOptions | undefined): o is AsyncRunOptions {
  return o !== undefined && (o.broker !== undefined || o.replay !== undefined || (o.actors ?? 0) > 0);
}

interface Saved {
  run: string;
  transport: 'embedded' | 'redis' | 'replay';
  broker?: string;
  actors?: number;
  replayOf?: string;
  maxStaleness: number;
  stale: 'drop' | 'keep';
  queue: number | null;
  /** Absent in run directories written before archives existed (false). */
  archive?: boolean;
}

export const ASYNC_FILE = 'async.json';
export const CONSUMED_FILE = 'consumed.jsonl';
export const ENTRIES_FILE = 'entries.jsonl';

function readSaved(path: string): Saved {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Saved;
  } catch (e) {
    throw new AsyncError(`${path}: cannot read the run's async settings (${(e as Error).message})`);
  }
}

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
  const saved = run.resume && existsSync(asyncPath) ? readSaved(asyncPath) : undefined;
  if ([opts.broker !== undefined, (opts.actors ?? 0) > 0, opts.replay !== undefined].filter(Boolean).length > 1)
    throw new AsyncError('--actors, --broker and --replay are exclusive (with a broker, start actors with rxrl actor)');
  const transportKind = opts.broker !== undefined ? 'redis' : opts.replay !== undefined ? 'replay' : 'embedded';
  if (opts.broker !== undefined) checkBrokerUrl(opts.broker);
  // A replay takes the archived run's name and settings: its groups were made under them.
  let archived: { saved: Saved; entries: ArchivedEntry[]; path: string } | undefined;
  if (opts.replay !== undefined) {
    if (run.resume) throw new AsyncError(`a replay starts afresh: replay ${opts.replay} into a new directory instead of resuming ${run.runDir}`);
    const from = join(opts.replay, ASYNC_FILE);
    if (!existsSync(from)) throw new AsyncError(`${opts.replay}: no ${ASYNC_FILE} (not a run with actors: nothing to replay)`);
    const path = join(opts.replay, ENTRIES_FILE);
    archived = { saved: readSaved(from), entries: readArchive(path), path };
    for (const k of ['run', 'maxStaleness', 'stale', 'queue'] as const)
      if (opts[k] !== undefined && opts[k] !== archived.saved[k])
        throw new AsyncError(`--replay ${opts.replay}: ${k} is the archived run's (${JSON.stringify(archived.saved[k])}), got ${JSON.stringify(opts[k])}`);
  }
  const base = archived?.saved ?? saved;
  const name = opts.run ?? base?.run ?? basename(run.runDir);
  checkRunName(name);
  const settings: Saved = {
    run: name,
    transport: transportKind,
    ...(opts.broker !== undefined ? { broker: redactUrl(opts.broker) } : opts.replay !== undefined ? { replayOf: opts.replay } : { actors: opts.actors ?? 0 }),
    maxStaleness: opts.maxStaleness ?? base?.maxStaleness ?? MAX_STALENESS_DEFAULTS.maxStaleness,
    stale: opts.stale ?? base?.stale ?? MAX_STALENESS_DEFAULTS.stale,
    queue: opts.queue ?? base?.queue ?? null,
    archive: archived ? false : (opts.archive ?? saved?.archive ?? false),
  };
  if (saved) {
    for (const k of ['run', 'transport', 'maxStaleness', 'stale', 'queue', 'archive'] as const) {
      if (k === 'archive' && saved.archive === undefined && !settings.archive) continue;
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
  const entriesPath = join(run.runDir, ENTRIES_FILE);
  if (settings.archive) {
    const keptEntries = run.resume && existsSync(entriesPath) ? readArchive(entriesPath).filter((r) => r.iteration < run.done) : [];
    writeFileAtomicSync(entriesPath, keptEntries.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  const transport = archived
    ? replayLearner(archived.entries, `replay of ${archived.path}`)
    : opts.broker !== undefined
      ? redisLearner(opts.broker, name)
      : embeddedLearner(opts.actors ?? 0, spawnEmbeddedActor);
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
      archive: settings.archive
        ? (r) =>
            appendFileSync(
              entriesPath,
              `${JSON.stringify({ iteration: r.iteration, id: r.id, text: r.text, ...(r.published !== undefined ? { published: r.published } : {}) })}\n`,
            )
        : undefined,
    },
    close: (finished) => transport.close(finished),
  };
}
