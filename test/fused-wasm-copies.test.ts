/**
 * rxrl's wasm Identity/Cast (shared buffers), Slice/SplitV/Concat (run copies) and leading-axes
 * Sum (lib/tensor/wasm-copies.ts) against the cpu backend: exact values on many shapes, int32
 * and float32, keepDims, fallbacks to the stock kernels, and flat memory.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../lib/backend.ts';
import { Rng } from '../lib/random.ts';

before(async () => {
  await initBackend({ backend: 'wasm', threads: 1, quiet: true });
});

interface Input {
  values: number[];
  shape: number[];
  dtype: 'float32' | 'int32';
}

function input(shape: number[], dtype: 'float32' | 'int32' = 'float32', seed = 1): Input {
  const n = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed, shape.join('x'));
  const values = Array.from({ length: n }, () => (dtype === 'int32' ? Math.floor(rng.uniform(-50, 50)) : rng.normal()));
  return { values, shape, dtype };
}

/** f on cpu and on wasm, from the same plain inputs; every output's values and shape. */
async function both(
  inputs: Input[],
  f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<{ cpu: [number[], number[]][]; wasm: [number[], number[]][] }> {
  const run = async (name: string): Promise<[number[], number[]][]> => {
    await tf.setBackend(name);
    return tf.tidy(() => {
      const xs = inputs.map((i) => tf.tensor(i.values, i.shape, i.dtype));
      const ys = f(...xs);
      return (Array.isArray(ys) ? ys : [ys]).map((y): [number[], number[]] => [Array.from(y.dataSync()), y.shape.slice()]);
    });
  };
  const cpu = await run('cpu');
  const wasm = await run('wasm');
  return { cpu, wasm };
}

async function assertSame(inputs: Input[], f: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tol = 0): Promise<void> {
  const { cpu, wasm } = await both(inputs, f);
  assert.equal(wasm.length, cpu.length);
  wasm.forEach(([v, s], i) => {
    assert.deepEqual(s, cpu[i]![1], `output ${i} shape`);
    if (tol === 0) assert.deepEqual(v, cpu[i]![0], `output ${i} values`);
    else
      v.forEach((x, j) =>
        assert.ok(Math.abs(x - cpu[i]![0][j]!) <= tol * Math.max(1, Math.abs(cpu[i]![0][j]!)), `output ${i}[${j}]: ${x} vs ${cpu[i]![0][j]}`),
      );
  });
}

describe('wasm Identity / Cast', () => {
  it('clone and same-dtype cast share the buffer and keep values; disposing one keeps the other', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor([1.5, -2, 3], [3]);
    const c = tf.clone(x);
    const k = tf.cast(x, 'float32');
    x.dispose();
    assert.deepEqual(Array.from(c.dataSync()), [1.5, -2, 3]);
    c.dispose();
    assert.deepEqual(Array.from(k.dataSync()), [1.5, -2, 3]);
    k.dispose();
  });
  it('dtype-changing casts convert (stock kernel)', async () => {
    await assertSame([input([4, 5])], (x) => [tf.cast(x, 'int32'), tf.cast(tf.cast(x, 'int32'), 'float32'), tf.cast(x, 'bool')]);
  });
});

