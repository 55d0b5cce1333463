/** Every notebook-style script under docs/examples runs to completion in smoke mode (RXRL_SMOKE=1). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const DIR = join(import.meta.dirname, '..', 'docs', 'examples');
const TSX = join(import.meta.dirname, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');

for (const f of readdirSync(DIR).filter((n) => n.endsWith('.ts'))) {
  test(`docs/examples/${f} runs in smoke mode`, () => {
    const r = spawnSync(process.execPath, [TSX, '--conditions=rxrl-source', join(DIR, f)], {
      encoding: 'utf8',
      env: { ...process.env, RXRL_SMOKE: '1' },
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stderr}`);
    assert.ok(r.stdout.trim().length > 0, 'prints its results');
  });
}
