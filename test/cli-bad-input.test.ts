/**
 * The bad-input battery of the CLI, as a new user and an attacker would try it: every row runs
 * `node pipelines/bin.mjs ...` and checks the exit code, that stderr names the file/path at fault
 * in a message matching the row's pattern, that no stack trace is printed ("    at "), that the
 * command finishes within the timeout, and that nothing is left behind (no run directory for a
 * refused run). In-process checks cover what argv cannot carry (a `--set` value over 1 MB) and
 * that `__proto__` never reaches `Object.prototype`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applySet, ConfigError, MAX_CONFIG_BYTES } from '../pipelines/config.ts';
import { readPipelineFile } from '../pipelines/config-file.ts';
import { decodePipelineConfig } from '../pipelines/registry.ts';
import { parseSafetensors } from '../lib/io/safetensors.ts';
import { META_SHA256 } from '../lib/io/checkpoint.ts';

const BIN = join(import.meta.dirname, '..', 'pipelines', 'bin.mjs');
const EXAMPLE = join(import.meta.dirname, '..', 'pipelines', 'examples', 'grpo-cartpole.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'rxrl-bad-input-'));
const TIMEOUT_MS = 90_000; // generous: the machine is shared; a hang (e.g. reading /dev/zero) never finishes

interface Outcome {
  status: number | null;
  stderr: string;
  stdout: string;
  ms: number;
  timedOut: boolean;
}

function rxrl(args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [BIN, ...args], { cwd: tmp, env: { ...process.env, RXRL_BACKEND: 'wasm' } });
    let stderr = '';
    let stdout = '';
    let timedOut = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, stdout, ms: Date.now() - t0, timedOut });
    });
  });
}

const file = (name: string, text: string | Buffer): string => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};

const BASE = 'pipeline: grpo-control\nseed: 1\niterations: 1\n';
const TINY = [
  '--set',
  'algorithm.groupSize=2',
  '--set',
  'algorithm.startsPerIteration=1',
  '--set',
  'evaluation.episodes=1',
  '--set',
  'evaluation.every=1',
  '--set',
  'checkpointEvery=1',
];

/** A billion-laughs document: 9^6 expansions if aliases were followed without a bound. */
const BOMB = `${BASE}a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
`;

let deep: unknown = 1;
for (let i = 0; i < 100; i++) deep = { a: deep };

interface Row {
  name: string;
  /** Built lazily (files are written when the row runs). */
  args: () => string[];
  status: number;
  stderr: RegExp;
  /** A directory that must not exist afterwards. */
  noDir?: string;
  /** Rows that ask for a stack (`--debug`). */
  stack?: boolean;
  stdout?: RegExp;
}

