/**
 * LayerNorm over the last axis with a hand-written gradient, and a fused wasm kernel.
 *
 *   forward   μ = mean(x),  r = 1/√(mean((x − μ)²) + ε),  x̂ = (x − μ)·r,  y = x̂·γ + β
 *   backward  g = dy·γ,  dx = r·(g − mean(g) − x̂·mean(g·x̂)),  dγ = Σ_rows dy·x̂,  dβ = Σ_rows dy
 *
 * (means over the last axis of size D; rows = every other axis).
 * - On wasm (D a multiple of 4): kernels `RxrlLayerNorm` → [y, μ, r] and
 *   `RxrlLayerNormGrad` → [dx, dγ, dβ], rxrl's SIMD loops (lib/tensor/simd/kernels.c): two
 *   passes over x forward, two backward, instead of ≈9 + ≈25 tfjs ops.
 * - Elsewhere: the forward as tfjs ops and the gradient above as ≈10 tfjs ops (`tf.customGrad`)
 *   instead of the ≈25 that autodiff of the composition records.
 * `layerNormOps` is the plain composition, differentiated by autodiff: the reference of
 * test/fused-layernorm.test.ts (values and gradients to 1e-5 on cpu and wasm).
 *
 * ```ts
 * const y = layerNorm(x, gamma, beta, 1e-5);        // x [..., D], gamma/beta [D]; beta may be null
 * const dx = tf.grad((t) => tf.sum(layerNorm(t, gamma, beta, 1e-5)))(x);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { hasSimdKernels, simdKernels } from './simd/instance.ts';
import { asWasm, sizeOf, tensorData } from './wasm-internals.ts';
import { tfjsPatchesEnabled } from './patches.ts';

export const LAYER_NORM = 'RxrlLayerNorm';
export const LAYER_NORM_GRAD = 'RxrlLayerNormGrad';

/** LayerNorm as plain tfjs ops, differentiated by autodiff (the reference). */
export function layerNormOps(x: Tensor, gamma: Tensor, beta: Tensor | null, eps: number): Tensor {
  const axis = x.rank - 1;
  const mu = tf.mean(x, axis, true);
  const xc = tf.sub(x, mu);
  const variance = tf.mean(tf.square(xc), axis, true);
  const y = tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), gamma);
  return beta ? tf.add(y, beta) : y;
}

/** Axes 0..rank−2 (the rows), for the parameter gradients. */
const rowAxes = (rank: number): number[] => Array.from({ length: rank - 1 }, (_, i) => i);

/** The normalised input x̂ and 1/σ, from the same ops as `layerNormOps`. */
function normalise(x: Tensor, eps: number): { xhat: Tensor; r: Tensor } {
  const axis = x.rank - 1;
  const xc = tf.sub(x, tf.mean(x, axis, true));
  const r = tf.rsqrt(tf.add(tf.mean(tf.square(xc), axis, true), eps));
  return { xhat: tf.mul(xc, r), r };
}

/** dx from dy, given x̂, 1/σ and γ (see the module comment). */
function inputGrad(dy: Tensor, xhat: Tensor, r: Tensor, gamma: Tensor): Tensor {
  const axis = dy.rank - 1;
  const g = tf.mul(dy, gamma);
  const centred = tf.sub(g, tf.mean(g, axis, true));
  return tf.mul(tf.sub(centred, tf.mul(xhat, tf.mean(tf.mul(g, xhat), axis, true))), r);
}

