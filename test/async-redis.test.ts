/**
 * The asynchronous actor–learner over a real redis-server (started here on a free loopback port,
 * AOF on with fsync on every write): one learner and two actors (`rxrl run … --broker`,
 * `rxrl actor …`, separate processes).
 *
 * 1. Mid-run one actor is killed with SIGKILL while it holds a task, and restarted; later the
 *    learner is killed with SIGKILL and resumed from its run directory. The run must finish with
 *    every iteration's metrics once, every consumed group id once in consumed.jsonl, M groups per
 *    iteration, and no task lost: every task below the highest consumed one is either consumed or
 *    still waiting in Redis (a group in the stream, or a task not yet done). The learner archived
 *    what it took (`--archive`): replayed in that order, it gives the same metrics (timings aside).
 * 2. Mid-run Redis itself goes away twice — a clean shutdown (SIGTERM), later a crash (SIGKILL) —
 *    and comes back on the same port and data directory, knowing only what its AOF kept. The run
 *    finishes with the same guarantees, and every group entry the server held before it went away
 *    (acknowledged to its actor) was taken by the learner or is still in the stream: none lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisServerMissing, startRedis, type TestRedis } from './helpers/redis-server.ts';
import { ENTRIES_FILE, readConsumed } from '../pipelines/async/runtime.ts';
import { replayRun } from '../pipelines/async/replay.ts';
import { readArchive } from '../lib/async/replay.ts';
import { redisLearner } from '../lib/async/redis.ts';

const skip = redisServerMissing();
const BIN = join(import.meta.dirname, '..', 'pipelines', 'bin.mjs');
const ITERATIONS = 10;
const M = 3;
const SETS = [
  `iterations=${ITERATIONS}`,
  `algorithm.startsPerIteration=${M}`,
  'algorithm.groupSize=8',
  'algorithm.update.epochs=2',
  'checkpointEvery=2',
  'evaluation.every=1000',
  'evaluation.episodes=1',
].flatMap((s) => ['--set', s]);

function rxrl(args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

const exited = (p: ChildProcess) =>
  new Promise<number | null>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve(p.exitCode) : p.once('exit', (c) => resolve(c))));

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const lines = (path: string) =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '').length
    : 0;

test('redis: 1 learner + 2 actors, an actor and the learner SIGKILLed and restarted: every group consumed once, none lost', {
  skip,
  timeout: 180_000,
}, async () => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-async-'));
  const runDir = join(dir, 'run');
  const procs: ChildProcess[] = [];
  const start = (args: string[]) => {
    const p = rxrl(args);
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    procs.push(p);
    return { p, err: () => err };
  };
  const actor = (name: string) => start(['actor', '--broker', redis.url, '--run', 'r1', '--name', name, '--claim-after', '1500']);
  try {
    let learner = start(['run', 'pipelines/examples/grpo-cartpole.yaml', ...SETS, '--broker', redis.url, '--run', 'r1', '--out', runDir, '--archive']);
    const a1 = actor('a1');
    actor('a2');
    const consumed = join(runDir, 'consumed.jsonl');
    await until('2 consumed groups', () => lines(consumed) >= 2);

    // Kill a1 while it holds a task (mid-group), then restart it under the same name.
    await until('a1 holding a task', async () => {
      const pending = (await redis.client.call('XPENDING', 'rxrl:r1:tasks', 'actors', '-', '+', '10', 'a1')) as unknown[];
      return pending.length > 0;
    });
    a1.p.kill('SIGKILL');
    await exited(a1.p);
    actor('a1');

    // Kill the learner after its second checkpoint (iteration 3), before the end, and resume it.
    const metrics = join(runDir, 'metrics.jsonl');
    await until('5 iterations', () => lines(metrics) >= 5);
    learner.p.kill('SIGKILL');
    await exited(learner.p);
    const killedAt = lines(metrics);
    assert.ok(killedAt < ITERATIONS, `the learner finished before it was killed (${killedAt} iterations)`);
    const before = readConsumed(consumed).length;
    learner = start(['run', '--resume', runDir, '--broker', redis.url]);
    const code = await exited(learner.p);
    assert.equal(code, 0, `resumed learner failed:\n${learner.err()}`);
    for (const p of procs) if (p !== learner.p) await exited(p); // actors end when the run is done

    const rows = readFileSync(metrics, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(
      rows.map((r) => r['iteration']),
      Array.from({ length: ITERATIONS }, (_, i) => i),
      'each iteration once',
    );
    const log = readConsumed(consumed);
    assert.ok(before > 0 && log.length >= ITERATIONS * M);
    const ids = log.map((r) => r.groupId);
    assert.equal(new Set(ids).size, ids.length, `a group id consumed twice: ${ids.join(' ')}`);
    for (let i = 0; i < ITERATIONS; i++) assert.equal(log.filter((r) => r.iteration === i).length, M, `iteration ${i}: M groups`);
    // The log is in stream order (entry ids increase).
    const entries = log.map((r) => r.entry);
    const cmp = (a: string, b: string) => {
      const [a0, a1n] = a.split('-').map(BigInt);
      const [b0, b1n] = b.split('-').map(BigInt);
      return a0! === b0! ? Number(a1n! - b1n!) : Number(a0! - b0!);
    };
    for (let i = 1; i < entries.length; i++) assert.ok(cmp(entries[i - 1]!, entries[i]!) < 0, `entries out of order at ${i}`);

    // No task lost: every task up to the highest consumed is consumed or still in Redis.
    const tasks = new Set(log.map((r) => r.task));
    const top = Math.max(...tasks);
    const inRedis = new Set<number>();
    const groups = (await redis.client.call('XRANGE', 'rxrl:r1:groups', '-', '+')) as [string, string[]][];
    for (const [, f] of groups) inRedis.add((JSON.parse(f[f.indexOf('envelope') + 1]!) as { task: number }).task);
    const waiting = (await redis.client.call('XRANGE', 'rxrl:r1:tasks', '-', '+')) as [string, string[]][];
    for (const [, f] of waiting) inRedis.add((JSON.parse(f[f.indexOf('task') + 1]!) as { task: number }).task);
    for (let n = 0; n <= top; n++) assert.ok(tasks.has(n) || inRedis.has(n), `task ${n} neither consumed nor in Redis: lost`);
    // The learner acked everything it consumed.
    const pel = (await redis.client.call('XPENDING', 'rxrl:r1:groups', 'learner')) as [number, ...unknown[]];
    const entriesAfter = groups.filter(([id]) => cmp(id, entries.at(-1)!) > 0).length;
    assert.ok(pel[0] <= entriesAfter, `the learner left ${pel[0]} consumed entries unacknowledged`);
    assert.equal(await redis.client.hget('rxrl:r1:meta', 'status'), 'done');

    // What the learner took, in its order (the entries re-taken after its resume once): replayed, the same run.
    const replay = await replayRun(runDir, { out: join(dir, 'replay') });
    assert.equal(replay.difference, undefined, replay.difference);
    assert.equal(replay.iterations, ITERATIONS);
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Group stream entries as (id, task). */
async function groupEntries(redis: TestRedis, run: string): Promise<{ id: string; task: number }[]> {
  const got = (await redis.client.call('XRANGE', `rxrl:${run}:groups`, '-', '+')) as [string, string[] | null][];
  return got.filter(([, f]) => f !== null).map(([id, f]) => ({ id, task: (JSON.parse(f![f!.indexOf('envelope') + 1]!) as { task: number }).task }));
}

