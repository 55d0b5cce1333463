/**
 * Running out of wasm heap is a clear `WasmHeapError`, never a raw abort (lib/tensor/wasm-memory.ts).
 * A small heap limit is simulated through `installWasmHeapGuard(backend, { limit })`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend, setWasmMemoryContext, WasmHeapError, WASM_HEAP_MAX, wasmHeapBytes } from '../lib/backend.ts';
import { tfjsPatches } from '../lib/tensor/patches.ts';
import { asWasmHeapError, installWasmHeapGuard, trackWasmAllocations, wasmHeapLimit } from '../lib/tensor/wasm-memory.ts';

describe('wasm heap exhaustion', { skip: tf.findBackendFactory('wasm') === null ? 'wasm backend unavailable' : false }, () => {
  let prev = '';
  before(async () => {
    await initBackend({ quiet: true });
    prev = tf.getBackend();
    await tf.setBackend('wasm');
    installWasmHeapGuard(tf.backend());
  });
  after(async () => {
    installWasmHeapGuard(tf.backend(), { limit: WASM_HEAP_MAX });
    setWasmMemoryContext({});
    await tf.setBackend(prev);
  });

  it('initBackend guards the heap at the wasm32 limit', () => {
    assert.equal(wasmHeapLimit(tf.backend()), WASM_HEAP_MAX);
  });

  it('an allocation beyond the limit throws WasmHeapError naming limit, heap, model and batch; nothing leaks', () => {
    const w = tf.variable(tf.zeros([300, 10]), true, 'wasm-memory-test/w'); // 3000 parameters
    const heap = wasmHeapBytes();
    // more than the heap holds now, so the heap must grow past the simulated limit
    const n = Math.ceil(heap / 4) + (1 << 20);
    setWasmMemoryContext({ batch: '64 × 20 steps' });
    installWasmHeapGuard(tf.backend(), { limit: heap + (1 << 20) });
    const tensors = tf.memory().numTensors;
    try {
      assert.throws(
        () => tf.tidy(() => tf.add(tf.fill([n], 1), 1)),
        (e: unknown) => {
          assert.ok(e instanceof WasmHeapError, `got ${String(e)}`);
          const limitMb = `${((heap + (1 << 20)) / 2 ** 20).toFixed(0)} MB`;
          assert.match(e.message, new RegExp(`limit ${limitMb}`));
          assert.match(e.message, /heap \d+ MB/);
          assert.match(e.message, new RegExp(`allocating ${((n * 4) / 2 ** 20).toFixed(0)} MB more`));
          assert.match(e.message, /3\.0k parameters/);
          assert.match(e.message, /batch 64 × 20 steps/);
          assert.match(e.message, /smaller batch/);
          assert.match(e.message, /@tensorflow\/tfjs-node/);
          assert.equal(e.requested, n * 4);
          return true;
        },
      );
      assert.equal(tf.memory().numTensors, tensors);
    } finally {
      installWasmHeapGuard(tf.backend(), { limit: WASM_HEAP_MAX });
      setWasmMemoryContext({});
      w.dispose();
    }
  });

  it("BatchMatMul's transposed copy (transposeLastTwo → makeOutput) that does not fit throws WasmHeapError and frees what it made", {
    skip: tfjsPatches().enabled ? false : `exercises the patched BatchMatMul; ${tfjsPatches().reason}`,
  }, () => {
    // A holds more than the heap had, so after it the heap has (almost) no free space: its
    // transposed copy must grow the heap, past the simulated limit
    const rows = Math.ceil(wasmHeapBytes() / (4 * 64)) + 256;
    const A = tf.ones([rows, 64]);
    const c = tf.ones([rows, 8]);
    const tensors = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds();
    try {
      installWasmHeapGuard(tf.backend(), { limit: wasmHeapBytes() });
      assert.throws(() => tf.tidy(() => tf.matMul(A, c, true, false)), WasmHeapError);
      assert.equal(tf.memory().numTensors, tensors);
      assert.equal(tf.backend().numDataIds(), dataIds);
    } finally {
      installWasmHeapGuard(tf.backend(), { limit: WASM_HEAP_MAX });
    }
    // the backend still works after the refusal: Aᵀ·c = rows everywhere
    const got = tf.tidy(() => tf.matMul(A, c, true, false).dataSync().slice());
    assert.ok(
      got.every((v) => v === rows),
      'Aᵀ·c after the refusal',
    );
    tf.dispose([A, c]);
  });

  it('a WebAssembly trap near the heap limit becomes a WasmHeapError; elsewhere it stays what it was', () => {
    const RuntimeError = (globalThis as unknown as { WebAssembly: { RuntimeError: new (m: string) => Error } }).WebAssembly.RuntimeError;
    const trap = new RuntimeError('memory access out of bounds');
    assert.equal(asWasmHeapError(trap, tf.backend(), 'BatchMatMul'), trap, 'far from the limit: unchanged');
    try {
      installWasmHeapGuard(tf.backend(), { limit: wasmHeapBytes() });
      const e = asWasmHeapError(trap, tf.backend(), 'tfjs kernel BatchMatMul trapped');
      assert.ok(e instanceof WasmHeapError);
      assert.match((e as Error).message, /BatchMatMul trapped: memory access out of bounds/);
      const other = new TypeError('x');
      assert.equal(asWasmHeapError(other, tf.backend(), 'k'), other, 'not a trap: unchanged');
    } finally {
      installWasmHeapGuard(tf.backend(), { limit: WASM_HEAP_MAX });
    }
  });

  it('trackWasmAllocations counts each buffer once (a reshape adds nothing)', () => {
    const track = trackWasmAllocations();
    try {
      const x = tf.zeros([1000]);
      assert.equal(track.live(), 4000);
      const y = tf.reshape(x, [10, 100]);
      assert.equal(track.live(), 4000);
      tf.dispose([x, y]);
      assert.equal(track.live(), 0);
      assert.equal(track.peak(), 4000);
    } finally {
      track.stop();
    }
  });
});
