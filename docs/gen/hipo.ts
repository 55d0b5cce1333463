/**
 * Regenerates the results of docs/pipelines/hipo.md: every method × architecture × seed, through the
 * CLI. One base model per architecture (an `sft` run, seed 1) is shared by every RL method and seed of
 * that architecture; the seeds vary the RL runs (their sampling, minibatches and prompt order).
 *
 *   npx tsx docs/gen/hipo.ts                          the full table (66 runs, 3.4 h of run time; ~1.7 h two at a time)
 *   npx tsx docs/gen/hipo.ts --only llama --seeds 1   a part (one arch, some seeds); the page gets those rows
 *   npx tsx docs/gen/hipo.ts --smoke                  every budget shrunk to the tiniest; writes into a
 *                                                     copy of the page under runs/docs/hipo-smoke/
 *
 * Two cores: run two architectures at once (`--only llama` and `--only qwen2` in two shells), then
 * the full command, which finds every run done and writes the whole page.
 *
 * Methods: base (sft), hipo, grpo-lm utility, grpo-lm fixed-weight at w = 0.5, 1, 2, rft, dpo; archs
 * llama, qwen2, phi; seeds 1, 2, 3. Runs go to runs/docs/hipo2/ (not committed); resumable: a run
 * whose summary.json exists is not run again (its wall time is in wall.json). Writes the blocks
 * `hipo-results` (mean ± std over seeds), `hipo-commands` and the plots docs/img/hipo/scatter.png
 * (conflict compliance vs aligned utility, every method and arch) and docs/img/hipo/attention.png
 * (per layer, base model vs every method, first arch, first seed).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderChartPng } from '../../pipelines/report/render.ts';
import { renderLayerSharePng, type LayerShareRecord } from '../../pipelines/report/attention.ts';
import { ROOT, type Run, type TimedRun, column, fmt, mean, meanStd, runTimed, sum, writeBlocks } from './common.ts';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const smoke = argv.includes('--smoke');
const ARCHS = (flag('--only') ?? 'llama,qwen2,phi').split(',');
const SEEDS = (flag('--seeds') ?? '1,2,3').split(',').map(Number);
for (const a of ARCHS) if (!['llama', 'qwen2', 'phi'].includes(a)) throw new Error(`--only: unknown arch '${a}' (llama, qwen2, phi)`);
for (const s of SEEDS) if (!Number.isInteger(s) || s < 0) throw new Error(`--seeds: expected comma-separated non-negative integers, got ${flag('--seeds')}`);

const RUNS = join(ROOT, 'runs', 'docs', smoke ? 'hipo-smoke' : 'hipo2');
const PAGE = smoke ? join(RUNS, 'hipo.md') : join(ROOT, 'docs', 'pipelines', 'hipo.md');
const IMG = smoke ? RUNS : join(ROOT, 'docs', 'img', 'hipo');

/**
 * The budgets: the table's, or (--smoke) the tiniest that exercises every path. The recipe is the
 * one the probes on the page found (see "Probes toward a recipe"): a base trained on the best
 * answer where system and user agree with half of its examples' rules stated in the user turn, RL at
 * lr 2·10⁻³ on a quarter conflicting prompts, HIPO's dual step η = 0.05.
 */
const SUITE = smoke
  ? ['suite.trainSize=100', 'suite.evalSize=4', 'suite.heldOutSize=4']
  : ['suite.trainSize=10000', 'suite.evalSize=64', 'suite.heldOutSize=64'];
const MODEL = smoke ? ['model.width=16', 'model.layers=2', 'model.heads=4'] : ['model.width=64', 'model.layers=2', 'model.heads=4'];
const EVAL = smoke ? ['evaluation.prompts=4'] : ['evaluation.prompts=64'];
const SFT = smoke
  ? ['iterations=5', 'evaluation.every=100', 'algorithm.targets=aligned-best', 'algorithm.userRules=0.5']
  : ['iterations=1500', 'evaluation.every=250', 'algorithm.batch=64', 'algorithm.targets=aligned-best', 'algorithm.userRules=0.5'];
