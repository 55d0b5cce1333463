/**
 * The playground page: picks or takes a pipeline file, validates and trains it in a Web Worker
 * (src/worker.ts), charts the metrics, draws episodes of the policy being trained, and offers the
 * run's files (metrics.jsonl, config.json, summary.json, checkpoint.safetensors) for download.
 *
 * Contract for automation (test/browser.test.ts): `index.html?example=NAME&iterations=N&seed=S&autorun=1`
 * runs that example with `--set iterations=N --set seed=S` and, when it ends, sets
 * `window.rxrlDone = { metrics, summary }` — the records of its metrics.jsonl (JSON-parsed lines,
 * as `rxrl run` writes them) and its summary.json; a failure sets `window.rxrlError` instead.
 * `&view=0` draws no episodes; `&threads=N` asks for N wasm threads (a cross-origin isolated page);
 * `&set=path=value` (repeatable) adds an override.
 */
import { Charts } from './charts.ts';
import { drawFrame } from './draw.ts';
import { EXAMPLES, type Example } from './examples.ts';
import type { Frames, FromWorker, ToWorker } from './protocol.ts';
import { renderSamples } from './samples-view.ts';

declare global {
  interface Window {
    rxrlDone?: { metrics: Record<string, number | null>[]; summary: Record<string, number> };
    rxrlError?: string;
    /** The last message shown under the editor (what a validation said). */
    rxrlMessage?: string;
    /** The last run's training time (backend init aside) and backend-ready time (test/bench/browser.bench.ts). */
    rxrlTiming?: { seconds: number; backendReadyMs: number };
    /** The last samples shown (the HIPO family's view): policy version and how many. */
    rxrlSamples?: { version: number; prompts: number; completions: number };
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const select = $<HTMLSelectElement>('example');
const filename = $<HTMLInputElement>('filename');
const text = $<HTMLTextAreaElement>('text');
const setsInput = $<HTMLInputElement>('sets');
const upload = $<HTMLInputElement>('upload');
const dataFiles = $<HTMLInputElement>('data-files');
const samplesPanel = $<HTMLDivElement>('samples');
const viewport = document.querySelector<HTMLDivElement>('.viewport')!;
const message = $<HTMLPreElement>('message');
const status = $<HTMLDivElement>('status');
const canvas = $<HTMLCanvasElement>('env');
const episodeLine = $<HTMLDivElement>('episode');
const buttons = {
  validate: $<HTMLButtonElement>('validate'),
  train: $<HTMLButtonElement>('train'),
  pause: $<HTMLButtonElement>('pause'),
  resume: $<HTMLButtonElement>('resume'),
  stop: $<HTMLButtonElement>('stop'),
};
const downloads = {
  metrics: $<HTMLAnchorElement>('dl-metrics'),
  config: $<HTMLAnchorElement>('dl-config'),
  summary: $<HTMLAnchorElement>('dl-summary'),
  checkpoint: $<HTMLAnchorElement>('dl-checkpoint'),
};
const charts = new Charts($<HTMLDivElement>('charts'));

let runnable = new Set<string>();
let nodeOnly = new Set<string>();

function show(msg: string, kind: 'ok' | 'error' | '' = ''): void {
  message.textContent = msg;
  message.className = `message ${kind}`;
  window.rxrlMessage = msg;
}

function setButtons(state: 'idle' | 'running' | 'paused'): void {
  buttons.train.disabled = state !== 'idle';
  buttons.validate.disabled = state !== 'idle';
  buttons.pause.disabled = state !== 'running';
  buttons.resume.disabled = state !== 'paused';
  buttons.stop.disabled = state === 'idle';
}

function offer(a: HTMLAnchorElement, data: BlobPart | null, type: string): void {
  if (a.href.startsWith('blob:')) URL.revokeObjectURL(a.href);
  if (data === null) {
    a.href = '#downloads';
    a.setAttribute('aria-disabled', 'true');
    return;
  }
  a.href = URL.createObjectURL(new Blob([data], { type }));
  a.setAttribute('aria-disabled', 'false');
}

// ----- examples ----------------------------------------------------------------------------------

function fillExamples(): void {
  select.replaceChildren();
  for (const ex of EXAMPLES) {
    const o = document.createElement('option');
    o.value = ex.name;
    const where = nodeOnly.has(ex.pipeline) ? ' — Node only' : '';
    o.textContent = `${ex.name} (${ex.pipeline})${where}`;
    o.disabled = !runnable.has(ex.pipeline);
    select.append(o);
  }
  const custom = document.createElement('option');
  custom.value = '';
  custom.textContent = '(your own file)';
  select.append(custom);
}

function useExample(ex: Example | undefined): void {
  if (!ex) return;
  select.value = ex.name;
  filename.value = ex.file;
  text.value = ex.text;
  show(`${ex.path}`);
}

select.addEventListener('change', () => useExample(EXAMPLES.find((e) => e.name === select.value)));
text.addEventListener('input', () => {
  if (select.value !== '') select.value = '';
});
upload.addEventListener('change', async () => {
  const f = upload.files?.[0];
  if (!f) return;
  filename.value = f.name;
  text.value = await f.text();
  select.value = '';
  show(`opened ${f.name}`);
});

/** Files the user provided (path → bytes), handed to every run's worker. */
const provided: Record<string, Uint8Array> = {};
dataFiles.addEventListener('change', async () => {
  for (const f of Array.from(dataFiles.files ?? [])) provided[f.name] = new Uint8Array(await f.arrayBuffer());
  show(`provided to rxrl: ${Object.keys(provided).join(', ')} (name them by these paths in a pipeline file)`);
});

// ----- the worker ----------------------------------------------------------------------------------

let worker: Worker;
let lines: string[] = [];
let frames: Frames | undefined;
let frameIndex = 0;
let animating = false;
let onDone: ((m: Extract<FromWorker, { type: 'done' }>) => void) | undefined;
let backendReadyMs = Number.NaN;
/** `?view=0`: no episodes drawn (benchmarks). */
const view = new URLSearchParams(location.search).get('view') !== '0';
/** `?threads=N`: wasm threads (needs a cross-origin isolated page; default: logical CPUs − 1). */
const threadsParam = Number(new URLSearchParams(location.search).get('threads') ?? Number.NaN);

function send(m: ToWorker): void {
  worker.postMessage(m);
}

function sets(): string[] {
  return setsInput.value
    .split(/[\n\s]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function newWorker(): void {
  worker?.terminate();
  worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  worker.onmessage = (e: MessageEvent<FromWorker>) => handle(e.data);
  worker.onerror = (e) => fail(`the worker failed: ${e.message}`);
}

function fail(msg: string): void {
  show(msg, 'error');
  status.textContent = 'Failed.';
  window.rxrlError = msg;
  setButtons('idle');
}

function handle(m: FromWorker): void {
  switch (m.type) {
    case 'hello':
      runnable = new Set(m.pipelines);
      nodeOnly = new Set(m.nodeOnly);
      {
        const current = select.value;
        fillExamples();
        select.value = current;
      }
      break;
    case 'valid':
      show(`${filename.value}: valid ${m.pipeline} pipeline\n${JSON.stringify(m.config, null, 2)}`, 'ok');
      break;
    case 'invalid':
      fail(m.message);
      break;
    case 'backend':
      status.textContent = `${m.line} — ready in ${Math.round(m.readyMs)} ms`;
      backendReadyMs = m.readyMs;
      break;
    case 'started':
      setButtons('running');
      offer(downloads.config, `${JSON.stringify(m.config, null, 2)}\n`, 'application/json');
      show(`training ${m.pipeline} (seed ${String(m.config['seed'])}, ${String(m.config['iterations'])} iterations)`);
      break;
    case 'metrics': {
      lines.push(m.line);
      const record = JSON.parse(m.line) as Record<string, number | null>;
      charts.add(record);
      const done = record['iteration'] ?? 0;
      status.textContent = `${status.textContent?.split(' — iteration')[0] ?? ''} — iteration ${done} done`;
      offer(downloads.metrics, `${lines.join('\n')}\n`, 'application/x-ndjson');
      break;
    }
    case 'samples':
      viewport.hidden = true;
      samplesPanel.hidden = false;
      renderSamples(samplesPanel, m);
      window.rxrlSamples = { version: m.version, prompts: m.samples.length, completions: m.samples.reduce((n, x) => n + x.completions.length, 0) };
      setTimeout(() => send({ type: 'frames' }), 250);
      break;
    case 'frames':
      viewport.hidden = false;
      samplesPanel.hidden = true;
      frames = m;
      frameIndex = 0;
      episodeLine.textContent = `episode of policy version ${m.version}: return ${m.return.toFixed(1)}, ${m.frames.length - 1} steps (${m.envId})`;
      if (!animating) animate();
      break;
    case 'paused':
      setButtons('paused');
      break;
    case 'resumed':
      setButtons('running');
      break;
    case 'done':
      setButtons('idle');
      offer(downloads.metrics, `${m.lines.join('\n')}\n`, 'application/x-ndjson');
      offer(downloads.config, `${JSON.stringify(m.config, null, 2)}\n`, 'application/json');
      offer(downloads.summary, `${JSON.stringify(m.summary, null, 2)}\n`, 'application/json');
      offer(downloads.checkpoint, m.checkpoint, 'application/octet-stream');
      show(
        `${m.summary['stopped'] ? 'stopped' : 'finished'} after ${m.summary['iterations_completed']} iterations in ${m.seconds.toFixed(1)} s\n` +
          Object.entries(m.summary)
            .map(([k, v]) => `${k}: ${v}`)
            .join('\n'),
        'ok',
      );
      window.rxrlTiming = { seconds: m.seconds, backendReadyMs };
      onDone?.(m);
      newWorker();
      break;
    case 'error':
      fail(m.message);
      newWorker();
      break;
  }
}

/** Plays the last episode at 50 frames/s, then asks for a new one (answered between iterations). */
function animate(): void {
  animating = true;
  let last = 0;
  const tick = (t: number) => {
    if (frames && t - last >= 20) {
      last = t;
      const f = frames.frames[Math.min(frameIndex, frames.frames.length - 1)];
      if (f) drawFrame(canvas, frames.envId, frames.kind, f);
      frameIndex++;
      if (frameIndex === frames.frames.length) send({ type: 'frames' });
      if (frameIndex >= frames.frames.length + 25) frameIndex = 0; // hold the last frame, then replay
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

function train(): void {
  lines = [];
  charts.clear();
  for (const a of Object.values(downloads)) offer(a, null, '');
  window.rxrlDone = undefined;
  window.rxrlSamples = undefined;
  window.rxrlError = undefined;
  status.textContent = 'Starting…';
  setButtons('running');
  send({
    type: 'start',
    text: text.value,
    name: filename.value,
    sets: sets(),
    view,
    ...(Object.keys(provided).length > 0 ? { files: { ...provided } } : {}),
    ...(Number.isInteger(threadsParam) ? { threads: threadsParam } : {}),
  });
}

buttons.validate.addEventListener('click', () => send({ type: 'validate', text: text.value, name: filename.value, sets: sets() }));
buttons.train.addEventListener('click', train);
buttons.pause.addEventListener('click', () => send({ type: 'pause' }));
buttons.resume.addEventListener('click', () => send({ type: 'resume' }));
buttons.stop.addEventListener('click', () => send({ type: 'stop' }));

// ----- start-up and the automation contract ---------------------------------------------------------

fillExamples();
newWorker();
const params = new URLSearchParams(location.search);
const wanted = params.get('example');
useExample(EXAMPLES.find((e) => e.name === (wanted ?? 'grpo-cartpole')) ?? EXAMPLES[0]);
if (wanted !== null && !EXAMPLES.some((e) => e.name === wanted)) fail(`?example=${wanted}: no such example (${EXAMPLES.map((e) => e.name).join(', ')})`);
const overrides = [...['iterations', 'seed'].flatMap((k) => (params.has(k) ? [`${k}=${params.get(k)}`] : [])), ...params.getAll('set')];
if (overrides.length > 0) setsInput.value = overrides.join(' ');
onDone = (m) => {
  window.rxrlDone = { metrics: m.lines.map((l) => JSON.parse(l) as Record<string, number | null>), summary: m.summary };
};
if (params.get('autorun') === '1' && window.rxrlError === undefined) train();
