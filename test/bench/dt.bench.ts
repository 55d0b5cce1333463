/**
 * Decision Transformer speed on this machine (default backend):
 *
 *   npm run bench:dt                     # 0.73M-parameter DT (width 128, 3 layers, 1 head)
 *   BENCH_STEPS=50 BENCH_UPDATES=5 ...   # env steps per rollout row / timed updates
 *
 * 1. Batched rollouts: 64 Hopper-v4 copies (8 reset states × G 8, as `grpo-dt` steps them) under
 *    `dtActor` at evaluation context 5 — one batched DT forward per env step for all 64 rows;
 *    env steps/s, and the share of the time in the DT forward vs the MuJoCo steps.
 * 2. DT updates: ODT's supervised step (`dtSupervisedStep`, batch 64 × K 20) and the GRPO-DT
 *    update (`policyUpdate`, ratio per sub-trajectory, 64 sub-trajectories of L 20 at context 5,
 *    i.e. 1280 windows); updates/s.
 * 3. Recomputation: the acting forward at context 5 against context 1 — what a step pays for
 *    re-encoding the 5-step window (15 tokens) instead of only the new tokens.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.ts';
import { makeVectorEnv } from '../../lib/envs/registry.ts';
import { DecisionTransformer } from '../../lib/models/decision-transformer.ts';
import { dtActor } from '../../lib/models/dt-actor.ts';
import { dtBatchOf, dtPolicy } from '../../lib/models/dt-batch.ts';
import { dtWindowBatch, DtHistory } from '../../lib/models/generate.ts';
import { Rng } from '../../lib/random.ts';
import type { AdvantagedGroup, Batch, Trajectory } from '../../lib/data.ts';
import { rolloutGroups } from '../../operators/rollout.ts';
import { dtLearner, dtSupervisedStep, DT_SUPERVISED_UPDATE_DEFAULTS } from '../../operators/dtSupervisedUpdate.ts';
import { policyUpdate } from '../../operators/policyUpdate.ts';
import { firstValueFrom, of } from 'rxjs';

const info = await initBackend({ quiet: true });
const STEPS = Number(process.env['BENCH_STEPS'] ?? 100);
const UPDATES = Number(process.env['BENCH_UPDATES'] ?? 5);
const S = 11;
const A = 3;
const dt = new DecisionTransformer({ stateDim: S, actDim: A, contextLength: 20, core: { dModel: 128, nLayers: 3, nHeads: 1 }, seed: 0 });
const nParams = dt.variables.reduce((n, v) => n + v.size, 0);
console.log(
  `backend ${info.name}${info.threads ? ` (${info.threads} threads)` : ''}; DT ${(nParams / 1e6).toFixed(2)}M parameters (width 128, 3 layers, 1 head)`,
);

// 1. Batched rollouts.
const venv = await makeVectorEnv('Hopper-v4', 64, { seed: 0 }, { autoreset: 'disabled' });
let forwardMs = 0;
const inner = dtActor(dt, { targetReturn: 3600, scale: 1e-3, contextLength: 5, version: () => 0 });
const actor = {
  ...inner,
  act: (o: Float32Array, n: number, r: Rng, d?: boolean) => {
    const t0 = performance.now();
    const out = inner.act(o, n, r, d);
    forwardMs += performance.now() - t0;
    return out;
  },
};
const starts = Array.from({ length: 8 }, (_, j) => ({ kind: 'seed' as const, envId: 'Hopper-v4', seed: j }));
// Hopper episodes of an untrained DT end early: count the steps actually taken.
rolloutGroups(
  { venv, actor, rng: new Rng(0, 'warm'), maxSteps: 3 },
  starts,
  starts.map((_, j) => `w/${j}`),
);
forwardMs = 0;
const t0 = performance.now();
const groups = rolloutGroups(
  { venv, actor, rng: new Rng(0, 'bench'), maxSteps: STEPS },
  starts,
  starts.map((_, j) => `b/${j}`),
);
const rollMs = performance.now() - t0;
const envSteps = groups.reduce((n, g) => n + g.trajectories.reduce((m, tr) => m + tr.length, 0), 0);
console.log(
  `batched DT rollouts (64 envs, context 5): ${((envSteps / rollMs) * 1000).toFixed(0)} env steps/s ` +
    `(${envSteps} steps in ${(rollMs / 1000).toFixed(2)} s; DT forward ${((100 * forwardMs) / rollMs).toFixed(0)}%, env + bookkeeping ${((100 * (rollMs - forwardMs)) / rollMs).toFixed(0)}%)`,
);
venv.close();

// 2. Updates.
const learner = dtLearner(dt, { seed: 0 });
const rng = new Rng(1, 'data');
const fake = (T: number, i: number): Trajectory => ({
  length: T,
  obsDim: S,
  actDim: A,
  observations: Float32Array.from(rng.normalArray((T + 1) * S)),
  actions: Float32Array.from(rng.normalArray(T * A), (x) => Math.tanh(x)),
  logProbs: new Float32Array(T),
  rewards: new Float32Array(T).fill(1),
  costs: new Float32Array(T),
  terminated: false,
  truncated: true,
  policyVersion: 0,
  groupId: `g/${Math.floor(i / 8)}`,
  start: { kind: 'seed', envId: 'Hopper-v4', seed: 0 },
  targets: new Float32Array(T).fill(3600),
  timesteps: Int32Array.from({ length: T }, (_, k) => k),
});
const offline = Array.from({ length: 16 }, (_, i) => fake(100, i));
const sup = { ...DT_SUPERVISED_UPDATE_DEFAULTS, batchSize: 64, contextLength: 20, warmupSteps: 1 };
dtSupervisedStep(learner, offline, sup);
let t1 = performance.now();
for (let k = 0; k < UPDATES; k++) dtSupervisedStep(learner, offline, sup);
const supMs = (performance.now() - t1) / UPDATES;
console.log(`DT supervised updates (batch 64 × K 20): ${(1000 / supMs).toFixed(2)} updates/s (${supMs.toFixed(0)} ms each)`);

const subs = Array.from({ length: 64 }, (_, i) => fake(20, i));
const batchOf = (trs: readonly Trajectory[]) => dtBatchOf(trs, { K: 5, rtgScale: 1e-3 });
// Behaviour log-probs = the current ones, so ratios start at 1.
const lp = tf.tidy(() => dtPolicy(dt).logProb(batchOf(subs)).dataSync());
let o = 0;
for (const tr of subs) for (let k = 0; k < tr.length; k++) tr.logProbs[k] = lp[o++]!;
const grpoLearner = { policy: dtPolicy(dt, { rng: new Rng(2, 'ent') }), optimizer: tf.train.adam(1e-5), version: 0, batchOf };
const upd = policyUpdate(grpoLearner, { ratioLevel: 'subtrajectory', maxGradNorm: 0.25 });
const batch: Batch<AdvantagedGroup> = {
  iteration: 0,
  groups: Array.from({ length: 8 }, (_, j) => ({
    groupId: `g/${j}`,
    start: subs[0]!.start,
    trajectories: subs
      .slice(j * 8, j * 8 + 8)
      .map((tr, k) => ({ ...tr, returns: new Float32Array(tr.length), totalReward: k, totalCost: 0, advantage: k - 3.5 })),
  })),
  metrics: {},
};
await firstValueFrom(of(batch).pipe(upd));
t1 = performance.now();
for (let k = 0; k < UPDATES; k++) await firstValueFrom(of(batch).pipe(upd));
const grpoMs = (performance.now() - t1) / UPDATES;
console.log(`GRPO-DT updates (64 sub-trajectories × L 20, context 5 = 1280 windows): ${(1000 / grpoMs).toFixed(2)} updates/s (${grpoMs.toFixed(0)} ms each)`);

// 3. What the acting forward recomputes.
const hist = Array.from({ length: 64 }, () => new DtHistory(S, A));
for (const h of hist) for (let k = 0; k < 10; k++) h.observe(rng.normalArray(S), 3.6);
const time = (K: number): number => {
  const b = dtWindowBatch(hist, K);
  dt.act(b, rng);
  const t = performance.now();
  for (let k = 0; k < 20; k++) dt.act(b, rng);
  return (performance.now() - t) / 20;
};
const k5 = time(5);
const k1 = time(1);
console.log(
  `acting forward, 64 rows: context 5 (15 tokens) ${k5.toFixed(1)} ms, context 1 (3 tokens) ${k1.toFixed(1)} ms — ` +
    `each step re-encodes its whole 5-step window (a sliding window changes every cached layer ≥ 2 state, so a KV cache is exact only until the window fills)`,
);
console.log(`numTensors at the end: ${tf.memory().numTensors}`);
grpoLearner.optimizer.dispose();
learner.optimizer.dispose();
dt.dispose();