const RL_ITERATIONS = smoke ? 2 : 100;
const RL = smoke
  ? [`iterations=${RL_ITERATIONS}`, 'evaluation.every=100', 'algorithm.promptsPerIteration=2', 'algorithm.groupSize=2', 'algorithm.conflictShare=0.25']
  : [`iterations=${RL_ITERATIONS}`, 'evaluation.every=20', 'algorithm.promptsPerIteration=16', 'algorithm.groupSize=8', 'algorithm.conflictShare=0.25', 'algorithm.learningRate=0.002'];
/** The seed of the shared base model of each architecture. */
const BASE_SEED = 1;

interface Method {
  id: string;
  label: string;
  file: string;
  sets: string[];
}
const METHODS: Method[] = [
  { id: 'hipo', label: 'HIPO (d = 0.05, η = 0.05)', file: 'hipo.yaml', sets: ['algorithm.constraint.lr=0.05'] },
  { id: 'grpo-utility', label: 'utility-only GRPO', file: 'grpo-lm.yaml', sets: ['algorithm.mode=utility'] },
  ...[0.5, 1, 2].map((w) => ({ id: `fixed-${w}`, label: `fixed weight w = ${w}`, file: 'grpo-lm.yaml', sets: ['algorithm.mode=fixed-weight', `algorithm.weight=${w}`] })),
  { id: 'rft', label: 'RFT (rejection-sampling SFT)', file: 'rft.yaml', sets: [] },
  { id: 'dpo', label: 'DPO (base samples)', file: 'dpo.yaml', sets: [] },
];

const commands: string[] = [];
const cmd = (file: string, sets: string[], dir: string) =>
  commands.push(`npx rxrl run pipelines/examples/${file} ${sets.map((s) => `--set ${s}`).join(' ')} --out ${dir.slice(ROOT.length + 1)}`);

/** results[method][arch] = runs over seeds. */
const results = new Map<string, Map<string, TimedRun[]>>();
const add = (method: string, arch: string, r: TimedRun) => {
  const m = results.get(method) ?? new Map<string, TimedRun[]>();
  results.set(method, m);
  m.set(arch, [...(m.get(arch) ?? []), r]);
};

for (const arch of ARCHS) {
  const sftDir = join(RUNS, `base-${arch}`);
  const sftSets = [...SUITE, ...MODEL, ...EVAL, ...SFT, `model.arch=${arch}`, `seed=${BASE_SEED}`, 'checkpointEvery=0'];
  cmd('sft-hierarchy.yaml', sftSets, sftDir);
  add('base', arch, runTimed('sft-hierarchy.yaml', sftSets, sftDir));
  for (const seed of SEEDS) {
    for (const m of METHODS) {
      const dir = join(RUNS, `${m.id}-${arch}-s${seed}`);
      const sets = [...SUITE, ...MODEL, ...EVAL, ...RL, ...m.sets, `model.arch=${arch}`, `seed=${seed}`, `base.checkpoint=${sftDir.slice(ROOT.length + 1)}`, 'checkpointEvery=0'];
      cmd(m.file, sets, dir);
      add(m.id, arch, runTimed(m.file, sets, dir));
    }
  }
}

const pm = (xs: number[], digits = 2) => meanStd(xs, digits);
const val = (r: Run, k: string) => r.summary[k] ?? Number.NaN;
/** Completions sampled and sampled tokens of a run (0 for the SFT base). */
const sampled = (r: Run) => sum(column(r.metrics, 'rollout/episodes'));
const tokens = (r: Run) => sum(column(r.metrics, 'rollout/tokens'));

