/**
 * Run reports: learning curves and final metrics of one or more training runs, as PNG charts and one
 * self-contained HTML page (`rxrl report DIR [DIR ...]`; see docs/reports.md).
 *
 * A run directory holds `config.json` (the resolved pipeline config: at least `pipeline`, `seed`,
 * `iterations`), `metrics.jsonl` (one record per iteration, see docs/metrics.md; a torn last line is
 * skipped) and `summary.json` (final evaluation metrics, flat `{ name: number }`; optional, so that
 * an unfinished run can be reported too).
 *
 * Charts are drawn by Apache ECharts (server-side rendering to an SVG string) and rasterised by resvg
 * with the DejaVu Sans TTF shipped by the `dejavu-fonts-ttf` npm package; system fonts are never
 * loaded, so a machine without any installed font renders the same pixels.
 *
 * ```ts
 * const { html, images } = await writeReport(['runs/grpo', 'runs/lagrangian'], 'runs/report');
 * ```
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as echarts from 'echarts';
import { Resvg } from '@resvg/resvg-js';

// ---------------------------------------------------------------------------------------------
// Loading a run.

/** The config keys every run has; the rest of the resolved pipeline config is kept as is. */
export interface RunConfig {
  pipeline: string;
  seed: number;
  iterations: number;
  [key: string]: unknown;
}

/** One metrics row: `iteration` plus the numbers logged for it (`null` in the file reads as NaN). */
export type MetricsRow = { iteration: number } & Record<string, number>;

export interface RunData {
  /** The directory as given. */
  dir: string;
  /** The directory's name (`runs/a` → `a`); the default legend label. */
  name: string;
  config: RunConfig;
  /** One row per iteration in iteration order (rows logged twice for an iteration are merged). */
  metrics: MetricsRow[];
  /** Final metrics from `summary.json`; `undefined` when the run has none (yet). */
  summary: Record<string, number> | undefined;
  /** Whether a torn (partially written) last line of `metrics.jsonl` was skipped. */
  tornLastLine: boolean;
  /** Metrics of `metrics.jsonl` that are not numbers (strings, objects): not charted. */
  droppedKeys: string[];
}

/** A run directory or one of its files that `rxrl report` cannot use (a user's mistake, not a bug). */
export class ReportError extends Error {
  override readonly name = 'ReportError';
}

const RUN_FILES = 'a run directory holds config.json, metrics.jsonl and summary.json';

function readText(path: string): string {
  if (!existsSync(path)) throw new ReportError(`${path}: missing (${RUN_FILES})`);
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ReportError(`${path}: cannot read: ${(e as Error).message}`);
  }
}

