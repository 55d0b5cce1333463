/**
 * Property-based fuzzing of the pipeline-file codec (fast-check, bounded, seeded): whatever object,
 * `--set` assignment or YAML text comes in, decoding either returns a config or throws a
 * `ConfigError` whose message names the file — never a TypeError, RangeError or ReferenceError —
 * and never writes to `Object.prototype`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ConfigError } from '../pipelines/config.ts';
import { readPipelineFile } from '../pipelines/config-file.ts';
import { decodePipelineConfig } from '../pipelines/registry.ts';

const RUNS = { numRuns: 300, seed: 20240521 };
const LABEL = 'fuzz.yaml';

/** Keys the codec knows, plus the dangerous ones, plus noise: so random objects reach deep paths. */
const KEY = fc.oneof(
  fc.constantFrom(
    'pipeline',
    'seed',
    'iterations',
    'env',
    'id',
    'options',
    'policy',
    'hidden',
    'activation',
    'algorithm',
    'groupSize',
    'update',
    'clipEps',
    'advantages',
    'estimator',
    'constraint',
    'evaluation',
    'episodes',
    'every',
    'checkpointEvery',
  ),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'),
  fc.string({ maxLength: 8 }),
);
const LEAF = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('CartPole-v1', 'Hopper-v4', 'grpo-control', 'tanh', 'grpo'),
);
const VALUE = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, LEAF, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(KEY, tie('v'), { maxKeys: 5 })),
})).v;

/** A plausible pipeline file with random sections: reaches the env check and every section codec. */
const FILE = fc.record(
  {
    pipeline: fc.oneof(fc.constant('grpo-control'), LEAF),
    seed: fc.oneof(fc.nat(100), LEAF),
    iterations: fc.oneof(fc.integer({ min: 1, max: 10 }), LEAF),
    env: fc.oneof(
      fc.record(
        {
          id: fc.oneof(fc.constantFrom('CartPole-v1', 'CartPoleConstrained-v1', 'Pendulum-v1', 'Hopper-v4', 'CartPol-v1'), LEAF),
          options: fc.dictionary(KEY, LEAF, { maxKeys: 3 }),
        },
        { requiredKeys: [] },
      ),
      VALUE,
    ),
    policy: VALUE,
    algorithm: VALUE,
    evaluation: VALUE,
    extra: VALUE,
  },
  { requiredKeys: [] },
);

function check(run: () => unknown, label = LABEL): void {
  try {
    run();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${(e as Error)?.stack ?? String(e)}`);
    assert.ok(e.message.length > 0 && e.problems.length > 0);
    assert.ok(e.message.startsWith(`${label}:`) || e.message.startsWith('--set '), `message does not name the file or --set: ${e.message}`);
  }
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined, 'Object.prototype was written');
}

test('random objects: decodePipelineConfig returns a config or throws a ConfigError naming the file', () => {
  fc.assert(
    fc.property(fc.oneof(FILE, VALUE), (raw) => {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return;
      check(() => decodePipelineConfig(raw as Record<string, unknown>, [], LABEL));
    }),
    RUNS,
  );
});

test('random --set assignments: a config or a ConfigError, never a raw error or a polluted prototype', () => {
  const path = fc.array(KEY, { minLength: 1, maxLength: 4 }).map((ks) => ks.join('.'));
  const value = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.constantFrom('{polluted: 1}', '[1, [2, [3]]]', '&a [*a]', '*x', '{a: 1', '!!binary AAAA', '.nan', '"\\u0000"'),
  );
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(path, value).map(([p, v]) => `${p}=${v}`),
        { maxLength: 3 },
      ),
      (sets) => {
        check(() => decodePipelineConfig({ pipeline: 'grpo-control', seed: 1, iterations: 1 }, sets, LABEL));
      },
    ),
    RUNS,
  );
});

test('random YAML text: readPipelineFile + decode give a config or a ConfigError naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxrl-fuzz-'));
  try {
    const p = join(dir, LABEL);
    const fragment = fc.constantFrom(
      'pipeline: grpo-control\n',
      'seed: 1\n',
      'iterations: 2\n',
      'env:\n  id: CartPole-v1\n',
      '  options: {g: 1}\n',
      'a: &a [1, 2]\n',
      'b: [*a, *a]\n',
      '__proto__: {polluted: 1}\n',
      '- x\n',
      '{',
      '}\n',
      ': :\n',
      '? x\n',
      '!!set {a}\n',
      '%YAML 1.1\n---\n',
      'x: !!js/function "f"\n',
      '\t',
      '"\\x00"\n',
    );
    const text = fc.oneof(
      fc.array(fragment, { maxLength: 8 }).map((xs) => xs.join('')),
      fc.string({ maxLength: 60 }),
    );
    fc.assert(
      fc.property(text, (t) => {
        writeFileSync(p, t);
        check(() => decodePipelineConfig(readPipelineFile(p), [], p), p);
      }),
      { ...RUNS, numRuns: 200 },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
