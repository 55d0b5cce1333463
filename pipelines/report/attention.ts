/**
 * The per-layer attention chart: the share of attention that response tokens pay to system-prompt
 * tokens (`eval/attention/system_share/layer_<i>`, lib/analysis/attention.ts), one bar group per
 * layer and one bar colour per metric record (e.g. before and after training), with each record's
 * chance level (`eval/attention/chance`) as a dashed line.
 *
 * ```ts
 * const png = renderLayerSharePng([
 *   { label: 'base model', metrics: before },      // records from attentionShareMetrics(...)
 *   { label: 'HIPO', metrics: after },
 * ]);
 * writeFileSync('docs/img/hipo/attention.png', png);
 * ```
 */
import type * as echarts from 'echarts';
import { formatNumber } from '../../operators/metrics.ts';
import { PALETTE } from './charts.ts';
import { ReportError } from './load.ts';
import { FONT, renderChartPng } from './render.ts';

export interface LayerShareRecord {
  readonly label: string;
  readonly metrics: Readonly<Record<string, number>>;
}

export interface LayerShareOptions {
  /** Metric prefix (default `eval/attention`). */
  prefix?: string;
  title?: string;
  width?: number;
  height?: number;
}

/** The per-layer values of a record, checked: layers 0 … n−1 all present and finite. */
function layerValues(rec: LayerShareRecord, prefix: string): { layers: number[]; chance: number | undefined } {
  const key = `${prefix}/system_share/layer_`;
  const idx = Object.keys(rec.metrics)
    .filter((k) => k.startsWith(key))
    .map((k) => Number(k.slice(key.length)));
  if (idx.length === 0) throw new ReportError(`attention chart: record "${rec.label}" has no ${key}<i> metrics`);
  const n = Math.max(...idx) + 1;
  const layers = Array.from({ length: n }, (_, i) => {
    const v = rec.metrics[`${key}${i}`];
    if (v === undefined || !Number.isFinite(v)) throw new ReportError(`attention chart: record "${rec.label}" lacks a finite ${key}${i}`);
    return v;
  });
  const chance = rec.metrics[`${prefix}/chance`];
  return { layers, chance: chance !== undefined && Number.isFinite(chance) ? chance : undefined };
}

/** The ECharts option of the per-layer chart (exported for tests). */
export function layerShareOption(records: readonly LayerShareRecord[], opts: LayerShareOptions = {}): echarts.EChartsCoreOption {
  const prefix = opts.prefix ?? 'eval/attention';
  if (records.length === 0) throw new ReportError('attention chart: no metric records');
  const values = records.map((r) => layerValues(r, prefix));
  const n = values[0]!.layers.length;
  values.forEach((v, i) => {
    if (v.layers.length !== n)
      throw new ReportError(`attention chart: record "${records[i]!.label}" has ${v.layers.length} layers, "${records[0]!.label}" has ${n}`);
  });
  // A chance level shared by every record (the usual case: same prompts, same responses' lengths) is one grey line.
  const chances = values.map((v) => v.chance);
  const shared = chances.every((c) => c !== undefined && c === chances[0]);
  const series: Record<string, unknown>[] = records.map((r, i) => {
    const color = shared ? '#444' : PALETTE[i % PALETTE.length]!;
    const chance = shared && i > 0 ? undefined : values[i]!.chance;
    return {
      type: 'bar',
      name: r.label,
      color: PALETTE[i % PALETTE.length]!,
      data: values[i]!.layers,
      label: { show: n * records.length <= 24, position: 'top', formatter: (p: { value: number }) => formatNumber(p.value), fontFamily: FONT, fontSize: 10 },
      ...(chance === undefined
        ? {}
        : {
            markLine: {
              silent: true,
              symbol: 'none',
              lineStyle: { type: 'dashed', color, width: 1.5 },
              label: { formatter: `chance\n${formatNumber(chance)}`, position: 'end', fontFamily: FONT, color },
              data: [{ yAxis: chance }],
            },
          }),
    };
  });
  return {
    animation: false,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: FONT },
    title: { text: opts.title ?? 'attention share on system-prompt tokens', left: 'center', top: 8, textStyle: { fontFamily: FONT, fontSize: 16 } },
    legend: { data: records.map((r) => r.label), bottom: 6, left: 'center', textStyle: { fontFamily: FONT } },
    grid: { left: 64, right: 72, top: 64, bottom: 72 },
    xAxis: { type: 'category', name: 'layer', nameLocation: 'middle', nameGap: 26, data: Array.from({ length: n }, (_, i) => String(i)) },
    yAxis: { type: 'value', min: 0, name: `${prefix}/system_share`, nameTextStyle: { align: 'left' } },
    series,
  };
}

/** Renders the per-layer chart of one or more metric records (e.g. before and after) to PNG bytes. */
export function renderLayerSharePng(records: readonly LayerShareRecord[], opts: LayerShareOptions = {}): Buffer {
  const width = opts.width ?? 720;
  return renderChartPng(layerShareOption(records, opts), width, opts.height ?? 360);
}

/**
 * The records of a run set's before/after chart, from the runs' `summary.json`: "before" the first
 * run's `base/eval/attention/…` (RL runs: the base model) or `init/eval/attention/…` (`sft`: the
 * untrained model), then each run's final `eval/attention/…`. Null when no run has per-layer shares.
 */
export function beforeAfterRecords(
  runs: readonly { summary: Readonly<Record<string, number>> | undefined }[],
  labels: readonly string[],
  prefix = 'eval/attention',
): LayerShareRecord[] | null {
  const layer0 = `${prefix}/system_share/layer_0`;
  const after = runs.flatMap((r, i) => (r.summary?.[layer0] !== undefined ? [{ label: labels[i]!, metrics: r.summary }] : []));
  if (after.length === 0) return null;
  for (const [from, label] of [
    ['base/', 'base model (before)'],
    ['init/', 'untrained (before)'],
  ] as const) {
    const run = runs.find((r) => r.summary?.[`${from}${layer0}`] !== undefined);
    if (!run?.summary) continue;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(run.summary)) if (k.startsWith(`${from}${prefix}/`)) metrics[k.slice(from.length)] = v;
    return [{ label, metrics }, ...after];
  }
  return after;
}
