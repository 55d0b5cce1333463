/**
 * SHA-256 in a browser: Web Crypto's `crypto.subtle.digest`, which browsers offer only in a secure
 * context (https, or http on localhost / 127.0.0.1). Node resolves `#platform/sha256` to
 * lib/platform/node/sha256.ts.
 */

/**
 * The SHA-256 of the concatenation of `parts`.
 * @param parts Byte ranges, hashed in order as one message (copied into one buffer first).
 * @returns The digest as 64 lowercase hex digits.
 */
export async function sha256Hex(parts: readonly Uint8Array[]): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) {
    throw new Error('rxrl: checkpoint checksums need Web Crypto (crypto.subtle), which browsers offer only in a secure context (https or localhost)');
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const all = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  const digest = new Uint8Array(await subtle.digest('SHA-256', all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
