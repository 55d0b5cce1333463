/**
 * The safetensors format (Hugging Face), in memory and in plain TypeScript — no native code, no
 * Node built-in (the browser build uses it as it is; lib/io/safetensors.ts adds files on disk).
 *
 *   bytes 0..8        N, the header length: an unsigned 64-bit little-endian integer
 *   bytes 8..8+N      the header: UTF-8 JSON, padded with spaces (this writer pads 8 + N to a
 *                     multiple of 8 so the data section is 8-byte aligned)
 *                     { "__metadata__": { string: string },            (optional)
 *                       "<name>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, ... }
 *   bytes 8+N..       the data section: raw little-endian, row-major tensor bytes; offsets are
 *                     relative to its start and end = begin + product(shape) · size(dtype)
 *
 * dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U64 U32 U16 U8 BOOL. Data comes back as the matching
 * typed array (F16 and BF16 as the raw bits in a Uint16Array, I64/U64 as BigInt64Array /
 * BigUint64Array); `toFloat32` converts any of them to float32 (BF16: bits << 16; F16: IEEE half).
 *
 * Validation on read (everything before any data is decoded): the length prefix fits the file,
 * the header is a JSON object, each entry has a known dtype, a shape of non-negative integers and
 * offsets whose span is exactly product(shape)·size; tensors do not overlap; the data section is
 * exactly as long as the header says (shorter: `truncated: header says X bytes of data, file has
 * Y`; longer: trailing bytes). Errors are `SafetensorsError`s whose message starts with a label
 * (default `safetensors file <path>`).
 *
 * Optional whole-file checksum (`checksumKey`): a `__metadata__` entry holding the lowercase hex
 * SHA-256 of the file's bytes *as they are with the 64 characters of that value replaced by ASCII
 * '0'*. The writer writes the zeros, hashes, and puts the digest in their place (same length, so no
 * offset moves); `verifyChecksum` undoes it. It covers the length prefix, the header (every other
 * metadata entry, names, shapes, offsets) and the data.
 *
 * ```ts
 * const bytes = await safetensorsBytes({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } }, { note: 'hi' });
 * const parsed = parseSafetensors(bytes, 'w.safetensors');
 * const w = toFloat32(parsed.tensor('w'));
 * ```
 */
import { sha256Hex } from '#platform/sha256';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('rxrl: big-endian hosts are not supported');

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export type TensorData =
  | Float64Array
  | Float32Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | BigUint64Array
  | Uint32Array
  | Uint8Array;

type Ctor = { new (buffer: ArrayBuffer): TensorData; readonly name: string };

