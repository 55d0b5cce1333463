/**
 * The playground's Vite config: `npm run playground` serves it on 127.0.0.1, `npm run
 * playground:build` writes the static site to docs/playground/dist/ (relative URLs: it works from
 * any folder of a static host).
 *
 * rxrl is imported by its package name, as an app would: the `browser` export condition picks
 * lib/core.ts & co. and `#platform/*` picks lib/platform/browser/; `rxrl-source` (first in
 * package.json) picks the TypeScript sources, so nothing needs `npm run build`. The tfjs wasm
 * binaries are emitted as assets (`?url` imports in src/worker.ts, handed to `setWasmPaths`).
 *
 * Threads: tfjs-backend-wasm 4.22 starts each pthread worker by re-evaluating the source text of
 * its threaded Emscripten factory (`wasmFactoryThreadedSimd.toString()`, wasm-out/
 * tfjs-backend-wasm-threaded-simd.js). Once minified, that function refers to names defined
 * outside it and the worker dies (`ReferenceError: e is not defined`). `tfjsThreadedFactoryVerbatim`
 * keeps tfjs's file out of the minifier's reach: the module becomes its own text, in a string,
 * evaluated (indirect eval, global scope) when first imported, so the function's source text is
 * tfjs's own, byte for byte, whatever the bundler does to the rest.
 */
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

/** See the module comment: tfjs's threaded factory evaluated from its own source text. */
const tfjsThreadedFactoryVerbatim: Plugin = {
  name: 'rxrl:tfjs-threaded-factory-verbatim',
  enforce: 'pre',
  transform(code, id) {
    if (!id.replaceAll('\\', '/').endsWith('/@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js')) return undefined;
    // The file declares `var WasmBackendModuleThreadedSimd = (() => …)()` (its CommonJS export is
    // guarded by `typeof module`): the script's completion value is the factory.
    return { code: `export default (0, eval)(${JSON.stringify(`${code}\n;WasmBackendModuleThreadedSimd;`)});\n`, map: null };
  },
};

export default defineConfig({
  root: here,
  plugins: [tfjsThreadedFactoryVerbatim],
  base: './',
  resolve: { conditions: ['rxrl-source', ...defaultClientConditions] },
  worker: { format: 'es', plugins: () => [tfjsThreadedFactoryVerbatim] },
  // what the worker imports, pre-bundled up front (else the dev server reloads the page once it finds them)
  optimizeDeps: {
    include: [
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-backend-cpu',
      '@tensorflow/tfjs-backend-wasm',
      '@huggingface/jinja',
      'fastest-levenshtein',
      'fp-ts/lib/Either.js',
      'io-ts',
      'mujoco-js',
      'rxjs',
      'yaml',
    ],
  },
  server: { host: '127.0.0.1', fs: { allow: [repo] } },
  preview: { host: '127.0.0.1' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', chunkSizeWarningLimit: 16_000 },
});
