/**
 * Throughput of the asynchronous actor–learner against the single process, per configuration:
 *
 *     npm run bench:async                          # short (a few iterations per run): checks it works
 *     BENCH_ITERATIONS=24 npm run bench:async      # the measurement (quiet machine)
 *     BENCH_CONFIGS=hopper npm run bench:async     # one configuration (cartpole | hopper | hipo | hipo-gen)
 *     BENCH_QUICK=1 BENCH_SETS="k=v …" …           # only the single process and 1 actor, with overrides: for tuning
 *
 * For `grpo-control` on CartPole-v1 (pipelines/examples/grpo-cartpole.yaml) and Hopper-v4
 * (grpo-hopper.yaml), and for the transformer pipeline `hipo` — hipo.yaml as it is (a width-32
 * Llama, P = 8 prompts × G = 8 completions per iteration) and `hipo-gen`, where generation is the
 * larger part (a width-128, 6-layer Llama, P = 2 × G = 6 completions of 64 tokens; see CONFIGS); each
 * hipo config's base model is one `sft` run made here first, with its suite and model — each run is an ordinary `runPipeline`
 * (evaluation off after iteration 0: it is not parallelised) with 0 actors (one process, as
 * `npm start`), 1 and 2 embedded actor processes (`--actors N`) and 1 actor over a redis-server
 * started here (`--broker`). Env steps/s (tokens for hipo) and updates/s are measured after the
 * first BENCH_WARMUP iterations (child start-up, tfjs warm-up), from the time each iteration's
 * metrics reach the sink. Also printed: the actors' mean rollout time per group and the learner's
 * busy time per update (1 − async/learner_idle_frac), the two costs of the throughput model in
 * docs/scaling.md. The last line is the speedup of 1 learner + 1 actor over the single process on
 * BENCH_SPEEDUP (default hipo-gen, whose rollout and update cost about the same), the configuration
 * docs/scaling.md names: per round, the smaller of the updates/s and env steps/s ratios (the runs'
 * episodes or completions, hence work per update, could differ); the median over BENCH_ROUNDS (default 3) rounds,
 * each round running every mode once, interleaved (this machine's speed drifts by tens of percent
 * from one minute to the next: a ratio of two runs far apart measures the drift). The table shows
 * each mode's medians.
 *
 * An actor steps the tasks it holds as one batch (one policy call per env step for all of them).
 * The single process can do the same (`algorithm.batchStarts`, grpo-control): its row "single
 * process, batched" runs so, and each round's speedup is taken against the faster of the two
 * single-process rows — what two cores add, not what batching adds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { runPipeline } from '../../pipelines/runner.ts';
import { readConsumed } from '../../pipelines/async/runtime.ts';
import type { AsyncRunOptions } from '../../pipelines/async/runtime.ts';
import type { MetricsRecord } from '../../lib/data.ts';
import { redisServerMissing, startRedis, type TestRedis } from '../helpers/redis-server.ts';

const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 6);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 2);
/** hipo.yaml's suite and model (`base.checkpoint` must match them), for its base model. */
const HIPO_BASE_SETS = ['suite.trainSize=1000', 'suite.evalSize=64', 'suite.heldOutSize=64', 'model.width=32'];
/**
 * hipo.yaml with `shape` (model.* and suite.* overrides, which its base model must share; BENCH_SETS'
 * ones are added) and `rl` overrides; its base is one `sft` run made here with `baseSets`.
 */
