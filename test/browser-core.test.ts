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
 * an is-Node check is allowed and listed. The registry (pipelines/registry.ts) is the same under
 * Node and in a browser. Files in a browser are the bytes a page provides (lib/platform/browser/
 * files.ts, hdf5.ts): read as Node reads them from disk, with the same errors.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import ts from 'typescript';
import { checkpointBytes } from '../lib/io/checkpoint-codec.ts';

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
  // The build holds what a browser needs: the backend, envs, every pipeline, files as provided bytes.
  for (const f of [
    'lib/backend.ts',
    'lib/platform/browser/wasm.ts',
    'lib/platform/browser/files.ts',
    'lib/platform/browser/hdf5.ts',
    'lib/datasets/d4rl.ts',
    'lib/envs/mujoco/loader.ts',
    'lib/io/checkpoint-codec.ts',
    'pipelines/grpo-control.ts',
    'pipelines/td3.ts',
    'pipelines/hipo/hipo.ts',
    'pipelines/hipo/sft.ts',
    'pipelines/online-dt/grpo-dt.ts',
    'pipelines/online-dt/odt.ts',
  ]) {
    assert.ok(own.includes(f), `${f} is in the browser bundle`);
  }
  // ... and not the Node side of a seam, nor a module of files on disk.
  for (const f of own)
    assert.doesNotMatch(
      f,
      /^lib\/platform\/node\/|^lib\/io\/(checkpoint|safetensors|atomic|tensorboard|metrics-jsonl)\.ts$|^lib\/models\/(hf|tokenizer)\.ts$|config-file\.ts$/,
    );
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

test('one registry under Node and in a browser: every pipeline, the CLI’s errors, every example decodes', async () => {
  const { PIPELINES, NODE_ONLY_PIPELINES, decodePipelineConfig } = await import('../pipelines/registry.ts');
  const { parsePipelineText } = await import('../pipelines/config.ts');
  assert.deepEqual(Object.keys(PIPELINES), ['grpo-control', 'sft', 'hipo', 'grpo-lm', 'td3', 'grpo-dt', 'rft', 'dpo', 'odt', 'odt-td3']);
  assert.deepEqual(NODE_ONLY_PIPELINES, []);
  const bad = parsePipelineText('pipeline: grpo-control\nseed: 1\niterations: 0\nalgorithm:\n  groupSzie: 8\n', 'bad.yaml');
  assert.throws(
    () => decodePipelineConfig(bad, ['seed=2'], 'bad.yaml'),
    /^ConfigError: bad\.yaml: invalid grpo-control pipeline:\n {2}iterations: expected a positive integer, got 0\n {2}algorithm\.groupSzie: unknown key/,
  );
  // The shipped examples and the playground's own decode (their files are read at run time).
  for (const dir of [join(ROOT, 'pipelines', 'examples'), join(ROOT, 'docs', 'playground', 'examples')]) {
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 4, dir);
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      const { def } = decodePipelineConfig(parsePipelineText(text, f), [], f);
      assert.equal(def.name, /^pipeline:\s*([\w-]+)/m.exec(text)?.[1], f);
    }
  }
});

test('files in a browser: provided bytes read as files on disk do, with the same errors', async () => {
  const node = await import('../lib/platform/node/files.ts');
  const web = await import('../lib/platform/browser/files.ts');
  const nodeH5 = await import('../lib/platform/node/hdf5.ts');
  const webH5 = await import('../lib/platform/browser/hdf5.ts');
  const { readNumeric } = await import('../lib/datasets/hdf5.ts');
  const { CheckpointError } = await import('../lib/io/checkpoint-codec.ts');
  assert.equal(node.FILE_SOURCE, 'disk');
  assert.equal(web.FILE_SOURCE, 'provided');
  assert.throws(() => node.provideFiles({}), /under Node rxrl reads files from disk/);

  // The same tree on disk and provided: a dataset, a checkpoint in a run directory, a truncated file.
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-files-'));
  try {
    const dataset = readFileSync(join(ROOT, 'test', 'data', 'hopper-tiny.hdf5'));
    const tree: Record<string, Uint8Array> = {
      'data/hopper.hdf5': dataset,
      'runs/sft/checkpoint.safetensors': await checkpointBytes({
        params: { w: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) } },
        config: { a: 1 },
      }),
      'runs/short.safetensors': new Uint8Array([1, 2, 3]),
      'runs/huge-header.safetensors': new Uint8Array([255, 255, 255, 255, 0, 0, 0, 0, 123]),
      'data/not-hdf5.hdf5': new Uint8Array(600),
    };
    for (const [path, bytes] of Object.entries(tree)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), bytes);
    }
    web.provideFiles(Object.fromEntries(Object.entries(tree).map(([p, b]) => [join(dir, p), b])));
    const paths = ['data/hopper.hdf5', 'data', 'runs/sft', 'runs/sft/', './runs/sft/../sft/checkpoint.safetensors', 'runs/missing.safetensors', 'nope'];
    for (const p of paths) assert.equal(web.pathKind(join(dir, p)), node.pathKind(join(dir, p)), p);
    for (const [a, b] of [
      [dir, 'x.txt'],
      ['runs/sft/', 'checkpoint.safetensors'],
      ['./runs', '../a/./b'],
      ['', 'x'],
      ['/a/b', '../../../c'],
    ] as const)
      assert.equal(web.joinPath(a, b), node.joinPath(a, b), `${a} + ${b}`);

    const outcome = async (f: () => Promise<unknown>): Promise<string> => {
      try {
        const v = await f();
        return v instanceof Uint8Array ? `bytes ${Buffer.from(v).toString('hex')}` : 'ok';
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      }
    };
    for (const p of ['runs/sft/checkpoint.safetensors', 'runs/sft', 'runs/missing.safetensors', 'runs/short.safetensors', 'runs/huge-header.safetensors']) {
      const disk = await outcome(() => node.readCheckpointFile(join(dir, p)));
      assert.equal(await outcome(() => web.readCheckpointFile(join(dir, p))), disk, p);
      if (!disk.startsWith('bytes')) assert.ok(await web.readCheckpointFile(join(dir, p)).catch((e: unknown) => e instanceof CheckpointError), p);
    }
    // HDF5: the same refusals, and every key of the dataset read the same from provided bytes.
    for (const p of ['data/missing.hdf5', 'data/not-hdf5.hdf5']) {
      assert.equal(await outcome(() => webH5.openHdf5(join(dir, p), 'r')), await outcome(() => nodeH5.openHdf5(join(dir, p), 'r')), p);
    }
    assert.match(await outcome(() => webH5.openHdf5(join(dir, 'out.hdf5'), 'w')), /writing HDF5 files runs under Node only/);
    const a = await nodeH5.openHdf5(join(dir, 'data/hopper.hdf5'), 'r');
    const b = await webH5.openHdf5(join(dir, 'data/hopper.hdf5'), 'r');
    try {
      for (const key of ['observations', 'actions', 'rewards', 'terminals', 'timeouts', 'infos/qpos', 'infos/qvel']) {
        assert.deepEqual(readNumeric(b.h5, b.file, key, 'web'), readNumeric(a.h5, a.file, key, 'node'), key);
      }
    } finally {
      a.file.close();
      b.file.close();
    }
    assert.deepEqual(
      b.h5.Module.FS.readdir('/').filter((n: string) => n.startsWith('rxrl-')),
      [],
      'closing frees the in-memory copy',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
