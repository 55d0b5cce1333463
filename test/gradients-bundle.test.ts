/**
 * lib/tensor/tfjs-gradients.generated.js is what `node .ci/gen-tfjs-gradients.mjs` writes for the
 * installed tfjs-core (regenerate it with `npm run gen:gradients` after a tfjs upgrade), and it is a
 * self-contained ES module: no import or require, so plain Node and bundlers load it as it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const FILE = join(ROOT, 'lib', 'tensor', 'tfjs-gradients.generated.js');

test('the committed gradient bundle is fresh and self-contained', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-grad-'));
  try {
    const out = join(dir, 'g.js');
    const r = spawnSync(process.execPath, [join(ROOT, '.ci', 'gen-tfjs-gradients.mjs'), out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const committed = readFileSync(FILE, 'utf8');
    assert.ok(committed === readFileSync(out, 'utf8'), 'lib/tensor/tfjs-gradients.generated.js is stale: run `npm run gen:gradients`');
    assert.doesNotMatch(committed, /^\s*import\s|\brequire\(|\bimport\(/m);
    assert.match(committed, /registerGradient/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
