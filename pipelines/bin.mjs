#!/usr/bin/env node
// The `rxrl` executable (package.json `bin`). In the repository (the TypeScript sources sit next to
// this file) it registers tsx and runs pipelines/bin.ts from the sources, resolving rxrl's own
// `rxrl-source` export condition, so a fresh clone needs no build. In the installed package (only
// dist/ and this file ship) it runs the compiled dist/pipelines/bin.js with plain Node.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

const source = new URL('./bin.ts', import.meta.url);
if (existsSync(source)) {
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  // A resolve hook adding the condition (what `node --conditions=rxrl-source` does).
  const hook = 'export function resolve(s, c, next) { return next(s, { ...c, conditions: [...c.conditions, "rxrl-source"] }); }';
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  await import(source.href);
} else {
  // Built by `npm run build` (absent in a fresh clone, hence not a static specifier).
  await import(new URL('../dist/pipelines/bin.js', import.meta.url).href);
}
