/**
 * The operators' documentation is where an editor shows it: hovering an import of every name in
 * OPERATOR_NAMES (through the TypeScript language service, as an editor does) gives a summary and
 * the `@param`, `@returns` and `@example` tags of its exported function.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { OPERATOR_NAMES } from '../operators/index.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A language service over the project's tsconfig plus one virtual file that imports every operator. */
function hoverAll(names: readonly string[]): Map<string, ts.QuickInfo | undefined> {
  const cfgPath = join(root, 'tsconfig.json');
  const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(cfgPath, ts.sys.readFile).config, ts.sys, root);
  const probe = join(root, 'test', '__jsdoc_probe__.ts');
  const text = `import { ${names.join(', ')} } from '../operators/index.ts';\n${names.map((n) => `${n};`).join('\n')}\n`;
  const host: ts.LanguageServiceHost = {
    getCompilationSettings: () => parsed.options,
    getScriptFileNames: () => [probe],
    getScriptVersion: () => '1',
    getScriptSnapshot: (f) => {
      if (f === probe) return ts.ScriptSnapshot.fromString(text);
      const s = ts.sys.readFile(f);
      return s === undefined ? undefined : ts.ScriptSnapshot.fromString(s);
    },
    getCurrentDirectory: () => root,
    getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
    fileExists: (f) => f === probe || ts.sys.fileExists(f),
    readFile: (f) => (f === probe ? text : ts.sys.readFile(f)),
    readDirectory: ts.sys.readDirectory,
    directoryExists: ts.sys.directoryExists,
    getDirectories: ts.sys.getDirectories,
  };
  const ls = ts.createLanguageService(host, ts.createDocumentRegistry());
  const out = new Map<string, ts.QuickInfo | undefined>();
  // Hover the use on its own line (after the import), as an editor would over `rollout;`.
  const bodyStart = text.indexOf('\n') + 1;
  for (const n of names) out.set(n, ls.getQuickInfoAtPosition(probe, text.indexOf(`${n};`, bodyStart)));
  ls.dispose();
  return out;
}

test('every operator shows its JSDoc (summary, @param, @returns, @example) on hover', () => {
  const t0 = Date.now();
  const infos = hoverAll(OPERATOR_NAMES);
  const problems: string[] = [];
  for (const name of OPERATOR_NAMES) {
    const info = infos.get(name);
    if (!info) {
      problems.push(`${name}: no hover information`);
      continue;
    }
    const display = ts.displayPartsToString(info.displayParts);
    if (!display.includes(`function ${name}`)) problems.push(`${name}: hover shows '${display.slice(0, 80)}', not the function`);
    const summary = ts.displayPartsToString(info.documentation).trim();
    if (summary.length < 80) problems.push(`${name}: summary missing or too short (${summary.length} characters)`);
    const tags = info.tags ?? [];
    const tagText = (t: ts.JSDocTagInfo): string => ts.displayPartsToString(t.text).trim();
    const params = tags.filter((t) => t.name === 'param');
    if (params.length === 0) problems.push(`${name}: no @param`);
    for (const p of params) if (tagText(p).split(/\s+/).length < 4) problems.push(`${name}: @param '${tagText(p)}' has no description`);
    const ret = tags.find((t) => t.name === 'returns' || t.name === 'return');
    if (!ret || tagText(ret).length < 10) problems.push(`${name}: no @returns with a description`);
    const ex = tags.find((t) => t.name === 'example');
    if (!ex) problems.push(`${name}: no @example`);
    else {
      const lines = tagText(ex)
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.trim().startsWith('```'));
      if (lines.length === 0 || lines.length > 6) problems.push(`${name}: @example has ${lines.length} lines (want 1–6)`);
      if (!lines.join('\n').includes(`${name}(`)) problems.push(`${name}: @example does not call ${name}(…)`);
    }
  }
  assert.deepEqual(problems, []);
  // One program for all names: keeps this test cheap.
  assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
});

test('operator files keep at most a one-line pointer above their imports', () => {
  for (const name of OPERATOR_NAMES) {
    const src = readFileSync(join(root, 'operators', `${name}.ts`), 'utf8');
    const head = src.slice(0, src.search(/^import /m));
    const lines = head.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length <= 1, `operators/${name}.ts: ${lines.length} header lines before the imports`);
  }
});
