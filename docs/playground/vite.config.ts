/**
 * The playground's Vite config: `npm run playground` serves it on 127.0.0.1, `npm run
 * playground:build` writes the static site to docs/playground/dist/ (relative URLs: it works from
 * any folder of a static host).
 *
 * rxrl is imported by its package name, as an app would: the `browser` export condition picks
 * lib/core.ts & co. and `#platform/*` picks lib/platform/browser/; `rxrl-source` (first in
 * package.json) picks the TypeScript sources, so nothing needs `npm run build`. The tfjs wasm
 * binaries are emitted as assets (`?url` imports in src/worker.ts, handed to `setWasmPaths`).
 */
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  resolve: { conditions: ['rxrl-source', ...defaultClientConditions] },
  worker: { format: 'es' },
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