/** The typed-array class that holds each dtype's data (F16/BF16: raw bits in a Uint16Array). */
export const DTYPE_CTOR: Readonly<Record<SafetensorsDType, Ctor>> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** One tensor: dtype, shape, row-major data (typed array matching the dtype, see DTYPE docs). */
export interface SafetensorsTensor {
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** A header entry; `begin`/`end` are byte offsets relative to the data section. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** A validated header. */
export interface SafetensorsHeader {
  /** Entries in header order. */
  readonly tensors: readonly TensorInfo[];
  readonly byName: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  /** N, the header's byte length. */
  readonly headerLength: number;
  /** 8 + N: where the data section starts in the file. */
  readonly dataStart: number;
  /** Bytes in the data section (= the largest `end`). */
  readonly dataLength: number;
}

export class SafetensorsError extends Error {
  override readonly name = 'SafetensorsError';
  constructor(
    readonly label: string,
    readonly detail: string,
  ) {
    super(`${label}: ${detail}`);
  }
}

/** Largest header we accept (the Rust implementation's limit is 100 MB too). */
export const MAX_HEADER_BYTES = 100_000_000;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

function isDType(s: unknown): s is SafetensorsDType {
  return typeof s === 'string' && Object.hasOwn(DTYPE_SIZE, s);
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/** Reads N from the first 8 bytes and checks it against the file size. */
export function headerLengthOf(prefix: Uint8Array, fileSize: number, label: string): number {
  if (fileSize < 8 || prefix.length < 8) {
    throw new SafetensorsError(label, `is not a safetensors file (${fileSize} bytes, shorter than the 8-byte header length)`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(label, `is not a safetensors file (implausible header length ${n})`);
  }
  const len = Number(n);
  if (8 + len > fileSize) {
    throw new SafetensorsError(
      label,
      `is not a safetensors file or is truncated (header length ${len} bytes, but the file has only ${fileSize - 8} bytes after the length prefix)`,
    );
  }
  return len;
}

/**
 * Parses and validates a header: `headerBytes` are the N bytes after the length prefix,
 * `fileSize` the size of the whole file.
 */
export function parseHeader(headerBytes: Uint8Array, fileSize: number, label: string): SafetensorsHeader {
  const headerLength = headerBytes.length;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(label, 'is not a safetensors file (header is not UTF-8)');
  }
  if (!text.startsWith('{')) throw new SafetensorsError(label, 'is not a safetensors file (header does not start with "{")');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(label, `is not a safetensors file (header is not valid JSON: ${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(label, 'is not a safetensors file (header is not a JSON object)');
  }
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  const byName = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw new SafetensorsError(label, 'invalid header: __metadata__ is not an object of strings');
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new SafetensorsError(label, `invalid header: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const bad = (why: string): never => {
      throw new SafetensorsError(label, `invalid header: tensor ${name}: ${why}`);
    };
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) bad('entry is not an object');
    const e = entry as Record<string, unknown>;
    if (!isDType(e['dtype'])) bad(`unknown dtype ${JSON.stringify(e['dtype'])}`);
    const dtype = e['dtype'] as SafetensorsDType;
    const shape = e['shape'];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
      bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offs = e['data_offsets'];
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) {
      bad(`data_offsets ${JSON.stringify(offs)} is not [begin, end]`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) bad(`data_offsets [${begin}, ${end}] end before begin`);
    const need = numel(shape as number[]) * DTYPE_SIZE[dtype];
    if (end - begin !== need) {
      bad(`shape ${fmtShape(shape as number[])} of ${dtype} needs ${need} bytes, data_offsets [${begin}, ${end}] give ${end - begin}`);
    }
    const info: TensorInfo = { name, dtype, shape: [...(shape as number[])], begin, end };
    tensors.push(info);
    byName.set(name, info);
  }
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const p = sorted[i - 1]!;
    const c = sorted[i]!;
    if (c.begin < p.end) throw new SafetensorsError(label, `invalid header: tensors ${p.name} and ${c.name} overlap in the data section`);
  }
  const dataLength = sorted.reduce((m, t) => Math.max(m, t.end), 0);
  const dataStart = 8 + headerLength;
  const have = fileSize - dataStart;
  if (have < dataLength) throw new SafetensorsError(label, `truncated: header says ${dataLength} bytes of data, file has ${have}`);
  if (have > dataLength) {
    throw new SafetensorsError(
      label,
      `has ${have - dataLength} unexpected bytes after the data section (header says ${dataLength} bytes of data, file has ${have})`,
    );
  }
  return { tensors, byName, metadata, headerLength, dataStart, dataLength };
}

/** Copies raw little-endian bytes into a fresh, aligned typed array of the dtype's class. */
export function decodeTensorBytes(dtype: SafetensorsDType, bytes: Uint8Array): TensorData {
  const buf = new ArrayBuffer(bytes.length);
  new Uint8Array(buf).set(bytes);
  return new DTYPE_CTOR[dtype](buf);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE 754 half → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits → number (the top 16 bits of a float32). */
export function bf16ToFloat(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0]!;
}

