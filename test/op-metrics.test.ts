import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestScheduler } from 'rxjs/testing';
import { catchError, lastValueFrom, of, from } from 'rxjs';
import type { Batch, Group, MetricsRecord } from '../lib/data.ts';
import { MetricsCollector, consoleSink, formatMetricsLine, formatNumber, metrics, type MetricsSink } from '../operators/metrics.ts';
import { jsonlSink, readJsonl } from '../lib/io/metrics-jsonl.ts';
import { makeBatch, makeGroup } from './helpers/fixtures.ts';

const withMetrics = (iteration: number, m: Record<string, number>): Batch<Group> => ({
  ...makeBatch(iteration, [makeGroup('g', [[1]])]),
  metrics: m,
});

test('metrics passes batches through unchanged, in order, and writes one record each (marbles)', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    const b0 = withMetrics(0, { 'reward/mean': 1 });
    const b1 = withMetrics(1, { 'reward/mean': 2, kl: 0.5 });
    const log = new MetricsCollector();
    const out = cold('-a--b|', { a: b0, b: b1 }).pipe(metrics({ sinks: [log] }));
    expectObservable(out).toBe('-a--b|', { a: b0, b: b1 });
    scheduler.flush();
    assert.deepEqual(log.records, [
      { iteration: 0, 'reward/mean': 1 },
      { iteration: 1, 'reward/mean': 2, kl: 0.5 },
    ]);
  });
});

test('a failing sink errors the stream; sinks are closed at the end', () => {
  const scheduler = new TestScheduler((a, b) => assert.deepEqual(a, b));
  scheduler.run(({ cold, expectObservable }) => {
    let closed = 0;
    const flaky: MetricsSink = {
      write: (r) => {
        if (r.iteration === 1) throw new Error('disk full');
      },
      close: () => closed++,
    };
    const out = cold('a-b-c|', { a: withMetrics(0, {}), b: withMetrics(1, {}), c: withMetrics(2, {}) }).pipe(
      metrics({ sinks: [flaky] }),
      catchError((e: Error) => of(e.message)),
    );
    expectObservable(out).toBe('a-(b|)', { a: withMetrics(0, {}), b: 'disk full' });
    scheduler.flush();
    assert.equal(closed, 1);
  });
});

test('JSONL sink appends one parseable line per iteration; NaN becomes null and reads back as NaN', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-metrics-'));
  try {
    const path = join(dir, 'run', 'metrics.jsonl');
    const src = from([withMetrics(0, { 'reward/mean': 1.5, lambda: 0 }), withMetrics(1, { 'reward/mean': NaN, kl: 0.01 })]);
    await lastValueFrom(src.pipe(metrics({ sinks: [jsonlSink(path, { truncate: true })] })));
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.deepEqual(JSON.parse(lines[0]!), { 'reward/mean': 1.5, lambda: 0, iteration: 0 });
    assert.deepEqual(JSON.parse(lines[1]!), { 'reward/mean': null, kl: 0.01, iteration: 1 });
    // A resumed run appends; a torn last line (crash mid-write) is skipped by the reader.
    const again = jsonlSink(path);
    again.write({ iteration: 2, loss: 3 } as MetricsRecord);
    again.close!();
    assert.throws(() => again.write({ iteration: 3 } as MetricsRecord), /after close/);
    const { appendFileSync } = await import('node:fs');
    appendFileSync(path, '{"iteration": 3, "lo');
    const recs = readJsonl(path);
    assert.deepEqual(
      recs.map((r) => r.iteration),
      [0, 1, 2],
    );
    assert.ok(Number.isNaN(recs[1]!['reward/mean']));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('console sink: one compact line with the selected keys present', () => {
  const lines: string[] = [];
  const sink = consoleSink({ keys: ['reward/mean', 'kl', 'missing', 'lambda'], log: (l) => lines.push(l) });
  sink.write({ iteration: 12, 'reward/mean': 1.23456, kl: 0.00123456, lambda: 2, other: 9 } as MetricsRecord);
  assert.deepEqual(lines, ['it 12 | reward/mean 1.235 | kl 0.001235 | lambda 2']);
  assert.equal(formatNumber(1e-7), '1e-7');
  assert.equal(formatNumber(123456.7), '1.235e+5');
  assert.equal(formatNumber(0.5), '0.5');
  assert.match(formatMetricsLine({ iteration: 0, 'reward/mean': 3 } as MetricsRecord), /^it 0 \| reward\/mean 3$/);
});

test('formatNumber: 4 significant digits, trailing zeros stripped from the fraction only', () => {
  // Hand-written expectations (the integer part of 1150 or 1000 keeps its zeros).
  const cases: [number, string][] = [
    [-1149.86, '-1150'],
    [1000.4, '1000'],
    [1149.86, '1150'],
    [100.04, '100'],
    [10.5, '10.5'],
    [-0.5, '-0.5'],
    [0.1, '0.1'],
    [0.00123456, '0.001235'],
    [1.5e-7, '1.5e-7'],
    [1e-7, '1e-7'],
    [123456.7, '1.235e+5'],
    [-123456.7, '-1.235e+5'],
    [100000.5, '1e+5'],
    [3, '3'],
    [-20, '-20'],
    [1e12, '1e+12'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, 'Infinity'],
  ];
  for (const [x, want] of cases) assert.equal(formatNumber(x), want, `formatNumber(${x})`);
  assert.equal(formatNumber(1000.4, 6), '1000.4');
});

test('MetricsCollector merges records of the same iteration and gives series', () => {
  const c = new MetricsCollector();
  c.write({ iteration: 1, 'reward/mean': 2 } as MetricsRecord);
  c.write({ iteration: 0, 'reward/mean': 1 } as MetricsRecord);
  c.write({ iteration: 1, 'eval/return': 50 } as MetricsRecord);
  assert.deepEqual(c.records, [
    { iteration: 0, 'reward/mean': 1 },
    { iteration: 1, 'reward/mean': 2, 'eval/return': 50 },
  ]);
  assert.deepEqual(c.series('reward/mean'), [
    [0, 1],
    [1, 2],
  ]);
  assert.deepEqual(c.series('eval/return'), [[1, 50]]);
  assert.equal(c.last()!.iteration, 1);
});
