/**
 * Decision Transformer speed on this machine (default backend):
 *
 *   npm run bench:dt                     # 0.73M-parameter DT (width 128, 3 layers, 1 head)
 *   BENCH_STEPS=50 BENCH_UPDATES=5 ...   # env steps per rollout row / timed updates
 *
 * 1. Batched rollouts: 64 Hopper-v4 copies (8 reset states × G 8, as `grpo-dt` steps them) under
 *    `dtActor` at evaluation context 5 — one batched DT forward per env step for all 64 rows;
 *    env steps/s, the share of the time in the DT forward vs the MuJoCo steps, and the share of
 *    the rows in those forwards still live (ended rows are still fed to the actor). Run twice,
 *    with `act` (the acting forward: last action token dropped, last layer and heads for the last
 *    state token only) and with the full forward it replaced (`dist` over all K steps, last step
 *    sliced, same sampling): env steps/s of both, their ratio, and whether both rolled out the
 *    same trajectories (they must: the values are identical).
 * 2. DT updates: ODT's supervised step (`dtSupervisedStep`, batch 64 × K 20) and the GRPO-DT
 *    update (`policyUpdate`, ratio per sub-trajectory, 64 sub-trajectories of L 20 at context 5,
 *    i.e. 1280 windows); updates/s.
 * 3. The acting forward alone, 64 rows at context 5 (full windows), for the width-128 3-layer DT
 *    and a width-64 2-layer one: the full forward against `act`, alternated in rounds (medians),
 *    their ratio; and context 1 (3 tokens) for scale — about what a step would cost if the
 *    window's earlier tokens were free (a KV cache, which would not be exact: see
 *    docs/pipelines/grpo-dt.md).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../lib/backend.ts';
import { makeVectorEnv } from '../../lib/envs/registry.ts';
import { DecisionTransformer, sampleTanhGaussian } from '../../lib/models/decision-transformer.ts';
import type { DtBatch } from '../../lib/models/decision-transformer.ts';
import type { ActOptions } from '../../lib/models/policy.ts';
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

/**
 * The acting forward `act` replaced: `dist` over all K steps (3K tokens, every layer on every
 * token), the last step sliced, then the same sampling. The "before" of the ratios below.
 */
function fullForwardAct(model: DecisionTransformer, b: DtBatch, r: Rng, opts: ActOptions = {}) {
  const [mean, logStd] = tf.tidy(() => {
    const d = model.dist(b);
    const last = (t: tf.Tensor3D) => tf.slice(t, [0, b.length - 1, 0], [b.batchSize, 1, model.actDim]).dataSync() as Float32Array;
    return [last(d.mean), last(d.logStd)];
  });
  return sampleTanhGaussian(mean, logStd, b.batchSize, model.actDim, r, opts);
}

/** `model` acting through the full forward: its own parameters, `act` replaced. */
function withFullForwardAct(model: DecisionTransformer): DecisionTransformer {
  const view: DecisionTransformer = Object.create(model);
  view.act = (b, r, opts) => fullForwardAct(model, b, r, opts);
  return view;
}