/** number → bfloat16 bits, round to nearest even (NaN stays NaN). */
export function floatToBf16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  if (Number.isNaN(x)) return 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** number → IEEE half bits, round to nearest even. */
export function floatToHalf(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** Any tensor's values as float32 (F16/BF16 decoded; integers and F64 rounded to float32). */
export function toFloat32(t: Pick<SafetensorsTensor, 'dtype' | 'data'>): Float32Array {
  const d = t.data;
  switch (t.dtype) {
    case 'F32':
      return d as Float32Array;
    case 'F16': {
      const out = new Float32Array(d.length);
      const h = d as Uint16Array;
      for (let i = 0; i < h.length; i++) out[i] = halfToFloat(h[i]!);
      return out;
    }
    case 'BF16': {
      const h = d as Uint16Array;
      const bits = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) bits[i] = h[i]! << 16;
      return new Float32Array(bits.buffer);
    }
    case 'I64':
    case 'U64': {
      const out = new Float32Array(d.length);
      const b = d as BigInt64Array | BigUint64Array;
      for (let i = 0; i < b.length; i++) out[i] = Number(b[i]!);
      return out;
    }
    default:
      return Float32Array.from(d as ArrayLike<number>);
  }
}

/** A parsed in-memory file: header plus lazy access to each tensor's bytes. */
export interface ParsedSafetensors {
  readonly header: SafetensorsHeader;
  /** The whole file. */
  readonly bytes: Uint8Array;
  /** The raw bytes of one tensor (a view into `bytes`). */
  rawBytes(name: string): Uint8Array;
  /** One tensor, copied out of the file buffer. */
  tensor(name: string): SafetensorsTensor;
}