function hipoSets(shape: readonly string[], baseSets: readonly string[], rl: readonly string[]) {
  return async (work: string, extra: readonly string[]) => {
    const base = join(work, `hipo-base-${[...shape, ...baseSets].join('-').replace(/\W+/g, '_')}`);
    const shapes = [...shape, ...extra.filter((s) => /^(model|suite)\./.test(s))];
    await runPipeline({
      file: 'pipelines/examples/sft-hierarchy.yaml',
      sets: [...HIPO_BASE_SETS, ...shapes, ...baseSets, 'evaluation.every=100000', 'evaluation.prompts=8', 'checkpointEvery=0'],
      out: base,
    });
    return [...shape, ...rl, 'evaluation.prompts=8', 'evaluation.inDistribution=false', `base.checkpoint=${base}`];
  };
}
/** `batchStarts`: the pipeline has the single-process batched rollout (grpo-control). */
const CONFIGS: Record<string, { file: string; sets: (work: string, extra: readonly string[]) => Promise<string[]>; batchStarts?: boolean }> = {
  cartpole: { file: 'pipelines/examples/grpo-cartpole.yaml', sets: async () => [], batchStarts: true },
  // Learning rate ≈ 0: every run does the same work per update (the same policy, so the same episode
  // lengths), so the throughput ratios compare like with like; the update still costs what it costs.
  // Six starts per iteration: with the actor stepping its tasks as one batch, rollout and update
  // then cost about the same (docs/scaling.md).
  hopper: {
    file: 'pipelines/examples/grpo-hopper.yaml',
    sets: async () => ['algorithm.learningRate=1e-12', 'algorithm.startsPerIteration=6'],
    batchStarts: true,
  },
  hipo: { file: 'pipelines/examples/hipo.yaml', sets: hipoSets([], ['iterations=200'], []) },
  // The transformer pipeline where generation is the larger part, as in RL on language models at
  // scale: a width-128, 6-layer Llama (≈ 1.3 M parameters), P = 2 prompts × G = 6 completions of 64
  // tokens, one epoch of one minibatch. Its base is untrained (one SFT step at a learning rate of
  // 10⁻¹²: it has not learnt to stop, so every completion runs to 64 tokens) and the RL learning rate
  // is ≈ 0, so every iteration of every run does the same work (as hopper's); sampling the 12 rows
  // then costs about what the update on them costs (docs/scaling.md).
  'hipo-gen': {
    file: 'pipelines/examples/hipo.yaml',
    sets: hipoSets(
      ['model.width=128', 'model.layers=6', 'suite.maxAnswerTokens=64'],
      ['iterations=1', 'algorithm.learningRate=1e-12'],
      [
        'algorithm.promptsPerIteration=2',
        'algorithm.groupSize=6',
        'algorithm.update.epochs=1',
        'algorithm.update.minibatches=1',
        'algorithm.learningRate=1e-12',
      ],
    ),
  },
};
const chosen = (process.env['BENCH_CONFIGS'] ?? 'cartpole,hopper,hipo,hipo-gen').split(',');
/** Rounds of every mode on the speedup configuration (the others run once). */
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const SPEEDUP = process.env['BENCH_SPEEDUP'] ?? 'hipo-gen';
/** BENCH_QUICK=1: only the modes the speedup compares (the single process and 1 actor), for tuning. */
const ONLY_SPEEDUP_MODES = process.env['BENCH_QUICK'] === '1';
// The redis rows need the server: refuse before minutes of other runs, not after them.
const noRedis = redisServerMissing();
if (noRedis) throw new Error(`bench:async: ${noRedis}`);
if (!(ITERATIONS > WARMUP + 1)) throw new Error(`BENCH_ITERATIONS (${ITERATIONS}) must exceed BENCH_WARMUP (${WARMUP}) + 1`);

interface Measure {
  envStepsPerSec: number;
  updatesPerSec: number;
  rolloutMsPerGroup?: number;
  updateMs?: number;
}

