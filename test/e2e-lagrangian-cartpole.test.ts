/**
 * End-to-end: on CartPoleConstrained-v1 with the cart starting anywhere in [−1.5, 1.5] (cost 1 per
 * step outside |x| ≤ 0.5) and an episode cost limit d = 50, GRPO + constraintCost + primalDual
 * (projected dual ascent, pipelines/examples/lagrangian-cartpole.yaml) brings the mean cost under the
 * limit (tolerance 20%, over the last 10 of 50 iterations) while the return stays high; the same run
 * without primalDual exceeds the limit; λ rises while the constraint is violated and falls after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { runGrpoControl, type GrpoControlConfig } from '../pipelines/grpo-control.ts';
import { decodePipelineConfig } from '../pipelines/registry.ts';
import { readPipelineFile } from '../pipelines/config-file.ts';
import type { MetricsRecord } from '../lib/data.ts';

await initBackend({ quiet: true });

const TOLERANCE = 0.2;
const file = decodePipelineConfig(readPipelineFile(new URL('../pipelines/examples/lagrangian-cartpole.yaml', import.meta.url).pathname))
  .config as unknown as GrpoControlConfig;
const LIMIT = file.algorithm.constraint!.limit;
const mean = (h: MetricsRecord[], k: string) => h.reduce((s, m) => s + (m[k] ?? 0), 0) / h.length;
const lastTen = (h: MetricsRecord[]) => h.slice(-10);

test('primalDual keeps the cost under the limit where plain GRPO exceeds it; λ follows the violation', async () => {
  const counts: number[] = [];
  const quick = { ...file, evaluation: { every: 1000, episodes: 1 }, checkpointEvery: 0 };
  const constrained = await runGrpoControl(quick, [{ write: () => void counts.push(tf.memory().numTensors) }]);
  const plain = await runGrpoControl({ ...quick, algorithm: { ...quick.algorithm, constraint: null } });
  const cw = lastTen(constrained.history);
  const pw = lastTen(plain.history);
  const summary = `last 10 iterations — constrained: cost ${mean(cw, 'cost/mean').toFixed(1)}, return ${mean(cw, 'reward/mean').toFixed(0)}; plain: cost ${mean(pw, 'cost/mean').toFixed(1)}, return ${mean(pw, 'reward/mean').toFixed(0)}; limit ${LIMIT}`;
  assert.ok(mean(cw, 'cost/mean') <= LIMIT * (1 + TOLERANCE), summary);
  assert.ok(mean(cw, 'reward/mean') >= 400, summary);
  assert.ok(mean(pw, 'cost/mean') > LIMIT * (1 + TOLERANCE), summary);

  // Projected ascent: λ never falls after a violated batch nor rises after a satisfied one; it
  // rises while violated (until λ_max) and falls after.
  const h = constrained.history;
  let rose = 0;
  let fell = 0;
  for (let i = 0; i + 1 < h.length; i++) {
    const viol = h[i]!['constraint/violation']!;
    const d = h[i + 1]!['lambda']! - h[i]!['lambda']!;
    if (viol > 0) assert.ok(d >= 0, `iteration ${i}: violation ${viol} but λ fell by ${-d}`);
    if (viol < 0) assert.ok(d <= 0, `iteration ${i}: satisfied (${viol}) but λ rose by ${d}`);
    if (d > 0) rose++;
    if (d < 0) fell++;
  }
  const firstFall = h.findIndex((m, i) => i > 0 && m['lambda']! < h[i - 1]!['lambda']!);
  const firstRise = h.findIndex((m, i) => i > 0 && m['lambda']! > h[i - 1]!['lambda']!);
  assert.ok(rose > 0 && fell > 0 && firstRise < firstFall, `λ rose ${rose} times (first at ${firstRise}) and fell ${fell} times (first at ${firstFall})`);
  assert.equal(new Set(counts).size, 1, `numTensors per iteration: ${counts.join(', ')}`);
  constrained.policy.dispose();
  plain.policy.dispose();
});
