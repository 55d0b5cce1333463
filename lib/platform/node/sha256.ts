/**
 * SHA-256 under Node (`node:crypto`, streaming over the parts: no copy of a large checkpoint).
 * The browser build resolves `#platform/sha256` to lib/platform/browser/sha256.ts (Web Crypto).
 */
import { createHash } from 'node:crypto';

/**
 * The SHA-256 of the concatenation of `parts`.
 * @param parts Byte ranges, hashed in order as one message.
 * @returns The digest as 64 lowercase hex digits.
 */
export async function sha256Hex(parts: readonly Uint8Array[]): Promise<string> {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}
