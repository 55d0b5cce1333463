/**
 * rxrl in the browser vs Node, in one script: the same pipeline runs (example, iterations, seed) in
 * headless Chromium (the playground's worker, `?autorun=1&view=0`) and in this Node process, both on
 * the wasm backend with one thread; the figure is the training time without backend init, the
 * ratio browser / Node (< 1: the browser is faster), plus the time each takes to get the backend
 * ready. Then threads in the browser: the same runs in a cross-origin isolated page (COOP/COEP
 * headers) with 1 and with 2 wasm threads (`&threads=N`), alternating, best of two, as the ratio
 * 2 threads / 1 thread (< 1: threads help). Then the sizes of what a browser downloads (the
 * playground's build, raw and gzip) and of the library's browser entry bundled and minified by
 * esbuild, split into rxrl's own code and its dependencies.
 *
 *     npm run bench:browser               # ~2 minutes on 2 cores (RXRL_BENCH_THREADS=0: without the threads part)
 *
 * Prints markdown tables; docs/browser.md holds the figures measured on this machine.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { initBackend } from '../../lib/backend.ts';
import { readPipelineFile } from '../../pipelines/config-file.ts';
import { decodePipelineConfig } from '../../pipelines/registry.ts';
import { DIST, ROOT, buildPlayground, launchChromium, serve } from '../helpers/browser.ts';

const CASES = [
  { example: 'grpo-cartpole', file: 'pipelines/examples/grpo-cartpole.yaml', iterations: 10, seed: 1 },
  { example: 'grpo-hopper', file: 'docs/playground/examples/grpo-hopper.yaml', iterations: 8, seed: 1 },
];
const REPS = 2;
/** The threads part: a small-op workload and a transformer's (hipo-tiny at width 128, 2 layers, a shorter SFT). */
const THREAD_CASES = [
  { label: 'grpo-cartpole, 4 iterations', query: 'example=grpo-cartpole&iterations=4&seed=1' },
  {
    label: 'hipo-tiny at width 128, 1 iteration (SFT 40 steps, then HIPO)',
    query: 'example=hipo-tiny&iterations=1&seed=0&set=model.width=128&set=model.heads=4&set=base.iterations=40',
  },
];

const kb = (n: number): string => `${(n / 1024).toFixed(0)} kB`;

async function nodeRun(file: string, iterations: number, seed: number): Promise<number> {
  const { def } = decodePipelineConfig(readPipelineFile(join(ROOT, file)), [`iterations=${iterations}`, `seed=${seed}`], file);
  const t0 = performance.now();
  await def.run([], {});
  return (performance.now() - t0) / 1000;
}

const t0 = performance.now();
const info = await initBackend({ quiet: true, threads: 1 });
const nodeReadyMs = performance.now() - t0;
buildPlayground();
const { server, base } = await serve(DIST);
const browser = await launchChromium();

async function browserRun(
  example: string,
  iterations: number,
  seed: number,
  at = base,
  extra = '',
): Promise<{ seconds: number; readyMs: number; status: string }> {
  const page = await browser.newPage();
  await page.goto(`${at}/index.html?example=${example}&iterations=${iterations}&seed=${seed}&autorun=1&view=0${extra}`);
  await page.waitForFunction('window.rxrlTiming !== undefined || window.rxrlError !== undefined', null, { timeout: 600_000 });
  const error = await page.evaluate('window.rxrlError');
  if (error !== undefined) throw new Error(String(error));
  const timing = (await page.evaluate('window.rxrlTiming')) as { seconds: number; backendReadyMs: number };
  const status = (await page.textContent('#status')) ?? '';
  await page.close();
  return { seconds: timing.seconds, readyMs: timing.backendReadyMs, status };
}

