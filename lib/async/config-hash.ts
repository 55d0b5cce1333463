/**
 * The config hash a learner and its actors compare (Node only: node:crypto; the async runtime
 * and the actor command use it, the browser never runs them).
 *
 * ```ts
 * configHash({ seed: 1, iterations: 10, env: { id: 'CartPole-v1' } }) === configHash({ seed: 1, iterations: 99, env: { id: 'CartPole-v1' } });
 * ```
 */
import { createHash } from 'node:crypto';

/** A short stable hash of a resolved config without `iterations` (a resumed run may extend them). */
export function configHash(config: Record<string, unknown>): string {
  const { iterations: _ignored, ...rest } = config;
  return createHash('sha256').update(stableJson(rest)).digest('hex').slice(0, 16);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
