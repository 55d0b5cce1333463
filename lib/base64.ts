/**
 * Base64 (RFC 4648, standard alphabet, `=` padding) for typed arrays inside JSON, the same in Node
 * and browsers (no `Buffer`, no `atob` on binary strings).
 *
 * `fromBase64` is strict: only canonical text decodes (the alphabet, padding only at the end, zero
 * unused bits), so that decoding then encoding gives the input back; anything else is `undefined`.
 *
 * ```ts
 * toBase64(new Uint8Array([0, 0, 128, 63]));   // 'AACAPw=='
 * fromBase64('AACAPw==');                       // Uint8Array [0, 0, 128, 63]
 * fromBase64('%%%%');                           // undefined
 * ```
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const VALUE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i;

/**
 * Bytes as base64 text.
 * @param bytes Any bytes (a view: only its window is encoded).
 * @returns Standard base64 with `=` padding.
 */
export function toBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  const CHUNK = 3 * 4096;
  for (let start = 0; start < bytes.length; start += CHUNK) {
    const end = Math.min(bytes.length, start + CHUNK);
    let s = '';
    let i = start;
    for (; i + 2 < end; i += 3) {
      const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
      s += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
    }
    if (end - i === 1) {
      const n = bytes[i]! << 16;
      s += `${ALPHABET[n >> 18]!}${ALPHABET[(n >> 12) & 63]!}==`;
    } else if (end - i === 2) {
      const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
      s += `${ALPHABET[n >> 18]!}${ALPHABET[(n >> 12) & 63]!}${ALPHABET[(n >> 6) & 63]!}=`;
    }
    parts.push(s);
  }
  return parts.join('');
}

/**
 * Canonical base64 text as bytes.
 * @param text Standard base64 with padding.
 * @returns The bytes, or `undefined` when the text is not canonical base64.
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0) return undefined;
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const v = [0, 1, 2, 3].map((k) => {
      const c = text.charCodeAt(i + k);
      if (last && c === 61 /* = */ && k >= 4 - pad) return 0;
      return c < 128 ? VALUE[c]! : -1;
    });
    if (v.some((x) => x < 0)) return undefined;
    const n = (v[0]! << 18) | (v[1]! << 12) | (v[2]! << 6) | v[3]!;
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
    if (last && ((pad === 1 && (n & 0xff) !== 0) || (pad === 2 && (n & 0xffff) !== 0))) return undefined;
  }
  return out;
}
