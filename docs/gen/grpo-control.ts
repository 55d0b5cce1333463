/**
 * Regenerates every number of docs/pipelines/grpo-control.md from the current code.
 *
 *   npx tsx docs/gen/grpo-control.ts            all runs (≈ 15 min on 2 cores), rewrites the page and its plots
 *   npx tsx docs/gen/grpo-control.ts --check    only the cheap rows; exits 1 when the page disagrees
 *
 * Runs go to runs/docs/grpo-control/ (not committed). Runs are deterministic on a backend, so the
 * check is exact: a row's printed line must appear verbatim in the page.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, type Run, column, fmt, mean, missingLines, runCli, sum, writeBlocks } from './common.ts';

const PAGE = join(ROOT, 'docs', 'pipelines', 'grpo-control.md');
const RUNS = join(ROOT, 'runs', 'docs', 'grpo-control');
const GRPO = 'pipelines/examples/grpo-cartpole.yaml';
const LAG = 'pipelines/examples/lagrangian-cartpole.yaml';
const PLAIN = ['algorithm.constraint=null'];
const PID = ['algorithm.constraint.update=pid', 'algorithm.constraint.kP=0.01', 'algorithm.constraint.kI=0.005', 'algorithm.constraint.kD=0'];

const last10 = (run: Run, key: string) => mean(column(run.metrics, key).slice(-10));
const dash = (x: number | undefined, digits = 1) => (x === undefined || Number.isNaN(x) ? '—' : fmt(x, digits));

/** One row of the results table. `cost` is false for the unconstrained CartPole-v1 run. */
function resultRow(label: string, env: string, run: Run, cost: boolean): string {
  const reached = run.metrics.find((m) => (m['reward/mean'] ?? 0) >= 400)?.['iteration'];
  const cells = [
    label,
    env,
    String(run.metrics.length),
    fmt(sum(column(run.metrics, 'rollout/env_steps')), 0),
    reached === undefined ? 'never' : String(reached),
    fmt(last10(run, 'reward/mean')),
    cost ? fmt(last10(run, 'cost/mean')) : '—',
    cost ? fmt(mean(column(run.metrics, 'cost/mean'))) : '—',
    fmt(run.summary['eval/return'] ?? Number.NaN),
    cost ? dash(run.summary['eval/cost']) : '—',
  ];
  return `| ${cells.join(' | ')} |`;
}

const seedRow = (seed: number, plain: Run, lag: Run, limit: number) =>
  `| ${seed} | ${fmt(last10(plain, 'reward/mean'), 0)} / ${fmt(last10(plain, 'cost/mean'))} | ${fmt(last10(lag, 'reward/mean'), 0)} / ${fmt(last10(lag, 'cost/mean'))} | ${fmt(last10(lag, 'lambda'), 2)} | ${last10(lag, 'cost/mean') <= limit ? 'yes' : 'no'} |`;

const pidRow = (seed: number, run: Run, limit: number) => {
  const c = last10(run, 'cost/mean');
  const within = c <= limit * 1.2 ? (c <= limit ? 'yes' : `yes (${fmt((100 * (c - limit)) / limit)}% over)`) : 'no';
  return `| ${seed} | ${fmt(last10(run, 'reward/mean'), 0)} / ${fmt(c)} | ${fmt(last10(run, 'lambda'), 2)} | ${within} |`;
};

const at = (name: string) => join(RUNS, name);
const check = process.argv.includes('--check');

if (check) {
  // The cheap row: GRPO on CartPole-v1 (30 iterations, ≈ 20 s).
  const grpo = runCli(GRPO, [], at('grpo'));
  const missing = missingLines(PAGE, 'results', [resultRow('GRPO (`grpo-cartpole.yaml`)', 'CartPole-v1', grpo, false)]);
  if (missing.length > 0) {
    console.error(`docs/pipelines/grpo-control.md is stale; regenerate with npx tsx docs/gen/grpo-control.ts. Expected line(s):\n${missing.join('\n')}`);
    process.exit(1);
  }
  console.log('docs/pipelines/grpo-control.md agrees with the code (cheap rows)');
} else {
  const limit = 50;
  const grpo = runCli(GRPO, [], at('grpo'));
  const lag: Run[] = [];
  const plain: Run[] = [];
  const pid: Run[] = [];
  for (const seed of [1, 2, 3]) {
    lag.push(runCli(LAG, [`seed=${seed}`], at(`lagrangian-s${seed}`)));
    plain.push(runCli(LAG, [`seed=${seed}`, ...PLAIN], at(`plain-s${seed}`)));
    pid.push(runCli(LAG, [`seed=${seed}`, ...PID], at(`pid-s${seed}`)));
  }
  const long = runCli(LAG, ['seed=2', 'iterations=80'], at('lagrangian-s2-80'));
  const env = 'CartPoleConstrained-v1, start x ∈ [−1.5, 1.5]';
  writeBlocks(PAGE, {
    results: [
      '| run | env | iterations | env steps | first iteration with return ≥ 400 | return, last 10 | cost, last 10 | cost, all iterations | eval return | eval cost |',
      '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      resultRow('GRPO (`grpo-cartpole.yaml`)', 'CartPole-v1', grpo, false),
      resultRow('GRPO, no constraint', env, plain[0]!, true),
      resultRow('Lagrangian GRPO, d = 50 (`lagrangian-cartpole.yaml`)', 'same', lag[0]!, true),
    ].join('\n'),
    seeds: [
      '| seed | plain GRPO return / cost | Lagrangian return / cost | Lagrangian λ | constraint met (cost ≤ 50)? |',
      '|---:|---:|---:|---:|---|',
      ...[1, 2, 3].map((s, i) => seedRow(s, plain[i]!, lag[i]!, limit)),
    ].join('\n'),
    long: `A longer run is no cure: seed 2 with 80 iterations instead of 50 ends (last 10 of 80) at return ${fmt(last10(long, 'reward/mean'), 0)}, cost ${fmt(last10(long, 'cost/mean'))}, λ ${fmt(last10(long, 'lambda'), 2)}.`,
    pid: [
      '| seed | PID Lagrangian return / cost | λ | within the 20% tolerance of d = 50? |',
      '|---:|---:|---:|---|',
      ...[1, 2, 3].map((s, i) => pidRow(s, pid[i]!, limit)),
    ].join('\n'),
  });
  // Plots: the Lagrangian and plain seed-1 runs side by side, and GRPO on CartPole-v1.
  const img = join(ROOT, 'docs', 'img', 'grpo-control');
  mkdirSync(img, { recursive: true });
  const report = (dirs: string[], out: string) => {
    const r = spawnSync(process.execPath, [join(ROOT, 'pipelines', 'bin.mjs'), 'report', ...dirs, '--out', out], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`rxrl report failed:\n${r.stderr}`);
  };
  report([lag[0]!.dir, plain[0]!.dir], at('report-lagrangian'));
  for (const k of ['cost', 'lambda', 'reward']) copyFileSync(join(at('report-lagrangian'), `${k}.png`), join(img, `lagrangian-${k}.png`));
  report([grpo.dir], at('report-grpo'));
  copyFileSync(join(at('report-grpo'), 'reward.png'), join(img, 'grpo-cartpole-reward.png'));
  console.log('docs/pipelines/grpo-control.md regenerated');
}
