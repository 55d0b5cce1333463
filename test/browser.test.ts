/**
 * The playground in a real browser (issue 12), run by `npm run test:browser` (RXRL_TEST_BROWSER=1;
 * skipped otherwise): builds docs/playground/dist/ with Vite, serves it on 127.0.0.1, drives
 * Debian's Chromium headless through playwright-core (`executablePath`: RXRL_CHROMIUM, default
 * /usr/bin/chromium) and checks
 *
 *  - the contract: `index.html?example=grpo-cartpole&iterations=N&seed=S&autorun=1` sets
 *    `window.rxrlDone = { metrics, summary }` equal to what `rxrl run
 *    pipelines/examples/grpo-cartpole.yaml --set iterations=N --set seed=S` writes (metrics.jsonl
 *    and summary.json; timing keys aside), and the page's downloads are the CLI's files: the same
 *    config.json and a checkpoint.safetensors that `rxrl eval` accepts under Node;
 *  - a pipeline file with mistakes shows the CLI's path-named message, word for word;
 *  - the page stays responsive while the worker trains, and pause, resume and stop work;
 *  - MuJoCo runs in the page: a Hopper example trains and its episode is drawn;
 *  - HIPO runs in the page (docs/playground/examples/hipo-tiny.yaml: SFT in-process, then
 *    primal-dual GRPO) with the CLI's metrics and summary, and the samples panel shows completions
 *    with their verifier scores;
 *  - a Decision Transformer runs in the page (grpo-dt-tiny.yaml: pretrained on the provided test
 *    dataset, then GRPO-DT) with the CLI's metrics, and its episode is drawn on Hopper; a dataset
 *    the page did not provide fails with the CLI's message for a missing file.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { DIST, ROOT, buildPlayground, launchChromium, serve } from './helpers/browser.ts';

const ENABLED = process.env['RXRL_TEST_BROWSER'] === '1';
const BIN = join(ROOT, 'pipelines', 'bin.mjs');
const EXAMPLE = join(ROOT, 'pipelines', 'examples', 'grpo-cartpole.yaml');
/** Keys that measure time, not computation (none today; a future `time/iteration` would be one). */
const TIMING = /(^|\/)(time|seconds|elapsed|sps|fps)(\/|$)|_(ms|seconds|per_s)$/;

const tmp = mkdtempSync(join(tmpdir(), 'rxrl-browser-'));
let server: Server | undefined;
let browser: Browser | undefined;
let base = '';

/** `rxrl ARGS` under Node from the sources (cwd: where relative paths and labels start). */
function rxrl(args: string[], cwd = ROOT): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--conditions=rxrl-source', BIN, ...args], { cwd, encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function withoutTiming(r: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING.test(k)));
}

