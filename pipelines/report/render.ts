/**
 * Rendering: an ECharts option to PNG (server-side SVG, rasterised by resvg with the DejaVu Sans TTF
 * of the `dejavu-fonts-ttf` package; no system fonts), and a report's HTML page.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import * as echarts from 'echarts';
import { Resvg } from '@resvg/resvg-js';
import { formatNumber } from '../../operators/metrics.ts';
import { ReportError, type RunData } from './load.ts';

/** The one font of every chart (measured and drawn from the bundled TTFs). */
export const FONT = 'DejaVu Sans';

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
export function textWidth(text: string, size = 12): number {
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

export const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

function configValue(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? '');
}

export function runSection(run: RunData, label: string, color: string, outDir: string): string {
  const c = run.config;
  const last = run.metrics[run.metrics.length - 1];
  const keyRows: [string, string][] = [
    ['directory', relative(outDir, resolve(run.dir)) || '.'],
    ['pipeline', c.pipeline],
    ['seed', configValue(c.seed)],
    ['iterations', configValue(c.iterations)],
    [
      'metrics rows',
      `${run.metrics.length}${last !== undefined ? ` (last iteration ${last.iteration})` : ''}${run.tornLastLine ? '; torn last line skipped' : ''}`,
    ],
  ];
  const table = (rows: [string, string][], cls = ''): string =>
    `<table${cls}>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</table>`;
  const summary =
    run.summary === undefined
      ? '<p class="muted">No summary.json (the run may not have finished).</p>'
      : Object.keys(run.summary).length === 0
        ? '<p class="muted">summary.json is empty.</p>'
        : table(
            Object.entries(run.summary).map(([k, v]) => [k, formatNumber(v, 6)]),
            ' class="num"',
          );
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
export function comparisonTable(runs: readonly RunData[], labels: readonly string[]): string {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.summary ?? {})))];
  if (runs.length < 2 || keys.length === 0) return '';
  const head = `<tr><th>metric</th>${labels.map((l) => `<th>${esc(l)}</th>`).join('')}</tr>`;
  const body = keys
    .map(
      (k) => `<tr><th>${esc(k)}</th>${runs.map((r) => `<td>${r.summary?.[k] === undefined ? '–' : esc(formatNumber(r.summary[k]!, 6))}</td>`).join('')}</tr>`,
    )
    .join('');
  return `<h2>Final metrics compared</h2><table class="num">${head}${body}</table>`;
}

export const CSS = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}.muted{color:#777}.cols{display:flex;gap:2rem;flex-wrap:wrap}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
th{background:#f6f6f6;font-weight:600}table.num td{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.5em}
figure{margin:1rem 0}img{max-width:100%;height:auto;border:1px solid #eee}pre{font-size:.8rem;background:#f8f8f8;padding:.5rem;overflow:auto}`;