async function measure(file: string, extra: readonly string[], mode: string, asyncOpts: AsyncRunOptions | undefined, redis?: TestRedis): Promise<Measure> {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-bench-async-'));
  const out = join(dir, 'run');
  const stamps: { t: number; m: MetricsRecord }[] = [];
  const actors: ChildProcess[] = [];
  const bin = join(import.meta.dirname, '..', '..', 'pipelines', 'bin.mjs');
  if (redis)
    for (let i = 0; i < 1; i++) actors.push(spawn(process.execPath, [bin, 'actor', '--broker', redis.url, '--run', `bench-${mode}`], { stdio: 'ignore' }));
  try {
    await runPipeline({
      file,
      sets: [...extra, `iterations=${ITERATIONS}`, 'evaluation.every=100000', 'checkpointEvery=0'],
      out,
      sinks: [{ write: (m) => stamps.push({ t: performance.now(), m }) }],
      ...(asyncOpts ? { async: { ...asyncOpts, ...(redis ? { run: `bench-${mode}` } : {}) } } : {}),
    });
    const kept = stamps.slice(WARMUP);
    const seconds = (kept.at(-1)!.t - stamps[WARMUP - 1]!.t) / 1000;
    const steps = kept.reduce((s, r) => s + (r.m['rollout/env_steps'] ?? r.m['rollout/tokens'] ?? 0), 0);
    const res: Measure = { envStepsPerSec: steps / seconds, updatesPerSec: kept.length / seconds };
    if (asyncOpts) {
      const log = readConsumed(join(out, 'consumed.jsonl')).filter((r) => r.iteration >= WARMUP);
      res.rolloutMsPerGroup = log.reduce((s, r) => s + r.rolloutMs, 0) / log.length;
      const busy = kept.reduce((s, r) => s + (1 - (r.m['async/learner_idle_frac'] ?? 0)), 0) / kept.length;
      res.updateMs = (busy * seconds * 1000) / kept.length;
    }
    return res;
  } finally {
    for (const a of actors) if (a.exitCode === null) a.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (x: number | undefined, d = 1) => (x === undefined ? '—' : x.toFixed(d));
const median = (xs: readonly number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
const medianOf = (ms: readonly Measure[]): Measure => {
  const of = (k: keyof Measure) => (ms.every((m) => m[k] !== undefined) ? median(ms.map((m) => m[k]!)) : undefined);
  const out: Measure = { envStepsPerSec: of('envStepsPerSec')!, updatesPerSec: of('updatesPerSec')! };
  const r = of('rolloutMsPerGroup');
  const u = of('updateMs');
  if (r !== undefined) out.rolloutMsPerGroup = r;
  if (u !== undefined) out.updateMs = u;
  return out;
};
/**
 * The speedup of one round: 1 actor against the faster single process of the same round, the smaller
 * of the updates/s and env steps/s ratios (work per update can differ between runs).
 */
const speedupOf = (round: Record<string, Measure>) => {
  const one = round['1 actor']!;
  const ratio = (m: Measure) => Math.min(one.updatesPerSec / m.updatesPerSec, one.envStepsPerSec / m.envStepsPerSec);
  const singles = ['single process', 'single process, batched'].filter((k) => round[k]).map((k) => ({ k, r: ratio(round[k]!) }));
  return singles.reduce((a, b) => (b.r < a.r ? b : a));
};

console.log(
  `bench:async — ${ITERATIONS} iterations per run, first ${WARMUP} not timed, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'} of every mode on ${SPEEDUP} (medians); load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const rounds: Record<string, Measure>[] = [];
const rows: string[] = [];
let redis: TestRedis | undefined;
const work = mkdtempSync(join(tmpdir(), 'rxrl-bench-async-work-'));
try {
  for (const name of chosen) {
    const config = CONFIGS[name];
    if (!config) throw new Error(`BENCH_CONFIGS: unknown config ${name} (known: ${Object.keys(CONFIGS).join(', ')})`);
    const { file } = config;
    // BENCH_SETS: extra `key=value` overrides for every config (space-separated).
    const envSets = (process.env['BENCH_SETS'] ?? '').split(' ').filter(Boolean);
    const extra = [...(await config.sets(work, envSets)), ...envSets];
    const modes: [string, AsyncRunOptions | undefined, boolean][] = (
      [
        ['single process', undefined, false],
        ...(config.batchStarts ? [['single process, batched', undefined, false] as [string, undefined, boolean]] : []),
        ['1 actor', { actors: 1 }, false],
        ['2 actors', { actors: 2 }, false],
        ['redis, 1 actor', {}, true],
      ] as [string, AsyncRunOptions | undefined, boolean][]
    ).filter(([m]) => !ONLY_SPEEDUP_MODES || m.startsWith('single') || m === '1 actor');
    // The speedup configuration runs every mode ROUNDS times, interleaved: each round's runs are
    // minutes apart at most, so a slow spell of the machine hits a round's modes alike.
    const byMode: Record<string, Measure[]> = {};
    for (let round = 0; round < (name === SPEEDUP ? ROUNDS : 1); round++) {
      const got: Record<string, Measure> = {};
      for (const [mode, opts, viaRedis] of modes) {
        if (viaRedis) redis ??= await startRedis();
        got[mode] = await measure(
          file,
          mode === 'single process, batched' ? [...extra, 'algorithm.batchStarts=true'] : extra,
          `${name}-${mode.replace(/\W+/g, '-')}-${round}`,
          viaRedis && redis ? { broker: redis.url } : opts,
          viaRedis ? redis : undefined,
        );
        (byMode[mode] ??= []).push(got[mode]);
        console.log(`  ${name}, ${mode}: ${fmt(got[mode].envStepsPerSec, 0)} env steps/s, ${fmt(got[mode].updatesPerSec, 3)} updates/s`);
      }
      if (name === SPEEDUP) {
        rounds.push(got);
        const s = speedupOf(got);
        console.log(
          `round ${round + 1}: ${modes.map(([m]) => `${m} ${fmt(got[m]!.updatesPerSec, 2)}`).join(', ')} updates/s; speedup ${s.r.toFixed(2)} (against the ${s.k})`,
        );
      }
    }
    for (const [mode] of modes) {
      const m = medianOf(byMode[mode]!);
      rows.push(`| ${name} | ${mode} | ${fmt(m.envStepsPerSec, 0)} | ${fmt(m.updatesPerSec, 3)} | ${fmt(m.rolloutMsPerGroup)} | ${fmt(m.updateMs)} |`);
    }
  }
} finally {
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
}
console.log('| config | mode | env steps/s (hipo: tokens/s) | updates/s | rollout ms / group | learner busy ms / update |');
console.log('|---|---|---:|---:|---:|---:|');
for (const r of rows) console.log(r);
const speedups = rounds.map((r) => speedupOf(r).r);
console.log(`speedup per round (${SPEEDUP}): ${speedups.map((x) => x.toFixed(2)).join(', ') || '—'}`);
console.log(`async speedup (1 learner + 1 actor vs single process): ${(speedups.length > 0 ? median(speedups) : Number.NaN).toFixed(2)}`);