/** Validates a whole file held in memory. */
export function parseSafetensors(bytes: Uint8Array, label = 'safetensors data'): ParsedSafetensors {
  const n = headerLengthOf(bytes, bytes.length, label);
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.length, label);
  const rawBytes = (name: string): Uint8Array => {
    const info = header.byName.get(name);
    if (!info) throw new SafetensorsError(label, `has no tensor ${name}`);
    return bytes.subarray(header.dataStart + info.begin, header.dataStart + info.end);
  };
  return {
    header,
    bytes,
    rawBytes,
    tensor(name) {
      const info = header.byName.get(name)!;
      const raw = rawBytes(name);
      return { dtype: info.dtype, shape: info.shape, data: decodeTensorBytes(info.dtype, raw) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Checksum
// ---------------------------------------------------------------------------------------------

const HEX64 = /^[0-9a-f]{64}$/;
const ZEROS64 = new TextEncoder().encode('0'.repeat(64));

/** Where `needle` starts in `hay`, searching from `from`; -1 if absent. */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Checks the checksum entry `key` of a parsed file (see the module doc).
 * @param parsed A file parsed by `parseSafetensors`.
 * @param key The `__metadata__` key holding the digest.
 * @returns 'ok', or why it failed: 'missing' (no such metadata entry), 'malformed', or 'mismatch'.
 */
export async function verifyChecksum(parsed: ParsedSafetensors, key: string): Promise<'ok' | 'missing' | 'malformed' | 'mismatch'> {
  const digest = parsed.header.metadata[key];
  if (digest === undefined) return 'missing';
  if (!HEX64.test(digest)) return 'malformed';
  const { bytes, header } = parsed;
  const hb = bytes.subarray(8, 8 + header.headerLength);
  const needle = new TextEncoder().encode(digest);
  const at = indexOfBytes(hb, needle);
  if (at < 0 || indexOfBytes(hb, needle, at + 1) >= 0) return 'malformed';
  const pos = 8 + at;
  const h = await sha256Hex([bytes.subarray(0, pos), ZEROS64, bytes.subarray(pos + 64)]);
  return h === digest ? 'ok' : 'mismatch';
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/** Bytes of a typed array, as a view (no copy). */
function bytesOf(a: TensorData): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function checkTensor(name: string, t: SafetensorsTensor): void {
  if (name === '__metadata__' || name.length === 0) throw new RangeError(`writeSafetensors: invalid tensor name ${JSON.stringify(name)}`);
  if (!isDType(t.dtype)) throw new RangeError(`writeSafetensors: tensor ${name}: unknown dtype ${String(t.dtype)}`);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(`writeSafetensors: tensor ${name}: shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
  }
  const want = DTYPE_CTOR[t.dtype];
  if (!(t.data instanceof want)) {
    throw new TypeError(`writeSafetensors: tensor ${name}: dtype ${t.dtype} needs a ${want.name}, got ${t.data?.constructor?.name ?? typeof t.data}`);
  }
  if (t.data.length !== numel(t.shape)) {
    throw new RangeError(`writeSafetensors: tensor ${name}: shape ${fmtShape(t.shape)} has ${numel(t.shape)} elements, data has ${t.data.length}`);
  }
}

/**
 * Serialises the header (with the checksum value as 64 zeros if `checksumKey` is given) and
 * returns the chunks of the whole file in order.
 */
export function encodeSafetensors(
  tensors: Readonly<Record<string, SafetensorsTensor>>,
  metadata: Readonly<Record<string, string>> = {},
  checksumKey?: string,
): { chunks: Uint8Array[]; total: number; checksumAt: number | null } {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`writeSafetensors: metadata ${k} must be a string, got ${typeof v}`);
    meta[k] = v;
  }
  if (checksumKey !== undefined) meta[checksumKey] = '0'.repeat(64);
  const head: Record<string, unknown> = {};
  if (Object.keys(meta).length > 0) head['__metadata__'] = meta;
  let offset = 0;
  const datas: Uint8Array[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    checkTensor(name, t);
    const b = bytesOf(t.data);
    head[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + b.length] };
    datas.push(b);
    offset += b.length;
  }
  const utf8 = new TextEncoder();
  let json = JSON.stringify(head);
  let hb = utf8.encode(json);
  const pad = (8 - ((8 + hb.length) % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    hb = utf8.encode(json);
  }
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(hb.length), true);
  let checksumAt: number | null = null;
  if (checksumKey !== undefined) {
    const needle = utf8.encode(`${JSON.stringify(checksumKey)}:${JSON.stringify('0'.repeat(64))}`);
    const at = indexOfBytes(hb, needle);
    if (at < 0) throw new Error('writeSafetensors: internal error locating the checksum placeholder');
    checksumAt = 8 + at + needle.length - 65; // start of the 64 zeros (before the closing quote)
  }
  return { chunks: [prefix, hb, ...datas], total: 8 + hb.length + offset, checksumAt };
}

/**
 * Puts the SHA-256 of the whole file in place of the placeholder zeros of an encoded file.
 * @param encoded What `encodeSafetensors` returned (its header chunk is changed in place).
 * @returns The same chunks, sealed.
 */
export async function sealChecksum(encoded: ReturnType<typeof encodeSafetensors>): Promise<Uint8Array[]> {
  const { chunks, checksumAt } = encoded;
  if (checksumAt !== null) {
    const digest = new TextEncoder().encode(await sha256Hex(chunks));
    // The placeholder lives in the header chunk (chunks[1]), which encodeSafetensors made.
    chunks[1]!.set(digest, checksumAt - 8);
  }
  return chunks;
}

/**
 * A whole safetensors file in memory (what `writeSafetensors` writes to disk): for a browser
 * download, a message to a worker, or an upload.
 * @param tensors The tensors by name, in file order.
 * @param metadata `__metadata__` strings.
 * @param opts `checksumKey`: put a whole-file SHA-256 under this metadata key.
 * @returns The file's bytes.
 */
export async function safetensorsBytes(
  tensors: Readonly<Record<string, SafetensorsTensor>>,
  metadata: Readonly<Record<string, string>> = {},
  opts: { checksumKey?: string | undefined } = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const encoded = encodeSafetensors(tensors, metadata, opts.checksumKey);
  const chunks = await sealChecksum(encoded);
  const out = new Uint8Array(encoded.total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
