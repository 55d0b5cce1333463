/**
 * The asynchronous actor–learner over a real redis-server (started here on a free loopback port,
 * AOF on): one learner and two actors (`rxrl run … --broker`, `rxrl actor …`, separate processes).
 * Mid-run one actor is killed with SIGKILL while it holds a task, and restarted; later the learner
 * is killed with SIGKILL and resumed from its run directory. The run must finish with every
 * iteration's metrics once, every consumed group id once in consumed.jsonl, M groups per
 * iteration, and no task lost: every task below the highest consumed one is either consumed or
 * still waiting in Redis (a group in the stream, or a task not yet done).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisServerMissing, startRedis } from './helpers/redis-server.ts';
import { readConsumed } from '../pipelines/async/runtime.ts';

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
    let learner = start(['run', 'pipelines/examples/grpo-cartpole.yaml', ...SETS, '--broker', redis.url, '--run', 'r1', '--out', runDir]);
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
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
