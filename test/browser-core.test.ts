/**
 * The browser build of the library (issue 12): `rxrl`, `rxrl/operators` and `rxrl/pipelines` under
 * the `browser` export condition (lib/core.ts, operators/core.ts, pipelines/core.ts) bundle for a
 * browser without any Node built-in, and the rxrl sources in that bundle touch no `process`,
 * `Buffer`, `setImmediate`, `require` or `__dirname`.
 *
 * The bundle is esbuild's with `platform: 'browser'` and the repository's `rxrl-source` condition
 * (so `#platform/*` resolves to lib/platform/browser/), as a bundler of an app would make it. A
 * Node built-in imported by an rxrl module fails the test, naming the importer. Dependencies keep
 * their own `browser` field mappings; the one dynamic `import('module')` that mujoco-js guards by
 * an is-Node check is allowed and listed. The browser registry (pipelines/registry-core.ts) decodes
 * with the CLI's errors and names the pipelines that need Node.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import ts from 'typescript';

const ROOT = join(import.meta.dirname, '..');
const ENTRIES = ['lib/core.ts', 'operators/core.ts', 'pipelines/core.ts'];
const BUILTINS = new Set(builtinModules);
const isBuiltin = (spec: string): boolean => spec.startsWith('node:') || BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]!);
const ownSource = (file: string): boolean => /^(lib|operators|pipelines)\//.test(relative(ROOT, file));
/** Globals that exist only under Node. */
const NODE_GLOBALS = new Set(['process', 'Buffer', 'setImmediate', 'clearImmediate', 'require', '__dirname', '__filename', 'global']);

interface BundleReport {
  ownImports: string[];
  allowedDynamic: string[];
  inputs: string[];
}

async function bundleForBrowser(entries: readonly string[]): Promise<BundleReport> {
  const ownImports: string[] = [];
  const allowedDynamic: string[] = [];
  const guard: esbuild.Plugin = {
    name: 'node-builtins',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (!isBuiltin(args.path)) return undefined;
        const from = relative(ROOT, args.importer);
        if (ownSource(args.importer)) {
          ownImports.push(`${from} imports ${args.path}`);
          return { path: args.path, external: true };
        }
        // A dependency's guarded dynamic import (mujoco-js: `if (ENVIRONMENT_IS_NODE) await import('module')`).
        if (args.kind === 'dynamic-import') {
          allowedDynamic.push(`${from.replace(/^.*node_modules\//, '')}: import('${args.path}')`);
          return { path: args.path, external: true };
        }
        return undefined; // the dependency's `browser` field decides (tfjs maps fs, path, ... to nothing)
      });
    },
  };
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: [...entries],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    splitting: true,
    outdir: 'out',
    write: false,
    metafile: true,
    conditions: ['rxrl-source'],
    // not tsconfig.json: its `paths` map #platform/* to the Node modules for tsx and tsc
    tsconfigRaw: {},
    logLevel: 'silent',
    plugins: [guard],
  });
  return { ownImports, allowedDynamic: [...new Set(allowedDynamic)], inputs: Object.keys(result.metafile.inputs) };
}

