/**
 * The native `tensorflow` backend under Node: the optional peer dependencies
 * `@tensorflow/tfjs-node-gpu` (CUDA) then `@tensorflow/tfjs-node`. The browser build resolves
 * `#platform/tensorflow` to lib/platform/browser/tensorflow.ts (there is no native backend there).
 */
import * as tf from '@tensorflow/tfjs-core';

const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

function isModuleNotFound(e: unknown, spec: string): boolean {
  const err = e as { code?: string; message?: string };
  return (err?.code === 'ERR_MODULE_NOT_FOUND' || err?.code === 'MODULE_NOT_FOUND') && typeof err.message === 'string' && err.message.includes(spec);
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.slice(0, 200);
}

/**
 * Try the native packages; on success the `tensorflow` backend is registered.
 * @returns The package that registered it, or why none did.
 */
export async function loadTensorflow(): Promise<{ ok: true; pkg: string } | { ok: false; why: string }> {
  const whys: string[] = [];
  for (const spec of TFJS_NODE_PACKAGES) {
    try {
      const name: string = spec; // a variable specifier: tsc does not look for the types
      await import(name);
      if (tf.findBackendFactory('tensorflow') === null) {
        whys.push(`${spec} loaded but registered no 'tensorflow' backend (a second copy of tfjs-core?)`);
        continue;
      }
      return { ok: true, pkg: spec };
    } catch (e) {
      whys.push(isModuleNotFound(e, spec) ? `${spec} not installed` : `${spec} failed to load: ${firstLine(e)}`);
    }
  }
  const bothMissing = whys.every((w) => w.endsWith('not installed'));
  return { ok: false, why: bothMissing ? 'tfjs-node not installed' : whys.join('; ') };
}