test('redis restarted mid-run (a clean shutdown, then a crash; AOF, appendfsync always): the run finishes, every group consumed once, none lost', {
  skip,
  timeout: 180_000,
}, async () => {
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-async-restart-'));
  const runDir = join(dir, 'run');
  const procs: { p: ChildProcess; err: () => string }[] = [];
  const start = (args: string[]) => {
    const p = rxrl(args);
    let err = '';
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const h = { p, err: () => err };
    procs.push(h);
    return h;
  };
  try {
    const learner = start(['run', 'pipelines/examples/grpo-cartpole.yaml', ...SETS, '--broker', redis.url, '--run', 'r2', '--out', runDir, '--archive']);
    for (const name of ['a1', 'a2']) start(['actor', '--broker', redis.url, '--run', 'r2', '--name', name, '--claim-after', '1500']);
    const metrics = join(runDir, 'metrics.jsonl');
    const held = new Map<string, number>();
    for (const [rows, signal] of [
      [2, 'SIGTERM'],
      [5, 'SIGKILL'],
    ] as const) {
      await until(`${rows} iterations`, () => lines(metrics) >= rows);
      // Everything the server holds now was acknowledged to the actor that published it.
      for (const e of await groupEntries(redis, 'r2')) held.set(e.id, e.task);
      await redis.restart(signal, 300);
      assert.ok(lines(metrics) < ITERATIONS, `the run finished before Redis was restarted (${signal})`);
      assert.equal(await redis.client.exists('rxrl:r2:meta'), 1, `Redis lost the run on restart (${signal}): was the AOF read?`);
    }
    const code = await exited(learner.p);
    assert.equal(code, 0, `learner failed:\n${learner.err()}`);
    for (const h of procs) assert.equal(await exited(h.p), 0, `actor failed:\n${h.err()}`);

    const rows = readFileSync(metrics, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(
      rows.map((r) => r['iteration']),
      Array.from({ length: ITERATIONS }, (_, i) => i),
      'each iteration once',
    );
    const log = readConsumed(join(runDir, 'consumed.jsonl'));
    assert.equal(log.length, ITERATIONS * M);
    const ids = log.map((r) => r.groupId);
    assert.equal(new Set(ids).size, ids.length, `a group id consumed twice: ${ids.join(' ')}`);
    for (let i = 0; i < ITERATIONS; i++) assert.equal(log.filter((r) => r.iteration === i).length, M, `iteration ${i}: M groups`);

    // None lost: every entry held before a restart was taken by the learner (archive) or is still in the stream.
    const taken = new Set(readArchive(join(runDir, ENTRIES_FILE)).map((e) => e.id));
    const left = new Set((await groupEntries(redis, 'r2')).map((e) => e.id));
    assert.ok(held.size >= M, `only ${held.size} entries seen before the restarts`);
    for (const [id, task] of held) assert.ok(taken.has(id) || left.has(id), `entry ${id} (task ${task}) was held before a restart and is gone`);
    // No task lost: every task up to the highest consumed is consumed or still in Redis.
    const tasks = new Set(log.map((r) => r.task));
    const inRedis = new Set((await groupEntries(redis, 'r2')).map((e) => e.task));
    const waiting = (await redis.client.call('XRANGE', 'rxrl:r2:tasks', '-', '+')) as [string, string[]][];
    for (const [, f] of waiting) inRedis.add((JSON.parse(f[f.indexOf('task') + 1]!) as { task: number }).task);
    for (let n = 0; n <= Math.max(...tasks); n++) assert.ok(tasks.has(n) || inRedis.has(n), `task ${n} neither consumed nor in Redis: lost`);
    assert.equal(await redis.client.hget('rxrl:r2:meta', 'status'), 'done');
  } finally {
    for (const { p } of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('redis learner: entries a lost reply delivered come first, in stream order, once; a resumed learner gets all those after its position once', {
  skip,
  timeout: 30_000,
}, async () => {
  const redis = await startRedis();
  try {
    const info = { run: 'lost', pipeline: 'grpo-control', config: {}, configHash: 'h' };
    const learner = redisLearner(redis.url, 'lost');
    await learner.open(info, { kind: 'fresh' }, { maxQueue: 4 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(String(await redis.client.call('XADD', 'rxrl:lost:groups', '*', 'envelope', `e${i}`)));
    // A '>' read executed by the server whose reply never reached the learner (a restart in between).
    await redis.client.call('XREADGROUP', 'GROUP', 'learner', 'learner', 'COUNT', '2', 'STREAMS', 'rxrl:lost:groups', '>');
    for (const want of ['e0', 'e1']) {
      const e = await learner.next(200);
      assert.equal(e?.text, want);
      await learner.ack(e!);
    }
    assert.equal((await learner.next(200))?.text, 'e2');
    await learner.close(false);
    // Killed with e0 in its checkpoint (the position), e1 consumed after it and e2 received (still
    // pending): a resumed learner gets e1, e2, e3 once each, in order.
    const resumed = redisLearner(redis.url, 'lost');
    await resumed.open(info, { kind: 'resume', position: ids[0]! }, { maxQueue: 4 });
    const got: (string | undefined)[] = [];
    for (let i = 0; i < 4; i++) got.push((await resumed.next(200))?.text);
    assert.deepEqual(got, ['e1', 'e2', 'e3', undefined]);
    await resumed.close(true);
  } finally {
    await redis.stop();
  }
});
