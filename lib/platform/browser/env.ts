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
