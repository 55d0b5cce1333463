/**
 * End-to-end: on CartPoleConstrained-v1 (cost 1 per step with |x| > 0.5) with an episode cost
 * limit d = 25, GRPO + constraintCost + primalDual (projected dual ascent) keeps the mean cost under
 * the limit (tolerance 20%) over the high-return phase while the return stays high; the same run
 * without primalDual exceeds the limit; λ rises while the constraint is violated and falls after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { runGrpoControl, type GrpoControlConfig } from '../pipelines/grpo-control.ts';
import type { DeepPartial } from '../pipelines/config.ts';
import type { MetricsRecord } from '../lib/data.ts';

await initBackend({ quiet: true });

const LIMIT = 25;
const TOLERANCE = 0.2;
const WINDOW = [20, 40] as const; // iterations over which the policies are compared
const base: DeepPartial<GrpoControlConfig> = { seed: 1, iterations: WINDOW[1], env: { id: 'CartPoleConstrained-v1', options: { costBand: 0.5 } } };

const mean = (h: MetricsRecord[], k: string) => h.reduce((s, m) => s + (m[k] ?? 0), 0) / h.length;
const window = (h: MetricsRecord[]) => h.filter((m) => m.iteration >= WINDOW[0] && m.iteration < WINDOW[1]);

test('primalDual keeps the cost under the limit where plain GRPO exceeds it; λ follows the violation', async () => {
  const counts: number[] = [];
  const constrained = await runGrpoControl(
    { ...base, algorithm: { constraint: { limit: LIMIT, update: 'projected', lr: 0.02 } } },
    [{ write: () => void counts.push(tf.memory().numTensors) }],
  );
  const plain = await runGrpoControl(base);
  const cw = window(constrained.history);
  const pw = window(plain.history);
  const summary = `constrained: cost ${mean(cw, 'cost/mean').toFixed(1)}, return ${mean(cw, 'reward/mean').toFixed(0)}; plain: cost ${mean(pw, 'cost/mean').toFixed(1)}, return ${mean(pw, 'reward/mean').toFixed(0)}`;
  assert.ok(mean(cw, 'cost/mean') <= LIMIT * (1 + TOLERANCE), summary);
  assert.ok(mean(cw, 'reward/mean') >= 400, summary);
  assert.ok(mean(pw, 'cost/mean') > LIMIT * (1 + TOLERANCE), summary);

  // λ: up after every violated batch, down (or held at 0) after every satisfied one.
  const h = constrained.history;
  let rose = 0, fell = 0;
  for (let i = 0; i + 1 < h.length; i++) {
    const viol = h[i]!['constraint/violation']!;
    const d = h[i + 1]!['lambda']! - h[i]!['lambda']!;
    if (viol > 0) { assert.ok(d > 0, `iteration ${i}: violation ${viol} but λ moved by ${d}`); rose++; }
    if (viol < 0) { assert.ok(d < 0 || h[i + 1]!['lambda'] === 0, `iteration ${i}: satisfied but λ moved by ${d}`); if (d < 0) fell++; }
  }
  assert.ok(rose > 0 && fell > 0, `λ rose ${rose} times and fell ${fell} times`);
  assert.equal(new Set(counts).size, 1, `numTensors per iteration: ${counts.join(', ')}`);
  constrained.policy.dispose();
  plain.policy.dispose();
});
