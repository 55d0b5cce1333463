/** Pipelines compose typed parts: no `as never` / `as unknown as` escape hatch in pipelines/ (issue 8). */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const PIPELINES = join(import.meta.dirname, '..', 'pipelines');

test('no `as never` or `as unknown as` in pipelines/', () => {
  const files = readdirSync(PIPELINES, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 10, 'finds the pipeline sources');
  const hits = files.flatMap((f) =>
    readFileSync(join(PIPELINES, f), 'utf8')
      .split('\n')
      .flatMap((line, i) => (/\bas never\b|\bas unknown as\b/.test(line) ? [`pipelines/${f}:${i + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(hits, []);
});
