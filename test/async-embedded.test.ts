/**
 * Runs with actors through the runner: `--actors 0` writes the same metrics.jsonl as no flag (the
 * one-process path, bit for bit); `--actors 1` (a child process) finishes with every group consumed
 * once, M per iteration; and bad input gets one clear message naming the broker, the run and the
 * field: an unreachable broker, a wrong password, a run name taken by another config, a pipeline
 * without an actor side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPipeline } from '../pipelines/runner.ts';
import { readConsumed } from '../pipelines/async/runtime.ts';
import { redisServerMissing, startRedis } from './helpers/redis-server.ts';

const FILE = 'pipelines/examples/grpo-cartpole.yaml';
const M = 2;
const SETS = ['iterations=2', `algorithm.startsPerIteration=${M}`, 'algorithm.groupSize=4', 'evaluation.every=1000', 'evaluation.episodes=1'];

const tmp = () => mkdtempSync(join(tmpdir(), 'rxrl-async-emb-'));

test('--actors 0 is the one-process run, bit for bit; --actors 1 consumes every group once', { timeout: 120_000 }, async () => {
  const dir = tmp();
  try {
    await runPipeline({ file: FILE, sets: SETS, out: join(dir, 'plain') });
    await runPipeline({ file: FILE, sets: SETS, out: join(dir, 'zero'), async: { actors: 0 } });
    assert.equal(readFileSync(join(dir, 'zero', 'metrics.jsonl'), 'utf8'), readFileSync(join(dir, 'plain', 'metrics.jsonl'), 'utf8'));

    const out = join(dir, 'one');
    const r = await runPipeline({ file: FILE, sets: SETS, out, async: { actors: 1 } });
    assert.equal(r.result.lastIteration, 1);
    const log = readConsumed(join(out, 'consumed.jsonl'));
    assert.equal(log.length, 2 * M);
    assert.equal(new Set(log.map((l) => l.groupId)).size, log.length);
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    for (const k of ['async/staleness_mean', 'async/dropped', 'async/queue_depth', 'async/actor_idle_frac', 'async/learner_idle_frac'])
      assert.ok(typeof rows[1]![k] === 'number', `metrics.jsonl lacks ${k}`);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'async.json'), 'utf8')), {
      run: 'one',
      transport: 'embedded',
      actors: 1,
      maxStaleness: 2,
      stale: 'drop',
      queue: null,
      archive: false,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad brokers and runs: one message naming the broker, the run and the field', { skip: redisServerMissing(), timeout: 60_000 }, async () => {
  const dir = tmp();
  const redis = await startRedis({ password: 's3cret' });
  try {
    await assert.rejects(
      runPipeline({ file: FILE, sets: SETS, out: join(dir, 'a'), async: { broker: 'redis://127.0.0.1:1', run: 'x' } }),
      (e: Error) => e.name === 'AsyncError' && /redis:\/\/127\.0\.0\.1:1 run x: cannot reach the broker/.test(e.message),
    );
    const wrong = redis.url.replace('s3cret', 'nope');
    await assert.rejects(
      runPipeline({ file: FILE, sets: SETS, out: join(dir, 'b'), async: { broker: wrong, run: 'x' } }),
      (e: Error) => e.name === 'AsyncError' && /run x: the broker refused the credentials/.test(e.message) && !e.message.includes('nope'),
    );
    // A run name already used by another config.
    await redis.client.hset('rxrl:taken:meta', 'info', JSON.stringify({ run: 'taken', pipeline: 'grpo-control', config: {}, configHash: 'other' }));
    await assert.rejects(runPipeline({ file: FILE, sets: SETS, out: join(dir, 'c'), async: { broker: redis.url, run: 'taken' } }), (e: Error) =>
      /run taken: meta\.configHash: the run on this broker was started with another config/.test(e.message),
    );
    await assert.rejects(
      runPipeline({ file: 'pipelines/examples/td3-pendulum.yaml', sets: ['iterations=1'], out: join(dir, 'd'), async: { actors: 1 } }),
      /pipeline td3 has no actor side yet: --actors and --broker work with grpo-control/,
    );
  } finally {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
