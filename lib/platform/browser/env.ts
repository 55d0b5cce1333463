/**
 * The host, in a browser (page or Web Worker): no environment variables; the CPU count from
 * `navigator.hardwareConcurrency`. Node resolves `#platform/env` to lib/platform/node/env.ts.
 */
const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;

/**
 * An environment variable: a browser has none.
 * @param _name The variable's name.
 * @returns Always undefined (options are passed in code instead, e.g. `initBackend({ backend })`).
 */
export function envVar(_name: string): string | undefined {
  return undefined;
}

/**
 * Logical CPUs the browser reports.
 * @returns `navigator.hardwareConcurrency`, or 1 when the browser does not tell.
 */
export function cpuCount(): number {
  const n = nav?.hardwareConcurrency;
  return typeof n === 'number' && n >= 1 ? n : 1;
}

/**
 * In a browser `initBackend` uses one thread unless asked for more (`threads`): more need a
 * cross-origin isolated page (SharedArrayBuffer) and a bundle that leaves tfjs 4.22's threaded
 * factory readable as source text (its pthread workers re-evaluate it; a minifier breaks it unless
 * kept verbatim, as the playground's Vite config does: docs/browser.md), and XNNPACK's pool
 * synchronises on every operator, which costs more than it gains on the small models of a page.
 */
export const THREADS_BY_DEFAULT = false;