async function open(url: string): Promise<Page> {
  const page = await browser!.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${base}/${url}`);
  return page;
}

async function waitDone(page: Page, timeout = 240_000): Promise<{ metrics: Record<string, unknown>[]; summary: Record<string, number> }> {
  await page.waitForFunction('window.rxrlDone !== undefined || window.rxrlError !== undefined', null, { timeout });
  const error = await page.evaluate('window.rxrlError');
  assert.equal(error, undefined, `the page failed: ${String(error)}`);
  return (await page.evaluate('window.rxrlDone')) as { metrics: Record<string, unknown>[]; summary: Record<string, number> };
}

/**
 * `rxrl run FILE --set iterations=N --set seed=S` under Node, in a child process (so it runs while
 * the page trains): its metrics.jsonl records and summary.json.
 */
async function cliRun(file: string, n: number, seed: number, out: string): Promise<{ metrics: Record<string, unknown>[]; summary: Record<string, number> }> {
  const args = ['--conditions=rxrl-source', BIN, 'run', file, '--set', `iterations=${n}`, '--set', `seed=${seed}`, '--out', out];
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, args, { cwd: ROOT, timeout: 180_000 }, (e, _stdout, stderr) =>
      e ? reject(new Error(`rxrl run failed: ${stderr}`)) : resolve(),
    ),
  );
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  return { metrics: lines.map((l) => JSON.parse(l) as Record<string, unknown>), summary: JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) };
}

/** Dark pixels on the env canvas (a drawing, not the background). */
async function inked(page: Page): Promise<number> {
  return Number(
    await page.evaluate(`(() => {
      const c = document.getElementById('env');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++;
      return n;
    })()`),
  );
}

before(async () => {
  if (!ENABLED) return;
  buildPlayground();
  ({ server, base } = await serve(DIST));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('contract: the page runs grpo-cartpole with iterations and seed and its metrics, summary and files are the CLI’s', { skip: !ENABLED }, async () => {
  const [N, S] = [3, 7];
  const page = await open(`index.html?example=grpo-cartpole&iterations=${N}&seed=${S}&autorun=1`);
  const done = await waitDone(page);

  const out = join(tmp, 'cli');
  const cli = rxrl(['run', EXAMPLE, '--set', `iterations=${N}`, '--set', `seed=${S}`, '--out', out]);
  assert.equal(cli.status, 0, cli.stderr);
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
  const expected = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(done.metrics.length, N);
  assert.deepEqual(done.metrics.map(withoutTiming), expected.map(withoutTiming));
  assert.deepEqual(done.summary, JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')));

  // The downloads: config.json as the CLI writes it, the checkpoint byte for byte, and Node evaluates it.
  const download = async (id: string): Promise<string> => {
    const [d] = await Promise.all([page.waitForEvent('download'), page.click(`#${id}`)]);
    const path = join(tmp, d.suggestedFilename());
    await d.saveAs(path);
    return path;
  };
  assert.equal(readFileSync(await download('dl-config'), 'utf8'), readFileSync(join(out, 'config.json'), 'utf8'));
  assert.equal(readFileSync(await download('dl-metrics'), 'utf8'), readFileSync(join(out, 'metrics.jsonl'), 'utf8'));
  const ckpt = await download('dl-checkpoint');
  assert.ok(readFileSync(ckpt).equals(readFileSync(join(out, 'checkpoint.safetensors'))), 'the page’s checkpoint is the CLI’s, byte for byte');
  const ev = rxrl(['eval', ckpt, '--episodes', '2']);
  assert.equal(ev.status, 0, ev.stderr);
  assert.match(ev.stdout, /eval\/return/);
  assert.match(ev.stdout, /grpo-control checkpoint/);
  await page.close();
});

test('a pipeline file with mistakes shows the CLI’s path-named message', { skip: !ENABLED }, async () => {
  const bad = ['pipeline: grpo-control', 'seed: 1', 'iterations: 0', 'algorithm:', '  groupSzie: 8', '  advantages:', '    estimator: grop', ''].join('\n');
  const dir = join(tmp, 'bad');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bad.yaml'), bad);
  const cli = rxrl(['validate', 'bad.yaml'], dir);
  assert.equal(cli.status, 1);
  const expected = cli.stderr.trim().replace(/^rxrl: /, '');
  assert.match(
    expected,
    /^bad\.yaml: invalid grpo-control pipeline:\n {2}iterations: expected a positive integer, got 0\n {2}algorithm\.groupSzie: unknown key/,
  );

  const page = await open('index.html');
  await page.fill('#filename', 'bad.yaml');
  await page.fill('#text', bad);
  await page.click('#validate');
  await page.waitForFunction('window.rxrlError !== undefined', null, { timeout: 60_000 });
  assert.equal(await page.evaluate('window.rxrlError'), expected);
  assert.equal((await page.textContent('#message'))?.trim(), expected);
  // What a browser cannot do is refused at validation with a path-named message: the text suite loads a Hugging Face folder.
  await page.fill('#filename', 'text.yaml');
  await page.fill('#text', 'pipeline: hipo\nseed: 1\niterations: 2\nsuite:\n  kind: text\n  model: models/qwen\n');
  await page.click('#validate');
  await page.waitForFunction("(window.rxrlError ?? '').startsWith('text.yaml')", null, { timeout: 60_000 });
  assert.equal(
    String(await page.evaluate('window.rxrlError')),
    "text.yaml: suite.kind: the 'text' suite loads a Hugging Face model folder (suite.model), which runs under Node only; use 'synthetic' here",
  );
  // A dataset the page did not provide: the CLI's message for a missing file.
  const odt = 'pipeline: odt\nseed: 1\niterations: 1\ndata:\n  path: data/missing.hdf5\n';
  writeFileSync(join(dir, 'odt.yaml'), odt);
  const missing = rxrl(['run', 'odt.yaml', '--out', join(dir, 'odt-run')], dir);
  assert.equal(missing.status, 1);
  await page.fill('#filename', 'odt.yaml');
  await page.fill('#text', odt);
  await page.click('#train');
  await page.waitForFunction("(window.rxrlError ?? '').includes('missing.hdf5')", null, { timeout: 60_000 });
  const said = String(await page.evaluate('window.rxrlError'));
  assert.match(said, /^data\.path: data\/missing\.hdf5: no such file/);
  assert.ok(missing.stderr.includes(said), `the CLI says the same:\n${missing.stderr}`);
  await page.close();
});

