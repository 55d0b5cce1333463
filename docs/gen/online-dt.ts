/**
 * Regenerates the results of docs/pipelines/online-dt.md: GRPO-DT, ODT and ODT+TD3 on the medium
 * datasets of Hopper, HalfCheetah and Walker2d (data/<task>-medium.hdf5, made by
 * pipelines/online-dt/make-datasets.ts), 3 seeds, equal environment-step budgets, and the Hopper
 * ablations of GRPO-DT.
 *
 *   npx tsx docs/gen/online-dt.ts                                  the table and the ablations (hours)
 *   npx tsx docs/gen/online-dt.ts --tasks hopper --seeds 1         a part (the page gets every finished run)
 *   npx tsx docs/gen/online-dt.ts --report                         no runs: the page from the finished runs
 *   npx tsx docs/gen/online-dt.ts --no-ablations | --only-ablations
 *   npx tsx docs/gen/online-dt.ts --smoke                          every budget at the tiniest, on the
 *                                                                  tiny test dataset, into runs/docs/online-dt-smoke/
 *
 * Per task and seed the DT is pretrained once, here, with the shared ODT recipe (`pretrainDt` on the
 * config that `odt` implies, saved with `savePretrained`); the three methods start from that file
 * (`base.checkpoint`) and stop at the first iteration whose cumulative env steps reach the budget
 * (`stop: { metric, atLeast }`; tail steps of GRPO-DT's sub-trajectories count). Runs go to
 * runs/docs/online-dt/ (not committed) and are resumable: a run whose summary.json exists is not run
 * again (its wall time is in wall.json) unless its `--set` flags (sets.json) changed, in which case the old
 * directory is moved aside (`<dir>.stale-<ms>`) and the run made anew. The tables and plots show every
 * finished run in runs/docs/online-dt/, whichever invocation made it, so parts run separately merge. Writes the blocks `online-dt-results`,
 * `online-dt-ablations` and `online-dt-commands` and the plots docs/img/online-dt/<task>-steps.png
 * (score against env steps) and <task>-time.png (against rollout + update seconds).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend } from '../../lib/backend.ts';
import { pretrainConfigOf, resolveOdt } from '../../pipelines/online-dt/odt.ts';
import { pretrainDt, savePretrained } from '../../pipelines/online-dt/pretrain.ts';
import { renderChartPng } from '../../pipelines/report/render.ts';
import { applySet } from '../../pipelines/config.ts';
import { ROOT, type Run, type Row, type TimedRun, column, fmt, mean, meanStd, readFinished, runTimed, secondsIn, sum, writeBlocks } from './common.ts';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const smoke = argv.includes('--smoke');

interface Task {
  id: string;
  env: string;
  /** ODT's evaluation return target for the task. */
  target: number;
}
const ALL_TASKS: Task[] = [
  { id: 'hopper', env: 'Hopper-v4', target: 3600 },
  { id: 'halfcheetah', env: 'HalfCheetah-v4', target: 6000 },
  { id: 'walker2d', env: 'Walker2d-v4', target: 5000 },
];
const TASK_IDS = (flag('--tasks') ?? (smoke ? 'hopper' : ALL_TASKS.map((t) => t.id).join(','))).split(',');
for (const id of TASK_IDS) if (!ALL_TASKS.some((t) => t.id === id)) throw new Error(`--tasks: unknown task '${id}' (${ALL_TASKS.map((t) => t.id).join(', ')})`);
const TASKS = ALL_TASKS.filter((t) => TASK_IDS.includes(t.id));
const SEEDS = (flag('--seeds') ?? (smoke ? '1' : '1,2,3')).split(',').map(Number);
for (const s of SEEDS) if (!Number.isInteger(s) || s < 0) throw new Error(`--seeds: expected comma-separated non-negative integers, got ${flag('--seeds')}`);
const report = argv.includes('--report');
const ablations = !report && !argv.includes('--no-ablations');
const mainTable = !report && !argv.includes('--only-ablations');

