/**
 * Throughput of the asynchronous actor–learner against the single process, per configuration:
 *
 *     npm run bench:async                          # short (a few iterations per run): checks it works
 *     BENCH_ITERATIONS=24 npm run bench:async      # the measurement (quiet machine)
 *     BENCH_CONFIGS=hopper npm run bench:async     # one configuration (cartpole | hopper | hipo)
 *
 * For `grpo-control` on CartPole-v1 (pipelines/examples/grpo-cartpole.yaml) and Hopper-v4
 * (grpo-hopper.yaml), and for the transformer pipeline `hipo` (hipo.yaml: a width-32 Llama, P = 8
 * prompts × G = 8 completions per iteration; its base model is one `sft` run made here first, with
 * hipo.yaml's suite and model, loaded by every hipo run), each run is an ordinary `runPipeline`
 * (evaluation off after iteration 0: it is not parallelised) with 0 actors (one process, as
 * `npm start`), 1 and 2 embedded actor processes (`--actors N`) and 1 actor over a redis-server
 * started here (`--broker`). Env steps/s (tokens for hipo) and updates/s are measured after the
 * first BENCH_WARMUP iterations (child start-up, tfjs warm-up), from the time each iteration's
 * metrics reach the sink. Also printed: the actors' mean rollout time per group and the learner's
 * busy time per update (1 − async/learner_idle_frac), the two costs of the throughput model in
 * docs/scaling.md. The last line is the speedup of 1 learner + 1 actor over the single process on
 * BENCH_SPEEDUP (default hopper), the configuration docs/scaling.md names: the smaller of the
 * updates/s and env steps/s ratios (the runs' episodes, hence work per update, differ).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { runPipeline } from '../../pipelines/runner.ts';
import { readConsumed } from '../../pipelines/async/runtime.ts';
import type { AsyncRunOptions } from '../../pipelines/async/runtime.ts';
import type { MetricsRecord } from '../../lib/data.ts';
import { startRedis, type TestRedis } from '../helpers/redis-server.ts';

const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 6);
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 2);
/** hipo.yaml's suite and model (`base.checkpoint` must match them), for its base model. */
const HIPO_BASE_SETS = ['suite.trainSize=1000', 'suite.evalSize=64', 'suite.heldOutSize=64', 'model.width=32', 'iterations=200'];
const CONFIGS: Record<string, { file: string; sets: (work: string) => Promise<string[]> }> = {
  cartpole: { file: 'pipelines/examples/grpo-cartpole.yaml', sets: async () => [] },
  // Learning rate ≈ 0: every run does the same work per update (the same policy, so the same episode
  // lengths), so the throughput ratios compare like with like; the update still costs what it costs.
  hopper: { file: 'pipelines/examples/grpo-hopper.yaml', sets: async () => ['algorithm.learningRate=1e-12'] },
  hipo: {
    file: 'pipelines/examples/hipo.yaml',
    sets: async (work) => {
      const base = join(work, 'hipo-base');
      await runPipeline({
        file: 'pipelines/examples/sft-hierarchy.yaml',
        sets: [...HIPO_BASE_SETS, 'evaluation.every=100000', 'evaluation.prompts=8', 'checkpointEvery=0'],
        out: base,
      });
      return ['evaluation.prompts=8', 'evaluation.inDistribution=false', `base.checkpoint=${base}`];
    },
  },
};
const chosen = (process.env['BENCH_CONFIGS'] ?? 'cartpole,hopper,hipo').split(',');
const SPEEDUP = process.env['BENCH_SPEEDUP'] ?? 'hopper';
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
console.log(
  `bench:async — ${ITERATIONS} iterations per run, first ${WARMUP} not timed; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log('| config | mode | env steps/s (hipo: tokens/s) | updates/s | rollout ms / group | learner busy ms / update |');
console.log('|---|---|---:|---:|---:|---:|');
const results: Record<string, Record<string, Measure>> = {};
let redis: TestRedis | undefined;
const work = mkdtempSync(join(tmpdir(), 'rxrl-bench-async-work-'));
try {
  for (const name of chosen) {
    const config = CONFIGS[name];
    if (!config) throw new Error(`BENCH_CONFIGS: unknown config ${name} (known: ${Object.keys(CONFIGS).join(', ')})`);
    const { file } = config;
    const extra = await config.sets(work);
    results[name] = {};
    const modes: [string, AsyncRunOptions | undefined, boolean][] = [
      ['single process', undefined, false],
      ['1 actor', { actors: 1 }, false],
      ['2 actors', { actors: 2 }, false],
      ['redis, 1 actor', {}, true],
    ];
    for (const [mode, opts, viaRedis] of modes) {
      if (viaRedis) redis ??= await startRedis();
      const m = await measure(
        file,
        extra,
        `${name}-${mode.replace(/\W+/g, '-')}`,
        viaRedis && redis ? { broker: redis.url } : opts,
        viaRedis ? redis : undefined,
      );
      results[name]![mode] = m;
      console.log(`| ${name} | ${mode} | ${fmt(m.envStepsPerSec, 0)} | ${fmt(m.updatesPerSec, 3)} | ${fmt(m.rolloutMsPerGroup)} | ${fmt(m.updateMs)} |`);
    }
  }
} finally {
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
}
const base = results[SPEEDUP]?.['single process'];
const one = results[SPEEDUP]?.['1 actor'];
// Work per update differs between the runs (episode lengths depend on how each run's policy learned),
// so neither ratio alone compares like with like: the speedup line is the smaller of the two.
const upd = base && one ? one.updatesPerSec / base.updatesPerSec : Number.NaN;
const env = base && one ? one.envStepsPerSec / base.envStepsPerSec : Number.NaN;
console.log(`updates/s ratio (1 learner + 1 actor vs single process, ${SPEEDUP}): ${upd.toFixed(2)}`);
console.log(`env steps/s ratio (1 learner + 1 actor vs single process, ${SPEEDUP}): ${env.toFixed(2)}`);
console.log(`async speedup (1 learner + 1 actor vs single process): ${Math.min(upd, env).toFixed(2)}`);
