/**
 * Pins grpo-control's seeded metrics (plain GRPO and Lagrangian GRPO, from the two example files)
 * so that refactors of the pipeline or its run loop cannot change what a seed computes. The
 * numbers were recorded from the pipeline before the shared iteration loop (pipelines/loop.ts)
 * existed; a deliberate change of the algorithm updates them, a refactor must not.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../lib/backend.ts';
import { readPipelineFile } from '../pipelines/config-file.ts';
import { decodePipelineConfig } from '../pipelines/registry.ts';
import { runGrpoControl } from '../pipelines/grpo-control.ts';
import type { MetricsRecord } from '../lib/data.ts';

await initBackend({ quiet: true });

const KEYS = ['reward/mean', 'cost/mean', 'loss', 'grad_norm', 'lambda', 'constraint/estimate', 'eval/return'] as const;

async function run(example: string, sets: string[]): Promise<{ history: MetricsRecord[]; summary: Record<string, number> }> {
  const { config } = decodePipelineConfig(readPipelineFile(`pipelines/examples/${example}`), sets);
  const { history, summary, policy } = await runGrpoControl(config);
  policy.dispose();
  return { history, summary };
}

function pick(history: MetricsRecord[]): Record<string, number>[] {
  return history.map((m) => Object.fromEntries(KEYS.filter((k) => m[k] !== undefined).map((k) => [k, m[k]!])));
}

const PRINT = process.env['RXRL_PRINT_PINS'] === '1';

test('grpo-cartpole.yaml: the first 3 iterations of seed 1 are pinned', async () => {
  const { history, summary } = await run('grpo-cartpole.yaml', ['iterations=3']);
  if (PRINT) console.log(JSON.stringify({ rows: pick(history), summary }));
  assert.deepEqual(pick(history), PLAIN.rows);
  assert.deepEqual(summary, PLAIN.summary);
});

test('lagrangian-cartpole.yaml (limit 10, so λ moves): the first 3 iterations of seed 1 are pinned', async () => {
  const { history, summary } = await run('lagrangian-cartpole.yaml', ['iterations=3', 'algorithm.constraint.limit=10']);
  if (PRINT) console.log(JSON.stringify({ rows: pick(history), summary }));
  assert.deepEqual(pick(history), LAGRANGIAN.rows);
  assert.deepEqual(summary, LAGRANGIAN.summary);
});

const PLAIN: {
  rows: Record<string, number>[];
  summary: Record<string, number>;
} = {
  rows: [
    {
      'reward/mean': 23.84375,
      'cost/mean': 0,
      loss: -0.41987063735723495,
      grad_norm: 0.16240875865332782,
      'eval/return': 72.2,
    },
    {
      'reward/mean': 33.28125,
      'cost/mean': 0,
      loss: -0.5355311478488147,
      grad_norm: 0.11556152743287385,
    },
    {
      'reward/mean': 47.578125,
      'cost/mean': 0,
      loss: -0.44523570081219077,
      grad_norm: 0.09556519379839301,
    },
  ],
  summary: {
    'reward/mean': 47.578125,
    'cost/mean': 0,
    'eval/return': 240.4,
    'eval/return_std': 43.36634639902236,
    'eval/length': 240.4,
    'eval/cost': 0,
  },
};
const LAGRANGIAN: {
  rows: Record<string, number>[];
  summary: Record<string, number>;
} = {
  rows: [
    {
      'reward/mean': 23.84375,
      'cost/mean': 23.84375,
      loss: -5.209973633289337,
      grad_norm: 2.93580262362957,
      lambda: 0,
      'constraint/estimate': 23.84375,
      'eval/return': 322.2,
    },
    {
      'reward/mean': 38.28125,
      'cost/mean': 10.34375,
      loss: -12.68264839053154,
      grad_norm: 5.1976603008806705,
      lambda: 0.1384375,
      'constraint/estimate': 10.34375,
    },
    {
      'reward/mean': 43,
      'cost/mean': 11.40625,
      loss: -9.398747116327286,
      grad_norm: 2.644605875015259,
      lambda: 0.141875,
      'constraint/estimate': 11.40625,
    },
  ],
  summary: {
    'reward/mean': 43,
    'cost/mean': 11.40625,
    lambda: 0.141875,
    'eval/return': 209.8,
    'eval/return_std': 157.0393581240066,
    'eval/length': 209.8,
    'eval/cost': 59,
  },
};