const RUNS = join(ROOT, 'runs', 'docs', smoke ? 'online-dt-smoke' : 'online-dt');
const PAGE = smoke ? join(RUNS, 'online-dt.md') : join(ROOT, 'docs', 'pipelines', 'online-dt.md');
const IMG = smoke ? RUNS : join(ROOT, 'docs', 'img', 'online-dt');

/**
 * The budgets. DT: width 64, 2 layers, 1 head, K = 20 (ODT: 512 × 4 layers × 4 heads, K = 20);
 * pretraining 1500 steps of batch 64 (ODT: 10⁵); online budget 10⁵ env steps per run.
 */
const BUDGET = smoke ? 600 : 100_000;
const dataOf = (t: Task) => (smoke ? 'test/data/hopper-tiny.hdf5' : `data/${t.id}-medium.hdf5`);
const MODEL = smoke
  ? ['model.dModel=16', 'model.nLayers=1', 'model.nHeads=1', 'model.contextLength=5']
  : ['model.dModel=64', 'model.nLayers=2', 'model.nHeads=1', 'model.contextLength=20'];
const PRETRAIN = smoke ? ['pretrain.steps=20', 'pretrain.batchSize=16', 'pretrain.warmupSteps=5'] : ['pretrain.steps=1500', 'pretrain.batchSize=64', 'pretrain.warmupSteps=300'];
const EVAL_EPISODES = smoke ? 2 : 10;
/** ODT and ODT+TD3: 4 envs per iteration, 20 supervised steps per iteration; evaluation every 5 iterations. */
const ODT = [
  'online.envs=4',
  'update.steps=20',
  'update.batchSize=64',
  `evaluation.every=${smoke ? 100 : 5}`,
  `evaluation.episodes=${EVAL_EPISODES}`,
  ...(smoke ? ['online.maxSteps=50', 'td3.hidden=[16,16]', 'td3.batchSize=16', 'td3.criticSteps=2'] : ['td3.hidden=[64,64]']),
];
/** GRPO-DT: M = 4 starts × G = 8, L = 20 on-policy + H = 100 tail steps (3 840 env steps per iteration). */
const GRPO = smoke
  ? ['algorithm.startsPerIteration=2', 'algorithm.groupSize=2', 'algorithm.length=5', 'algorithm.horizon=5', 'algorithm.resetEvery=5', 'algorithm.seedEpisodes=4', 'evaluation.maxSteps=50']
  : ['algorithm.startsPerIteration=4', 'algorithm.groupSize=8', 'algorithm.length=20', 'algorithm.horizon=100', 'algorithm.learningRate=1e-4'];
const GRPO_EVAL = [`evaluation.every=${smoke ? 100 : 5}`, `evaluation.episodes=${EVAL_EPISODES}`];

interface Method {
  id: string;
  label: string;
  file: string;
  pipeline: string;
  /** The cumulative env-step metric its stop rule reads. */
  steps: string;
  sets: string[];
}
const METHODS: Method[] = [
  { id: 'grpo-dt', label: 'GRPO-DT', file: 'grpo-dt-hopper.yaml', pipeline: 'grpo-dt', steps: 'env_steps/total', sets: [...GRPO, ...GRPO_EVAL] },
  { id: 'odt', label: 'ODT', file: 'odt-hopper.yaml', pipeline: 'odt', steps: 'rollout/total_env_steps', sets: ODT.filter((s) => !s.startsWith('td3.')) },
  { id: 'odt-td3', label: 'ODT+TD3', file: 'odt-hopper.yaml', pipeline: 'odt-td3', steps: 'rollout/total_env_steps', sets: ['pipeline=odt-td3', ...ODT] },
];
/** Hopper ablations of GRPO-DT (seed 1), each one change from the table's GRPO-DT. */
const ABLATIONS: { id: string; label: string; sets: string[] }[] = [
  { id: 'relabel', label: 'with hindsight relabeling', sets: ['algorithm.relabel=true'] },
  { id: 'sequence', label: 'GSPO ratio (sequence, length-normalised)', sets: ['algorithm.update.ratioLevel=sequence'] },
  { id: 'token', label: 'token ratio', sets: ['algorithm.update.ratioLevel=token'] },
  { id: 'uniform', label: 'no active sampling (uniform reset points)', sets: ['algorithm.active.enabled=false'] },
  { id: 'h50', label: 'H = 50', sets: [`algorithm.horizon=${smoke ? 2 : 50}`] },
  { id: 'h200', label: 'H = 200', sets: [`algorithm.horizon=${smoke ? 8 : 200}`] },
  { id: 'h400', label: 'H = 400', sets: [`algorithm.horizon=${smoke ? 10 : 400}`] },
];

