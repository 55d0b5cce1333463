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
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../../lib/io/atomic.ts';
import { PALETTE, REPORT_CHARTS, chartOption, has, runLabels } from './charts.ts';
import { ReportError, loadRun } from './load.ts';
import { CSS, comparisonTable, esc, renderChartPng, runSection } from './render.ts';

export { loadRun, readMetricsFile, type MetricsRow, type RunConfig, type RunData } from './load.ts';
export { REPORT_CHARTS, chartOption, runLabels, type ChartSpec } from './charts.ts';
export { renderChartPng } from './render.ts';
export { layerShareOption, renderLayerSharePng, type LayerShareOptions, type LayerShareRecord } from './attention.ts';
import { beforeAfterRecords, renderLayerSharePng } from './attention.ts';

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
      const keys = r.droppedKeys.map((k) => `'${k}'`).join(', ');
      process.stderr.write(
        `rxrl report: warning: ${join(r.dir, 'metrics.jsonl')}: ${keys} ${r.droppedKeys.length === 1 ? 'is not a number' : 'are not numbers'}; not charted\n`,
      );
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
    await writeFileAtomic(file, png);
    images.push(file);
    const src = inline ? `data:image/png;base64,${png.toString('base64')}` : `${spec.id}.png`;
    const missing =
      runs.length > 1 && withData.length < runs.length
        ? ` <span class="muted">(not logged by ${esc(
            runs
              .filter((r) => !withData.includes(r))
              .map((r) => labels[runs.indexOf(r)]!)
              .join(', '),
          )})</span>`
        : '';
    figures.push(
      `<figure id="${spec.id}"><img src="${src}" alt="${esc(spec.title)}" width="720"><figcaption><code>${esc(spec.key)}</code>${missing}</figcaption></figure>`,
    );
    // Let other work (and the event loop) through between charts.
    await new Promise<void>((r) => setImmediate(r));
  }

  // HIPO runs: the per-layer attention share on system-prompt tokens, before and after training.
  const attention = beforeAfterRecords(runs, labels);
  if (attention) {
    const png = renderLayerSharePng(attention);
    const file = join(outDir, 'attention.png');
    await writeFileAtomic(file, png);
    images.push(file);
    const src = inline ? `data:image/png;base64,${png.toString('base64')}` : 'attention.png';
    figures.push(
      `<figure id="attention"><img src="${src}" alt="attention share on system-prompt tokens per layer" width="720"><figcaption><code>eval/attention/system_share/layer_&lt;i&gt;</code>, before and after</figcaption></figure>`,
    );
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
  await writeFileAtomic(htmlPath, html);
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

// `npx tsx pipelines/report/index.ts DIR [DIR ...] [--out OUT]` works too, with or without the rxrl CLI.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  reportCommand(process.argv.slice(2)).catch((e: unknown) => {
    console.error((e as Error).message);
    process.exitCode = 1;
  });
}
