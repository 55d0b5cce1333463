/**
 * The guard on rxrl's tfjs patches (lib/tensor/patches.ts): the rule, and — in a child process
 * that simulates another installed tfjs version — one warning line, no patch applied, stock
 * kernels that still compute and train, and the stock error for the gather gradient on wasm.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { decideTfjsPatches, PATCHED_TFJS_LINE } from '../lib/tensor/patches.ts';

const CHILD = process.env['RXRL_TEST_PATCHES_CHILD'] === '1';

async function child(): Promise<void> {
  // simulate tfjs 4.23.1 before any patch is applied (static imports would apply them first)
  const { configureTfjsPatches } = await import('../lib/tensor/patches.ts');
  configureTfjsPatches({ versions: { core: '4.23.1', wasm: '4.23.1' }, env: {} });
  const tf = await import('@tensorflow/tfjs-core');
  const { initBackend } = await import('../lib/backend.ts');
  const { hasSimdKernels } = await import('../lib/tensor/simd/instance.ts');
  const info = await initBackend({ quiet: true, backend: 'wasm', threads: 2 });
  const product = tf.tidy(() => Array.from(tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([1, 0, 1, 1], [2, 2]), false, true).dataSync()));
  let gatherError = '';
  try {
    tf.tidy(() => tf.grad((x: import('@tensorflow/tfjs-core').Tensor) => tf.sum(tf.gather(x, tf.tensor1d([0, 1, 1], 'int32'))))(tf.ones([3, 2])));
  } catch (e) {
    gatherError = (e as Error).message;
  }
  // a model without embeddings (an MLP regression, transposed products in its backward pass)
  // trains on the stock kernels
  const w1 = tf.variable(tf.randomNormal([4, 16], 0, 0.5, 'float32', 1));
  const w2 = tf.variable(tf.randomNormal([16, 1], 0, 0.5, 'float32', 2));
  const x = tf.tensor2d([0.1, -0.2, 0.3, 0.05, -0.1, 0.2, -0.3, 0.4, 0.5, 0.5, -0.5, 0.1], [3, 4]);
  const y = tf.tensor2d([1, -1, 0.5], [3, 1]);
  const opt = tf.train.adam(0.05);
  const losses: number[] = [];
  for (let i = 0; i < 10; i++) {
    const l = opt.minimize(() => tf.mean(tf.square(tf.sub(tf.matMul(tf.relu(tf.matMul(x, w1)), w2), y))) as never, true)!;
    losses.push(l.dataSync()[0]!);
    l.dispose();
  }
  console.log(
    JSON.stringify({
      fixes: info.fixes,
      patches: info.patches,
      threads: info.threads,
      reason: info.reason,
      simd: hasSimdKernels(),
      product,
      gatherError,
      losses,
    }),
  );
}

if (CHILD) await child();
else {
  describe('tfjs patch guard', () => {
    it('the rule: 4.22.x → on; another version → off with one warning naming it and RXRL_WASM_FIXES=1; the env var wins', () => {
      const on = decideTfjsPatches({ versions: { core: '4.22.0', wasm: '4.22.0' }, env: {} });
      assert.equal(on.enabled, true);
      assert.equal(on.warning, undefined);
      const other = decideTfjsPatches({ versions: { core: '4.23.0', wasm: '4.22.0' }, env: {} });
      assert.equal(other.enabled, false);
      assert.match(other.warning!, /4\.23\.0/);
      assert.match(other.warning!, new RegExp(`written for tfjs ${PATCHED_TFJS_LINE.replace('.', '\\.')}\\.x`));
      assert.match(other.warning!, /RXRL_WASM_FIXES=1/);
      assert.ok(!other.warning!.includes('\n'), 'one line');
      assert.equal(decideTfjsPatches({ versions: { core: '4.22.1', wasm: '5.0.0' }, env: {} }).enabled, false);
      assert.equal(decideTfjsPatches({ versions: { core: '4.220.0', wasm: '4.220.0' }, env: {} }).enabled, false);
      const off = decideTfjsPatches({ versions: { core: '4.22.0', wasm: '4.22.0' }, env: { RXRL_WASM_FIXES: '0' } });
      assert.deepEqual([off.enabled, off.warning], [false, undefined]);
      assert.equal(decideTfjsPatches({ versions: { core: '5.1.0', wasm: '5.1.0' }, env: { RXRL_WASM_FIXES: '1' } }).enabled, true);
    });

    it('on another tfjs version (simulated, child process): one warning line, stock kernels that compute and train', () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
        env: { ...process.env, RXRL_TEST_PATCHES_CHILD: '1', RXRL_BACKEND: '', RXRL_WASM_FIXES: '' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      assert.equal(r.status, 0, r.stderr);
      const warnings = r.stderr.split('\n').filter((l) => l.startsWith('rxrl: tfjs patches off'));
      assert.equal(warnings.length, 1, r.stderr);
      assert.match(warnings[0]!, /4\.23\.1/);
      assert.match(warnings[0]!, /RXRL_WASM_FIXES=1/);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
        fixes: string[];
        patches: { enabled: boolean };
        threads: number;
        reason: string;
        simd: boolean;
        product: number[];
        gatherError: string;
        losses: number[];
      };
      assert.deepEqual(out.fixes, []);
      assert.equal(out.patches.enabled, false);
      assert.equal(out.threads, 1, 'the threaded init is a patch too');
      assert.match(out.reason, /tfjs patches off/);
      assert.equal(out.simd, false, 'no SIMD fused kernels');
      assert.deepEqual(out.product, [1, 3, 3, 7]); // [[1,2],[3,4]]·[[1,0],[1,1]]ᵀ
      assert.match(out.gatherError, /UnsortedSegmentSum/, 'the stock error for the embedding gradient on wasm');
      assert.ok(out.losses.every(Number.isFinite));
      assert.ok(out.losses[9]! < out.losses[0]!, `loss decreases: ${out.losses.join(', ')}`);
    });
  });
}