const commands: string[] = [];
const cmd = (line: string) => commands.push(line);
const rel = (p: string) => p.slice(ROOT.length + 1);

/** The shared pretraining of a task and seed (skipped when its file exists); its wall time in <file>.json. */
const runDir = (m: Method, task: Task, seed: number) => join(RUNS, `${m.id}-${task.id}-s${seed}`);
const pretrainedPath = (task: Task, seed: number) => join(RUNS, `pretrained-${task.id}-s${seed}.safetensors`);

async function pretrain(task: Task, seed: number): Promise<{ path: string; wall: number }> {
  const path = pretrainedPath(task, seed);
  const sets = shared(task, seed);
  // Another invocation pretraining the same DT: wait for its file.
  while (!existsSync(`${path}.json`) && !claim(path)) await new Promise((r) => setTimeout(r, 5000));
  if (existsSync(path) && existsSync(`${path}.json`)) {
    release(path);
    return { path, wall: secondsIn(`${path}.json`) };
  }
  const partial: Record<string, unknown> = {};
  for (const s of sets) applySet(partial, s);
  const cfg = resolveOdt(partial);
  process.stderr.write(`pretraining ${task.id} seed ${seed} (${cfg.pretrain.steps} steps) …\n`);
  const t0 = performance.now();
  const pre = await pretrainDt(pretrainConfigOf(cfg));
  await savePretrained(path, pre);
  pre.learner.optimizer.dispose();
  pre.dt.dispose();
  const wall = (performance.now() - t0) / 1000;
  writeFileSync(`${path}.json`, JSON.stringify({ seconds: wall }));
  release(path);
  return { path, wall };
}

/** The keys that determine the pretrained DT (the odt config's view). */
function shared(task: Task, seed: number): string[] {
  return [`env.id=${task.env}`, `data.path=${dataOf(task)}`, `seed=${seed}`, ...MODEL, ...PRETRAIN];
}

/** The sets of a method's run from the pretrained file `base`. */
function methodSets(m: Method, task: Task, seed: number, base: string): string[] {
  const stop = [`stop.metric=${m.steps}`, `stop.atLeast=${BUDGET}`, 'iterations=100000', 'checkpointEvery=0', `env.id=${task.env}`, `seed=${seed}`];
  if (m.pipeline === 'grpo-dt') return [...stop, `dataset.path=${dataOf(task)}`, `base.checkpoint=${base}`, `algorithm.targetReturn=${task.target}`, ...m.sets];
  return [...shared(task, seed), ...stop, `base={checkpoint: ${base}}`, `online.targetReturn=${task.target}`, ...m.sets];
}

/**
 * Claims `path` for this process (`<path>.lock` holds the pid): false while another live process
 * holds it, so two invocations run in parallel (`--tasks a` beside `--tasks b`, or overlapping
 * seeds) never make the same run or pretraining at once. A lock of a dead process is taken over.
 */
function claim(path: string): boolean {
  const lock = `${path}.lock`;
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const holder = Number(readFileSync(lock, 'utf8'));
    if (holder === process.pid) return true;
    try {
      process.kill(holder, 0); // alive: its claim stands
      return false;
    } catch {
      writeFileSync(lock, String(process.pid));
      return true;
    }
  }
}
const release = (path: string) => rmSync(`${path}.lock`, { force: true });

/**
 * `runTimed`, but a finished run made with other `--set` flags is moved aside and made anew, and a
 * run another invocation is making is left to it (undefined; the page shows it once it is finished).
 */
