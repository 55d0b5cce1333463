/**
 * The results pages agree with the code: each page's generator (docs/gen/PAGE.ts) reruns its cheap
 * rows with `--check` and fails when a printed line of the page differs from what the code computes
 * now (runs are deterministic on a backend, so the comparison is exact).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..');
const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

for (const page of ['grpo-control']) {
  test(`docs/pipelines/${page}.md agrees with the code (docs/gen/${page}.ts --check)`, () => {
    const r = spawnSync(process.execPath, [TSX, join(ROOT, 'docs', 'gen', `${page}.ts`), '--check'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /agrees with the code/);
  });
}
