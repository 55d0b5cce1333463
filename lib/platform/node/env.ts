/**
 * The host, under Node: environment variables and the CPU count. The browser build resolves
 * `#platform/env` to lib/platform/browser/env.ts instead (package.json `imports`).
 */
import os from 'node:os';

/**
 * An environment variable (`process.env[name]`).
 * @param name The variable's name, e.g. `RXRL_BACKEND`.
 * @returns Its value, or undefined when unset.
 */
export function envVar(name: string): string | undefined {
  return process.env[name];
}

/**
 * Logical CPUs this process may use.
 * @returns `os.availableParallelism()` (or the length of `os.cpus()` where it is missing).
 */
export function cpuCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Under Node, `initBackend` threads wasm by default (logical CPUs − 1, lib/tensor/wasm-init.ts). */
export const THREADS_BY_DEFAULT = true;
