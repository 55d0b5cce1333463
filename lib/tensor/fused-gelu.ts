/**
 * GELU, tanh approximation (GPT-2's `gelu_new`), with a hand-written gradient.
 *
 *   gelu(x) = ½x(1 + tanh u),  u = c(x + a x³),  c = √(2/π),  a = 0.044715
 *           = x·s,  s = σ(2u)                       (since ½(1 + tanh u) = σ(2u))
 *   gelu'(x) = s + x·s(1 − s)·(2c + 6ca x²)
 *
 * - On wasm (size a multiple of 4): kernels `RxrlGeluTanh` and `RxrlGeluTanhGrad`, one SIMD pass
 *   each (lib/tensor/simd/kernels.c; σ from a polynomial exp, ≈1 ulp): the backward reads x
 *   and dy and writes dx, where the ops below make ≈8 passes over [B·T, 4D].
 * - Elsewhere: the σ form as tfjs ops — the same function, and wasm's `Sigmoid` (XNNPACK) is
 *   ≈20× faster than its scalar `Tanh` — with the gradient above as 8 ops (`tf.customGrad`)
 *   instead of the ≈16 (plus casts) that autodiff records for the composition.
 * test/fused-gelu.test.ts checks values and gradients against `geluTanhOps` (the composition,
 * differentiated by autodiff) to 1e-5 on cpu and wasm.
 *
 * ```ts
 * const y = geluTanh(x);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelFunc, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { hasSimdKernels, simdKernels } from './simd/instance.ts';
import { asWasm, sizeOf, tensorData } from './wasm-internals.ts';
import { tfjsPatchesEnabled } from './patches.ts';

export const GELU_TANH = 'RxrlGeluTanh';
export const GELU_TANH_GRAD = 'RxrlGeluTanhGrad';

const C = Math.sqrt(2 / Math.PI);
const A = 0.044715;

/** The textbook composition, differentiated by autodiff (the reference). */
export function geluTanhOps(x: Tensor): Tensor {
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), A)), C);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
}

const gelu = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [Tensor, tf.GradSaveFunc];
  const x2 = tf.square(x);
  const s = tf.sigmoid(tf.mul(x, tf.add(tf.mul(x2, 2 * C * A), 2 * C))); // σ(2u)
  save([x, x2, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy: Tensor, saved: Tensor[]) => {
      const [xs, xs2, ss] = saved as [Tensor, Tensor, Tensor];
      const du = tf.add(tf.mul(xs2, 6 * C * A), 2 * C); // d(2u)/dx
      const dsig = tf.mul(ss, tf.sub(1, ss)); // σ'(2u)
      return tf.mul(dy, tf.add(ss, tf.mul(tf.mul(xs, du), dsig)));
    },
  };
}) as (x: Tensor) => Tensor;

/** GELU (tanh approximation) with the hand-written gradient; see the module comment. */
export function geluTanh(x: Tensor): Tensor {
  if (x.dtype !== 'float32') return geluTanhOps(x);
  if (hasSimdKernels() && x.size % 4 === 0) return tf.engine().runKernel(GELU_TANH, { x }, {}) as Tensor;
  return gelu(x);
}

// ---------------------------------------------------------------------------------------------
// wasm kernels (lib/tensor/simd/kernels.c)

type KernelArgs = Parameters<KernelFunc>[0];

function forwardWasm(args: KernelArgs): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const be = asWasm(args.backend);
  const y = be.makeOutput(x.shape.slice(), 'float32');
  simdKernels(args.backend)!.gelu_forward(tensorData(be, x).memoryOffset, tensorData(be, y).memoryOffset, sizeOf(x.shape));
  return y;
}

function backwardWasm(args: KernelArgs): TensorInfo {
  const { dy, x } = args.inputs as { dy: TensorInfo; x: TensorInfo };
  const be = asWasm(args.backend);
  const dx = be.makeOutput(x.shape.slice(), 'float32');
  const at = (t: TensorInfo): number => tensorData(be, t).memoryOffset;
  simdKernels(args.backend)!.gelu_backward(at(dy), at(x), at(dx), sizeOf(x.shape));
  return dx;
}

const geluGrad: GradConfig = {
  kernelName: GELU_TANH,
  inputsToSave: ['x'],
  gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
    const [x] = saved as [Tensor];
    return { x: () => tf.engine().runKernel(GELU_TANH_GRAD, { dy: dy as Tensor, x }, {}) as Tensor };
  },
};

if (tfjsPatchesEnabled() && tf.getKernel(GELU_TANH, 'wasm') === undefined) {
  tf.registerKernel({ kernelName: GELU_TANH, backendName: 'wasm', kernelFunc: forwardWasm as unknown as KernelFunc });
  tf.registerKernel({ kernelName: GELU_TANH_GRAD, backendName: 'wasm', kernelFunc: backwardWasm as unknown as KernelFunc });
}
if (tf.getGradient(GELU_TANH) === undefined) tf.registerGradient(geluGrad);
