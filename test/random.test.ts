import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng, RngStreams } from '../lib/random.ts';

test('same seed and key give the same sequence; state round-trips', () => {
  const a = new Rng(7, 'init');
  const b = new Rng(7, 'init');
  const xs = Array.from({ length: 100 }, () => a.nextUint32());
  const ys = Array.from({ length: 100 }, () => b.nextUint32());
  assert.deepEqual(xs, ys);
  a.normal(); // leaves a cached spare
  const saved = a.state();
  const next = [a.normal(), a.uniform(), a.int(10)];
  const c = Rng.fromState(JSON.parse(JSON.stringify(saved)));
  assert.deepEqual([c.normal(), c.uniform(), c.int(10)], next);
});

test('different seeds and different keys give different streams', () => {
  const first = (r: Rng) => Array.from({ length: 8 }, () => r.nextUint32());
  assert.notDeepEqual(first(new Rng(1, 'x')), first(new Rng(2, 'x')));
  assert.notDeepEqual(first(new Rng(1, 'env/reset')), first(new Rng(1, 'action')));
  assert.notDeepEqual(first(new Rng(0, '')), first(new Rng(1, '')));
});

test('streams keyed by purpose are independent of each other', () => {
  const s1 = new RngStreams(3);
  const s2 = new RngStreams(3);
  // Draw heavily from one purpose in s1 only; the other purpose must be unaffected.
  for (let i = 0; i < 1000; i++) s1.get('action').uniform();
  const a = Array.from({ length: 20 }, () => s1.get('init').uniform());
  const b = Array.from({ length: 20 }, () => s2.get('init').uniform());
  assert.deepEqual(a, b);
  // Low correlation between two keyed streams.
  const n = 20000;
  const u = new RngStreams(9).get('a').uniformArray(n);
  const v = new RngStreams(9).get('b').uniformArray(n);
  let su = 0,
    sv = 0,
    suv = 0,
    suu = 0,
    svv = 0;
  for (let i = 0; i < n; i++) {
    su += u[i]!;
    sv += v[i]!;
    suv += u[i]! * v[i]!;
    suu += u[i]! ** 2;
    svv += v[i]! ** 2;
  }
  const cov = suv / n - (su / n) * (sv / n);
  const corr = cov / Math.sqrt((suu / n - (su / n) ** 2) * (svv / n - (sv / n) ** 2));
  assert.ok(Math.abs(corr) < 0.03, `correlation ${corr}`);
  const restored = RngStreams.fromState(JSON.parse(JSON.stringify(s1.state())));
  assert.equal(restored.get('action').uniform(), s1.get('action').uniform());
});

test('uniform, normal and categorical have the right moments', () => {
  const r = new Rng(11, 'moments');
  const n = 200000;
  let m = 0,
    m2 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.uniform();
    m += x;
    m2 += x * x;
  }
  m /= n;
  m2 /= n;
  assert.ok(Math.abs(m - 0.5) < 0.005, `uniform mean ${m}`);
  assert.ok(Math.abs(m2 - m * m - 1 / 12) < 0.002, `uniform var ${m2 - m * m}`);
  let g = 0,
    g2 = 0,
    g4 = 0;
  for (let i = 0; i < n; i++) {
    const x = r.normal(2, 3);
    g += x;
    g2 += (x - 2) ** 2;
    g4 += ((x - 2) / 3) ** 4;
  }
  assert.ok(Math.abs(g / n - 2) < 0.03, `normal mean ${g / n}`);
  assert.ok(Math.abs(Math.sqrt(g2 / n) - 3) < 0.03, `normal std ${Math.sqrt(g2 / n)}`);
  assert.ok(Math.abs(g4 / n - 3) < 0.1, `normal kurtosis ${g4 / n}`);
  const w = [0.1, 0, 0.6, 0.3];
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) counts[r.categorical(w)]!++;
  assert.equal(counts[1], 0);
  for (let k = 0; k < 4; k++) assert.ok(Math.abs(counts[k]! / n - w[k]!) < 0.005, `p[${k}] ${counts[k]! / n}`);
  const logits = [Math.log(0.2), Math.log(0.8)];
  let ones = 0;
  for (let i = 0; i < 50000; i++) ones += r.categoricalLogits(logits);
  assert.ok(Math.abs(ones / 50000 - 0.8) < 0.01);
  const counts7 = new Array(7).fill(0);
  for (let i = 0; i < 70000; i++) counts7[r.int(7)]++;
  for (const c of counts7) assert.ok(Math.abs(c / 70000 - 1 / 7) < 0.01);
});

test('bad arguments are clear errors', () => {
  assert.throws(() => new Rng(-1), /integer seed/);
  assert.throws(() => new Rng(1.5), /integer seed/);
  const r = new Rng(1);
  assert.throws(() => r.categorical([0, 0]), /sum to zero/);
  assert.throws(() => r.categorical([1, Number.NaN]), /weight 1/);
  assert.throws(() => r.int(0), /positive integer/);
});
