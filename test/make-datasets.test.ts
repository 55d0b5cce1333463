/**
 * The dataset script's pieces (pipelines/online-dt/make-datasets.ts) on Hopper-v4: rollouts and a
 * td3 run's replay buffer become D4RL files whose `infos/qpos` / `infos/qvel` are the states that
 * produced the observations (checked against Hopper's observation definition, qpos[1:] and
 * clip(qvel, ±10)); the buffer of a run that was stopped and resumed replays bit-identically;
 * subsampling keeps whole episodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../lib/backend.ts';
import { loadD4rl, writeD4rl, type D4rlDataset } from '../lib/datasets/d4rl.ts';
import { readCheckpoint } from '../lib/io/checkpoint.ts';
import { Rng } from '../lib/random.ts';
import type { Transitions } from '../lib/transitions.ts';
import { randomActions } from '../operators/collectTransitions.ts';
import { replayBuffer, rolloutDataset } from '../pipelines/online-dt/make-datasets.ts';
import { CHECKPOINT_FILE, runPipeline } from '../pipelines/runner.ts';

await initBackend({ backend: 'wasm', threads: 1, quiet: true });
const tmp = mkdtempSync(join(tmpdir(), 'rxrl-mkdata-'));

/** Hopper-v4's observation from its state: qpos[1:] (5) then clip(qvel, −10, 10) (6), as float32. */
function checkHopperStates(d: D4rlDataset): void {
  assert.equal(d.nq, 6);
  assert.equal(d.nv, 6);
  for (let i = 0; i < d.n; i++) {
    for (let j = 0; j < 5; j++) assert.equal(d.observations[i * 11 + j], Math.fround(d.qpos![i * 6 + 1 + j]!), `row ${i} qpos[${j + 1}]`);
    for (let j = 0; j < 6; j++)
      assert.equal(d.observations[i * 11 + 5 + j], Math.fround(Math.max(-10, Math.min(10, d.qvel![i * 6 + j]!))), `row ${i} qvel[${j}]`);
  }
}

test('random rollouts on Hopper-v4: a D4RL file whose qpos/qvel produced its observations; episodes flagged', async () => {
  const rng = new Rng(0, 'random-policy');
  const low = Float32Array.from([-1, -1, -1]);
  const high = Float32Array.from([1, 1, 1]);
  const data = await rolloutDataset('Hopper-v4', () => randomActions(1, low, high, rng), 300, 5, { kind: 'random' });
  const path = join(tmp, 'hopper-random.hdf5');
  await writeD4rl(path, data, { stateDtype: 'float32', attrs: data.attrs ?? {} });
  const back = await loadD4rl(path, { envId: 'Hopper-v4' });
  assert.equal(back.n, 300);
  checkHopperStates(back);
  const ends = back.terminals.reduce((s, x) => s + x, 0);
  assert.ok(ends >= 3, `a random hopper falls within a few dozen steps (${ends} terminals in 300 rows)`);
  assert.equal(back.attrs?.['kind'], 'random');
});

test("a td3 run's buffer (stopped and resumed) replays bit-identically into D4RL rows with states; subsampling keeps whole episodes", async () => {
  const dir = join(tmp, 'run');
  const file = join(import.meta.dirname, '..', 'pipelines', 'examples', 'td3-hopper.yaml');
  const sets = [
    'algorithm.stepsPerIteration=250',
    'algorithm.startSteps=300',
    'networks.hidden=[8]',
    'evaluation.episodes=1',
    'evaluation.every=100',
    'checkpointEvery=1',
  ];
  await runPipeline({ file, sets: [...sets, 'iterations=1'], out: dir, shouldStop: () => false });
  await runPipeline({ file, sets: [...sets, 'iterations=2'], resume: dir, shouldStop: () => false });
  const ck = await readCheckpoint(join(dir, CHECKPOINT_FILE));
  const rows = (ck.state['buffer'] as { rows: Transitions }).rows;
  assert.ok(rows.n > 450 && rows.n < 500, `${rows.n} transitions (500 steps less the autoreset steps)`);
  const all = await replayBuffer('Hopper-v4', rows, 0, {}, { kind: 'medium-replay' }, 100_000);
  assert.equal(all.n, rows.n);
  assert.deepEqual(all.observations, rows.obs);
  assert.deepEqual(all.actions, rows.actions);
  checkHopperStates(all);
  const cut = await replayBuffer('Hopper-v4', rows, 0, {}, {}, 150);
  assert.ok(cut.n <= 150 && cut.n > 50, `${cut.n} rows`);
  assert.equal(cut.terminals[cut.n - 1]! + cut.timeouts[cut.n - 1]!, 1, 'ends on an episode end');
  assert.equal(cut.attrs?.['subsampled_from'], rows.n);
  // A tampered buffer is refused at the row that no longer reproduces.
  const bad = { ...rows, actions: rows.actions.slice() };
  bad.actions[3 * 10] = -bad.actions[3 * 10]!;
  await assert.rejects(replayBuffer('Hopper-v4', bad, 0, {}, {}, 100_000), /replay: row 10: reward .* but the buffer has/);
});

test.after(() => rmSync(tmp, { recursive: true, force: true }));
