/**
 * Gradient registration.
 *
 * `@tensorflow/tfjs-core`'s Node entry (`dist/tf-core.node.js`, CommonJS) contains the engine,
 * the ops and `tf.grad`, but *no gradient functions*: they live only in its ES-module build
 * (`dist/register_all_gradients.js`), which the `@tensorflow/tfjs` umbrella package normally
 * imports. That build cannot be imported by Node directly (extensionless specifiers, a
 * `gradients.js` file next to a `gradients/` directory, `.js` ES modules in a CommonJS package).
 * Without it every `tf.grad` fails with "gradient function not found for Sum".
 *
 * `ensureGradients()` imports `tfjs-gradients.generated.js`: that file and what it imports,
 * bundled by esbuild into one self-contained ES module (`node .ci/gen-tfjs-gradients.mjs`, checked
 * fresh by test/gradients-bundle.test.ts), which plain Node, tsx and bundlers load as it is
 * (≈50 ms; loading it through tsx's CommonJS loader cost ≈1.5–2 s). Its copy of tfjs-core's
 * internals shares tfjs-core's global engine and gradient registry (both live on `globalThis`),
 * so the gradients it registers are the ones `tf.grad` uses. Skipped when gradients are already
 * registered (e.g. `@tensorflow/tfjs-node`, which brings the umbrella package).
 *
 * It also fixes tfjs-core's `BatchMatMul` gradient, which does not reduce broadcast batch axes:
 * for `tf.matMul(x [b,m,k], w [k,n])` it returned a `[b,k,n]` gradient for `w` and the tape
 * threw ("The gradient of input 'b' has shape '4,24,28', which does not match ... '24,28'").
 * The wrapped gradient sums over the broadcast axes (as TensorFlow does), on every backend.
 * And it replaces the `GatherV2` gradient (see gather-grad.ts: every axis and `batchDims`).
 * Both fixes are tfjs patches: skipped when they are off (lib/tensor/patches.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs-core';
import { registerGatherGradient } from './gather-grad.ts';
import { tfjsPatchesEnabled } from './patches.ts';

export type GradientSource = 'present' | 'loaded';

let loaded: GradientSource | undefined;

export function gradientsRegistered(): boolean {
  return tf.getGradient('Sum') !== undefined && tf.getGradient('GatherV2') !== undefined;
}

/** Sum a broadcast gradient back to the shape of the input it belongs to. */
function reduceTo(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const axes = tf.backend_util.getReductionAxes(shape as number[], g.shape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape as number[]);
}

let batchMatMulGradWrapped: GradConfig | undefined;

/** Make the BatchMatMul gradient reduce broadcast batch axes (idempotent). */
export function fixBatchMatMulGradient(): void {
  const orig = tf.getGradient('BatchMatMul');
  if (orig === undefined || orig === batchMatMulGradWrapped) return;
  const wrapped: GradConfig = {
    ...orig,
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
      const [a, b] = saved;
      const g = orig.gradFunc(dy, saved, attrs);
      const ga = g['a'];
      const gb = g['b'];
      const out: { [name: string]: () => Tensor } = {};
      if (ga !== undefined) out['a'] = () => reduceTo(ga(), a!.shape);
      if (gb !== undefined) out['b'] = () => reduceTo(gb(), b!.shape);
      return out;
    },
  };
  batchMatMulGradWrapped = wrapped;
  tf.registerGradient(wrapped);
}

function gradientFixes(): void {
  if (!tfjsPatchesEnabled()) return;
  fixBatchMatMulGradient();
  registerGatherGradient();
}

export async function ensureGradients(): Promise<GradientSource> {
  if (loaded !== undefined) return loaded;
  if (gradientsRegistered()) {
    gradientFixes();
    loaded = 'present';
    return loaded;
  }
  try {
    await import('./tfjs-gradients.generated.js');
  } catch (e) {
    throw new Error(
      `rxrl: could not register tfjs gradients from lib/tensor/tfjs-gradients.generated.js ` +
        `(${(e as Error).message}). Installing @tensorflow/tfjs also provides them.`,
    );
  }
  if (!gradientsRegistered()) {
    throw new Error('rxrl: loading tfjs-core gradients did not register them (two tfjs-core copies?)');
  }
  gradientFixes();
  loaded = 'loaded';
  return loaded;
}
