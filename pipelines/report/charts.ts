/**
 * The report's charts: which learning curves a report holds (`REPORT_CHARTS`), the legend label of
 * each run, and the ECharts option of one chart (rendered by render.ts).
 */
import type * as echarts from 'echarts';
import { formatNumber } from '../../operators/metrics.ts';
import { isObject, type MetricsRow, type RunData } from './load.ts';
import { FONT, textWidth } from './render.ts';

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

export const has = (run: RunData, key: string): boolean => run.metrics.some((r) => Number.isFinite(r[key]));

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

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

const finitePoints = (rows: readonly MetricsRow[], key: string): [number, number][] =>
  rows.flatMap((r) => (Number.isFinite(r[key]) ? [[r.iteration, r[key]!] as [number, number]] : []));

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
        label: { formatter: `limit ${formatNumber(sharedLimit)}`, position: 'insideEndTop', fontFamily: FONT, color: '#444' },
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
