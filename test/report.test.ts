import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadRun, renderChartPng, runLabels, writeReport } from '../pipelines/report/index.ts';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height from a PNG's IHDR chunk (right after the signature). */
function pngSize(buf: Buffer): { width: number; height: number } {
  assert.ok(buf.subarray(0, 8).equals(PNG_SIGNATURE), 'PNG signature');
  assert.equal(buf.subarray(12, 16).toString('ascii'), 'IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

interface FakeRun {
  config: Record<string, unknown>;
  rows: Record<string, number | null>[];
  summary?: Record<string, number | null>;
}

function writeRun(dir: string, run: FakeRun): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(run.config, null, 2));
  writeFileSync(join(dir, 'metrics.jsonl'), run.rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
  if (run.summary !== undefined) writeFileSync(join(dir, 'summary.json'), JSON.stringify(run.summary));
  return dir;
}

/** A GRPO-like run (reward, kl, eval) and a Lagrangian one (reward with std, cost vs limit, λ). */
function syntheticRuns(root: string): { grpo: string; lag: string } {
  const n = 20;
  const grpo = writeRun(join(root, 'grpo'), {
    config: { pipeline: 'grpo-control', seed: 0, iterations: n, env: 'CartPole-v1' },
    rows: Array.from({ length: n }, (_, i) => ({
      iteration: i,
      'reward/mean': 20 + 8 * i + 3 * Math.sin(i),
      'reward/min': 10 + 5 * i,
      'reward/max': 30 + 10 * i,
      kl: i === 0 ? null : 0.002 * i,
      ...(i % 5 === 4 ? { 'eval/return': 25 + 9 * i } : {}),
    })),
    summary: { 'eval/return': 187.25, 'reward/mean': 171.5 },
  });
  const lag = writeRun(join(root, 'lagrangian'), {
    config: { pipeline: 'lagrangian-control', seed: 1, iterations: n, env: 'CartPole-v1' },
    rows: Array.from({ length: n }, (_, i) => ({
      iteration: i,
      'reward/mean': 15 + 6 * i,
      'reward/std': 5 + i / 2,
      'cost/mean': 40 * Math.exp(-i / 6) + 8,
      'constraint/limit': 25,
      lambda: Math.max(0, 1.5 * Math.sin(i / 6)),
    })),
    summary: { 'eval/return': 131.125, 'cost/mean': 9.5 },
  });
  return { grpo, lag };
}

test('writeReport: one PNG per quantity with data, HTML with both runs and their summaries', async () => {
  const root = mkdtempSync(join(tmpdir(), 'rxrl-report-'));
  try {
    const { grpo, lag } = syntheticRuns(root);
    // A torn (partially written) last line is skipped.
    appendFileSync(join(lag, 'metrics.jsonl'), '{"iteration": 20, "reward/me');
    const out = join(root, 'out');
    const { html, images } = await writeReport([grpo, lag], out, { title: 'GRPO vs Lagrangian' });

    assert.equal(html, join(out, 'report.html'));
    // reward (both), cost (lag), lambda (lag), kl (grpo), eval return (grpo has no normalised score).
    assert.deepEqual(images.map((p) => basename(p)).sort(), ['cost.png', 'eval-return.png', 'kl.png', 'lambda.png', 'reward.png']);
    for (const img of images) {
      const { width, height } = pngSize(readFileSync(img));
      assert.equal(width, 1440, img);
      assert.equal(height, 720, img);
    }

    const page = readFileSync(html, 'utf8');
    assert.match(page, /<title>GRPO vs Lagrangian<\/title>/);
    for (const s of [
      'grpo',
      'lagrangian',
      'grpo-control',
      'lagrangian-control',
      '187.25',
      '131.125',
      '9.5',
      'Final metrics compared',
      'torn last line skipped',
    ]) {
      assert.ok(page.includes(s), `report.html mentions ${s}`);
    }
    // Inlined images: the page stands alone.
    assert.equal(page.match(/src="data:image\/png;base64,/g)?.length, images.length);
    assert.ok(!page.includes('compliance'), 'no chart for metrics no run logged');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('writeReport: linked images, normalised score replaces eval return, LM metrics plotted', async () => {
  const root = mkdtempSync(join(tmpdir(), 'rxrl-report-'));
  try {
    const dir = writeRun(join(root, 'lm'), {
      config: { pipeline: 'safe-lm', seed: 3, iterations: 4 },
      rows: [0, 1, 2, 3].map((i) => ({
        iteration: i,
        'eval/return': 100 * i,
        'eval/normalized_score': 10 * i,
        'compliance/mean': 0.5 + 0.1 * i,
        'utility/mean': 0.2 * i,
        'utility/std': 0.05,
      })),
    });
    const out = join(root, 'out');
    const { html, images } = await writeReport([dir], out, { inline: false, scale: 1 });
    assert.deepEqual(images.map((p) => basename(p)).sort(), ['compliance.png', 'eval-score.png', 'utility.png']);
    for (const img of images) assert.deepEqual(pngSize(readFileSync(img)), { width: 720, height: 360 });
    const page = readFileSync(html, 'utf8');
    assert.ok(page.includes('src="utility.png"'));
    assert.ok(page.includes('No summary.json'), 'a run without summary.json is reported, not rejected');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('loadRun: clear errors naming the file (and line)', () => {
  const root = mkdtempSync(join(tmpdir(), 'rxrl-report-'));
  try {
    const dir = join(root, 'a');
    mkdirSync(dir);
    assert.throws(
      () => loadRun(dir),
      (e: Error) => e.message.startsWith(`${join(dir, 'config.json')}: missing`),
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ pipeline: 'grpo-control', seed: 0, iterations: 3 }));
    assert.throws(
      () => loadRun(dir),
      (e: Error) => e.message.startsWith(`${join(dir, 'metrics.jsonl')}: missing`),
    );

    writeFileSync(join(dir, 'metrics.jsonl'), '{"iteration":0,"kl":0.1}\nnot json\n{"iteration":2,"kl":0.3}\n');
    assert.throws(() => loadRun(dir), { message: `${join(dir, 'metrics.jsonl')}:2: not JSON` });
    writeFileSync(join(dir, 'metrics.jsonl'), '{"kl":0.1}\n');
    assert.throws(
      () => loadRun(dir),
      (e: Error) => e.message.startsWith(`${join(dir, 'metrics.jsonl')}:1: "iteration"`),
    );

    // A torn last line (with or without a trailing newline) is skipped; null reads as NaN.
    writeFileSync(join(dir, 'metrics.jsonl'), '{"iteration":0,"kl":null}\n{"iteration":1,"kl":0.2}\n{"iteration":2,"k');
    const run = loadRun(dir);
    assert.equal(run.metrics.length, 2);
    assert.ok(Number.isNaN(run.metrics[0]!['kl']));
    assert.equal(run.tornLastLine, true);
    assert.equal(run.summary, undefined);
    assert.deepEqual(run.droppedKeys, []);
    // Non-numeric metrics are not charted, and their names are reported (the CLI warns once per run).
    writeFileSync(join(dir, 'metrics.jsonl'), '{"iteration":0,"kl":0.1,"phase":"warmup","x":{"a":1}}\n{"iteration":1,"kl":0.2,"phase":"main"}\n');
    assert.deepEqual(loadRun(dir).droppedKeys, ['phase', 'x']);
    assert.throws(
      () => loadRun(join(root, 'nope')),
      (e: Error) => e.name === 'ReportError' && /nope: no such run directory/.test(e.message),
    );

    writeFileSync(join(dir, 'summary.json'), '{"eval/return": "high"}');
    assert.throws(
      () => loadRun(dir),
      (e: Error) => e.message.startsWith(`${join(dir, 'summary.json')}: "eval/return"`),
    );
    writeFileSync(join(dir, 'config.json'), '{"pipeline": "grpo-control", "seed": 0');
    assert.throws(
      () => loadRun(dir),
      (e: Error) => e.message.startsWith(`${join(dir, 'config.json')}: not JSON`),
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ pipeline: 'grpo-control', seed: 0 }));
    assert.throws(
      () => loadRun(dir),
      (e: Error) => e.message.startsWith(`${join(dir, 'config.json')}: "iterations" must be a number`),
    );
    assert.throws(() => loadRun(join(root, 'nope')), /nope: no such run directory/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('runLabels: directory names, told apart by pipeline and differing config fields', () => {
  const cfg = (pipeline: string, seed: number) => ({ pipeline, seed, iterations: 10 });
  assert.deepEqual(
    runLabels([
      { name: 'a', config: cfg('grpo', 0) },
      { name: 'b', config: cfg('grpo', 0) },
    ]),
    ['a', 'b'],
  );
  assert.deepEqual(
    runLabels([
      { name: 'run', config: cfg('grpo', 0) },
      { name: 'run', config: cfg('grpo', 1) },
    ]),
    ['grpo seed=0', 'grpo seed=1'],
  );
  assert.deepEqual(
    runLabels([
      { name: 'run', config: cfg('grpo', 0) },
      { name: 'run', config: cfg('grpo', 0) },
    ]),
    ['grpo #1', 'grpo #2'],
  );
});

test('renderChartPng: text is drawn with the packaged font (no system fonts are loaded)', () => {
  const blank = renderChartPng({ backgroundColor: '#ffffff' }, 200, 60, 1);
  const titled = renderChartPng({ backgroundColor: '#ffffff', title: { text: 'Reward' } }, 200, 60, 1);
  assert.deepEqual(pngSize(titled), { width: 200, height: 60 });
  assert.ok(!titled.equals(blank), 'the title changes the pixels');
});
