/**
 * The native `tensorflow` backend in a browser: there is none (`@tensorflow/tfjs-node` binds
 * libtensorflow into Node). Node resolves `#platform/tensorflow` to lib/platform/node/tensorflow.ts.
 */

/**
 * Reports that the native backend cannot load here.
 * @returns Always `{ ok: false, why }`.
 */
export async function loadTensorflow(): Promise<{ ok: true; pkg: string } | { ok: false; why: string }> {
  return { ok: false, why: 'tfjs-node runs only under Node' };
}