test('the page stays responsive while the worker trains; pause, resume and stop', { skip: !ENABLED }, async () => {
  const page = await open('index.html?example=grpo-cartpole&iterations=200&seed=1');
  await page.click('#train');
  // main-thread frame gaps over 1.5 s of training
  const gap = Number(
    await page.evaluate(`new Promise((resolve) => {
      let last = performance.now();
      let worst = 0;
      const end = last + 1500;
      const tick = (t) => {
        worst = Math.max(worst, t - last);
        last = t;
        if (t < end) requestAnimationFrame(tick);
        else resolve(worst);
      };
      requestAnimationFrame(tick);
    })`),
  );
  assert.ok(gap < 250, `the page froze for ${gap.toFixed(0)} ms while training`);
  const DONE = "Number(document.getElementById('status').textContent.match(/iteration (\\d+) done/)?.[1] ?? -1)";
  const rows = async () => Number(await page.evaluate(DONE));
  await page.waitForFunction(`${DONE} >= 0`, null, { timeout: 60_000 });
  await page.click('#pause');
  await page.waitForFunction("!document.getElementById('resume').disabled", null, { timeout: 30_000 });
  const atPause = await rows();
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await rows(), atPause, 'no iteration while paused');
  await page.click('#resume');
  await page.waitForFunction(`${DONE} > ${atPause}`, null, { timeout: 60_000 });
  await page.click('#stop');
  const done = await waitDone(page);
  assert.equal(done.summary['stopped'], 1);
  assert.ok(done.summary['iterations_completed']! < 200 && done.summary['iterations_completed']! > atPause + 1);
  assert.equal(done.metrics.length, done.summary['iterations_completed']);
  await page.close();
});

test('MuJoCo in the page: a Hopper example trains and its episode is drawn from the geoms', { skip: !ENABLED }, async () => {
  const page = await open('index.html?example=grpo-hopper&iterations=1&seed=1&autorun=1');
  const done = await waitDone(page);
  assert.equal(done.metrics.length, 1);
  assert.ok(Number.isFinite(done.metrics[0]!['reward/mean']));
  await page.waitForFunction("/Hopper-v4/.test(document.getElementById('episode').textContent)", null, { timeout: 60_000 });
  // the canvas holds a drawing: pixels other than the background
  const n = await inked(page);
  assert.ok(n > 500, `the Hopper is drawn (${n} dark pixels)`);
  await page.screenshot({ path: join(tmp, 'hopper.png') });
  await page.close();
});

