/**
 * Fused causal self-attention for training forwards (no KV cache): one kernel forward, one
 * backward, on q/k/v in the projections' own layout, instead of ≈15 tfjs ops forward and ≈25
 * backward (head transposes, scaling, two batched products, mask add, softmax, and back).
 *
 *   q [B,T,H,d], k, v [B,T,H_kv,d]  (query head h reads kv head ⌊h/(H/H_kv)⌋), keyMask [B,T] | null
 *   s_ij = (q_i·scale)·k_j + bias_ij,  bias = −1e9 where key j is padding (keyMask 0)
 *   p_i = softmax_{j ≤ i}(s_ij)   (keys after i get weight exactly 0, as under the −1e9 causal mask)
 *   o_i = Σ_j p_ij v_j                                        → o [B,T,H,d] (heads not merged)
 *   backward: dv_j = Σ_i p_ij do_i;  dp_ij = do_i·v_j;  ds_ij = p_ij(dp_ij − Σ_j' p_ij' dp_ij');
 *             dq_i = scale·Σ_j ds_ij k_j;  dk_j = scale·Σ_i ds_ij q_i
 *
 * Kernels `RxrlCausalAttention` → [o, p] (p [B,H,T,T] is saved for the backward) and
 * `RxrlCausalAttentionGrad` → [dq, dk, dv]: on wasm, rxrl's SIMD kernels (lib/tensor/simd,
 * d a multiple of 4); on cpu, the same loops in JS. Elsewhere
 * `causalAttention` runs `attentionOps`, the unfused composition, which is also the reference
 * of test/fused-attention.test.ts (values and gradients to 1e-5 on cpu and wasm).
 *
 * ```ts
 * const o = causalAttention(q, k, v, null);           // [B, T, H, d]
 * const merged = tf.reshape(o, [B, T, H * d]);
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, KernelFunc, NamedAttrMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import { asWasm, sizeOf, tensorData } from './wasm-internals.ts';
import { simdKernels } from './simd/instance.ts';
import { tfjsPatchesEnabled } from './patches.ts';

export const CAUSAL_ATTENTION = 'RxrlCausalAttention';
export const CAUSAL_ATTENTION_GRAD = 'RxrlCausalAttentionGrad';

/** Additive bias of masked scores (the same as the transformer's MASK_VALUE). */
const MASK_VALUE = -1e9;

/**
 * The unfused composition (every backend; the reference): heads to the batch axis, (q·scale)·kᵀ,
 * additive causal and padding bias, softmax, ·v, heads back. Returns [B,T,H,d].
 */
export function attentionOps(q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | null): Tensor {
  const [B, T, H, d] = q.shape as [number, number, number, number];
  const Hkv = k.shape[2]!;
  const G = H / Hkv;
  const causal = new Float32Array(T * T);
  for (let t = 0; t < T; t++) for (let s = t + 1; s < T; s++) causal[t * T + s] = MASK_VALUE;
  let bias: Tensor = tf.tensor4d(causal, [1, 1, T, T]);
  if (keyMask) bias = tf.add(bias, tf.reshape(tf.mul(tf.sub(1, keyMask), MASK_VALUE), [B, 1, 1, T]));
  const qh = tf.reshape(tf.mul(tf.transpose(q, [0, 2, 1, 3]), 1 / Math.sqrt(d)), [B * Hkv, G * T, d]);
  const kT = tf.reshape(tf.transpose(k, [0, 2, 3, 1]), [B * Hkv, d, T]);
  const vh = tf.reshape(tf.transpose(v, [0, 2, 1, 3]), [B * Hkv, T, d]);
  const scores = tf.reshape(tf.matMul(qh as tf.Tensor3D, kT as tf.Tensor3D), [B, H, T, T]);
  const probs = tf.softmax(tf.add(scores, bias));
  const out = tf.matMul(tf.reshape(probs, [B * Hkv, G * T, T]) as tf.Tensor3D, vh as tf.Tensor3D);
  return tf.transpose(tf.reshape(out, [B, H, T, d]), [0, 2, 1, 3]);
}

/** True if `causalAttention` runs fused for q/k shaped like these on the current backend. */
export function hasFusedAttention(headDim: number): boolean {
  const name = tf.getBackend();
  if (tf.getKernel(CAUSAL_ATTENTION, name) === undefined) return false;
  if (name === 'wasm') return headDim % 4 === 0 && simdKernels(tf.backend()) !== null;
  return true;
}

/** Causal self-attention (see the module comment): fused where available, else `attentionOps`. */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, keyMask: Tensor | null): Tensor {
  const d = q.shape[3]!;
  if (!hasFusedAttention(d) || q.dtype !== 'float32') return attentionOps(q, k, v, keyMask);
  // keyMask is always an input (the gradient saves it); `masked` says whether to apply it
  const masked = keyMask !== null;
  const mask = tf.tidy(() => (keyMask ? tf.cast(keyMask, 'float32') : tf.zeros([0])));
  const [o] = tf.engine().runKernel(CAUSAL_ATTENTION, { q, k, v, keyMask: mask }, { masked } as unknown as NamedAttrMap) as Tensor[];
  mask.dispose();
  return o!;
}

