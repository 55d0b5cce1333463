/**
 * The guard on rxrl's tfjs patches (the wasm kernel replacements, the SIMD fused kernels, the
 * gradient fixes and the threaded-wasm init in lib/tensor/): they reach into internals of
 * `@tensorflow/tfjs-core` and `@tensorflow/tfjs-backend-wasm` 4.22 that another release may
 * change, so they are applied only on the version they were written for — the nanoGPT way:
 * detect, and fall back to the stock path otherwise.
 *
 * - `RXRL_WASM_FIXES=0` (or `false`/`off`): every patch off, stock tfjs kernels and gradients.
 * - `RXRL_WASM_FIXES=1` (or `true`/`on`): every patch on, whatever the installed version.
 * - unset: on if both packages are 4.22.x; otherwise off, with ONE warning line on stderr that
 *   names the versions and how to re-enable (docs/backends.md, "Upgrading tfjs", lists what to
 *   re-check first).
 *
 * The decision is taken once per process, the first time a patch asks (at import of
 * lib/backend.ts). `configureTfjsPatches({ versions })` before that point simulates another
 * installed version (tests); `decideTfjsPatches` is the pure rule.
 *
 * ```ts
 * decideTfjsPatches({ versions: { core: '4.23.0', wasm: '4.23.0' }, env: {} }).enabled; // false
 * ```
 */
import { version_core } from '@tensorflow/tfjs-core';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { envVar } from '#platform/env';

/** The tfjs release line (major.minor) the patches were written and tested for. */
export const PATCHED_TFJS_LINE = '4.22';

export interface TfjsVersions {
  /** `version_core` of @tensorflow/tfjs-core */
  core: string;
  /** `version_wasm` of @tensorflow/tfjs-backend-wasm */
  wasm: string;
}

export interface TfjsPatchDecision {
  enabled: boolean;
  /** Why, in words (also in the backend report line). */
  reason: string;
  /** The one line to print, if any (a version mismatch without an explicit RXRL_WASM_FIXES). */
  warning?: string;
  versions: TfjsVersions;
}

export function installedTfjsVersions(): TfjsVersions {
  return { core: version_core, wasm: version_wasm };
}

const isPatchedLine = (v: string): boolean => v === PATCHED_TFJS_LINE || v.startsWith(`${PATCHED_TFJS_LINE}.`);

/** The rule (pure): RXRL_WASM_FIXES wins; otherwise on only for 4.22.x of both packages. */
export function decideTfjsPatches(options: { versions?: TfjsVersions; env?: Record<string, string | undefined> } = {}): TfjsPatchDecision {
  const versions = options.versions ?? installedTfjsVersions();
  const raw = (options.env ? options.env['RXRL_WASM_FIXES'] : envVar('RXRL_WASM_FIXES'))?.trim().toLowerCase() ?? '';
  if (['0', 'false', 'off', 'no'].includes(raw)) {
    return { enabled: false, reason: 'tfjs patches off (RXRL_WASM_FIXES=0)', versions };
  }
  if (['1', 'true', 'on', 'yes'].includes(raw)) {
    return { enabled: true, reason: 'tfjs patches forced on (RXRL_WASM_FIXES=1)', versions };
  }
  if (isPatchedLine(versions.core) && isPatchedLine(versions.wasm)) {
    return { enabled: true, reason: `tfjs patches on (tfjs ${versions.core})`, versions };
  }
  const found = `@tensorflow/tfjs-core ${versions.core}, @tensorflow/tfjs-backend-wasm ${versions.wasm}`;
  return {
    enabled: false,
    reason: `tfjs patches off (written for ${PATCHED_TFJS_LINE}.x; found ${found})`,
    warning:
      `rxrl: tfjs patches off: they were written for tfjs ${PATCHED_TFJS_LINE}.x, found ${found}; ` +
      'using the stock kernels (slower; on wasm the gradient of tf.gather may throw). ' +
      'To re-enable them set RXRL_WASM_FIXES=1 (check docs/backends.md "Upgrading tfjs" first).',
    versions,
  };
}

let decision: TfjsPatchDecision | undefined;

/**
 * Fix the decision for this process (before any patch is applied; later calls with other
 * options throw). `print` receives the warning line (default: console.warn).
 */
export function configureTfjsPatches(
  options: { versions?: TfjsVersions; env?: Record<string, string | undefined>; print?: (line: string) => void } = {},
): TfjsPatchDecision {
  if (decision !== undefined) {
    if (options.versions !== undefined || options.env !== undefined) {
      throw new Error('configureTfjsPatches: the tfjs patch decision was already taken in this process');
    }
    return decision;
  }
  const d = decideTfjsPatches(options);
  decision = d;
  if (d.warning !== undefined) (options.print ?? ((l: string) => console.warn(l)))(d.warning);
  return d;
}

/** The process-wide decision (taken on first use; warns once on a version mismatch). */
export function tfjsPatches(): TfjsPatchDecision {
  return decision ?? configureTfjsPatches();
}

/** True if rxrl's tfjs patches apply in this process. */
export function tfjsPatchesEnabled(): boolean {
  return tfjsPatches().enabled;
}
