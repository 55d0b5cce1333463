/**
 * The playground in headless Chromium, for test/browser.test.ts and test/bench/browser.bench.ts:
 * build docs/playground/dist/ with Vite, serve it on 127.0.0.1, launch Debian's chromium through
 * playwright-core (`executablePath`: RXRL_CHROMIUM, default /usr/bin/chromium; playwright's own
 * browser download cannot work here).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, relative } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const ROOT = join(import.meta.dirname, '..', '..');
export const DIST = join(ROOT, 'docs', 'playground', 'dist');
export const CHROMIUM = process.env['RXRL_CHROMIUM'] ?? '/usr/bin/chromium';

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
};

/** `npm run playground:build` (Vite), throwing with its output if it fails. */
export function buildPlayground(): void {
  const b = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'docs/playground/vite.config.ts', '--logLevel', 'warn'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  if (b.status !== 0 || !existsSync(join(DIST, 'index.html'))) throw new Error(`vite build failed:\n${b.stdout}\n${b.stderr}`);
}

/**
 * A static server for `root` on 127.0.0.1 (a free port); its base URL. `isolated`: with the
 * COOP/COEP headers that make pages cross-origin isolated (SharedArrayBuffer, wasm threads).
 */
export async function serve(root: string, isolated = false): Promise<{ server: Server; base: string }> {
  const headers: Record<string, string> = isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://127.0.0.1').pathname)).replace(/^\/+/, '') || 'index.html';
    const file = join(root, path);
    if (relative(root, file).startsWith('..')) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Debian's chromium, headless, without the background connections a closed network refuses. */
export function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) or set RXRL_CHROMIUM`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