function runRecorded(file: string, sets: string[], dir: string): TimedRun | undefined {
  if (!claim(dir)) {
    process.stderr.write(`${rel(dir)}: being made by another invocation (${readFileSync(`${dir}.lock`, 'utf8')}); skipped\n`);
    return undefined;
  }
  try {
    return runLocked(file, sets, dir);
  } finally {
    release(dir);
  }
}
function runLocked(file: string, sets: string[], dir: string): TimedRun {
  const recorded = join(dir, 'sets.json');
  if (existsSync(dir) && existsSync(recorded) && readFileSync(recorded, 'utf8') !== JSON.stringify(sets)) {
    const aside = `${dir}.stale-${Date.now()}`;
    process.stderr.write(`${rel(dir)}: its --set flags changed; moved to ${rel(aside)}\n`);
    renameSync(dir, aside);
  }
  const r = runTimed(file, sets, dir);
  writeFileSync(recorded, JSON.stringify(sets));
  return r;
}
const val = (r: Run, k: string) => r.summary[k] ?? Number.NaN;
const pm = (xs: number[], digits = 1) => meanStd(xs, digits);
/** Optimizer steps of the DT in a run: ODT's `update.steps` per iteration, GRPO-DT's epochs × minibatches. */
function updatesOf(r: Run): number {
  const cfg = JSON.parse(readFileSync(join(r.dir, 'config.json'), 'utf8')) as {
    pipeline: string;
    update?: { steps: number };
    algorithm?: { update: { epochs: number; minibatches: number } };
  };
  const per = cfg.pipeline === 'grpo-dt' ? cfg.algorithm!.update.epochs * cfg.algorithm!.update.minibatches : cfg.update!.steps;
  return per * r.metrics.length;
}
const envStepsOf = (r: Run) => {
  const last = r.metrics.at(-1) ?? {};
  return last['env_steps/total'] ?? last['rollout/total_env_steps'] ?? Number.NaN;
};
const rolloutS = (r: Run) => sum(column(r.metrics, 'time/rollout_s'));
const updateS = (r: Run) => sum(column(r.metrics, 'time/update_s'));

/** results[task][method] = runs over seeds; pretraining per task and seed. */
const results = new Map<string, Map<string, TimedRun[]>>();
const pretrainWall = new Map<string, number[]>();
const add = (task: string, method: string, r: TimedRun) => {
  const m = results.get(task) ?? new Map<string, TimedRun[]>();
  results.set(task, m);
  m.set(method, [...(m.get(method) ?? []), r]);
};
const ablationRuns = new Map<string, TimedRun>();

await initBackend({ quiet: true });
mkdirSync(RUNS, { recursive: true });
for (const task of TASKS) {
  for (const seed of mainTable ? SEEDS : []) {
    const pre = await pretrain(task, seed);
    for (const m of METHODS) runRecorded(m.file, methodSets(m, task, seed, pre.path), runDir(m, task, seed));
  }
}
const hopper = ALL_TASKS[0]!;
/** The ablations use the first seed's pretrained DT. */
const ABLATION_SEED = 1;
const ablationDir = (id: string) => join(RUNS, `ablation-${id}-hopper-s${ABLATION_SEED}`);
if (ablations && TASK_IDS.includes('hopper')) {
  const pre = await pretrain(hopper, ABLATION_SEED);
  for (const a of ABLATIONS) runRecorded(METHODS[0]!.file, [...methodSets(METHODS[0]!, hopper, ABLATION_SEED, pre.path), ...a.sets], ablationDir(a.id));
}