const ROWS: Row[] = [
  { name: 'YAML alias bomb', args: () => ['validate', file('bomb.yaml', BOMB)], status: 1, stderr: /bomb\.yaml: YAML aliases expand too far/ },
  {
    name: '--set __proto__.x=1',
    args: () => ['validate', EXAMPLE, '--set', '__proto__.x=1'],
    status: 1,
    stderr: /--set __proto__\.x: the key '__proto__' is not allowed/,
  },
  {
    name: '--set constructor.prototype.x=1',
    args: () => ['validate', EXAMPLE, '--set', 'constructor.prototype.x=1'],
    status: 1,
    stderr: /--set constructor\.prototype\.x: the key 'constructor' is not allowed/,
  },
  {
    name: '--set a value with a __proto__ key',
    args: () => ['validate', EXAMPLE, '--set', 'env={"__proto__": {"x": 1}}'],
    status: 1,
    stderr: /--set env: __proto__: the key '__proto__' is not allowed/,
  },
  {
    name: '__proto__ key in a JSON file',
    args: () => ['validate', file('proto.json', '{"pipeline":"grpo-control","seed":1,"iterations":1,"algorithm":{"__proto__":{"x":1}}}')],
    status: 1,
    stderr: /proto\.json: algorithm\.__proto__: the key '__proto__' is not allowed/,
  },
  {
    name: 'constructor key in a YAML file',
    args: () => ['validate', file('ctor.yaml', `${BASE}env:\n  prototype: 1\n`)],
    status: 1,
    stderr: /ctor\.yaml: env\.prototype: the key 'prototype' is not allowed/,
  },
  {
    name: 'pipeline file over 1 MB',
    args: () => ['validate', file('big.yaml', `${BASE}# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`)],
    status: 1,
    stderr: /big\.yaml: \d+ bytes; pipeline files are limited to 1048576 bytes/,
  },
  {
    name: '50 MB YAML list (no OOM)',
    args: () => ['validate', file('list.yaml', Buffer.from(`${BASE}x:\n${'- 1\n'.repeat(13_000_000)}`))],
    status: 1,
    stderr: /list\.yaml: \d+ bytes; pipeline files are limited/,
  },
  {
    name: 'nesting deeper than 64',
    args: () => ['validate', file('deep.json', JSON.stringify({ pipeline: 'grpo-control', seed: 1, iterations: 1, env: deep }))],
    status: 1,
    stderr: /deep\.json: env(\.a)+: nested deeper than 64 levels/,
  },
  {
    name: '--set value nested deeper than 64',
    args: () => ['validate', EXAMPLE, '--set', `env=${'['.repeat(80)}${']'.repeat(80)}`],
    status: 1,
    stderr: /--set env: (\[0\])+: nested deeper than 64 levels/,
  },
  { name: 'a FIFO or device as pipeline file', args: () => ['validate', '/dev/zero'], status: 1, stderr: /\/dev\/zero: not a regular file/ },
  {
    name: 'unknown env option (validate)',
    args: () => ['validate', file('opt.yaml', `${BASE}env:\n  id: CartPoleConstrained-v1\n  options: {costBnd: 0.5}\n`)],
    status: 1,
    stderr: /opt\.yaml: env\.options\.costBnd: unknown option of CartPoleConstrained-v1; did you mean 'costBand'\?/,
  },
  {
    name: 'unknown MuJoCo env option (validate)',
    args: () => ['validate', file('mjopt.yaml', `${BASE}env:\n  id: Hopper-v4\n  options: {healthy_rewrd: 1}\n`)],
    status: 1,
    stderr: /mjopt\.yaml: env\.options\.healthy_rewrd: unknown option of Hopper-v4; did you mean 'healthy_reward'\?/,
  },
  {
    name: 'unknown env option (run): no run directory',
    args: () => ['run', file('opt-run.yaml', `${BASE}env:\n  id: CartPole-v1\n  options: {gravity: 3}\n`), '--out', join(tmp, 'run-opt')],
    status: 1,
    stderr: /opt-run\.yaml: env\.options\.gravity: unknown option of CartPole-v1/,
    noDir: join(tmp, 'run-opt'),
  },
  {
    name: 'unknown env id (validate)',
    args: () => ['validate', file('id.yaml', `${BASE}env: {id: CartPol-v1}\n`)],
    status: 1,
    stderr: /id\.yaml: env\.id: unknown env 'CartPol-v1'; did you mean 'CartPole-v1'\?/,
  },
  {
    name: 'unknown env id (run): no run directory',
    args: () => ['run', file('id-run.yaml', `${BASE}env: {id: Nope-v0}\n`), '--out', join(tmp, 'run-id')],
    status: 1,
    stderr: /id-run\.yaml: env\.id: unknown env 'Nope-v0'/,
    noDir: join(tmp, 'run-id'),
  },
  { name: 'eval /dev/zero (no endless read)', args: () => ['eval', '/dev/zero'], status: 1, stderr: /checkpoint \/dev\/zero: is not a regular file/ },
  {
    name: 'eval a non-safetensors file',
    args: () => ['eval', file('junk.safetensors', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]))],
    status: 1,
    stderr: /checkpoint \S*junk\.safetensors: is not a safetensors file \(implausible header length \d+\)/,
  },
  {
    name: 'eval an empty directory',
    args: () => (mkdirSync(join(tmp, 'empty'), { recursive: true }), ['eval', join(tmp, 'empty')]),
    status: 1,
    stderr: /checkpoint \S*empty: is a directory/,
  },
  { name: 'report: missing directory', args: () => ['report', join(tmp, 'nope')], status: 1, stderr: /nope: no such run directory/ },
  {
    name: 'report: no config.json',
    args: () => (
      mkdirSync(join(tmp, 'noconfig'), { recursive: true }),
      writeFileSync(join(tmp, 'noconfig', 'metrics.jsonl'), '{"iteration":0}\n'),
      ['report', join(tmp, 'noconfig')]
    ),
    status: 1,
    stderr: /noconfig\/config\.json: missing/,
  },
  {
    name: 'report: a bad metrics line',
    args: () => {
      const d = join(tmp, 'badline');
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'config.json'), JSON.stringify({ pipeline: 'grpo-control', seed: 1, iterations: 3 }));
      writeFileSync(join(d, 'metrics.jsonl'), '{"iteration":0,"reward/mean":1}\n{oops\n{"iteration":2,"reward/mean":3}\n');
      return ['report', d];
    },
    status: 1,
    stderr: /badline\/metrics\.jsonl:2: not JSON/,
  },
  {
    name: 'report: a string metric is named in a warning',
    args: () => {
      const d = join(tmp, 'strmetric');
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'config.json'), JSON.stringify({ pipeline: 'grpo-control', seed: 1, iterations: 2 }));
      writeFileSync(join(d, 'metrics.jsonl'), '{"iteration":0,"reward/mean":1,"phase":"warmup"}\n{"iteration":1,"reward/mean":2,"phase":"main"}\n');
      return ['report', d, '--no-inline'];
    },
    status: 0,
    stderr: /warning: \S*strmetric\/metrics\.jsonl: 'phase' is not a number; not charted/,
  },
  {
    name: '--debug prints the stack of a user error',
    args: () => ['validate', join(tmp, 'missing.yaml'), '--debug'],
    status: 1,
    stderr: /missing\.yaml: no such file/,
    stack: true,
  },
];