console.log(`node ${process.version}, backend ${info.name} (${info.reason}); chromium ${browser.version()}\n`);
console.log('| run | Node s | browser s | browser / Node |');
console.log('| --- | ---: | ---: | ---: |');
let browserReadyMs = Number.POSITIVE_INFINITY;
for (const c of CASES) {
  let node = Number.POSITIVE_INFINITY;
  let web = Number.POSITIVE_INFINITY;
  for (let r = 0; r < REPS; r++) {
    node = Math.min(node, await nodeRun(c.file, c.iterations, c.seed));
    const b = await browserRun(c.example, c.iterations, c.seed);
    web = Math.min(web, b.seconds);
    browserReadyMs = Math.min(browserReadyMs, b.readyMs);
  }
  console.log(`| ${c.example}, ${c.iterations} iterations, seed ${c.seed} | ${node.toFixed(2)} | ${web.toFixed(2)} | ${(web / node).toFixed(2)} |`);
}
console.log(
  `\nbackend ready: Node ${nodeReadyMs.toFixed(0)} ms (first initBackend in this process), browser ${browserReadyMs.toFixed(0)} ms (in the worker)\n`,
);

if (process.env['RXRL_BENCH_THREADS'] !== '0') {
  const isolated = await serve(DIST, true);
  console.log('| run (cross-origin isolated page) | 1 thread s | 2 threads s | 2 / 1 |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const c of THREAD_CASES) {
    const best = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
    for (let r = 0; r < REPS; r++) {
      for (const [k, threads] of [1, 2].entries()) {
        const q = new URLSearchParams(c.query);
        const extra = `&threads=${threads}${q
          .getAll('set')
          .map((x) => `&set=${x}`)
          .join('')}`;
        const b = await browserRun(q.get('example')!, Number(q.get('iterations')), Number(q.get('seed')), isolated.base, extra);
        if (!b.status.includes(`${threads} thread`)) throw new Error(`asked for ${threads} threads: ${b.status}`);
        best[k] = Math.min(best[k]!, b.seconds);
      }
    }
    console.log(`| ${c.label} | ${best[0]!.toFixed(2)} | ${best[1]!.toFixed(2)} | ${(best[1]! / best[0]!).toFixed(2)} |`);
  }
  isolated.server.close();
  console.log('');
}
await browser.close();
server.close();

// ----- sizes -------------------------------------------------------------------------------------

console.log('| playground asset | raw | gzip |');
console.log('| --- | ---: | ---: |');
const assets = readdirSync(join(DIST, 'assets')).map((f) => join(DIST, 'assets', f));
for (const f of [join(DIST, 'index.html'), ...assets].sort((a, b) => statSync(b).size - statSync(a).size)) {
  const bytes = readFileSync(f);
  console.log(`| ${relative(DIST, f).replace(/-[\w-]{8}\./, '.')} | ${kb(bytes.length)} | ${kb(gzipSync(bytes).length)} |`);
}

const r = await esbuild.build({
  absWorkingDir: ROOT,
  stdin: { contents: "export * from 'rxrl'; export * from 'rxrl/operators'; export * from 'rxrl/pipelines';", resolveDir: ROOT, loader: 'ts' },
  bundle: true,
  platform: 'browser',
  format: 'esm',
  minify: true,
  splitting: true,
  outdir: 'out',
  write: false,
  metafile: true,
  conditions: ['rxrl-source'],
  tsconfigRaw: {},
  external: ['module'],
  logLevel: 'silent',
});
const groups = new Map<string, number>();
for (const out of Object.values(r.metafile.outputs)) {
  for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    const group = m
      ? m[1]!
      : input.endsWith('tfjs-gradients.generated.js')
        ? 'rxrl: tfjs-core gradients (lib/tensor/tfjs-gradients.generated.js)'
        : input.endsWith('kernels-wasm.ts')
          ? 'rxrl: SIMD kernels (lib/tensor/simd/kernels-wasm.ts)'
          : /^(lib|operators|pipelines)\//.test(input)
            ? 'rxrl: lib, operators, pipelines'
            : 'other';
    groups.set(group, (groups.get(group) ?? 0) + bytesInOutput);
  }
}
const entryBytes = r.outputFiles.reduce((n, f) => n + f.contents.length, 0);
const entryGzip = r.outputFiles.reduce((n, f) => n + gzipSync(f.contents).length, 0);
console.log(`\nrxrl + rxrl/operators + rxrl/pipelines for a browser (esbuild, minified): ${kb(entryBytes)} (gzip ${kb(entryGzip)}), by source:\n`);
console.log('| source | minified |');
console.log('| --- | ---: |');
for (const [g, n] of [...groups].sort((a, b) => b[1] - a[1]).filter(([, n]) => n > 8 * 1024)) console.log(`| ${g} | ${kb(n)} |`);
