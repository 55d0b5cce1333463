/**
 * End-to-end, CI-sized (seeded; a Llama-style LM of width 32, 2 layers, a 300-prompt suite):
 * - hipo (SFT in-process, then primal-dual GRPO): λ rises on every iteration whose batch violates
 *   the constraint E[1 − compliance] ≤ d; greedy conflict compliance after HIPO is above the base
 *   model's; numTensors is flat across iterations;
 * - the CLI: an `sft` run is the base of a `hipo` run (`base.checkpoint: RUN_DIR`) and of a
 *   `grpo-lm` run; 4 iterations in one run = 2 + 2 with --resume, byte for byte; a base trained
 *   with another model is refused, naming the key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { runHipo } from '../pipelines/hipo/hipo.ts';

await initBackend({ quiet: true });

const SUITE = { trainSize: 300, evalSize: 48, heldOutSize: 48 };
const MODEL = { arch: 'llama' as const, width: 32, layers: 2, heads: 4 };

test('hipo: λ rises while the constraint is violated, conflict compliance beats the base model, no tensor leak', async () => {
  const counts: number[] = [];
  const r = await runHipo(
    {
      seed: 1,
      iterations: 15,
      suite: SUITE,
      model: MODEL,
      base: { iterations: 100, batch: 32, learningRate: 3e-3 },
      algorithm: { promptsPerIteration: 8, groupSize: 8, learningRate: 3e-3, conflictShare: 0.75 },
      evaluation: { every: 1000, prompts: 48, inDistribution: true },
      checkpointEvery: 0,
    },
    [{ write: () => void counts.push(tf.memory().numTensors) }],
  );
  const h = r.history;
  assert.equal(h.length, 15);
  for (let i = 0; i + 1 < h.length; i++) {
    const v = h[i]!['constraint/violation']!;
    const [l0, l1] = [h[i]!.lambda!, h[i + 1]!.lambda!];
    // Projected ascent with timing before-update: batch i's violation moves the λ batch i + 1 uses.
    if (v > 0) assert.ok(l1 > l0 || l1 === 20, `iteration ${i}: violation ${v} but λ ${l0} → ${l1}`);
  }
  assert.ok(h[0]!['constraint/violation']! > 0, 'the user-following base model violates the constraint');
  assert.ok(h.at(-1)!.lambda! > h[0]!.lambda!, 'λ rose');
  const key = 'eval/in_dist/compliance/conflict';
  const msg = `base ${JSON.stringify(r.base)} after ${JSON.stringify(r.summary)}`;
  assert.ok(r.summary[key]! > r.base[key]!, `conflict compliance did not improve: ${msg}`);
  assert.ok(
    counts.every((c) => c === counts[0]),
    `numTensors per iteration: ${counts.join(' ')}`,
  );
});

const BIN = join(import.meta.dirname, '..', 'pipelines', 'bin.mjs');
const rxrl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, RXRL_BACKEND: 'wasm' } });
const EXAMPLES = join(import.meta.dirname, '..', 'pipelines', 'examples');

test('cli: sft run as the base of hipo and grpo-lm; 4 iterations = 2 + 2 with --resume; another model is refused', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rxrl-hipo-'));
  try {
    const suite = ['--set', 'suite.trainSize=200', '--set', 'suite.evalSize=8', '--set', 'suite.heldOutSize=8'];
    const model = ['--set', 'model.width=32'];
    const ev = ['--set', 'evaluation.prompts=8', '--set', 'evaluation.every=2'];
    const sftDir = join(tmp, 'sft');
    const s = rxrl(
      'run',
      join(EXAMPLES, 'sft-hierarchy.yaml'),
      ...suite,
      ...model,
      ...ev,
      '--set',
      'iterations=5',
      '--set',
      'checkpointEvery=0',
      '--out',
      sftDir,
    );
    assert.equal(s.status, 0, s.stderr);
    const rl = [...suite, ...model, ...ev, '--set', `base.checkpoint=${sftDir}`, '--set', 'algorithm.promptsPerIteration=2', '--set', 'algorithm.groupSize=4'];
    const hipo = join(EXAMPLES, 'hipo.yaml');
    const full = join(tmp, 'full');
    const r1 = rxrl('run', hipo, ...rl, '--set', 'iterations=4', '--set', 'checkpointEvery=2', '--out', full);
    assert.equal(r1.status, 0, r1.stderr);
    const split = join(tmp, 'split');
    const r2 = rxrl('run', hipo, ...rl, '--set', 'iterations=2', '--set', 'checkpointEvery=2', '--out', split);
    assert.equal(r2.status, 0, r2.stderr);
    const r3 = rxrl('run', '--resume', split, '--set', 'iterations=4');
    assert.equal(r3.status, 0, r3.stderr);
    const lines = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8');
    assert.equal(lines(full).trim().split('\n').length, 4);
    assert.equal(lines(split), lines(full));
    assert.ok('lambda' in JSON.parse(lines(full).split('\n')[3]!));

    const g = rxrl('run', join(EXAMPLES, 'grpo-lm.yaml'), ...rl, '--set', 'algorithm.mode=fixed-weight', '--set', 'iterations=1', '--out', join(tmp, 'g'));
    assert.equal(g.status, 0, g.stderr);
    const other = rxrl('run', hipo, ...rl, '--set', 'model.width=48', '--set', 'iterations=1', '--out', join(tmp, 'other'));
    assert.equal(other.status, 1);
    assert.match(other.stderr, /base\.checkpoint: .* was trained with another model \(model\.width: 32 there vs 48 here\)/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
