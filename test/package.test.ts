/**
 * rxrl as a published package: `npm run build`, `npm pack`, install the tarball in an empty folder,
 * then — with plain `node`, no tsx — import `rxrl`, `rxrl/operators` and `rxrl/pipelines`, step an
 * env and take a gradient; type-check a consumer .ts file against the shipped declarations with
 * `tsc`; run `npx rxrl list`. Slow (a build, a pack and an npm install): skipped unless
 * RXRL_TEST_PACKAGE=1, which `npm run test:package` sets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const enabled = process.env['RXRL_TEST_PACKAGE'] === '1';
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

function run(cmd: string, args: string[], opts: SpawnSyncOptions & { cwd: string }): string {
  // A clean environment for the consumer: no tsx loader, no source condition inherited via NODE_OPTIONS.
  const env = { ...process.env, NODE_OPTIONS: '' };
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 600_000, maxBuffer: 64 << 20, ...opts });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${opts.cwd}) exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return String(r.stdout);
}

test('the packed tarball works under plain node, tsc and npx', { skip: !enabled && 'slow: run `npm run test:package`', timeout: 900_000 }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'rxrl-package-'));
  try {
    run(NPM, ['run', 'build'], { cwd: ROOT });
    const packDir = join(tmp, 'pack');
    mkdirSync(packDir);
    run(NPM, ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: ROOT });
    const tarballs = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
    assert.equal(tarballs.length, 1, `one tarball in ${packDir}: ${tarballs.join(', ')}`);
    const tarball = join(packDir, tarballs[0]!);
    const listing = run('tar', ['-tzf', tarball], { cwd: tmp });
    assert.match(listing, /package\/dist\/lib\/index\.js/);
    assert.match(listing, /package\/dist\/lib\/tensor\/tfjs-gradients\.generated\.js/);
    assert.match(listing, /package\/pipelines\/bin\.mjs/);
    assert.match(listing, /package\/pipelines\/examples\/grpo-cartpole\.yaml/);
    assert.doesNotMatch(listing, /package\/(lib|operators|pipelines|test)\/[^\n]*\.ts\n/, 'no TypeScript sources ship');

    const app = join(tmp, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    run(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, 'typescript@5.9.3', '@types/node@20.19.43'], { cwd: app });

    assert.ok(!existsSync(join(app, 'node_modules', 'tsx')), 'tsx is not installed with rxrl: everything below runs on plain node');

    // Plain node: the three entry points, an env stepped, a gradient (tfjs-core's gradients registered without tsx).
    writeFileSync(
      join(app, 'main.mjs'),
      `import { makeEnv, initBackend } from 'rxrl';
import { rollout, policyActor } from 'rxrl/operators';
import { PIPELINES, decodePipelineConfig } from 'rxrl/pipelines';
import * as tf from '@tensorflow/tfjs-core';
const env = await makeEnv('CartPole-v1');
const { observation } = env.reset(0);
let steps = 0, reward = 0;
for (; steps < 5; steps++) { const r = env.step(steps % 2); reward += r.reward; if (r.terminated) break; }
env.close();
const info = await initBackend({ backend: 'cpu' });
const g = tf.grad((x) => tf.sum(tf.mul(x, x)))(tf.tensor1d([1, 2, 3]));
console.log(JSON.stringify({ obs: observation.length, steps, reward, backend: info.name, grad: Array.from(g.dataSync()),
  operators: typeof rollout === 'function' && typeof policyActor === 'function',
  pipelines: Object.keys(PIPELINES).length, decode: typeof decodePipelineConfig }));
`,
    );
    const out = JSON.parse(run(process.execPath, ['main.mjs'], { cwd: app }).trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.deepEqual(out, {
      obs: 4,
      steps: 5,
      reward: 5,
      backend: 'cpu',
      grad: [2, 4, 6],
      operators: true,
      pipelines: out['pipelines'],
      decode: 'function',
    });
    assert.ok((out['pipelines'] as number) >= 5, `pipelines registered: ${out['pipelines']}`);

    // tsc against the shipped declarations: correct use type-checks, a wrong argument does not.
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'] },
        include: ['consumer.ts'],
      }),
    );
    const consumer = `import { makeEnv, type Env } from 'rxrl';
import { policyActor } from 'rxrl/operators';
import { getPipeline } from 'rxrl/pipelines';
const env: Env = await makeEnv('CartPole-v1');
const first: Float32Array | Float64Array | number[] = env.reset(0).observation;
const r = env.step(1);
const done: boolean = r.terminated || r.truncated;
console.log(first.length, done, typeof policyActor, getPipeline);
`;
    writeFileSync(join(app, 'consumer.ts'), consumer);
    // No skipLibCheck, so rxrl's own declarations are checked too. tfjs's declarations name types from
    // packages it does not depend on (@types/emscripten, long): those errors are tfjs's, and the only ones allowed.
    const good = spawnSync(NPX, ['tsc', '-p', '.'], { cwd: app, encoding: 'utf8' });
    const errors = good.stdout.split('\n').filter((l) => l.includes('error TS'));
    const ours = errors.filter((l) => !l.startsWith('node_modules/@tensorflow/'));
    assert.deepEqual(ours, [], `tsc errors outside tfjs's own declarations:\n${good.stdout}`);
    writeFileSync(join(app, 'consumer.ts'), `${consumer}const n: string = env.reset(0).observation;\n`);
    const bad = spawnSync(NPX, ['tsc', '-p', '.'], { cwd: app, encoding: 'utf8' });
    assert.notEqual(bad.status, 0, 'tsc rejects a wrongly typed use');
    assert.match(bad.stdout, /consumer\.ts\(9,7\): error TS2322/);

    // The CLI from the installed tarball, plain node.
    const list = run(NPX, ['rxrl', 'list'], { cwd: app });
    assert.match(list, /grpo-control/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