function parseJsonFile(path: string): unknown {
  const text = readText(path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ReportError(`${path}: not JSON (${(e as Error).message})`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readConfig(path: string): RunConfig {
  const raw = parseJsonFile(path);
  if (!isObject(raw)) throw new ReportError(`${path}: expected a JSON object`);
  if (typeof raw['pipeline'] !== 'string') throw new ReportError(`${path}: "pipeline" must be a string, got ${JSON.stringify(raw['pipeline'])}`);
  for (const key of ['seed', 'iterations'] as const) {
    if (typeof raw[key] !== 'number') throw new ReportError(`${path}: "${key}" must be a number, got ${JSON.stringify(raw[key])}`);
  }
  return raw as RunConfig;
}

function readSummary(path: string): Record<string, number> {
  const raw = parseJsonFile(path);
  if (!isObject(raw)) throw new ReportError(`${path}: expected a flat JSON object { name: number }`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (v === null) out[k] = NaN;
    else if (typeof v === 'number') out[k] = v;
    else throw new ReportError(`${path}: "${k}" must be a number or null, got ${JSON.stringify(v)}`);
  }
  return out;
}

/**
 * Reads `metrics.jsonl`. Every line but the last non-empty one must be a JSON object with a numeric
 * `iteration`; a last line that is not JSON is a torn write of a run still going (or killed) and is
 * skipped. Numbers and `null` (NaN) are kept; other values (strings, objects) are
 * not charted, and their keys are returned in `droppedKeys` (`rxrl report` warns about them).
 */
export function readMetricsFile(path: string): { rows: MetricsRow[]; tornLastLine: boolean; droppedKeys: string[] } {
  const lines = readText(path).split('\n');
  let last = lines.length - 1;
  while (last >= 0 && lines[last]!.trim() === '') last--;
  const byIteration = new Map<number, MetricsRow>();
  let tornLastLine = false;
  const dropped = new Set<string>();
  for (let i = 0; i <= last; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line) as unknown;
    } catch {
      if (i === last) {
        tornLastLine = true;
        continue;
      }
      throw new ReportError(`${path}:${i + 1}: not JSON`);
    }
    if (!isObject(obj)) throw new ReportError(`${path}:${i + 1}: expected a JSON object`);
    const it = obj['iteration'];
    if (typeof it !== 'number' || !Number.isFinite(it)) throw new ReportError(`${path}:${i + 1}: "iteration" must be a number, got ${JSON.stringify(it)}`);
    const row: Record<string, number> = {};
    for (const [k, v] of Object.entries(obj)) {
      if (v === null) row[k] = NaN;
      else if (typeof v === 'number') row[k] = v;
      else dropped.add(k);
    }
    byIteration.set(it, { ...byIteration.get(it), ...row } as MetricsRow);
  }
  const rows = [...byIteration.values()].sort((a, b) => a.iteration - b.iteration);
  return { rows, tornLastLine, droppedKeys: [...dropped].sort() };
}

/**
 * Reads a run directory. Errors name the file (and line) at fault, e.g.
 * `runs/a/metrics.jsonl:7: not JSON` or `runs/a/config.json: missing (...)`.
 * `summary.json` may be absent (an unfinished run); a present but malformed one is an error.
 */
export function loadRun(dir: string): RunData {
  if (!existsSync(dir)) throw new ReportError(`${dir}: no such run directory`);
  if (!statSync(dir).isDirectory()) throw new ReportError(`${dir}: not a directory (${RUN_FILES})`);
  const config = readConfig(join(dir, 'config.json'));
  const { rows, tornLastLine, droppedKeys } = readMetricsFile(join(dir, 'metrics.jsonl'));
  const summaryPath = join(dir, 'summary.json');
  const summary = existsSync(summaryPath) ? readSummary(summaryPath) : undefined;
  const name = basename(resolve(dir));
  return { dir, name, config, metrics: rows, summary, tornLastLine, droppedKeys };
}

// ---------------------------------------------------------------------------------------------
// Legend labels.

/** Flattens a config to `a.b.c → value` (arrays and scalars are leaves, compared as JSON). */
function flatten(obj: Record<string, unknown>, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (isObject(v)) flatten(v, key, out);
    else out[key] = JSON.stringify(v) ?? 'undefined';
  }
  return out;
}

/**
 * One legend label per run: the directory's name; runs whose names collide are told apart by their
 * config's `pipeline` and the config fields that differ between them (`grpo seed=1`), then by index.
 */
export function runLabels(runs: readonly Pick<RunData, 'name' | 'config'>[]): string[] {
  const labels = runs.map((r) => r.name);
  const groups = new Map<string, number[]>();
  labels.forEach((l, i) => groups.set(l, [...(groups.get(l) ?? []), i]));
  for (const idx of groups.values()) {
    if (idx.length < 2) continue;
    const flats = idx.map((i) => flatten(runs[i]!.config));
    const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))].filter((k) => k !== 'pipeline');
    const differing = keys.filter((k) => new Set(flats.map((f) => f[k])).size > 1).slice(0, 2);
    idx.forEach((i, j) => {
      const f = flats[j]!;
      const parts = [runs[i]!.config.pipeline, ...differing.map((k) => `${k}=${f[k] ?? '-'}`)];
      labels[i] = parts.join(' ');
    });
  }
  const seen = new Map<string, number>();
  return labels.map((l) => {
    const n = (seen.get(l) ?? 0) + 1;
    seen.set(l, n);
    return labels.filter((x) => x === l).length > 1 ? `${l} #${n}` : l;
  });
}

// ---------------------------------------------------------------------------------------------
// Charts.

/** One learning-curve chart: a metric against iteration, one line per run. */
export interface ChartSpec {
  /** File name stem of the PNG. */
  id: string;
  title: string;
  /** The metric plotted. */
  key: string;
  /** Shade mean ± `<family>/std`, or [`<family>/min`, `<family>/max`], where logged. */
  band?: boolean;
  /** Dashed horizontal line(s) at this metric's value (e.g. the constraint limit). */
  limitKey?: string;
  /** Draw only when this holds for the runs that have `key` (defaults to: some run has it). */
  when?: (runs: readonly RunData[]) => boolean;
}

