/**
 * Live line charts on a canvas, one per metric (the names of docs/metrics.md): x is the iteration,
 * y autoscales; NaN (JSON null) points are gaps.
 */

/** The metrics charted, in order, when a run reports them. */
export const CHARTED = ['reward/mean', 'cost/mean', 'lambda', 'eval/return', 'entropy', 'kl', 'clip_frac', 'grad_norm', 'length/mean', 'critic/loss'];

const COLORS = ['#2563eb', '#dc2626', '#7c3aed', '#059669', '#d97706', '#0891b2', '#be185d', '#4b5563', '#65a30d', '#9333ea'];

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** One chart: a title, a canvas, the points so far. */
class Chart {
  readonly points: [number, number][] = [];
  readonly canvas: HTMLCanvasElement;
  private readonly value: HTMLElement;

  constructor(
    readonly name: string,
    readonly color: string,
    parent: HTMLElement,
  ) {
    const box = document.createElement('div');
    box.className = 'chart';
    const title = document.createElement('div');
    title.className = 'chart-title';
    title.textContent = name;
    this.value = document.createElement('span');
    this.value.className = 'chart-value';
    title.append(this.value);
    this.canvas = document.createElement('canvas');
    this.canvas.width = 300;
    this.canvas.height = 130;
    this.canvas.dataset['metric'] = name;
    box.append(title, this.canvas);
    parent.append(box);
  }

  draw(): void {
    const c = this.canvas.getContext('2d');
    if (!c) return;
    const { width: w, height: h } = this.canvas;
    c.clearRect(0, 0, w, h);
    const ok = this.points.filter(([, y]) => Number.isFinite(y));
    const last = this.points.at(-1);
    this.value.textContent = last ? ` ${fmt(last[1])}` : '';
    if (ok.length === 0) return;
    const xs = this.points.map(([x]) => x);
    const ys = ok.map(([, y]) => y);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
    const pad = { l: 44, r: 8, t: 6, b: 18 };
    const X = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const Y = (y: number) => h - pad.b - ((y - y0) / (y1 - y0)) * (h - pad.t - pad.b);
    c.strokeStyle = '#d1d5db';
    c.lineWidth = 1;
    c.beginPath();
    c.moveTo(pad.l, pad.t);
    c.lineTo(pad.l, h - pad.b);
    c.lineTo(w - pad.r, h - pad.b);
    c.stroke();
    c.fillStyle = '#6b7280';
    c.font = '10px system-ui, sans-serif';
    c.textAlign = 'right';
    c.fillText(fmt(y1), pad.l - 4, pad.t + 8);
    c.fillText(fmt(y0), pad.l - 4, h - pad.b);
    c.textAlign = 'center';
    c.fillText(String(x0), pad.l, h - 4);
    c.fillText(String(x1), w - pad.r - 6, h - 4);
    c.strokeStyle = this.color;
    c.lineWidth = 1.8;
    c.beginPath();
    let pen = false;
    for (const [x, y] of this.points) {
      if (!Number.isFinite(y)) {
        pen = false;
        continue;
      }
      if (pen) c.lineTo(X(x), Y(y));
      else c.moveTo(X(x), Y(y));
      pen = true;
    }
    c.stroke();
    if (ok.length === 1) {
      c.fillStyle = this.color;
      c.beginPath();
      c.arc(X(ok[0]![0]), Y(ok[0]![1]), 2.5, 0, 2 * Math.PI);
      c.fill();
    }
  }
}

/** The charts of one run: a chart appears when its metric first does. */
export class Charts {
  private readonly charts = new Map<string, Chart>();

  constructor(private readonly parent: HTMLElement) {}

  /** Adds one metrics record (a metrics.jsonl row: null for NaN). */
  add(record: Record<string, number | null>): void {
    const x = record['iteration'] ?? 0;
    for (const name of CHARTED) {
      if (!(name in record)) continue;
      let chart = this.charts.get(name);
      if (!chart) {
        chart = new Chart(name, COLORS[CHARTED.indexOf(name) % COLORS.length]!, this.parent);
        this.charts.set(name, chart);
      }
      const v = record[name];
      chart.points.push([x, v === null || v === undefined ? Number.NaN : v]);
      chart.draw();
    }
  }

  clear(): void {
    this.charts.clear();
    this.parent.replaceChildren();
  }
}