// Every finished run on disk, whichever invocation made it (so parts run separately merge).
const seedsOnDisk = [
  ...new Set(
    readdirSync(RUNS)
      .map((f) => /^pretrained-.+-s(\d+)\.safetensors$/.exec(f)?.[1])
      .filter((x): x is string => x !== undefined)
      .map(Number),
  ),
].sort((a, b) => a - b);
/** Seeds with at least one finished run in the table. */
const seedsShown = new Set<number>();
const commandOf = (file: string, sets: readonly string[], dir: string) => {
  const recorded = join(dir, 'sets.json');
  const used = existsSync(recorded) ? (JSON.parse(readFileSync(recorded, 'utf8')) as string[]) : sets;
  cmd(`npx rxrl run pipelines/examples/${file} ${used.map((s) => `--set '${s}'`).join(' ')} --out ${rel(dir)}`);
};
for (const task of ALL_TASKS) {
  for (const seed of seedsOnDisk) {
    const path = pretrainedPath(task, seed);
    if (!existsSync(`${path}.json`)) continue;
    pretrainWall.set(task.id, [...(pretrainWall.get(task.id) ?? []), secondsIn(`${path}.json`)]);
    cmd(`# pretraining of ${task.id}, seed ${seed}: pretrainDt(pretrainConfigOf(odt config with ${shared(task, seed).join(' ')})) → ${rel(path)}`);
    for (const m of METHODS) {
      const r = readFinished(runDir(m, task, seed));
      if (!r) continue;
      add(task.id, m.id, r);
      seedsShown.add(seed);
      commandOf(m.file, methodSets(m, task, seed, path), runDir(m, task, seed));
    }
  }
}
for (const a of ABLATIONS) {
  const r = readFinished(ablationDir(a.id));
  if (!r) continue;
  ablationRuns.set(a.id, r);
  commandOf(METHODS[0]!.file, [...methodSets(METHODS[0]!, hopper, ABLATION_SEED, pretrainedPath(hopper, ABLATION_SEED)), ...a.sets], ablationDir(a.id));
}

// The main table.
const header = [
  '| task | method | seeds | pretrained start | final score | env steps | DT updates | wall time, s | env steps / s | updates / s | rollout : update time |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
];
const rows: string[] = [];
for (const [taskId, byMethod] of results) {
  const task = ALL_TASKS.find((t) => t.id === taskId)!;
  // The pretrained start, as GRPO-DT's summary measured it (the same file for every method of a seed).
  const start = (byMethod.get('grpo-dt') ?? []).map((r) => val(r, 'pretrained/normalized_score'));
  for (const m of METHODS) {
    const runs = byMethod.get(m.id) ?? [];
    if (runs.length === 0) continue;
    const walls = runs.map((r) => r.wall);
    const share = runs.map((r) => rolloutS(r) / Math.max(1e-9, rolloutS(r) + updateS(r)));
    rows.push(
      `| ${[
        task.env,
        m.label,
        String(runs.length),
        pm(start),
        `**${pm(runs.map((r) => val(r, 'eval/normalized_score')))}**`,
        fmt(mean(runs.map(envStepsOf)), 0),
        fmt(mean(runs.map(updatesOf)), 0),
        pm(walls, 0),
        pm(
          runs.map((r, i) => envStepsOf(r) / walls[i]!),
          0,
        ),
        pm(
          runs.map((r, i) => updatesOf(r) / walls[i]!),
          2,
        ),
        `${fmt(100 * mean(share), 0)} : ${fmt(100 - 100 * mean(share), 0)}`,
      ].join(' | ')} |`,
    );
  }
}
const pretrainLine = [...pretrainWall].map(([t, ws]) => `${t} ${fmt(mean(ws), 0)} s`).join(', ');

// The ablation table (Hopper, one seed), with the importance-ratio statistics of each run.
const abRows: string[] = [];
const abHeader = [
  '| GRPO-DT variant | final score | env steps | iterations | ratio/mean | ratio/max | clip_frac | relabel/target_shift |',
  '|---|---:|---:|---:|---:|---:|---:|---:|',
];
const mainGrpo = results.get('hopper')?.get('grpo-dt')?.[0];
const abList: [string, TimedRun | undefined][] = [['the table\'s GRPO-DT (joint ratio, active sampling, H = 100)', mainGrpo], ...ABLATIONS.map((a) => [a.label, ablationRuns.get(a.id)] as [string, TimedRun | undefined])];
for (const [label, r] of abList) {
  if (!r) continue;
  const col = (k: string) => column(r.metrics, k);
  abRows.push(
    `| ${[
      label,
      fmt(val(r, 'eval/normalized_score'), 1),
      fmt(envStepsOf(r), 0),
      String(r.metrics.length),
      fmt(mean(col('ratio/mean')), 3),
      fmt(Math.max(...col('ratio/max')), 2),
      fmt(mean(col('clip_frac')), 3),
      col('relabel/target_shift').length > 0 ? fmt(mean(col('relabel/target_shift')), 1) : '—',
    ].join(' | ')} |`,
  );
}