const has = (run: RunData, key: string): boolean => run.metrics.some((r) => Number.isFinite(r[key]));

/** The charts a report can hold, in page order; each is drawn only when some run logged its metric. */
export const REPORT_CHARTS: readonly ChartSpec[] = [
  { id: 'reward', title: 'Reward (mean episode return)', key: 'reward/mean', band: true },
  { id: 'cost', title: 'Cost against its limit', key: 'cost/mean', limitKey: 'constraint/limit' },
  { id: 'lambda', title: 'Lagrange multiplier λ', key: 'lambda' },
  { id: 'kl', title: 'KL to the reference policy', key: 'kl' },
  { id: 'eval-score', title: 'Evaluation: D4RL normalised score', key: 'eval/normalized_score' },
  {
    id: 'eval-return',
    title: 'Evaluation return',
    key: 'eval/return',
    // Shown when some run has an evaluation return but no normalised score to plot instead.
    when: (runs) => runs.some((r) => has(r, 'eval/return') && !has(r, 'eval/normalized_score')),
  },
  { id: 'compliance', title: 'Compliance', key: 'compliance/mean', band: true },
  { id: 'utility', title: 'Utility', key: 'utility/mean', band: true },
];

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
const FONT = 'DejaVu Sans';

const finitePoints = (rows: readonly MetricsRow[], key: string): [number, number][] =>
  rows.flatMap((r) => (Number.isFinite(r[key]) ? [[r.iteration, r[key]!] as [number, number]] : []));

function fmtNumber(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e9) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e9) ? x.toExponential(digits - 1) : String(Number(x.toPrecision(digits)));
}

/** The ECharts option of one chart (exported for tests and for callers that render elsewhere). */
export function chartOption(spec: ChartSpec, runs: readonly RunData[], labels: readonly string[], width = 720): echarts.EChartsCoreOption {
  const series: Record<string, unknown>[] = [];
  const legend: string[] = [];
  const family = spec.key.endsWith('/mean') ? spec.key.slice(0, -'/mean'.length) : undefined;
  // A limit shared by every run (the usual case) is one grey line; otherwise one per run.
  const limits = spec.limitKey === undefined ? [] : runs.map((r) => finitePoints(r.metrics, spec.limitKey!).map((p) => p[1]));
  const allLimits = limits.flat();
  const sharedLimit = allLimits.length > 0 && allLimits.every((v) => v === allLimits[0]) ? allLimits[0] : undefined;
  let limitDrawn = false;

  runs.forEach((run, i) => {
    const points = finitePoints(run.metrics, spec.key);
    if (points.length === 0) return;
    const color = PALETTE[i % PALETTE.length]!;
    const label = labels[i]!;
    legend.push(label);

    if (spec.band && family !== undefined) {
      let lower: [number, number][] = [];
      let upper: [number, number][] = [];
      if (run.metrics.some((r) => Number.isFinite(r[`${family}/std`]))) {
        for (const r of run.metrics) {
          const m = r[spec.key];
          const s = r[`${family}/std`];
          if (m !== undefined && s !== undefined && Number.isFinite(m) && Number.isFinite(s)) {
            lower.push([r.iteration, m - s]);
            upper.push([r.iteration, m + s]);
          }
        }
      } else if (run.metrics.some((r) => Number.isFinite(r[`${family}/min`]) && Number.isFinite(r[`${family}/max`]))) {
        lower = finitePoints(run.metrics, `${family}/min`);
        upper = finitePoints(run.metrics, `${family}/max`);
        const lo = new Map(lower);
        const both = upper.filter(([x]) => lo.has(x));
        lower = both.map(([x]) => [x, lo.get(x)!]);
        upper = both;
      }
      if (lower.length > 0) {
        // Stacked pair: an invisible lower edge, then the band's height filled on top of it.
        const stack = `band-${i}`;
        const common = { type: 'line', stack, stackStrategy: 'all', symbol: 'none', silent: true, lineStyle: { opacity: 0 }, z: 1 };
        series.push({ ...common, name: `${label} band`, data: lower });
        series.push({
          ...common,
          name: `${label} band`,
          data: upper.map(([x, hi], j) => [x, hi - lower[j]![1]]),
          areaStyle: { color, opacity: 0.15 },
        });
      }
    }

    const line: Record<string, unknown> = {
      type: 'line',
      name: label,
      data: points,
      color,
      showSymbol: points.length <= 30,
      symbolSize: 5,
      lineStyle: { width: 2 },
      z: 3,
    };
    if (sharedLimit !== undefined && !limitDrawn) {
      limitDrawn = true;
      line['markLine'] = {
        silent: true,
        symbol: 'none',
        lineStyle: { type: 'dashed', color: '#444', width: 1.5 },
        label: { formatter: `limit ${fmtNumber(sharedLimit)}`, position: 'insideEndTop', fontFamily: FONT, color: '#444' },
        data: [{ yAxis: sharedLimit }],
      };
    }
    series.push(line);

    if (spec.limitKey !== undefined && sharedLimit === undefined) {
      const lim = finitePoints(run.metrics, spec.limitKey);
      if (lim.length > 0) {
        // Same name as the run's line: one legend entry (toggling both), drawn dashed in its colour.
        series.push({ type: 'line', name: label, data: lim, color, showSymbol: false, lineStyle: { type: 'dashed', width: 1.5 }, z: 2 });
      }
    }
  });

  // ECharts does not widen the axis for a markLine: an invisible point at the limit makes room for it
  // (and keeps the axis's nicely rounded ticks).
  if (limitDrawn && sharedLimit !== undefined) {
    const first = series.find((s) => s['name'] === legend[0]);
    const x = (first?.['data'] as [number, number][] | undefined)?.[0]?.[0] ?? 0;
    series.push({ type: 'line', name: 'limit', data: [[x, sharedLimit]], symbol: 'none', silent: true, lineStyle: { opacity: 0 } });
  }
  const yAxis = { type: 'value', scale: true, name: spec.key, nameTextStyle: { align: 'left' } };

  // Legend entries wrap onto more rows at the bottom: make room so they do not cover the x-axis name.
  const legendWidth = width - 2 * 16 - 10;
  let rows = 1;
  let x = 0;
  for (const name of legend) {
    const w = 25 + 5 + textWidth(name) + 10;
    if (x > 0 && x + w > legendWidth) {
      rows++;
      x = 0;
    }
    x += w;
  }

  return {
    animation: false,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: FONT },
    title: { text: spec.title, left: 'center', top: 8, textStyle: { fontFamily: FONT, fontSize: 16 } },
    legend: { data: legend, bottom: 6, left: 'center', width: legendWidth, textStyle: { fontFamily: FONT } },
    grid: { left: 64, right: 32, top: 64, bottom: 48 + 24 * rows },
    xAxis: { type: 'value', name: 'iteration', nameLocation: 'middle', nameGap: 26, minInterval: 1, scale: true },
    yAxis,
    series,
  };
}