const header = [
  '| method | arch | conflict compliance | aligned compliance | aligned utility | conflict utility | attention share before → after (chance) | wall time, s | completions sampled | sampled tokens / s |',
  '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
];
const rows: string[] = [];
const labelOf = (id: string) => (id === 'base' ? 'base (SFT; one run per arch)' : METHODS.find((m) => m.id === id)!.label);
for (const [id, byArch] of results) {
  for (const [arch, runs] of byArch) {
    // The base's "before" is the untrained model (init/…); an RL method's is its base model (base/…).
    const before = runs.map((r) => val(r, id === 'base' ? 'init/eval/attention/system_share' : 'base/eval/attention/system_share'));
    const after = runs.map((r) => val(r, 'eval/attention/system_share'));
    const chance = runs.map((r) => val(r, 'eval/attention/chance'));
    const walls = runs.map((r) => r.wall);
    rows.push(
      `| ${[
        labelOf(id),
        arch,
        pm(runs.map((r) => val(r, 'eval/compliance/conflict'))),
        pm(runs.map((r) => val(r, 'eval/compliance/aligned'))),
        pm(runs.map((r) => val(r, 'eval/utility/aligned'))),
        pm(runs.map((r) => val(r, 'eval/utility/conflict'))),
        `${pm(before, 3)} → ${pm(after, 3)} (${pm(chance, 3)})`,
        pm(walls, 0),
        id === 'base' ? '0' : fmt(mean(runs.map(sampled)), 0),
        id === 'base' ? '—' : pm(runs.map((r, i) => tokens(r) / walls[i]!), 0),
      ].join(' | ')} |`,
    );
  }
}

mkdirSync(IMG, { recursive: true });
if (smoke && !existsSync(PAGE)) copyFileSync(join(ROOT, 'docs', 'pipelines', 'hipo.md'), PAGE);
writeBlocks(PAGE, {
  'hipo-results': [
    `RL seeds ${SEEDS.join(', ')} (the base model: one run per architecture, seed ${BASE_SEED}); mean ± std over seeds of the final greedy evaluation on held-out prompts (summary.json).`,
    '',
    ...header,
    ...rows,
  ].join('\n'),
  'hipo-commands': ['```sh', ...commands, '```'].join('\n'),
});

// The compliance–utility scatter: one point per (method, arch), the mean over seeds.
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const SYMBOLS: Record<string, string> = { llama: 'circle', qwen2: 'triangle', phi: 'rect' };
const series = [...results].map(([id, byArch], i) => ({
  type: 'scatter',
  name: labelOf(id),
  color: PALETTE[i % PALETTE.length],
  symbolSize: 12,
  data: [...byArch].map(([arch, runs]) => ({
    value: [mean(runs.map((r) => val(r, 'eval/compliance/conflict'))), mean(runs.map((r) => val(r, 'eval/utility/aligned')))],
    symbol: SYMBOLS[arch],
    name: arch,
  })),
}));
const scatter = renderChartPng(
  {
    animation: false,
    backgroundColor: '#ffffff',
    title: { text: 'conflict compliance vs aligned utility (held-out, greedy; ● llama ▲ qwen2 ■ phi)', left: 'center', top: 8, textStyle: { fontSize: 14 } },
    legend: { data: series.map((s) => s.name), bottom: 6, left: 'center' },
    grid: { left: 64, right: 32, top: 56, bottom: 96 },
    xAxis: { type: 'value', min: 0, max: 1, name: 'eval/compliance/conflict', nameLocation: 'middle', nameGap: 28 },
    yAxis: { type: 'value', min: 0, max: 1, name: 'eval/utility/aligned' },
    series,
  },
  720,
  480,
);
writeFileSync(join(IMG, 'scatter.png'), scatter);

// Per-layer attention: the base model (before) vs every method (after), first arch and seed.
const first = (id: string) => results.get(id)?.get(ARCHS[0]!)?.[0];
const baseRl = first('hipo');
if (baseRl) {
  const before: Record<string, number> = {};
  for (const [k, v] of Object.entries(baseRl.summary)) if (k.startsWith('base/eval/attention/')) before[k.slice('base/'.length)] = v;
  const records: LayerShareRecord[] = [
    { label: 'base model', metrics: before },
    ...METHODS.flatMap((m) => {
      const r = first(m.id);
      return r ? [{ label: m.label, metrics: r.summary }] : [];
    }),
  ];
  writeFileSync(join(IMG, 'attention.png'), renderLayerSharePng(records, { title: `attention share on system-prompt tokens (${ARCHS[0]}, seed ${SEEDS[0]})`, width: 960 }));
}
console.log(`${PAGE} and ${IMG}/{scatter,attention}.png written (${[...results.values()].reduce((s, m) => s + [...m.values()].flat().length, 0)} runs)`);