// ---------------------------------------------------------------------------------------------
// Shapes

interface Dims {
  B: number;
  T: number;
  H: number;
  Hkv: number;
  d: number;
  scale: number;
}

function dims(q: TensorInfo, k: TensorInfo, v: TensorInfo): Dims {
  const [B, T, H, d] = q.shape as [number, number, number, number];
  const Hkv = k.shape[2]!;
  const ok =
    q.shape.length === 4 && k.shape.length === 4 && sameShape(k.shape, v.shape) && k.shape[0] === B && k.shape[1] === T && k.shape[3] === d && H % Hkv === 0;
  if (!ok) throw new Error(`${CAUSAL_ATTENTION}: expected q [B,T,H,d] and k, v [B,T,Hkv,d] with Hkv | H; got q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  return { B, T, H, Hkv, d, scale: 1 / Math.sqrt(d) };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------------------------------------
// wasm kernels (SIMD, in place on the heap)

type KernelArgs = Parameters<KernelFunc>[0];

function forwardWasm(args: KernelArgs): TensorInfo[] {
  const { q, k, v, keyMask } = args.inputs as Record<'q' | 'k' | 'v' | 'keyMask', TensorInfo>;
  const masked = (args.attrs as unknown as { masked: boolean }).masked;
  const { B, T, H, Hkv, d, scale } = dims(q, k, v);
  const be = asWasm(args.backend);
  const simd = simdKernels(args.backend);
  if (simd === null) throw new Error(`${CAUSAL_ATTENTION}: wasm SIMD kernels unavailable`);
  const o = be.makeOutput(q.shape.slice(), 'float32');
  const probs = be.makeOutput([B, H, T, T], 'float32');
  const at = (t: TensorInfo): number => tensorData(be, t).memoryOffset;
  simd.attention_forward(at(q), at(k), at(v), masked ? at(keyMask) : 0, at(o), at(probs), B, T, H, Hkv, d, scale);
  return [o, probs];
}

function backwardWasm(args: KernelArgs): TensorInfo[] {
  const { dy, q, k, v, probs, keyMask } = args.inputs as Record<'dy' | 'q' | 'k' | 'v' | 'probs' | 'keyMask', TensorInfo>;
  const masked = (args.attrs as unknown as { masked: boolean }).masked;
  const { B, T, H, Hkv, d, scale } = dims(q, k, v);
  const be = asWasm(args.backend);
  const simd = simdKernels(args.backend)!;
  const dq = be.makeOutput(q.shape.slice(), 'float32');
  const dk = be.makeOutput(k.shape.slice(), 'float32');
  const dv = be.makeOutput(v.shape.slice(), 'float32');
  const scratch = be.makeOutput([T, T], 'float32');
  const at = (t: TensorInfo): number => tensorData(be, t).memoryOffset;
  try {
    simd.attention_backward(at(dy), at(q), at(k), at(v), at(probs), masked ? at(keyMask) : 0, at(dq), at(dk), at(dv), at(scratch), B, T, H, Hkv, d, scale);
  } finally {
    be.disposeData(scratch.dataId);
  }
  return [dq, dk, dv];
}

// ---------------------------------------------------------------------------------------------
// cpu kernels (the same loops in JS)

interface CpuBackendLike {
  data: { get(dataId: object): { values: unknown } | undefined };
  makeTensorInfo(shape: number[], dtype: 'float32', values?: Float32Array): TensorInfo;
}

function values(args: KernelArgs, t: TensorInfo): Float32Array {
  return (args.backend as unknown as CpuBackendLike).data.get(t.dataId)!.values as Float32Array;
}

/** Keys row i of batch b attends to: i + 1, or T when every key ≤ i is padding (see kernels.c). */
function rowKeys(mask: Float32Array | null, b: number, i: number, T: number): number {
  if (mask === null) return i + 1;
  for (let j = 0; j <= i; j++) if (mask[b * T + j] !== 0) return i + 1;
  return T;
}

function forwardCpu(args: KernelArgs): TensorInfo[] {
  const { q, k, v, keyMask } = args.inputs as Record<'q' | 'k' | 'v' | 'keyMask', TensorInfo>;
  const masked = (args.attrs as unknown as { masked: boolean }).masked;
  const { B, T, H, Hkv, d, scale } = dims(q, k, v);
  const Q = values(args, q);
  const K = values(args, k);
  const V = values(args, v);
  const M = masked ? values(args, keyMask) : null;
  const O = new Float32Array(sizeOf(q.shape));
  const P = new Float32Array(B * H * T * T);
  const G = H / Hkv;
  const qs = H * d;
  const ks = Hkv * d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const qb = b * T * qs + h * d;
      const kb = b * T * ks + Math.floor(h / G) * d;
      const pb = (b * H + h) * T * T;
      for (let i = 0; i < T; i++) {
        const pi = pb + i * T;
        const n = rowKeys(M, b, i, T);
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let c = 0; c < d; c++) s += Q[qb + i * qs + c]! * K[kb + j * ks + c]!;
          s = Math.fround(Math.fround(s) * scale);
          if (M !== null) s = Math.fround(s + Math.fround((j > i ? MASK_VALUE : 0) + (M[b * T + j] === 0 ? MASK_VALUE : 0)));
          P[pi + j] = s;
          if (s > m) m = s;
        }
        let l = 0;
        for (let j = 0; j < n; j++) {
          const e = Math.exp(P[pi + j]! - m);
          P[pi + j] = e;
          l += e;
        }
        const oi = qb + i * qs;
        for (let j = 0; j < n; j++) {
          const p = P[pi + j]! / l;
          P[pi + j] = p;
          for (let c = 0; c < d; c++) O[oi + c] = O[oi + c]! + p * V[kb + j * ks + c]!;
        }
      }
    }
  }
  const be = args.backend as unknown as CpuBackendLike;
  return [be.makeTensorInfo(q.shape.slice(), 'float32', O), be.makeTensorInfo([B, H, T, T], 'float32', P)];
}

function backwardCpu(args: KernelArgs): TensorInfo[] {
  const { dy, q, k, v, probs, keyMask } = args.inputs as Record<'dy' | 'q' | 'k' | 'v' | 'probs' | 'keyMask', TensorInfo>;
  const masked = (args.attrs as unknown as { masked: boolean }).masked;
  const { B, T, H, Hkv, d, scale } = dims(q, k, v);
  const M = masked ? values(args, keyMask) : null;
  const dO = values(args, dy);
  const Q = values(args, q);
  const K = values(args, k);
  const V = values(args, v);
  const P = values(args, probs);
  const dQ = new Float32Array(Q.length);
  const dK = new Float32Array(K.length);
  const dV = new Float32Array(V.length);
  const dS = new Float64Array(T);
  const G = H / Hkv;
  const qs = H * d;
  const ks = Hkv * d;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const qb = b * T * qs + h * d;
      const kb = b * T * ks + Math.floor(h / G) * d;
      const pb = (b * H + h) * T * T;
      for (let i = 0; i < T; i++) {
        const pi = pb + i * T;
        const oi = qb + i * qs;
        const n = rowKeys(M, b, i, T);
        let delta = 0;
        for (let j = 0; j < n; j++) {
          let dp = 0;
          for (let c = 0; c < d; c++) dp += dO[oi + c]! * V[kb + j * ks + c]!;
          dS[j] = dp;
          delta += P[pi + j]! * dp;
          const p = P[pi + j]!;
          for (let c = 0; c < d; c++) dV[kb + j * ks + c] = dV[kb + j * ks + c]! + p * dO[oi + c]!;
        }
        for (let j = 0; j < n; j++) {
          const ds = P[pi + j]! * (dS[j]! - delta) * scale;
          for (let c = 0; c < d; c++) {
            dQ[oi + c] = dQ[oi + c]! + ds * K[kb + j * ks + c]!;
            dK[kb + j * ks + c] = dK[kb + j * ks + c]! + ds * Q[oi + c]!;
          }
        }
      }
    }
  }
  const be = args.backend as unknown as CpuBackendLike;
  return [
    be.makeTensorInfo(q.shape.slice(), 'float32', dQ),
    be.makeTensorInfo(k.shape.slice(), 'float32', dK),
    be.makeTensorInfo(v.shape.slice(), 'float32', dV),
  ];
}

// ---------------------------------------------------------------------------------------------
// registration

const attentionGrad: GradConfig = {
  kernelName: CAUSAL_ATTENTION,
  inputsToSave: ['q', 'k', 'v', 'keyMask'],
  outputsToSave: [false, true],
  gradFunc: (dys: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys)!;
    const [q, k, v, keyMask, probs] = saved as [Tensor, Tensor, Tensor, Tensor, Tensor];
    const [dq, dk, dv] = tf.engine().runKernel(CAUSAL_ATTENTION_GRAD, { dy, q, k, v, probs, keyMask }, attrs) as Tensor[];
    return { q: () => dq!, k: () => dk!, v: () => dv!, keyMask: () => tf.zerosLike(keyMask) };
  },
};

function register(): void {
  if (!tfjsPatchesEnabled()) return; // kernels on backend internals: off → attentionOps everywhere
  const impls: [string, KernelFunc, KernelFunc][] = [
    ['wasm', forwardWasm as unknown as KernelFunc, backwardWasm as unknown as KernelFunc],
    ['cpu', forwardCpu as unknown as KernelFunc, backwardCpu as unknown as KernelFunc],
  ];
  for (const [backendName, fwd, bwd] of impls) {
    if (tf.getKernel(CAUSAL_ATTENTION, backendName) !== undefined) continue;
    tf.registerKernel({ kernelName: CAUSAL_ATTENTION, backendName, kernelFunc: fwd });
    tf.registerKernel({ kernelName: CAUSAL_ATTENTION_GRAD, backendName, kernelFunc: bwd });
  }
  if (tf.getGradient(CAUSAL_ATTENTION) === undefined) tf.registerGradient(attentionGrad);
}

register();