/** Runs rows a few at a time (each spawn mostly waits on tsx's start-up). */
async function runAll<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let x = queue.shift(); x !== undefined; x = queue.shift()) await f(x);
    }),
  );
}

test('bad-input battery: one clear line naming the path, no stack, no hang, nothing left behind', { timeout: 20 * 60_000 }, async () => {
  const failures: string[] = [];
  await runAll(ROWS, 3, async (row) => {
    const r = await rxrl(row.args());
    const why: string[] = [];
    if (r.timedOut) why.push(`did not finish within ${TIMEOUT_MS} ms`);
    if (r.status !== row.status) why.push(`exit ${r.status}, expected ${row.status}`);
    if (!row.stderr.test(r.stderr)) why.push(`stderr does not match ${row.stderr}`);
    const hasStack = /\n\s{4}at /.test(r.stderr);
    if (hasStack !== (row.stack ?? false)) why.push(hasStack ? 'stderr holds a stack trace' : 'expected a stack trace (--debug)');
    if (!row.stack && row.status !== 0 && r.stderr.split('\n').filter((l) => l.startsWith('rxrl:')).length !== 1) why.push('not exactly one error line');
    if (row.noDir && existsSync(row.noDir)) why.push(`left ${row.noDir} behind`);
    if (why.length > 0) failures.push(`${row.name}: ${why.join('; ')}\n    stderr: ${r.stderr.slice(0, 400).replace(/\n/g, '\n    ')}`);
  });
  assert.deepEqual(failures, []);
});

test('a re-signed checkpoint with NaN weights is refused by eval, naming the tensor', { timeout: 10 * 60_000 }, async () => {
  const dir = join(tmp, 'tiny');
  const run = await rxrl(['run', EXAMPLE, '--set', 'iterations=1', ...TINY, '--out', dir]);
  assert.equal(run.status, 0, run.stderr);
  const path = join(dir, 'checkpoint.safetensors');
  const bytes = new Uint8Array(readFileSync(path));
  const parsed = parseSafetensors(bytes);
  const weight = parsed.header.tensors.find(
    (t) => t.dtype === 'F32' && !t.name.startsWith('__') && !t.name.includes('optimizer') && !t.name.includes('state'),
  )!;
  assert.ok(weight, 'a float weight');
  new DataView(bytes.buffer, parsed.header.dataStart + weight.begin, 4).setFloat32(0, Number.NaN, true);
  // Re-sign: the checksum is the SHA-256 of the file with its own 64 hex digits read as '0's.
  const digest = parsed.header.metadata[META_SHA256]!;
  const at = Buffer.from(bytes.buffer, 8, parsed.header.headerLength).indexOf(Buffer.from(digest, 'latin1')) + 8;
  const zeroed = Buffer.from(bytes);
  zeroed.write('0'.repeat(64), at, 'latin1');
  const fresh = createHash('sha256').update(zeroed).digest('hex');
  const signed = Buffer.from(bytes);
  signed.write(fresh, at, 'latin1');
  writeFileSync(path, signed);

  const r = await rxrl(['eval', dir]);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`checkpoint \\S+: tensor ${weight.name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} holds NaN at flat index 0`));
  assert.doesNotMatch(r.stderr, /\n\s{4}at /);
});

test('--set over 1 MB is refused; __proto__ never reaches Object.prototype', () => {
  assert.throws(
    () => applySet({}, `env.id=${'x'.repeat(MAX_CONFIG_BYTES)}`),
    (e: unknown) => e instanceof ConfigError && /--set env\.id=\.\.\.: longer than 1048576 bytes/.test(e.message),
  );
  for (const set of ['__proto__.polluted=1', 'a.__proto__.polluted=1', 'constructor.prototype.polluted=1', 'env.prototype=1']) {
    assert.throws(() => decodePipelineConfig({ pipeline: 'grpo-control', seed: 1, iterations: 1 }, [set], 'f.yaml'), ConfigError, set);
  }
  // A JSON.parse'd "__proto__" is an own key: refused before any merge or clone.
  const raw = JSON.parse('{"pipeline":"grpo-control","seed":1,"iterations":1,"__proto__":{"polluted":1}}') as Record<string, unknown>;
  assert.throws(() => decodePipelineConfig(raw, [], 'f.json'), /f\.json: __proto__: the key '__proto__' is not allowed/);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  const y = file('proto.yaml', `${BASE}__proto__: {polluted: 1}\n`);
  assert.throws(() => readPipelineFile(y), /proto\.yaml: __proto__: the key '__proto__' is not allowed/);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
