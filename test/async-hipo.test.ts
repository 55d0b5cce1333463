/**
 * HIPO (a transformer pipeline) with actors, CI-sized (width-32 Llama, a 200-prompt suite, a base of
 * 20 SFT steps): each actor builds the suite and an untrained LM of the config's shape, loads the
 * learner's published weights and samples G completions of its task's prompt; the learner runs
 * returns → groupAdvantages → constraintCost → primalDual → policyUpdate on what it consumed.
 *
 * - `--actors 2 --archive`: every group consumed once, P per iteration, the LM rollout metrics and
 *   the multiplier in metrics.jsonl, every task's prompt the one the single process draws for the
 *   same position (the `prompts` stream), and the archive replayed in the logged order gives the
 *   same metrics (timings aside) and checkpoint;
 * - `--broker` with one `rxrl actor` process over a redis-server started here: the run finishes,
 *   every group consumed once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPipeline } from '../pipelines/runner.ts';
import { ENTRIES_FILE, readConsumed } from '../pipelines/async/runtime.ts';
import { replayRun } from '../pipelines/async/replay.ts';
import { readArchive } from '../lib/async/replay.ts';
import { decodeEnvelope } from '../lib/async/messages.ts';
import { Rng } from '../lib/random.ts';
import { makeSuite, promptStarts, taskOfSuite } from '../pipelines/hipo/common.ts';
import { resolveHipo } from '../pipelines/hipo/hipo.ts';
import { redisServerMissing, startRedis } from './helpers/redis-server.ts';

const FILE = 'pipelines/examples/hipo.yaml';
const P = 3;
const ITERATIONS = 3;
const SETS = [
  'suite.trainSize=200',
  'suite.evalSize=8',
  'suite.heldOutSize=8',
  'model.width=32',
  'evaluation.prompts=8',
  'evaluation.every=2',
  'base.iterations=20',
  `algorithm.promptsPerIteration=${P}`,
  'algorithm.groupSize=4',
  `iterations=${ITERATIONS}`,
  'checkpointEvery=2',
];
const rows = (d: string) =>
  readFileSync(join(d, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);

test('hipo --actors 2 --archive: every group once, LM metrics and λ, the prompts of the single process; replayed in the logged order, the same run', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-async-hipo-'));
  try {
    const run = join(dir, 'run');
    const r = await runPipeline({ file: FILE, sets: SETS, out: run, async: { actors: 2, archive: true } });
    assert.equal(r.result.lastIteration, ITERATIONS - 1);
    const log = readConsumed(join(run, 'consumed.jsonl'));
    assert.equal(log.length, ITERATIONS * P);
    assert.equal(new Set(log.map((l) => l.groupId)).size, log.length, 'a group consumed twice');
    for (let i = 0; i < ITERATIONS; i++) assert.equal(log.filter((l) => l.iteration === i).length, P, `iteration ${i}: P groups`);
    const m = rows(run);
    for (const k of ['rollout/tokens', 'length/mean', 'score/utility/mean', 'score/compliance/mean', 'lambda', 'constraint/violation', 'async/staleness_mean'])
      assert.ok(
        m.every((row) => Number.isFinite(row[k])),
        `metrics.jsonl lacks ${k}`,
      );
    assert.ok(m.every((row) => row['rollout/episodes'] === P * 4));

    // Task n's prompt is the n-th the single process draws from the same stream (P per iteration).
    const cfg = resolveHipo(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')));
    const task = taskOfSuite(makeSuite(cfg.suite));
    const starts = promptStarts(task, new Rng(cfg.seed, 'prompts'), P, cfg.algorithm.conflictShare);
    const expected = Array.from({ length: ITERATIONS + 1 }, (_, i) => starts(i).starts.map((s) => (s.kind === 'prompt' ? s.promptId : ''))).flat();
    for (const e of readArchive(join(run, ENTRIES_FILE))) {
      const env = decodeEnvelope(e.text);
      assert.ok(env._tag === 'Right', 'an archived entry does not decode');
      const start = env.right.group.start;
      assert.equal(start.kind, 'prompt');
      if (start.kind === 'prompt') assert.equal(start.promptId, expected[env.right.task], `task ${env.right.task}: another prompt`);
      assert.equal(env.right.group.trajectories.length, 4);
    }

    const replay = await replayRun(run, { out: join(dir, 'replay') });
    assert.equal(replay.difference, undefined, replay.difference);
    assert.ok(readFileSync(join(dir, 'replay', 'checkpoint.safetensors')).equals(readFileSync(join(run, 'checkpoint.safetensors'))), 'checkpoints differ');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hipo --broker: a learner and one rxrl actor over redis finish, every group once', { skip: redisServerMissing(), timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-async-hipo-'));
  const redis = await startRedis();
  const actor = spawn(process.execPath, [join(import.meta.dirname, '..', 'pipelines', 'bin.mjs'), 'actor', '--broker', redis.url, '--run', 'h1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  actor.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  actor.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  try {
    const run = join(dir, 'run');
    await runPipeline({ file: FILE, sets: SETS, out: run, async: { broker: redis.url, run: 'h1' } });
    const code = await new Promise<number | null>((resolve) => (actor.exitCode !== null ? resolve(actor.exitCode) : actor.once('exit', resolve)));
    assert.equal(code, 0, out);
    // It may have answered the tasks published ahead of the end (the queue) too.
    const published = Number(/: (\d+) groups published to redis:\/\/127\.0\.0\.1:\d+ run h1/.exec(out)?.[1]);
    assert.ok(published >= ITERATIONS * P, out);
    const log = readConsumed(join(run, 'consumed.jsonl'));
    assert.equal(log.length, ITERATIONS * P);
    assert.equal(new Set(log.map((l) => l.groupId)).size, log.length);
    assert.equal(rows(run).length, ITERATIONS);
  } finally {
    if (actor.exitCode === null) actor.kill('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