mkdirSync(IMG, { recursive: true });
if (smoke && !existsSync(PAGE)) writeFileSync(PAGE, readFileSync(join(ROOT, 'docs', 'pipelines', 'online-dt.md'), 'utf8'));
writeBlocks(PAGE, {
  'online-dt-results': [
    `Tasks ${[...results.keys()].join(', ') || '—'}; seeds ${[...seedsShown].join(', ') || '—'}; D4RL-normalised score (100 · (R − random) / (expert − random)), mean ± std over seeds, deterministic mean-action evaluation over ${EVAL_EPISODES} episodes (the pretrained start: GRPO-DT's evaluation of the shared pretrained DT before its first update). Budget ${fmt(BUDGET, 0)} env steps per run (each run stops at the first iteration that reaches it). Pretraining per seed (shared by the three methods, not in the wall times): ${pretrainLine || '—'}.`,
    '',
    ...header,
    ...rows,
  ].join('\n'),
  'online-dt-ablations': [`Hopper-v4, seed ${ABLATION_SEED}, same budget and pretrained DT as the table.`, '', ...abHeader, ...abRows].join('\n'),
  'online-dt-commands': ['```sh', ...commands, '```'].join('\n'),
});

// Learning curves: score against env steps and against rollout + update seconds, per task.
const PALETTE: Record<string, string> = { 'grpo-dt': '#d62728', odt: '#1f77b4', 'odt-td3': '#2ca02c' };
const curve = (r: Run, x: 'steps' | 'time'): [number, number][] => {
  const out: [number, number][] = [];
  let t = 0;
  for (const row of r.metrics as Row[]) {
    t += (row['time/rollout_s'] ?? 0) + (row['time/update_s'] ?? 0);
    const score = row['eval/normalized_score'];
    if (score === undefined) continue;
    out.push([x === 'steps' ? (row['env_steps/total'] ?? row['rollout/total_env_steps'] ?? 0) : t, score]);
  }
  return out;
};
for (const [taskId, byMethod] of results) {
  const task = ALL_TASKS.find((t) => t.id === taskId)!;
  for (const x of ['steps', 'time'] as const) {
    const series = [...byMethod].flatMap(([id, runs]) =>
      runs.map((r, i) => ({
        type: 'line',
        name: METHODS.find((m) => m.id === id)!.label,
        color: PALETTE[id],
        showSymbol: false,
        lineStyle: { width: 1.5, opacity: i === 0 ? 1 : 0.6 },
        data: curve(r, x),
      })),
    );
    const png = renderChartPng(
      {
        animation: false,
        backgroundColor: '#ffffff',
        title: { text: `${task.env}: D4RL-normalised score (every seed)`, left: 'center', top: 8, textStyle: { fontSize: 14 } },
        legend: { data: METHODS.map((m) => m.label), bottom: 6, left: 'center' },
        grid: { left: 64, right: 32, top: 48, bottom: 80 },
        xAxis: { type: 'value', name: x === 'steps' ? 'env steps' : 'rollout + update seconds', nameLocation: 'middle', nameGap: 28 },
        yAxis: { type: 'value', name: 'normalised score' },
        series,
      },
      720,
      400,
    );
    writeFileSync(join(IMG, `${taskId}-${x}.png`), png);
  }
}
process.stderr.write(`wrote ${rel(PAGE)} and the plots in ${rel(IMG)}\n`);