let fontFiles: { regular: string; bold: string } | undefined;

/** The TTFs resvg renders text with (from the `dejavu-fonts-ttf` package; no system fonts). */
function reportFonts(): { regular: string; bold: string } {
  if (fontFiles === undefined) {
    const dir = join(dirname(createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    const files = { regular: join(dir, 'DejaVuSans.ttf'), bold: join(dir, 'DejaVuSans-Bold.ttf') };
    const missing = Object.values(files).filter((f) => !existsSync(f));
    if (missing.length > 0) throw new ReportError(`report fonts missing: ${missing.join(', ')} (npm install dejavu-fonts-ttf)`);
    fontFiles = files;
  }
  return fontFiles;
}

/** The part of an opentype.js font used here (the package ships no type declarations). */
interface GlyphMetricsFont {
  unitsPerEm: number;
  charToGlyph(char: string): { advanceWidth?: number };
}

let textMeasureInstalled = false;

/**
 * Makes ECharts measure text with the DejaVu Sans advance widths (read by opentype.js), so that
 * legends and labels are laid out for the font resvg draws them with (ECharts' built-in estimate,
 * used where there is no canvas, assumes a narrower font and makes legend entries overlap).
 */
function installTextMeasure(): void {
  if (textMeasureInstalled) return;
  const opentype = createRequire(import.meta.url)('opentype.js') as { parse(buffer: ArrayBuffer): GlyphMetricsFont };
  const load = (path: string): GlyphMetricsFont => {
    const b = readFileSync(path);
    return opentype.parse(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
  };
  const files = reportFonts();
  const fonts = { regular: load(files.regular), bold: load(files.bold) };
  const em = { regular: new Map<string, number>(), bold: new Map<string, number>() };
  measure = (text: string, font?: string): number => {
    const f = font ?? '';
    const size = Number(/(\d+(?:\.\d+)?)px/.exec(f)?.[1] ?? 12);
    const weight = /bold|\b[6-9]00\b/.test(f) ? 'bold' : 'regular';
    const cache = em[weight];
    let width = 0;
    for (const ch of text) {
      let w = cache.get(ch);
      if (w === undefined) {
        const otf = fonts[weight];
        w = (otf.charToGlyph(ch).advanceWidth ?? otf.unitsPerEm * 0.6) / otf.unitsPerEm;
        cache.set(ch, w);
      }
      width += w * size;
    }
    return width;
  };
  echarts.setPlatformAPI({ measureText: (text: string, font?: string) => ({ width: measure(text, font) }) });
  textMeasureInstalled = true;
}

let measure: (text: string, font?: string) => number = (text) => text.length * 7;

/** Width in CSS pixels of `text` in DejaVu Sans at `size` px. */
function textWidth(text: string, size = 12): number {
  installTextMeasure();
  return measure(text, `${size}px ${FONT}`);
}

/** Renders an ECharts option to PNG bytes (`width`×`height` CSS pixels, times `scale`). */
export function renderChartPng(option: echarts.EChartsCoreOption, width = 720, height = 360, scale = 2): Buffer {
  installTextMeasure();
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  let svg: string;
  try {
    chart.setOption(option);
    svg = chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
  const resvg = new Resvg(svg, {
    font: { loadSystemFonts: false, fontFiles: Object.values(reportFonts()), defaultFontFamily: FONT, sansSerifFamily: FONT },
    fitTo: { mode: 'zoom', value: scale },
    background: '#ffffff',
  });
  return resvg.render().asPng();
}

// ---------------------------------------------------------------------------------------------
// The page.

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

function configValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? '';
}

function runSection(run: RunData, label: string, color: string, outDir: string): string {
  const c = run.config;
  const last = run.metrics[run.metrics.length - 1];
  const keyRows: [string, string][] = [
    ['directory', relative(outDir, resolve(run.dir)) || '.'],
    ['pipeline', c.pipeline],
    ['seed', configValue(c.seed)],
    ['iterations', configValue(c.iterations)],
    ['metrics rows', `${run.metrics.length}${last !== undefined ? ` (last iteration ${last.iteration})` : ''}${run.tornLastLine ? '; torn last line skipped' : ''}`],
  ];
  const table = (rows: [string, string][], cls = ''): string =>
    `<table${cls}>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
  const summary =
    run.summary === undefined
      ? '<p class="muted">No summary.json (the run may not have finished).</p>'
      : Object.keys(run.summary).length === 0
        ? '<p class="muted">summary.json is empty.</p>'
        : table(Object.entries(run.summary).map(([k, v]) => [k, fmtNumber(v, 6)]), ' class="num"');
  return `<section class="run">
<h2><span class="swatch" style="background:${color}"></span>${esc(label)}</h2>
<div class="cols">
<div><h3>Config</h3>${table(keyRows)}
<details><summary>full config.json</summary><pre>${esc(JSON.stringify(c, null, 2))}</pre></details></div>
<div><h3>Final metrics (summary.json)</h3>${summary}</div>
</div>
</section>`;
}

/** Final metrics side by side (rows: summary names, columns: runs), for two runs or more. */
function comparisonTable(runs: readonly RunData[], labels: readonly string[]): string {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.summary ?? {})))];
  if (runs.length < 2 || keys.length === 0) return '';
  const head = `<tr><th>metric</th>${labels.map((l) => `<th>${esc(l)}</th>`).join('')}</tr>`;
  const body = keys
    .map((k) => `<tr><th>${esc(k)}</th>${runs.map((r) => `<td>${r.summary?.[k] === undefined ? '–' : esc(fmtNumber(r.summary[k]!, 6))}</td>`).join('')}</tr>`)
    .join('');
  return `<h2>Final metrics compared</h2><table class="num">${head}${body}</table>`;
}

const CSS = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}.muted{color:#777}.cols{display:flex;gap:2rem;flex-wrap:wrap}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
th{background:#f6f6f6;font-weight:600}table.num td{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.5em}
figure{margin:1rem 0}img{max-width:100%;height:auto;border:1px solid #eee}pre{font-size:.8rem;background:#f8f8f8;padding:.5rem;overflow:auto}`;

export interface ReportOptions {
  /** Page title (default: `rxrl report: a, b`). */
  title?: string;
  /** Embed the PNGs as data URIs so report.html stands alone (default true); else link them. */
  inline?: boolean;
  /** Pixel scale of the PNGs (default 2: 1440×720 for the 720×360 charts). */
  scale?: number;
}

/**
 * Writes `report.html` and one PNG per chart with data (`reward.png`, `cost.png`, …) into `outDir`
 * (created if needed) and returns their paths. Several run directories share each chart, one line
 * per run, to compare methods or seeds.
 */
export async function writeReport(runDirs: string[], outDir: string, options: ReportOptions = {}): Promise<{ html: string; images: string[] }> {
  if (runDirs.length === 0) throw new ReportError('writeReport: no run directories given');
  const runs = runDirs.map((d) => loadRun(d));
  for (const r of runs) {
    if (r.droppedKeys.length > 0) {
      process.stderr.write(`rxrl report: warning: ${join(r.dir, 'metrics.jsonl')}: ${r.droppedKeys.map((k) => `'${k}'`).join(', ')} ${r.droppedKeys.length === 1 ? 'is not a number' : 'are not numbers'}; not charted\n`);
    }
  }
  const labels = runLabels(runs);
  mkdirSync(outDir, { recursive: true });
  const scale = options.scale ?? 2;
  const inline = options.inline ?? true;

  const images: string[] = [];
  const figures: string[] = [];
  for (const spec of REPORT_CHARTS) {
    const withData = runs.filter((r) => has(r, spec.key));
    if (withData.length === 0 || (spec.when !== undefined && !spec.when(runs))) continue;
    const png = renderChartPng(chartOption(spec, runs, labels, 720), 720, 360, scale);
    const file = join(outDir, `${spec.id}.png`);
    writeFileSync(file, png);
    images.push(file);
    const src = inline ? `data:image/png;base64,${png.toString('base64')}` : `${spec.id}.png`;
    const missing = runs.length > 1 && withData.length < runs.length ? ` <span class="muted">(not logged by ${esc(runs.filter((r) => !withData.includes(r)).map((r) => labels[runs.indexOf(r)]!).join(', '))})</span>` : '';
    figures.push(`<figure id="${spec.id}"><img src="${src}" alt="${esc(spec.title)}" width="720"><figcaption><code>${esc(spec.key)}</code>${missing}</figcaption></figure>`);
    // Let other work (and the event loop) through between charts.
    await new Promise<void>((r) => setImmediate(r));
  }

  const title = options.title ?? `rxrl report: ${labels.join(', ')}`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="muted">${runs.length} run${runs.length === 1 ? '' : 's'}, generated ${esc(new Date().toISOString())} by rxrl.</p>
${comparisonTable(runs, labels)}
${runs.map((r, i) => runSection(r, labels[i]!, PALETTE[i % PALETTE.length]!, outDir)).join('\n')}
<h2>Learning curves</h2>
${figures.length > 0 ? figures.join('\n') : '<p class="muted">None of the runs logged a plotted metric.</p>'}
</body></html>
`;
  const htmlPath = join(outDir, 'report.html');
  writeFileSync(htmlPath, html);
  return { html: htmlPath, images };
}

// ---------------------------------------------------------------------------------------------
// Command line.

/**
 * `rxrl report DIR [DIR ...] [--out OUT] [--title TITLE] [--no-inline]`: the arguments after
 * `report`. OUT defaults to `DIR/report` for one run and `report` (in the working directory) for
 * several. Returns the written page's path.
 */
export async function reportCommand(argv: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      title: { type: 'string' },
      'no-inline': { type: 'boolean', default: false },
    },
  });
  if (positionals.length === 0) throw new ReportError('usage: rxrl report DIR [DIR ...] [--out OUT] [--title TITLE] [--no-inline]');
  const out = values.out ?? (positionals.length === 1 ? join(positionals[0]!, 'report') : 'report');
  const opts: ReportOptions = { inline: !values['no-inline'] };
  if (values.title !== undefined) opts.title = values.title;
  const { html, images } = await writeReport(positionals, out, opts);
  console.log(`wrote ${html} (${images.length} chart${images.length === 1 ? '' : 's'})`);
  return html;
}

// `npx tsx pipelines/report.ts DIR [DIR ...] [--out OUT]` works too, with or without the rxrl CLI.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  reportCommand(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exitCode = 1;
  });
}
