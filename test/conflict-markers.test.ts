/**
 * No merge-conflict markers in tracked text files: a merge once left README's command block with
 * both sides and the markers between them, and nothing noticed (the markers are valid Markdown).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const TEXT = /\.(ts|mts|mjs|js|json|md|yaml|yml|sh|py|html|css|txt)$|^\.ci\/run$/;
/** A conflict marker: seven <, = or > at the start of a line (= alone on its line; the others before a space or the end). */
const MARKER = /^(<{7}|>{7})( |$)|^={7}$/;

/** The offending `file:line` of every marker in `text`. */
function markersIn(file: string, text: string): string[] {
  return text.split('\n').flatMap((line, i) => (MARKER.test(line) ? [`${file}:${i + 1}: ${line}`] : []));
}

test('the marker pattern finds markers and only markers', () => {
  const merged = ['a', '<<<<<<< HEAD', 'x', '=======', 'y', '>>>>>>> branch', 'b'].join('\n');
  assert.deepEqual(markersIn('f', merged), ['f:2: <<<<<<< HEAD', 'f:4: =======', 'f:6: >>>>>>> branch']);
  assert.deepEqual(markersIn('f', ['========', '<<<<<<<<', '| a <<<<<<< b |', '=== title ===', ''].join('\n')), []);
});

test('no tracked text file holds a merge-conflict marker', () => {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f !== '' && TEXT.test(f) && !f.startsWith('docs/playground/dist/'));
  assert.ok(files.length > 100, `git ls-files listed ${files.length} text files`);
  const found = files.flatMap((f) => {
    let text: string;
    try {
      text = readFileSync(join(ROOT, f), 'utf8');
    } catch {
      return []; // deleted in the working tree
    }
    return markersIn(f, text);
  });
  assert.deepEqual(found, []);
});
