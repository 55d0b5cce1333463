/**
 * End-to-end: GRPO with reset-state groups on CartPole-v1, composed only of rxrl's operators and an
 * MLP policy (pipelines/grpo-control.ts), reaches a mean return ≥ 400 within 40 iterations.
 * Seeded; runs on the embedded default backend (wasm).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { runGrpoControl } from '../pipelines/grpo-control.ts';

await initBackend({ quiet: true });

test('GRPO on CartPole-v1 reaches a mean return of 400 within 40 iterations; no tensor leaks', async () => {
  const counts: number[] = [];
  const { history, policy } = await runGrpoControl({ seed: 1, iterations: 40, env: { id: 'CartPole-v1' }, stopWhen: (m) => (m['reward/mean'] ?? 0) >= 400 }, [
    { write: () => void counts.push(tf.memory().numTensors) },
  ]);
  const last = history.at(-1)!;
  assert.ok(last['reward/mean']! >= 400, `mean return ${last['reward/mean']} after ${history.length} iterations`);
  assert.ok(history.length <= 40);
  assert.ok(history[0]!['reward/mean']! < 100, 'starts from a poor random policy');
  // Tensor count flat across iterations (the optimizer's slots exist from the first update on).
  assert.ok(counts.length >= 3);
  assert.equal(new Set(counts).size, 1, `numTensors per iteration: ${counts.join(', ')}`);
  policy.dispose();
});