// 1. Batched rollouts.
const venv = await makeVectorEnv('Hopper-v4', 64, { seed: 0 }, { autoreset: 'disabled' });
const starts = Array.from({ length: 8 }, (_, j) => ({ kind: 'seed' as const, envId: 'Hopper-v4', seed: j }));
function rollouts(model: DecisionTransformer) {
  let forwardMs = 0;
  let rows = 0;
  const inner = dtActor(model, { targetReturn: 3600, scale: 1e-3, contextLength: 5, version: () => 0 });
  const actor = {
    ...inner,
    act: (o: Float32Array, n: number, r: Rng, d?: boolean) => {
      const t = performance.now();
      const out = inner.act(o, n, r, d);
      forwardMs += performance.now() - t;
      rows += n;
      return out;
    },
  };
  rolloutGroups(
    { venv, actor, rng: new Rng(0, 'warm'), maxSteps: 3 },
    starts,
    starts.map((_, j) => `w/${j}`),
  );
  forwardMs = 0;
  rows = 0;
  const t0 = performance.now();
  const groups = rolloutGroups(
    { venv, actor, rng: new Rng(0, 'bench'), maxSteps: STEPS },
    starts,
    starts.map((_, j) => `b/${j}`),
  );
  const ms = performance.now() - t0;
  // Hopper episodes of an untrained DT end early: count the steps actually taken.
  const envSteps = groups.reduce((n, g) => n + g.trajectories.reduce((m, tr) => m + tr.length, 0), 0);
  const actions = groups.flatMap((g) => g.trajectories.map((tr) => tr.actions));
  return { ms, forwardMs, envSteps, rows, actions, stepsPerS: (envSteps / ms) * 1000 };
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Alternated runs (this machine is shared): the median run of each by env steps/s, the median ratio of the pairs.
const ROLL_ROUNDS = Number(process.env['BENCH_ROLLOUT_ROUNDS'] ?? 3);
const pairs = Array.from({ length: ROLL_ROUNDS }, () => [rollouts(dt), rollouts(withFullForwardAct(dt))] as const);
const medianRun = (k: 0 | 1) => [...pairs.map((p) => p[k])].sort((a, b) => a.stepsPerS - b.stepsPerS)[Math.floor(ROLL_ROUNDS / 2)]!;
const fast = medianRun(0);
const full = medianRun(1);
const same = pairs.every(
  ([a, b]) => a.envSteps === b.envSteps && a.actions.every((x, i) => x.length === b.actions[i]!.length && x.every((y, k) => Object.is(y, b.actions[i]![k]))),
);
const describeRun = (r: typeof fast) =>
  `${r.stepsPerS.toFixed(0)} env steps/s (${r.envSteps} steps in ${(r.ms / 1000).toFixed(2)} s; DT forward ${((100 * r.forwardMs) / r.ms).toFixed(0)}%, ` +
  `env + bookkeeping ${((100 * (r.ms - r.forwardMs)) / r.ms).toFixed(0)}%)`;
console.log(`batched DT rollouts (64 envs, context 5), act: ${describeRun(fast)}`);
console.log(`  with the full forward instead: ${describeRun(full)}`);
console.log(
  `  act / full forward: ${median(pairs.map(([a, b]) => a.stepsPerS / b.stepsPerS)).toFixed(2)}x env steps/s (median of ${ROLL_ROUNDS} alternated pairs); ` +
    `same trajectories: ${same ? 'yes' : 'NO'}; ` +
    `rows live in the DT forwards: ${((100 * fast.envSteps) / fast.rows).toFixed(0)}% (ended rows are still fed)`,
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

grpoLearner.optimizer.dispose();
learner.optimizer.dispose();

// 3. The acting forward alone, before/after, two model sizes.
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 21);
const hist = Array.from({ length: 64 }, () => new DtHistory(S, A));
for (const h of hist) for (let k = 0; k < 10; k++) h.observe(rng.normalArray(S), 3.6);
for (const [width, layers, model] of [
  [128, 3, dt],
  [64, 2, new DecisionTransformer({ stateDim: S, actDim: A, contextLength: 20, core: { dModel: 64, nLayers: 2, nHeads: 1 }, seed: 0 })],
] as const) {
  const b5 = dtWindowBatch(hist, 5);
  const b1 = dtWindowBatch(hist, 1);
  const runs: [string, () => unknown][] = [
    ['full', () => fullForwardAct(model, b5, rng)],
    ['act', () => model.act(b5, rng)],
    ['act, context 1', () => model.act(b1, rng)],
  ];
  const ms = runs.map((): number[] => []);
  for (const [, f] of runs) f(); // warm-up
  // Each round runs every variant once, so a load change on this shared machine hits all of them.
  for (let round = 0; round < ROUNDS; round++) {
    runs.forEach(([, f], i) => {
      const t = performance.now();
      f();
      ms[i]!.push(performance.now() - t);
    });
  }
  const [fullMs, actMs, k1Ms] = ms.map(median) as [number, number, number];
  const ratio = median(ms[0]!.map((f, i) => f / ms[1]![i]!));
  console.log(
    `acting forward, 64 rows at context 5, width ${width} × ${layers} layers: full forward ${fullMs.toFixed(1)} ms, act ${actMs.toFixed(1)} ms ` +
      `(medians) → ${ratio.toFixed(2)}x (median ratio of ${ROUNDS} alternated rounds); context 1 (3 tokens) ${k1Ms.toFixed(1)} ms for scale`,
  );
  if (model !== dt) model.dispose();
}
console.log(`numTensors at the end: ${tf.memory().numTensors}`);
dt.dispose();