test('HIPO in the page: SFT in-process, then primal-dual GRPO, the CLI’s metrics; sampled completions with verifier scores', { skip: !ENABLED }, async () => {
  const [N, S] = [3, 0];
  const page = await open(`index.html?example=hipo-tiny&iterations=${N}&seed=${S}&autorun=1`);
  const [done, cli] = await Promise.all([waitDone(page), cliRun(join(ROOT, 'docs', 'playground', 'examples', 'hipo-tiny.yaml'), N, S, join(tmp, 'hipo'))]);
  assert.equal(done.metrics.length, N);
  assert.deepEqual(done.metrics.map(withoutTiming), cli.metrics.map(withoutTiming));
  assert.deepEqual(done.summary, cli.summary);
  assert.ok(Number.isFinite(done.metrics[N - 1]!['lambda']), 'the multiplier is logged');
  // The samples panel: 2 conflicting and 2 aligned held-out prompts, 2 completions each, scored.
  await page.waitForFunction('window.rxrlSamples !== undefined', null, { timeout: 30_000 });
  const shown = (await page.evaluate('window.rxrlSamples')) as { version: number; prompts: number; completions: number };
  assert.deepEqual([shown.prompts, shown.completions], [4, 8]);
  assert.ok(shown.version >= 1 && shown.version <= N, `samples of a trained policy version (${shown.version})`);
  const panel = (await page.textContent('#samples')) ?? '';
  assert.match(panel, /completions of policy version \d+ \(sampled at temperature 1\)/);
  assert.equal(panel.match(/utility \d\.\d\d · compliance [01] · rules [✓✗]+/g)?.length, 8, panel);
  assert.equal(panel.match(/conflictingsystem: /g)?.length, 2);
  assert.equal(await page.isVisible('#env'), false, 'the env canvas gives way to the samples');
  await page.screenshot({ path: join(tmp, 'hipo.png'), fullPage: true });
  await page.close();
});

test('a Decision Transformer in the page: grpo-dt on the provided test dataset, the CLI’s metrics, its episode drawn on Hopper', {
  skip: !ENABLED,
}, async () => {
  const [N, S] = [3, 1];
  const page = await open(`index.html?example=grpo-dt-tiny&iterations=${N}&seed=${S}&autorun=1`);
  const [done, cli] = await Promise.all([
    waitDone(page),
    cliRun(join(ROOT, 'docs', 'playground', 'examples', 'grpo-dt-tiny.yaml'), N, S, join(tmp, 'grpo-dt')),
  ]);
  assert.deepEqual(done.metrics.map(withoutTiming), cli.metrics.map(withoutTiming));
  assert.deepEqual(done.summary, cli.summary);
  assert.ok(Number.isFinite(done.summary['eval/normalized_score']));
  await page.waitForFunction("/Hopper-v4/.test(document.getElementById('episode').textContent)", null, { timeout: 60_000 });
  assert.ok((await inked(page)) > 500, 'the DT’s Hopper is drawn');
  await page.screenshot({ path: join(tmp, 'grpo-dt.png') });
  await page.close();
});

test('threads: without cross-origin isolation one thread and the reason; with it 2 threads (a minified build) and the same metrics', {
  skip: !ENABLED,
}, async () => {
  const query = 'index.html?example=grpo-cartpole&iterations=1&seed=3&autorun=1&view=0&threads=2';
  const page = await open(query);
  const single = await waitDone(page);
  assert.equal(single.metrics.length, 1);
  assert.match((await page.textContent('#status')) ?? '', /threaded init failed \(the page is not cross-origin isolated .*\), using 1 thread/);
  await page.close();

  // The same build served with COOP/COEP: tfjs's threaded build starts its pthread workers.
  const isolated = await serve(DIST, true);
  try {
    const threaded = await browser!.newPage();
    threaded.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    await threaded.goto(`${isolated.base}/${query}`);
    const done = await waitDone(threaded);
    assert.equal(await threaded.evaluate('window.crossOriginIsolated'), true);
    assert.match((await threaded.textContent('#status')) ?? '', /wasm ready, 2 threads\)/);
    assert.deepEqual(done.metrics, single.metrics, 'two threads compute what one does');
    assert.deepEqual(done.summary, single.summary);
    await threaded.close();
  } finally {
    isolated.server.close();
  }
});