/** Identifiers in `text` that read a Node-only global (not a property `x.process`, not a key `{ process: 1 }`). */
function nodeGlobalsIn(text: string): string[] {
  const file = ts.createSourceFile('x.ts', text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const isName = (n: ts.Identifier): boolean => {
    const p = n.parent;
    return (
      ((ts.isPropertyAccessExpression(p) ||
        ts.isPropertyAssignment(p) ||
        ts.isPropertySignature(p) ||
        ts.isPropertyDeclaration(p) ||
        ts.isMethodDeclaration(p)) &&
        p.name === n) ||
      (ts.isBindingElement(p) && p.propertyName === n)
    );
  };
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text) && !isName(node)) {
      found.push(`${node.text} (line ${file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1})`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

test('the browser entries bundle without Node built-ins, and their rxrl modules touch no Node global', async () => {
  const report = await bundleForBrowser(ENTRIES);
  assert.deepEqual(report.ownImports, [], 'an rxrl module of the browser build imports a Node built-in');
  const own = report.inputs.filter((f) => ownSource(join(ROOT, f)) && f.endsWith('.ts'));
  // The build holds what a browser needs: the backend, envs, the pipelines that read no files.
  for (const f of [
    'lib/backend.ts',
    'lib/platform/browser/wasm.ts',
    'lib/envs/mujoco/loader.ts',
    'lib/io/checkpoint-codec.ts',
    'pipelines/grpo-control.ts',
    'pipelines/td3.ts',
  ]) {
    assert.ok(own.includes(f), `${f} is in the browser bundle`);
  }
  // ... and not the Node side of a seam, nor a module of files on disk.
  for (const f of own)
    assert.doesNotMatch(f, /^lib\/platform\/node\/|^lib\/io\/(checkpoint|safetensors|atomic|tensorboard|metrics-jsonl)\.ts$|config-file\.ts$/);
  const globals = own.flatMap((f) => nodeGlobalsIn(readFileSync(join(ROOT, f), 'utf8')).map((g) => `${f}: ${g}`));
  assert.deepEqual(globals, [], 'an rxrl module of the browser build reads a Node-only global');
  assert.deepEqual(report.allowedDynamic, ["mujoco-js/dist/mujoco_wasm.js: import('module')"]);
});

test('the check catches a core module that imports a Node built-in or reads process', async () => {
  // A Node module that reads files on disk: the same bundling must name the importer. (Not the whole
  // Node entry lib/index.ts: it also pulls in ioredis, whose bare `util`/`events` imports stop esbuild first.)
  const report = await bundleForBrowser(['lib/io/checkpoint.ts']);
  assert.ok(
    report.ownImports.some((s) => s.startsWith('lib/io/checkpoint.ts imports node:fs')),
    report.ownImports.join('\n'),
  );
  assert.deepEqual(nodeGlobalsIn('const a = process.env.X; o.process = 1; const k = { process: 2 }; Buffer.from("")'), ['process (line 1)', 'Buffer (line 1)']);
});

test('the browser registry: the pipelines that read no files, the same errors as the CLI’s, the rest named Node-only', async () => {
  const core = await import('../pipelines/registry-core.ts');
  const full = await import('../pipelines/registry.ts');
  const { parsePipelineText } = await import('../pipelines/config.ts');
  assert.deepEqual([...Object.keys(core.PIPELINES), ...core.NODE_ONLY_PIPELINES].sort(), Object.keys(full.PIPELINES).sort());
  for (const name of Object.keys(core.PIPELINES)) assert.equal(core.PIPELINES[name], full.PIPELINES[name], `${name}: one definition`);
  const bad = parsePipelineText('pipeline: grpo-control\nseed: 1\niterations: 0\nalgorithm:\n  groupSzie: 8\n', 'bad.yaml');
  const message = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  const cli = message(() => full.decodePipelineConfig(bad, ['seed=2'], 'bad.yaml'));
  assert.match(cli, /^bad\.yaml: invalid grpo-control pipeline:\n {2}iterations: expected a positive integer, got 0\n {2}algorithm\.groupSzie: unknown key/);
  assert.equal(
    message(() => core.decodePipelineConfig(bad, ['seed=2'], 'bad.yaml')),
    cli,
  );
  assert.equal(
    message(() => core.decodePipelineConfig({ pipeline: 'odt', seed: 1, iterations: 1 }, [], 'o.yaml')),
    "o.yaml: pipeline: 'odt' reads files and runs under Node only (here: grpo-control, td3)",
  );
  // The playground's own examples decode in the browser registry.
  const dir = join(ROOT, 'docs', 'playground', 'examples');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 4);
  for (const f of files) {
    const { def } = core.decodePipelineConfig(parsePipelineText(readFileSync(join(dir, f), 'utf8'), f), [], f);
    assert.equal(def.name, 'grpo-control', f);
  }
});
