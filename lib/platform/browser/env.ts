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
 * In a browser `initBackend` uses one thread unless asked for more (`threads`): tfjs 4.22 builds
 * its pthread worker from the source text of a function of its bundle, which a minifying bundler
 * breaks (the worker dies with "ReferenceError: e is not defined", taking the run with it), and its
 * C++ side caps the pool at half of `navigator.hardwareConcurrency`. An unminified bundle in a
 * cross-origin isolated page initialises the threaded build (docs/browser.md).
 */
export const THREADS_BY_DEFAULT = false;
