/**
 * Runs with actors through the runner: `--actors 0` writes the same metrics.jsonl as no flag (the
 * one-process path, bit for bit); `--actors 1` (a child process) finishes with every group consumed
 * once, M per iteration; the embedded transport with scripted children hands tasks out ahead, a
 * share ⌈maxQueue / N⌉ per child, and when a child is SIGKILLed holding tasks they are answered by
 * the others or its replacement, each once; tasks published after a weights version reach a child
 * only after that version's note; and bad input gets one clear message naming the broker, the run and the
 * field: an unreachable broker, a wrong password, a run name taken by another config, a pipeline
 * without an actor side.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPipeline } from '../pipelines/runner.ts';
import { readConsumed } from '../pipelines/async/runtime.ts';
import { embeddedLearner } from '../lib/async/embedded.ts';
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

/** A `node -e code` child on an IPC channel, as the embedded transport forks its actors. */
const ipcChild = (code: string): ChildProcess =>
  spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });

/**
 * A child speaking the embedded protocol: `hold` takes its tasks and never answers them (a child
 * about to die mid-group), otherwise each task is answered at once with the text `group <task>`.
 */
function scriptedChild(hold: boolean): ChildProcess {
  const code = `
    process.on('message', (m) => {
      if (m.type === 'run') process.send({ type: 'ready' });
      else if (m.type === 'task' && ${!hold}) process.send({ type: 'group', leaseId: m.lease.id, text: 'group ' + m.lease.task.task });
      else if (m.type === 'stop') process.exit(0);
    });`;
  return ipcChild(code);
}

test('embedded: tasks go out ahead, a share per child; a child SIGKILLed holding tasks is replaced and its tasks answered, none lost', {
  timeout: 30_000,
}, async () => {
  const spawned: ChildProcess[] = [];
  let readyCount = 0;
  // Child 0 first holds its tasks (it will be killed); its replacement answers them.
  const transport = embeddedLearner(2, (i) => {
    const c = scriptedChild(i === 0 && spawned.length < 2);
    c.on('message', (m: { type: string }) => {
      if (m.type === 'ready') readyCount++;
    });
    spawned.push(c);
    return c;
  });
  const info = { run: 'e1', pipeline: 'grpo-control', config: {}, configHash: 'h' };
  try {
    await transport.open(info, { kind: 'fresh' }, { maxQueue: 6 });
    // Both children ready (the learner has seen it too: it listens to the same event) before the tasks go out.
    while (readyCount < 2) await new Promise((r) => setTimeout(r, 10));
    await transport.publishTasks(
      Array.from({ length: 6 }, (_, n) => ({ task: n, groupId: `task/${n}`, start: { kind: 'seed' as const, envId: 'CartPole-v1', seed: n }, seed: n })),
    );
    // Child 1 answers its share (3 of the 6: ⌈6 / 2⌉ each), child 0 holds the other 3.
    const first: string[] = [];
    for (let k = 0; k < 3; k++) first.push((await transport.next(5000))?.text ?? 'none');
    assert.equal(await transport.next(300), undefined, 'a held task was answered');
    assert.equal(transport.restarts, 0);
    spawned[0]!.kill('SIGKILL');
    const rest: string[] = [];
    for (let k = 0; k < 3; k++) rest.push((await transport.next(5000))?.text ?? 'none');
    assert.deepEqual([...first, ...rest].sort(), Array.from({ length: 6 }, (_, n) => `group ${n}`).sort(), 'every task answered once');
    assert.equal(transport.restarts, 1);
    assert.equal(spawned.length, 3, 'the killed child was replaced');
  } finally {
    await transport.close(true);
    for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
});

/** A child that answers each task with the weights note it last received (version and file size). */
function weightsEchoChild(): ChildProcess {
  const code = `
    const { statSync } = require('node:fs');
    let seen = 'none';
    process.on('message', (m) => {
      if (m.type === 'run') process.send({ type: 'ready' });
      else if (m.type === 'weights') seen = m.version + ':' + statSync(m.path).size;
      else if (m.type === 'task') process.send({ type: 'group', leaseId: m.lease.id, text: m.lease.task.task + ' ' + seen });
      else if (m.type === 'stop') process.exit(0);
    });`;
  return ipcChild(code);
}

test('embedded: tasks published after a weights version reach the child after its note, with that version', {
  timeout: 30_000,
}, async () => {
  let ready = false;
  const transport = embeddedLearner(1, () => {
    const c = weightsEchoChild();
    c.on('message', (m: { type: string }) => {
      if (m.type === 'ready') ready = true;
    });
    return c;
  });
  try {
    await transport.open({ run: 'w1', pipeline: 'grpo-control', config: {}, configHash: 'h' }, { kind: 'fresh' }, { maxQueue: 8 });
    while (!ready) await new Promise((r) => setTimeout(r, 10));
    const task = (n: number) => ({ task: n, groupId: `task/${n}`, start: { kind: 'seed' as const, envId: 'CartPole-v1', seed: n }, seed: n });
    // Two versions of different sizes, each followed at once by tasks (no await between: the learner's
    // next update would start right away; an asynchronous write must not let the tasks overtake it).
    const v1 = new Uint8Array(3_000_000).fill(1);
    const v2 = new Uint8Array(1_000_000).fill(2);
    void transport.publishWeights(1, v1);
    void transport.publishTasks([task(0), task(1)]);
    void transport.publishWeights(2, v2);
    void transport.publishTasks([task(2)]);
    const got: string[] = [];
    for (let k = 0; k < 3; k++) got.push((await transport.next(5000))?.text ?? 'none');
    // Each task was sampled with the version published before it or a newer one (never none, never
    // older), and the file the note named held that version's bytes.
    const size: Record<string, number> = { 1: v1.length, 2: v2.length };
    const minVersion = [1, 1, 2];
    assert.equal(got.length, 3);
    for (const text of got) {
      const [task, note] = text.split(' ');
      assert.notEqual(note, 'none', `task ${task} reached the child before any weights note`);
      const [version, bytes] = note!.split(':').map(Number);
      assert.ok(version! >= minVersion[Number(task)]!, `task ${task} sampled with version ${version}, published after version ${minVersion[Number(task)]}`);
      assert.equal(bytes, size[version!], `version ${version}'s file`);
    }
  } finally {
    await transport.close(true);
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
