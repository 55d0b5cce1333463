/**
 * What every docs generator shares: run a pipeline through the CLI into a fixed directory, read
 * back its metrics and summary, and write generated blocks into a page between markers
 *
 *   <!-- gen:ID -->
 *   …generated text…
 *   <!-- /gen:ID -->
 *
 * so that every number of a page comes from one script (`npx tsx docs/gen/PAGE.ts`), and a check
 * (`npx tsx docs/gen/PAGE.ts --check`, run by `npm test` for the cheap rows) fails when the code
 * and the page disagree.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'pipelines', 'bin.mjs');

export type Row = Record<string, number>;

export interface Run {
  dir: string;
  metrics: Row[];
  summary: Record<string, number>;
}

/** `rxrl run FILE --set … --out DIR` from a clean directory; throws with the CLI's stderr on failure. */
export function runCli(file: string, sets: readonly string[], dir: string): Run {
  if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  const args = [BIN, 'run', join(ROOT, file), ...sets.flatMap((s) => ['--set', s]), '--out', dir];
  process.stderr.write(`$ rxrl run ${file}${sets.map((s) => ` --set ${s}`).join('')}\n`);
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`rxrl run ${file} failed (exit ${r.status}):\n${r.stderr}`);
  return readRun(dir);
}

export function readRun(dir: string): Run {
  const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Row);
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as Record<string, number>;
  return { dir, metrics, summary };
}

export const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
export const sum = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0);
/** Values of `key` over the rows that have it. */
export const column = (rows: readonly Row[], key: string): number[] => rows.filter((r) => typeof r[key] === 'number').map((r) => r[key]!);
/** A number as the tables print it: thousands separated, `digits` decimals. */
export const fmt = (x: number, digits = 1): string =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: true });

const block = (id: string) => new RegExp(`(<!-- gen:${id} -->\\n)([\\s\\S]*?)(<!-- /gen:${id} -->)`);

/** Replaces the text between the markers of each block; a missing marker is an error. */
export function writeBlocks(page: string, blocks: Record<string, string>): void {
  let md = readFileSync(page, 'utf8');
  for (const [id, text] of Object.entries(blocks)) {
    if (!block(id).test(md)) throw new Error(`${page}: no <!-- gen:${id} --> … <!-- /gen:${id} --> block`);
    md = md.replace(block(id), (_m, open: string, _old: string, close: string) => `${open}${text.endsWith('\n') ? text : `${text}\n`}${close}`);
  }
  writeFileSync(page, md);
}

/** The lines of `expected` missing from the page's block `id` (empty: the page agrees with the code). */
export function missingLines(page: string, id: string, expected: readonly string[]): string[] {
  const m = block(id).exec(readFileSync(page, 'utf8'));
  if (!m) return [`no <!-- gen:${id} --> block in ${page}`];
  const have = new Set(m[2]!.split('\n'));
  return expected.filter((l) => !have.has(l));
}

/** A run and its wall time (seconds, the whole CLI run). */
export interface TimedRun extends Run {
  wall: number;
}

/** The seconds a `{ seconds }` file (wall.json and the like) holds. */
export const secondsIn = (path: string): number => (JSON.parse(readFileSync(path, 'utf8')) as { seconds: number }).seconds;

/** A finished run in `dir` (summary.json and wall.json written), or undefined. */
export function readFinished(dir: string): TimedRun | undefined {
  if (!existsSync(join(dir, 'summary.json')) || !existsSync(join(dir, 'wall.json'))) return undefined;
  return { ...readRun(dir), wall: secondsIn(join(dir, 'wall.json')) };
}

/**
 * Runs pipelines/examples/`file` into `dir` unless its summary.json exists (a resumable table: finished
 * runs are read back); the wall time is kept in wall.json.
 */
export function runTimed(file: string, sets: readonly string[], dir: string): TimedRun {
  const done = readFinished(dir);
  if (done) return done;
  const t0 = performance.now();
  const r = runCli(`pipelines/examples/${file}`, sets, dir);
  const wall = (performance.now() - t0) / 1000;
  writeFileSync(join(dir, 'wall.json'), JSON.stringify({ seconds: wall }));
  return { ...r, wall };
}

/** `mean ± std` (sample std over seeds) of `xs`, or — when empty or not finite. */
export function meanStd(xs: readonly number[], digits: number): string {
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x))) return '—';
  const m = mean(xs);
  const s = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) : 0;
  return `${fmt(m, digits)} ± ${fmt(s, digits)}`;
}
