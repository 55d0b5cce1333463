/**
 * HIPO's baselines and the text path, CI-sized:
 * - the selection rules of `rft` (keep compliant completions of the group's best utility > 0) and
 *   `dpo` (chosen = best compliant, rejected = worst other, strictly worse), case by case;
 * - `rft` and `dpo` through the CLI: 4 iterations = 2 + 2 with --resume, byte for byte; the
 *   summary holds the attention share before (base/) and after;
 * - `hipo` end to end on a tiny random Llama checkpoint with the text suite (suite.kind: text):
 *   2 iterations, every evaluation metric present, numTensors flat; a missing folder is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import type { Group, Trajectory } from '../lib/data.ts';
import { groupPair } from '../pipelines/hipo/dpo.ts';
import { runHipo } from '../pipelines/hipo/hipo.ts';
import { keptExamples } from '../pipelines/hipo/rft.ts';
import { hfWeights, tinyTokenizerFiles, writeFolder } from './helpers/tiny-hf.ts';

await initBackend({ quiet: true });

/** A group of completions [token k] with the given (compliance, utility) scores. */
function group(scores: [number, number][], empty: number[] = []): Group {
  const start = { kind: 'prompt' as const, promptId: 'p', tokens: Int32Array.of(1, 2) };
  const trajectories = scores.map(
    ([compliance, utility], k): Trajectory => ({
      length: empty.includes(k) ? 0 : 1,
      obsDim: 0,
      actDim: 1,
      observations: new Float32Array(0),
      actions: empty.includes(k) ? new Int32Array(0) : Int32Array.of(10 + k),
      logProbs: new Float32Array(empty.includes(k) ? 0 : 1),
      rewards: new Float32Array(empty.includes(k) ? 0 : 1),
      costs: new Float32Array(empty.includes(k) ? 0 : 1),
      terminated: true,
      truncated: false,
      policyVersion: 0,
      groupId: 'g',
      start,
      scores: { compliance, utility },
    }),
  );
  return { groupId: 'g', start, trajectories };
}
const tokensOf = (xs: { completion: Int32Array }[]) => xs.map((x) => x.completion[0]);

test('rft keeps the compliant completions of the best compliant utility (> 0), or those ≥ a threshold', () => {
  const g = group([
    [1, 0.5],
    [0, 1],
    [1, 0.75],
    [1, 0.75],
    [1, 0.25],
  ]);
  assert.deepEqual(tokensOf(keptExamples(g, null)), [12, 13]); // ties kept; the non-compliant utility 1 is not
  assert.deepEqual(tokensOf(keptExamples(g, 0.5)), [10, 12, 13]);
  assert.deepEqual(
    keptExamples(
      group([
        [1, 0],
        [0, 1],
      ]),
      null,
    ),
    [],
  ); // best compliant utility 0: nothing
  assert.deepEqual(keptExamples(group([[0, 1]]), null), []);
  assert.deepEqual(
    tokensOf(
      keptExamples(
        group(
          [
            [1, 1],
            [1, 1],
          ],
          [0],
        ),
        null,
      ),
    ),
    [11],
  ); // empty completions skipped
});

test('dpo pairs the best compliant completion with the worst other one, only if strictly worse', () => {
  const p = groupPair(
    group([
      [1, 0.5],
      [0, 1],
      [1, 1],
      [0, 0.25],
    ]),
  )!;
  assert.deepEqual([p.chosen[0], p.rejected[0]], [12, 13]); // non-compliant before compliant, then the lower utility
  assert.deepEqual(Array.from(p.prompt), [1, 2]);
  const q = groupPair(
    group([
      [1, 0.5],
      [1, 0.75],
      [1, 0.25],
    ]),
  )!;
  assert.deepEqual([q.chosen[0], q.rejected[0]], [11, 12]); // all compliant: the least useful is rejected
  assert.equal(
    groupPair(
      group([
        [0, 1],
        [0, 0.5],
      ]),
    ),
    null,
  ); // nothing compliant
  assert.equal(
    groupPair(
      group([
        [1, 0.5],
        [1, 0.5],
      ]),
    ),
    null,
  ); // every completion ties with the chosen
  assert.equal(
    groupPair(
      group(
        [
          [1, 1],
          [0, 0],
        ],
        [1],
      ),
    ),
    null,
  ); // the only worse one is empty
});

const BIN = join(import.meta.dirname, '..', 'pipelines', 'bin.mjs');
const rxrl = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, RXRL_BACKEND: 'wasm' } });
const EXAMPLES = join(import.meta.dirname, '..', 'pipelines', 'examples');