describe('wasm Slice / SplitV / Concat', () => {
  const cases: [number[], number[], number[]][] = [
    [[10], [3], [4]],
    [
      [6, 7],
      [1, 2],
      [3, 4],
    ],
    [
      [6, 7],
      [2, 0],
      [3, 7],
    ],
    [
      [4, 5, 6],
      [1, 0, 2],
      [2, 5, 3],
    ],
    [
      [4, 5, 6],
      [0, 1, 0],
      [4, 3, 6],
    ],
    [
      [3, 4, 5, 6],
      [1, 2, 0, 3],
      [2, 2, 5, 2],
    ],
    [
      [3, 4, 5, 6],
      [0, 0, 0, 0],
      [-1, -1, -1, -1],
    ],
    [
      [2, 3, 4, 5, 6],
      [1, 0, 2, 1, 0],
      [1, 3, 2, 3, 6],
    ],
    [
      [5, 6],
      [0, 0],
      [0, 6],
    ],
  ];
  for (const [shape, begin, size] of cases) {
    it(`slice [${shape}] begin [${begin}] size [${size}] (float32, int32)`, async () => {
      await assertSame([input(shape)], (x) => tf.slice(x, begin, size));
      await assertSame([input(shape, 'int32')], (x) => tf.slice(x, begin, size));
    });
  }
  it('split along every axis, equal and uneven parts', async () => {
    await assertSame([input([6, 8, 12])], (x) => [...tf.split(x, 3, 2), ...tf.split(x, [1, 5], 0), ...tf.split(x, [2, 2, 4], 1)]);
    await assertSame([input([6, 9], 'int32')], (x) => tf.split(x, [2, 3, 4], 1));
  });
  it('concat along every axis, several inputs, empty inputs, int32', async () => {
    await assertSame([input([2, 3, 4]), input([2, 3, 5], 'float32', 2), input([2, 3, 1], 'float32', 3)], (a, b, c) => tf.concat([a!, b!, c!], 2));
    await assertSame([input([2, 3, 4]), input([1, 3, 4], 'float32', 2)], (a, b) => tf.concat([a!, b!], 0));
    await assertSame([input([2, 3, 4]), input([2, 2, 4], 'float32', 2)], (a, b) => tf.concat([a!, b!], 1));
    await assertSame([input([2, 0]), input([2, 3], 'float32', 2), input([2, 2], 'float32', 3)], (a, b, c) => tf.concat([a!, b!, c!], 1));
    await assertSame([input([3, 2], 'int32'), input([3, 4], 'int32', 2)], (a, b) => tf.concat([a!, b!], 1));
  });
  it('split and concat are each other’s gradients', async () => {
    await assertSame([input([4, 9])], (x) => tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.split(t, [2, 3, 4], 1)[1]!)))(x!));
  });
});

describe('wasm Sum', () => {
  const cases: [number[], number[], boolean][] = [
    [[1920, 37], [0], false],
    [[5, 6, 7], [0, 1], false],
    [[5, 6, 7], [1, 0], true],
    [[5, 6, 7], [0], true],
    [[5, 6, 7], [2], false], // innermost: stock kernel
    [[5, 6, 7], [0, 2], false], // not a prefix: stock kernel
    [[5, 6, 7], [0, 1, 2], false], // all: stock kernel
    [[3, 1], [0], false],
  ];
  for (const [shape, axes, keepDims] of cases) {
    it(`sum [${shape}] over [${axes}]${keepDims ? ' keepDims' : ''}`, async () => {
      // float32 accumulation (the cpu backend sums in float64): 1e-5 relative to Σ|x| ≈ √rows·|sum|
      await assertSame([input(shape)], (x) => tf.sum(x, axes, keepDims), 1e-5 * Math.sqrt(shape[0]! * (axes.length > 1 ? shape[1]! : 1)));
      await assertSame([input(shape, 'int32')], (x) => tf.sum(x, axes, keepDims));
    });
  }
});

describe('wasm copy kernels: memory', () => {
  it('tensor and wasm buffer counts stay flat', async () => {
    await tf.setBackend('wasm');
    const be = tf.backend() as unknown as { dataIdMap: { numDataIds(): number } };
    const x = tf.tensor(input([8, 6, 10]).values, [8, 6, 10]);
    const step = (): void =>
      tf.tidy(() => {
        const parts = tf.split(x, [4, 6], 2);
        const y = tf.concat([tf.slice(x, [1, 0, 0], [3, 6, 10]), tf.clone(x)], 0);
        tf.sum(y, [0, 1]).dataSync();
        tf.sum(tf.cast(parts[1]!, 'float32'), [0, 1]).dataSync();
      });
    step();
    const tensors = tf.memory().numTensors;
    const ids = be.dataIdMap.numDataIds();
    for (let i = 0; i < 5; i++) step();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(be.dataIdMap.numDataIds(), ids);
    x.dispose();
  });
});
