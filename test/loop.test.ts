/**
 * The shared iteration loop and the runner around it: resume after a torn metrics line, a resume
 * that would shrink the run, a directory whose only checkpoint was never written, the stop rule in
 * summary.json, the progress line's numbering, the checkpoint state's codec and the cross-field
 * checks that `validate` and `run` report before any run directory exists; pause and the viewer hook
 * of the context, and a checkpoint as bytes (the browser's) equal to the runner's file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../lib/backend.ts';
import { DecodeError } from '../lib/codec.ts';
import { runPipeline, readRunMetrics, CHECKPOINT_FILE } from '../pipelines/runner.ts';
import { ConfigError } from '../pipelines/config.ts';
import { decodeCheckpointState } from '../pipelines/loop.ts';
import { GrpoControlState, evaluateGrpoControl, runGrpoControl, type GrpoControlConfig } from '../pipelines/grpo-control.ts';
import { decodePipelineConfig } from '../pipelines/registry.ts';
import { readPipelineFile } from '../pipelines/config-file.ts';
import { runCheckpointBytes, runCheckpointOptions } from '../pipelines/run-checkpoint.ts';
import { saveCheckpoint } from '../lib/io/checkpoint.ts';
import { ParamStore } from '../lib/models/params.ts';
import { progressSink } from '../pipelines/cli.ts';

await initBackend({ quiet: true });

const FILE = join(import.meta.dirname, '..', 'pipelines', 'examples', 'grpo-cartpole.yaml');
const SMALL = ['algorithm.groupSize=4', 'algorithm.startsPerIteration=2', 'evaluation.episodes=1', 'policy.hidden=[8]'];
const tmp = mkdtempSync(join(tmpdir(), 'rxrl-loop-'));
const quiet = { shouldStop: () => false };

test('a torn last metrics line whose checkpoint exists is recomputed on resume, not lost', async () => {
  const dir = join(tmp, 'torn');
  await runPipeline({ file: FILE, sets: [...SMALL, 'iterations=3', 'checkpointEvery=1'], out: dir, ...quiet });
  const full = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
  const rows = readRunMetrics(dir);
  assert.equal(rows.length, 3);
  // A crash tore the last line (iteration 2) although checkpoint 2 was written.
  writeFileSync(join(dir, 'metrics.jsonl'), full.slice(0, full.length - 40));
  assert.equal(readRunMetrics(dir).length, 2);
  await runPipeline({ resume: dir, ...quiet });
  assert.deepEqual(readRunMetrics(dir), rows);
});

test('--resume with iterations below the completed count is refused and changes nothing', async () => {
  const dir = join(tmp, 'shrink');
  await runPipeline({ file: FILE, sets: [...SMALL, 'iterations=2'], out: dir, ...quiet });
  const config = readFileSync(join(dir, 'config.json'), 'utf8');
  const summary = readFileSync(join(dir, 'summary.json'), 'utf8');
  await assert.rejects(runPipeline({ resume: dir, sets: ['iterations=1'], ...quiet }), /has completed 2 iterations; iterations may only grow/);
  assert.equal(readFileSync(join(dir, 'config.json'), 'utf8'), config);
  assert.equal(readFileSync(join(dir, 'summary.json'), 'utf8'), summary);
  // Equal to the completed count: nothing to run, the summary keeps the last training metrics.
  await runPipeline({ resume: dir, ...quiet });
  assert.ok('reward/mean' in JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')));
});

test('a directory whose first checkpoint was never written (second Ctrl-C) resumes from the start', async () => {
  const dir = join(tmp, 'nockpt');
  await runPipeline({ file: FILE, sets: [...SMALL, 'iterations=2', 'checkpointEvery=0'], out: dir, ...quiet });
  const rows = readRunMetrics(dir);
  rmSync(join(dir, CHECKPOINT_FILE));
  await runPipeline({ resume: dir, ...quiet });
  assert.deepEqual(readRunMetrics(dir), rows);
  assert.ok(existsSync(join(dir, CHECKPOINT_FILE)));
});

test('summary.json says stopped when the stop rule ended the run', async () => {
  const dir = join(tmp, 'stoprule');
  await runPipeline({ file: FILE, sets: [...SMALL, 'iterations=5', 'stop={metric: reward/mean, atLeast: 0}'], out: dir, ...quiet });
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  assert.equal(summary.iterations_completed, 1);
  assert.equal(summary.stopped, 1);
  assert.equal(summary.stopped_by_rule, 1);
});

test('the progress line names the same iteration index as metrics.jsonl', () => {
  let out = '';
  const sink = progressSink(3, 0, { isTTY: false, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream);
  sink.write({ iteration: 0, 'reward/mean': 1 });
  assert.match(out, /^iteration 0 \(1\/3 done\)/);
});

test('a checkpoint state is decoded: iteration −5 or a garbage RNG state is refused, naming the key', () => {
  const good = {
    iteration: 3,
    version: 4,
    rng: { seed: 1, streams: { action: { s: [1, 2, 3, 4], spare: null } } },
    minibatchRng: { s: [5, 6, 7, 8], spare: 0.5 },
  };
  assert.equal(decodeCheckpointState(GrpoControlState, good).iteration, 3);
  assert.throws(
    () => decodeCheckpointState(GrpoControlState, { ...good, iteration: -5 }),
    (e: Error) => e instanceof DecodeError && /iteration: expected a non-negative integer, got -5/.test(e.message),
  );
  assert.throws(
    () => decodeCheckpointState(GrpoControlState, { ...good, minibatchRng: { s: [0, 0, 0, 0], spare: null } }),
    (e: Error) => e instanceof DecodeError && /minibatchRng/.test(e.message),
  );
  assert.throws(
    () => decodeCheckpointState(GrpoControlState, { ...good, rng: { seed: 1, streams: { action: 'x' } } }),
    (e: Error) => e instanceof DecodeError && /rng\.streams\.action/.test(e.message),
  );
});

const CROSS: [string[], RegExp][] = [
  [['algorithm.update.clipEpsHigh=0.1'], /algorithm\.update\.clipEpsHigh: must be ≥ clipEps \(0\.2\), got 0\.1/],
  [['algorithm.constraint={lambdaInit: 2, lambdaMax: 0.9}'], /algorithm\.constraint\.lambdaInit: must be ≤ lambdaMax \(0\.9\), got 2/],
  [['algorithm.constraint={limit: -1}'], /algorithm\.constraint\.limit: must be ≥ 0/],
  [['stop={metric: reward/maen, atLeast: 1}'], /stop\.metric: unknown metric 'reward\/maen'; did you mean 'reward\/mean'\?/],
  [['stop={metric: reward/mean}'], /stop: needs atLeast or atMost/],
  [['policy.hidden=[100000000]'], /policy\.hidden\.0: expected a positive integer ≤ 65536/],
];

for (const [sets, message] of CROSS) {
  test(`validate and run refuse ${sets.join(' ')} before creating a run directory`, async () => {
    const dir = join(tmp, `cross-${sets.join('').replace(/\W/g, '')}`);
    await assert.rejects(runPipeline({ file: FILE, sets, out: dir, ...quiet }), (e: Error) => e instanceof ConfigError && message.test(e.message));
    assert.equal(existsSync(dir), false);
  });
}

test('waitIfPaused holds the next iteration, afterIteration sees each record with the live weights, checkpoint bytes equal the file', async () => {
  const { config } = decodePipelineConfig(readPipelineFile(FILE), [...SMALL, 'iterations=3', 'checkpointEvery=2']);
  let release: (() => void) | undefined;
  let waits = 0;
  const seen: { iteration: number; reward: number | undefined; store: boolean }[] = [];
  let bytes: Uint8Array | undefined;
  const path = join(tmp, 'bytes.safetensors');
  const run = runGrpoControl(config as GrpoControlConfig, [], {
    waitIfPaused: async () => {
      if (++waits === 2) await new Promise<void>((r) => (release = r));
    },
    afterIteration: ({ iteration, record, params }) => seen.push({ iteration, reward: record['reward/mean'], store: params instanceof ParamStore }),
    checkpoint: {
      save: async (c) => {
        bytes = await runCheckpointBytes(config, c);
        await saveCheckpoint(path, runCheckpointOptions(config, c));
      },
    },
  });
  while (release === undefined) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    seen.map((s) => s.iteration),
    [0],
    'paused before iteration 1',
  );
  release();
  const result = await run;
  assert.deepEqual(
    seen.map((s) => s.iteration),
    [0, 1, 2],
  );
  assert.deepEqual(
    seen.map((s) => s.reward),
    result.history.map((h) => h['reward/mean']),
  );
  assert.ok(seen.every((s) => s.store));
  result.policy.dispose();
  assert.ok(bytes !== undefined);
  assert.deepEqual(bytes, new Uint8Array(readFileSync(path)), 'the in-memory checkpoint is the file the runner writes');
  const evaluated = await evaluateGrpoControl(config as GrpoControlConfig, { bytes, label: 'in-memory' });
  assert.equal(evaluated['iteration'], 2);
});
