/**
 * Reproducibility given the consumed order: a `--actors 2 --archive` run of grpo-cartpole (two
 * child processes racing, so the order groups arrive in is the machine's), replayed by `replayRun`
 * — a fresh learner fed the archived entries in the logged order, no actors — gives the same
 * metrics.jsonl (timing keys aside), the same consumption log and the same final checkpoint, byte
 * for byte. The check is not vacuous: the same archive with two entries swapped replays to
 * different metrics (the same groups in another order make other minibatches), a truncated archive is refused naming it, and a run without an archive is
 * refused naming the flag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPipeline } from '../pipelines/runner.ts';
import { ENTRIES_FILE, readConsumed } from '../pipelines/async/runtime.ts';
import { isTimingKey, metricsDifference, replayRun } from '../pipelines/async/replay.ts';
import { readArchive } from '../lib/async/replay.ts';

const FILE = 'pipelines/examples/grpo-cartpole.yaml';
const M = 3;
const ITERATIONS = 4;
const SETS = [
  `iterations=${ITERATIONS}`,
  `algorithm.startsPerIteration=${M}`,
  'algorithm.groupSize=4',
  'evaluation.every=2',
  'evaluation.episodes=1',
  'checkpointEvery=2',
];

/** A copy of a run directory's inputs to a replay, with its archive lines rewritten by `edit`. */
function copyRun(from: string, to: string, edit: (lines: string[]) => string[]): void {
  mkdirSync(to, { recursive: true });
  for (const f of ['config.json', 'async.json', 'metrics.jsonl']) copyFileSync(join(from, f), join(to, f));
  const lines = readFileSync(join(from, ENTRIES_FILE), 'utf8').trim().split('\n');
  writeFileSync(join(to, ENTRIES_FILE), `${edit(lines).join('\n')}\n`);
}

test('a --actors 2 run replayed from its archive in the logged order: identical metrics (timings aside), consumption log and checkpoint', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-replay-'));
  try {
    const run = join(dir, 'run');
    await runPipeline({ file: FILE, sets: SETS, out: run, async: { actors: 2, archive: true } });
    const archive = readArchive(join(run, ENTRIES_FILE));
    const log = readConsumed(join(run, 'consumed.jsonl'));
    assert.equal(log.length, ITERATIONS * M);
    // Every consumed group's entry is archived, in the same order (the archive may hold more: duplicates, dead letters).
    assert.deepEqual(
      archive.filter((e) => log.some((l) => l.entry === e.id)).map((e) => e.id),
      log.map((l) => l.entry),
    );

    const replay = join(dir, 'replay');
    const r = await replayRun(run, { out: replay });
    assert.equal(r.iterations, ITERATIONS);
    assert.equal(r.difference, undefined, r.difference);
    const rows = (d: string) =>
      readFileSync(join(d, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number>);
    // The comparison covers the training metrics, and only timing keys are left out.
    const compared = Object.keys(rows(run)[2]!).filter((k) => !isTimingKey(k));
    for (const k of ['reward/mean', 'loss', 'grad_norm', 'policy_version', 'async/staleness_mean', 'async/actor_idle_frac', 'eval/return'])
      assert.ok(compared.includes(k), `${k} is not compared`);
    assert.deepEqual(Object.keys(rows(run)[2]!).filter(isTimingKey), ['async/queue_depth', 'async/learner_idle_frac']);
    assert.equal(readFileSync(join(replay, 'consumed.jsonl'), 'utf8'), readFileSync(join(run, 'consumed.jsonl'), 'utf8'));
    assert.ok(readFileSync(join(replay, 'checkpoint.safetensors')).equals(readFileSync(join(run, 'checkpoint.safetensors'))), 'checkpoints differ');

    // Another order is another run: swap the first two entries (both of iteration 0; the minibatches differ).
    const swapped = join(dir, 'swapped');
    copyRun(run, swapped, (lines) => [lines[1]!, lines[0]!, ...lines.slice(2)]);
    const s = await replayRun(swapped, { out: join(dir, 'swapped-replay') });
    assert.match(s.difference ?? '', /^iteration 0: /, `a swapped order replayed to the same metrics: ${s.difference}`);

    // A truncated archive ends before the learner is done.
    const short = join(dir, 'short');
    copyRun(run, short, (lines) => lines.slice(0, -1));
    await assert.rejects(
      replayRun(short, { out: join(dir, 'short-replay') }),
      (e: Error) => e.name === 'AsyncError' && e.message.includes(join(short, ENTRIES_FILE)) && /the archive ends after \d+ entries/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('replay needs an archive; metricsDifference names the first differing key and ignores timings', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-replay-'));
  try {
    const run = join(dir, 'plain');
    await runPipeline({ file: FILE, sets: ['iterations=1', 'algorithm.startsPerIteration=1', 'algorithm.groupSize=2', 'evaluation.every=1000'], out: run });
    await assert.rejects(replayRun(run, { out: join(dir, 'x') }), /no entries\.jsonl: only a run made with --archive/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const a = [{ iteration: 0, loss: 1, 'async/learner_idle_frac': 0.5, 'time/update_s': 2 }];
  assert.equal(metricsDifference(a, [{ iteration: 0, loss: 1, 'async/learner_idle_frac': 0.9, 'time/update_s': 3 }]), undefined);
  assert.equal(
    metricsDifference(a, [{ iteration: 0, loss: 1 + 2 ** -40, 'async/learner_idle_frac': 0.5 }]),
    `iteration 0: loss: 1 there vs ${1 + 2 ** -40} here`,
  );
  assert.equal(metricsDifference(a, []), 'rows: 1 there vs 0 here');
  assert.match(metricsDifference(a, [{ iteration: 0, kl: 1 }]) ?? '', /keys differ \(loss only there, kl only here\)/);
});