for (const name of ['rft', 'dpo']) {
  test(`cli: ${name}: 4 iterations = 2 + 2 with --resume, byte for byte; attention before and after in the summary`, () => {
    const tmp = mkdtempSync(join(tmpdir(), `rxrl-${name}-`));
    try {
      const sets = [
        ...['suite.trainSize=200', 'suite.evalSize=8', 'suite.heldOutSize=8', 'model.width=16', 'base.iterations=20'],
        ...['evaluation.prompts=8', 'evaluation.every=2', 'algorithm.promptsPerIteration=4', 'algorithm.groupSize=4', 'checkpointEvery=2'],
        // A high learning rate and an on-policy DPO so that the later iterations depend on the earlier updates.
        ...(name === 'dpo' ? ['algorithm.onPolicy=true', 'algorithm.learningRate=0.01'] : ['algorithm.learningRate=0.01']),
      ].flatMap((s) => ['--set', s]);
      const file = join(EXAMPLES, `${name}.yaml`);
      const full = join(tmp, 'full');
      const r1 = rxrl('run', file, ...sets, '--set', 'iterations=4', '--out', full);
      assert.equal(r1.status, 0, r1.stderr);
      const split = join(tmp, 'split');
      const r2 = rxrl('run', file, ...sets, '--set', 'iterations=2', '--out', split);
      assert.equal(r2.status, 0, r2.stderr);
      const r3 = rxrl('run', '--resume', split, '--set', 'iterations=4');
      assert.equal(r3.status, 0, r3.stderr);
      const lines = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8');
      assert.equal(lines(full).trim().split('\n').length, 4);
      assert.equal(lines(split), lines(full));
      const rows = lines(full)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number>);
      const key = name === 'rft' ? 'rft/kept_frac' : 'dpo/pair_frac';
      assert.ok(rows.every((r) => r[key]! >= 0 && r[key]! <= 1));
      const count = name === 'rft' ? 'rft/kept' : 'dpo/pairs';
      assert.ok(
        rows.some((r) => r[count]! > 0),
        `no ${count} in any iteration: the run never updated`,
      );
      assert.ok(rows[0]!['eval/attention/system_share/layer_1']! > 0);
      const summary = JSON.parse(readFileSync(join(full, 'summary.json'), 'utf8')) as Record<string, number>;
      for (const k of ['eval/attention/system_share', 'eval/attention/chance', 'eval/attention/system_share/layer_0']) {
        assert.ok(summary[`base/${k}`]! > 0 && summary[`base/${k}`]! < 1, `base/${k}`);
        assert.ok(summary[k]! > 0 && summary[k]! < 1, k);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
}

test('hipo on real text: a tiny random Llama checkpoint, 2 iterations, no tensor leak; a missing folder is refused', async () => {
  const { config, weights } = hfWeights('llama', 7, { vocabSize: 264 });
  const dir = await writeFolder(config, weights);
  try {
    const files = tinyTokenizerFiles();
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(files.tokenizer));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(files.config));
    const counts: number[] = [];
    const cfg = {
      seed: 1,
      iterations: 2,
      suite: { kind: 'text' as const, model: dir, seed: 3, trainSize: 8, heldOutSize: 2, maxAnswerTokens: 6 },
      algorithm: { promptsPerIteration: 2, groupSize: 2, learningRate: 1e-3, update: { epochs: 1, minibatches: 1 } },
      evaluation: { every: 1, prompts: 2, inDistribution: true },
      checkpointEvery: 0,
    };
    const r = await runHipo(cfg, [{ write: () => void counts.push(tf.memory().numTensors) }]);
    assert.equal(r.history.length, 2);
    for (const row of r.history) {
      for (const k of ['eval/compliance/conflict', 'eval/utility/aligned', 'score/compliance/mean', 'lambda', 'constraint/estimate'])
        assert.ok(Number.isFinite(row[k]), `${k} in ${JSON.stringify(row)}`);
      assert.ok(!('eval/in_dist/compliance/conflict' in row), 'the text suite has no in-distribution split');
      assert.equal(row['rollout/episodes'], 4);
    }
    assert.ok(r.summary['base/eval/compliance/aligned']! >= 0);
    assert.ok(
      counts.every((c) => c === counts[0]),
      `numTensors per iteration: ${counts.join(' ')}`,
    );
    await assert.rejects(runHipo({ ...cfg, suite: { ...cfg.suite, model: join(dir, 'nope') } }), /suite\.model: no such model folder: .*nope/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rxrl report: the before/after records come from the summaries (base/ of the first run, then each run)', async () => {
  const { beforeAfterRecords } = await import('../pipelines/report/attention.ts');
  const a = { summary: { 'base/eval/attention/system_share/layer_0': 0.2, 'base/eval/attention/chance': 0.3, 'eval/attention/system_share/layer_0': 0.5 } };
  const b = { summary: { 'eval/attention/system_share/layer_0': 0.7 } };
  const recs = beforeAfterRecords([a, { summary: undefined }, b], ['hipo', 'x', 'rft'])!;
  assert.deepEqual(
    recs.map((r) => [r.label, r.metrics['eval/attention/system_share/layer_0']]),
    [
      ['base model (before)', 0.2],
      ['hipo', 0.5],
      ['rft', 0.7],
    ],
  );
  assert.equal(recs[0]!.metrics['eval/attention/chance'], 0.3);
  assert.equal(beforeAfterRecords([{ summary: { 'sft/loss': 1 } }], ['sft']), null);
});
