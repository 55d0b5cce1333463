/**
 * The CLI and the run directory: validate on every shipped example, clear errors with the bad path
 * on a broken file, `run` writes metrics.jsonl / summary.json / checkpoint, `--resume` continues
 * exactly (10 iterations in one run = 5 + 5 with a resume), a checkpoint from another config is
 * refused, an unwritable output folder is a clear error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', 'pipelines', 'bin.mjs');
const EXAMPLES = join(import.meta.dirname, '..', 'pipelines', 'examples');
const rxrl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, RXRL_BACKEND: 'wasm' } });
const tmp = mkdtempSync(join(tmpdir(), 'rxrl-cli-'));

test('validate exits 0 on every shipped example', () => {
  const files = readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f));
  assert.ok(files.includes('grpo-cartpole.yaml') && files.includes('lagrangian-cartpole.yaml'));
  for (const f of files) {
    const r = rxrl('validate', join(EXAMPLES, f));
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    const name = /^pipeline: (\S+)/m.exec(readFileSync(join(EXAMPLES, f), 'utf8'))?.[1];
    assert.match(r.stdout, new RegExp(`valid ${name} pipeline`));
  }
  // A dataset that does not exist yet is valid config, but validate says so (run refuses it).
  const r = rxrl('validate', join(EXAMPLES, 'odt-hopper-tiny.yaml'), '--set', 'data.path=no/such.hdf5');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /note: data\.path: no\/such\.hdf5 does not exist/);
});

test('validate names every bad path of a broken file, with the nearest valid name, and exits non-zero', () => {
  const bad = join(tmp, 'bad.yaml');
  writeFileSync(bad, 'pipeline: grpo-control\nseed: 1\niterations: 3\nalgorithm:\n  groupSzie: 8\n  update:\n    clipEps: -0.2\nenv: {id: CartPole-v1}\n');
  const r = rxrl('validate', bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /algorithm\.groupSzie: unknown key; did you mean 'groupSize'\?/);
  assert.match(r.stderr, /algorithm\.update\.clipEps: expected a positive number, got -0\.2/);
  const noSeed = join(tmp, 'noseed.json');
  writeFileSync(noSeed, JSON.stringify({ pipeline: 'grpo-control', iterations: 2 }));
  assert.match(rxrl('validate', noSeed).stderr, /seed: required at the top level/);
  const malformed = join(tmp, 'malformed.yaml');
  writeFileSync(malformed, 'pipeline: grpo-control\nseed: [1\n');
  const m = rxrl('validate', malformed);
  assert.equal(m.status, 1);
  assert.match(m.stderr, /malformed YAML at line \d+, column \d+/);
  assert.match(rxrl('validate', join(tmp, 'missing.yaml')).stderr, /missing\.yaml: no such file/);
  assert.match(
    rxrl('validate', join(EXAMPLES, 'grpo-cartpole.yaml'), '--set', 'pipeline=grpo-contrl').stderr,
    /unknown pipeline 'grpo-contrl'; did you mean 'grpo-control'\?/,
  );
  assert.equal(rxrl('frobnicate').status, 2);
  // NaN in the data of a file is named like any other bad value.
  const nan = join(tmp, 'nan.yaml');
  writeFileSync(nan, 'pipeline: grpo-control\nseed: 1\niterations: 3\nalgorithm:\n  learningRate: .nan\n');
  assert.match(rxrl('validate', nan).stderr, /algorithm\.learningRate: expected a positive number, got NaN/);
});

test('run writes the run directory; 10 iterations = 5 + 5 with --resume; another config is refused', () => {
  const example = join(EXAMPLES, 'lagrangian-cartpole.yaml');
  const small = ['--set', 'algorithm.groupSize=4', '--set', 'algorithm.startsPerIteration=2', '--set', 'evaluation.every=3', '--set', 'checkpointEvery=5'];
  const full = join(tmp, 'full');
  const r1 = rxrl('run', example, ...small, '--set', 'iterations=10', '--out', full);
  assert.equal(r1.status, 0, r1.stderr);
  for (const f of ['config.json', 'metrics.jsonl', 'summary.json', 'checkpoint.safetensors']) assert.ok(existsSync(join(full, f)), f);
  const summary = JSON.parse(readFileSync(join(full, 'summary.json'), 'utf8'));
  assert.equal(typeof summary['eval/return'], 'number');
  assert.equal(summary.iterations_completed, 10);

  const split = join(tmp, 'split');
  const r2 = rxrl('run', example, ...small, '--set', 'iterations=5', '--out', split);
  assert.equal(r2.status, 0, r2.stderr);
  const r3 = rxrl('run', '--resume', split, '--set', 'iterations=10');
  assert.equal(r3.status, 0, r3.stderr);
  const lines = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(lines(full).length, 10);
  assert.deepEqual(lines(split), lines(full));
  // λ and the multiplier state went through the checkpoint: the metrics include it.
  assert.ok('lambda' in JSON.parse(lines(full)[9]!));

  const other = rxrl('run', example, ...small, '--set', 'iterations=10', '--set', 'algorithm.learningRate=0.5', '--resume', split);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /another config \(algorithm\.learningRate: 0\.02 vs 0\.5\)/);
  // --set on a bare --resume may only change iterations; a refused resume leaves the run intact.
  const before = readFileSync(join(split, 'config.json'), 'utf8');
  const overridden = rxrl('run', '--resume', split, '--set', 'algorithm.learningRate=0.5');
  assert.equal(overridden.status, 1);
  assert.match(overridden.stderr, /change its config \(algorithm\.learningRate: 0\.02 vs 0\.5\)/);
  assert.equal(readFileSync(join(split, 'config.json'), 'utf8'), before);
});

test('an unwritable output folder is a clear error before any work', () => {
  // A regular file where a folder should be: mkdir fails even for root (CI runs as root).
  const file = join(tmp, 'not-a-folder');
  writeFileSync(file, '');
  const r = rxrl('run', join(EXAMPLES, 'grpo-cartpole.yaml'), '--out', join(file, 'run'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /output folder .*not-a-folder\/run is not writable \(ENOTDIR\)/);
  assert.doesNotMatch(r.stderr, /rxrl backend/, 'fails before the backend starts');
});

test('Ctrl-C stops after the current update with a final checkpoint; eval and report read the run', async () => {
  const dir = join(tmp, 'interrupted');
  const child = spawn(
    process.execPath,
    [BIN, 'run', join(EXAMPLES, 'grpo-cartpole.yaml'), '--set', 'iterations=500', '--set', 'checkpointEvery=0', '--out', dir],
    { env: { ...process.env, RXRL_BACKEND: 'wasm' } },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const metrics = join(dir, 'metrics.jsonl');
  // Wait for two completed iterations, then interrupt.
  for (let i = 0; i < 600 && !(existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 2); i++) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /stopping after the current update/);
  const done = readFileSync(metrics, 'utf8').trim().split('\n').length;
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  assert.equal(summary.stopped, 1);
  assert.equal(summary.iterations_completed, done);
  assert.ok(done < 500);
  // The final checkpoint holds the last completed iteration; eval reads it.
  const ev = rxrl('eval', dir, '--episodes', '2');
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, new RegExp(`iteration\\s*\\|\\s*${done - 1}\\s*\\|`));
  assert.match(ev.stdout, /eval\/return/);
  const rep = rxrl('report', dir, '--out', join(tmp, 'report'));
  assert.equal(rep.status, 0, rep.stderr);
  assert.ok(existsSync(join(tmp, 'report', 'report.html')));
  // A corrupted checkpoint is a clear error.
  const ck = join(dir, 'checkpoint.safetensors');
  const bytes = readFileSync(ck);
  bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
  writeFileSync(ck, bytes);
  const bad = rxrl('eval', dir);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /checksum/);
});
