/**
 * The replay transport: a learner's end that hands out the entries of a run's archive
 * (DIR/entries.jsonl, written with `rxrl run … --archive`), in the order that run's learner took
 * them, and nothing else — no actors, no server. A fresh learner fed them makes the same decisions
 * (the same groups consumed, skipped as duplicates or dead-lettered) and, its computation being
 * deterministic, the same updates: `rxrl replay DIR` checks that its metrics are the run's.
 *
 * Tasks and weights it is given go nowhere; asking for an entry past the archive's end is an error
 * naming the archive (the run it came from stopped earlier, or its archive is incomplete).
 *
 * ```ts
 * const transport = replayLearner(readArchive('runs/r1/entries.jsonl'), 'runs/r1/entries.jsonl');
 * await transport.open(info, { kind: 'fresh' }, { maxQueue: 4 });
 * const first = await transport.next(1000);     // the first entry the run's learner took
 * ```
 */
import { existsSync, readFileSync } from 'node:fs';
import { AsyncError, type ArchivedEntry, type LearnerTransport } from './transport.ts';

/**
 * Reads an archive (one `{ iteration, id, text, published? }` per line; a torn last line, from a crash, is
 * skipped). A missing file or a bad line is an `AsyncError` naming the file and the line.
 */
export function readArchive(path: string): ArchivedEntry[] {
  if (!existsSync(path)) throw new AsyncError(`${path}: no such archive (run the learner with --archive to write one)`);
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const out: ArchivedEntry[] = [];
  lines.forEach((l, i) => {
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      if (i === lines.length - 1) return;
      throw new AsyncError(`${path}:${i + 1}: not JSON`);
    }
    const r = v as Partial<Record<keyof ArchivedEntry, unknown>>;
    if (
      typeof r !== 'object' ||
      r === null ||
      !Number.isInteger(r.iteration) ||
      typeof r.id !== 'string' ||
      typeof r.text !== 'string' ||
      (r.published !== undefined && !Number.isInteger(r.published))
    )
      throw new AsyncError(`${path}:${i + 1}: expected { iteration, id, text, published? }, got ${l.slice(0, 80)}`);
    out.push({ iteration: r.iteration as number, id: r.id, text: r.text, ...(r.published !== undefined ? { published: r.published as number } : {}) });
  });
  return out;
}

/** The learner's end over an archive (see the module comment); `taken` counts the entries handed out. */
export function replayLearner(entries: readonly ArchivedEntry[], where: string): LearnerTransport & { readonly taken: number } {
  let at = 0;
  return {
    where,
    persistent: false,
    get taken() {
      return at;
    },
    async open(_info, mode) {
      if (mode.kind !== 'fresh') throw new AsyncError(`${where}: a replay starts afresh (replay the whole run again instead of resuming it)`);
      at = 0;
    },
    async publishTasks() {},
    async publishWeights() {},
    async next() {
      const e = entries[at];
      if (!e)
        throw new AsyncError(
          `${where}: the archive ends after ${entries.length} entries, but the learner asks for another (the archived run stopped earlier, or its archive is incomplete)`,
        );
      at++;
      return { id: e.id, text: e.text };
    },
    async ack() {},
    async deadLetter() {},
    async queueDepth() {
      return 0;
    },
    // The answer the archived run's transport gave for the entry just handed out.
    async tasksPublished() {
      return entries[at - 1]?.published;
    },
    async commit() {},
    async close() {},
  };
}
