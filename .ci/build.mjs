#!/usr/bin/env node
// `npm run build`: compiles lib/, operators/ and pipelines/ to ES modules + declarations in dist/
// (tsconfig.build.json; `.ts` import specifiers rewritten to `.js`), then copies the files tsc does
// not emit: the pre-bundled tfjs gradients (lib/tensor/tfjs-gradients.generated.{js,d.ts}).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(`${root}dist`, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
for (const f of ['lib/tensor/tfjs-gradients.generated.js', 'lib/tensor/tfjs-gradients.generated.d.ts']) {
  copyFileSync(`${root}${f}`, `${root}dist/${f}`);
}
chmodSync(`${root}dist/pipelines/bin.js`, 0o755);
console.log('rxrl: built dist/');