/** LayerNorm over the last axis, with the hand-written gradient (see the module comment). */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor | null, eps: number): Tensor {
  if (x.dtype !== 'float32') return layerNormOps(x, gamma, beta, eps);
  const D = x.shape[x.rank - 1]!;
  if (hasSimdKernels() && D % 4 === 0 && gamma.size === D && (!beta || beta.size === D)) {
    const inputs: Record<string, Tensor> = beta ? { x, gamma, beta } : { x, gamma };
    return (tf.engine().runKernel(LAYER_NORM, inputs, { eps } as unknown as NamedAttrMap) as Tensor[])[0]!;
  }
  const f = tf.customGrad((...args: (Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xIn, g, b] = args as [Tensor, Tensor, Tensor | undefined];
    const { xhat, r } = normalise(xIn, eps);
    save([xhat, r, g]);
    const scaled = tf.mul(xhat, g);
    return {
      value: b ? tf.add(scaled, b) : scaled,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [xh, rs, gs] = saved as [Tensor, Tensor, Tensor];
        const rows = rowAxes(dy.rank);
        const grads = [inputGrad(dy, xh, rs, gs), tf.sum(tf.mul(dy, xh), rows)];
        if (b) grads.push(tf.sum(dy, rows));
        return grads;
      },
    };
  });
  return beta ? f(x, gamma, beta) : f(x, gamma);
}

// ---------------------------------------------------------------------------------------------
// wasm kernels (lib/tensor/simd/kernels.c)

type KernelArgs = Parameters<KernelFunc>[0];

function forwardWasm(args: KernelArgs): TensorInfo[] {
  const { x, gamma, beta } = args.inputs as { x: TensorInfo; gamma: TensorInfo; beta?: TensorInfo };
  const { eps } = args.attrs as unknown as { eps: number };
  const be = asWasm(args.backend);
  const D = x.shape[x.shape.length - 1]!;
  const N = sizeOf(x.shape) / D;
  const rows = [...x.shape.slice(0, -1), 1];
  const y = be.makeOutput(x.shape.slice(), 'float32');
  const mean = be.makeOutput(rows, 'float32');
  const rstd = be.makeOutput(rows.slice(), 'float32');
  const at = (t: TensorInfo): number => tensorData(be, t).memoryOffset;
  simdKernels(args.backend)!.layernorm_forward(at(x), at(gamma), beta ? at(beta) : 0, at(y), at(mean), at(rstd), N, D, eps);
  return [y, mean, rstd];
}

function backwardWasm(args: KernelArgs): TensorInfo[] {
  const { dy, x, gamma, mean, rstd } = args.inputs as Record<'dy' | 'x' | 'gamma' | 'mean' | 'rstd', TensorInfo>;
  const be = asWasm(args.backend);
  const D = x.shape[x.shape.length - 1]!;
  const N = sizeOf(x.shape) / D;
  const dx = be.makeOutput(x.shape.slice(), 'float32');
  const dgamma = be.makeOutput(gamma.shape.slice(), 'float32');
  const dbeta = be.makeOutput(gamma.shape.slice(), 'float32');
  const at = (t: TensorInfo): number => tensorData(be, t).memoryOffset;
  simdKernels(args.backend)!.layernorm_backward(at(dy), at(x), at(gamma), at(mean), at(rstd), at(dx), at(dgamma), at(dbeta), N, D);
  return [dx, dgamma, dbeta];
}

const layerNormGrad: GradConfig = {
  kernelName: LAYER_NORM,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, true, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[]) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys)!;
    const [x, gamma, mean, rstd] = saved as [Tensor, Tensor, Tensor, Tensor];
    const [dx, dgamma, dbeta] = tf.engine().runKernel(LAYER_NORM_GRAD, { dy, x, gamma, mean, rstd }, {}) as Tensor[];
    return { x: () => dx!, gamma: () => dgamma!, beta: () => dbeta! };
  },
};

if (tfjsPatchesEnabled() && tf.getKernel(LAYER_NORM, 'wasm') === undefined) {
  tf.registerKernel({ kernelName: LAYER_NORM, backendName: 'wasm', kernelFunc: forwardWasm as unknown as KernelFunc });
  tf.registerKernel({ kernelName: LAYER_NORM_GRAD, backendName: 'wasm', kernelFunc: backwardWasm as unknown as KernelFunc });
}
if (tf.getGradient(LAYER_NORM) === undefined) tf.registerGradient(layerNormGrad);
