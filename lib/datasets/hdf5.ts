/**
 * A thin layer over h5wasm (the HDF5 C library compiled to WebAssembly) for numeric datasets:
 * read one dataset as a typed array with its shape and element kind, write one. Only what the
 * dataset loaders need; everything else stays h5wasm's. Opening a file is the host's
 * (`openHdf5` of `#platform/hdf5`: lib/platform/node/hdf5.ts reads the disk,
 * lib/platform/browser/hdf5.ts the bytes a page provided).
 *
 * - Opening checks, before HDF5 sees the path, that the file exists and carries the HDF5
 *   signature (`hasHdf5Signature`: at byte 0, or after a user block at 512, 1024, 2048, ...):
 *   h5wasm's own open of a missing file does not throw, it returns an unusable handle.
 * - HDF5's error stack is turned into exceptions (h5wasm's throwing error handler) while a call of
 *   this module runs, and into an `Hdf5Error` naming the path and, where there is one, the key —
 *   never HDF5's diagnostic dump on stderr.
 * - Reading: integers (any size, either sign), h5py booleans (an int8 enum FALSE/TRUE), floats of
 *   16, 32 and 64 bits (h5wasm has no float16 container: the raw halves are decoded here) and
 *   big-endian data (HDF5 converts it to little-endian on read) all come back as a typed array.
 * - Writing: float64/float32/uint8 through h5wasm's `create_dataset` (h5wasm 0.10.3 cannot write
 *   float16), optional gzip compression with chunks of whole rows.
 *
 * ```ts
 * const { h5, file } = await openHdf5('data/hopper.hdf5', 'r');    // #platform/hdf5
 * try {
 *   const obs = readNumeric(h5, file, 'observations', 'data/hopper.hdf5');   // { shape: [N, 11], kind: 'float', bits: 32, data: Float32Array }
 * } finally { file.close(); }
 * ```
 */
import type { Dataset, File as H5File } from 'h5wasm';
import { halfToFloat } from '../io/safetensors-codec.ts';

/** The h5wasm module (`h5wasm/node` under Node, `h5wasm` in a browser: lib/platform/…/hdf5.ts). */
export type H5wasm = typeof import('h5wasm');

export class Hdf5Error extends Error {
  override readonly name = 'Hdf5Error';
}

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * True if a file holds the HDF5 superblock signature at 0 or at a power of two ≥ 512.
 * @param read The 8 bytes at an offset.
 * @param size The file's size.
 * @returns Whether a signature was found.
 */
export function hasHdf5Signature(read: (offset: number) => Uint8Array, size: number): boolean {
  for (let offset = 0; offset + 8 <= size; offset = offset === 0 ? 512 : offset * 2) {
    const buf = read(offset);
    if (SIGNATURE.every((b, i) => buf[i] === b)) return true;
  }
  return false;
}

/** The most telling line of an HDF5 error stack (the innermost "error message" or "minor"). */
function summarise(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const msg = [...text.matchAll(/error message = '([^']*)'/g)].pop();
  if (msg) return msg[1]!;
  const lines = text.split('\n');
  const inner = lines.filter((l) => /\bin [A-Za-z0-9_]+\(\): /.test(l)).pop();
  if (inner) return inner.replace(/^.*\bin [A-Za-z0-9_]+\(\): /, '').trim();
  return lines[0]!.trim();
}

/** Runs `fn` with HDF5 errors thrown (not printed); rethrows them as `Hdf5Error: <label>: ...`. */
export function withHdf5Errors<T>(h5: H5wasm, label: string, fn: () => T): T {
  const module = h5.Module;
  // The handler is process-wide: switch it on at the outermost call only, off when that returns.
  if (depth++ === 0) module.activate_throwing_error_handler();
  try {
    return fn();
  } catch (e) {
    if (e instanceof Hdf5Error || e instanceof RangeError || e instanceof TypeError) throw e;
    throw new Hdf5Error(`${label}: ${summarise(e)}`);
  } finally {
    if (--depth === 0) module.deactivate_throwing_error_handler();
  }
}

let depth = 0;

export type NumericKind = 'float' | 'int' | 'uint' | 'bool';

export type NumericArray = Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

export interface NumericData {
  readonly shape: readonly number[];
  /** `bool` is h5py's boolean (an 8-bit enum with members FALSE = 0, TRUE = 1). */
  readonly kind: NumericKind;
  /** Bits per element in the file. */
  readonly bits: number;
  /** Host-order values; float16 is decoded to Float32Array, 64-bit integers to Float64Array. */
  readonly data: NumericArray;
}

/** What `path` names inside the file: a dataset, a group, or nothing. */
export function entryKind(h5: H5wasm, file: H5File, key: string): 'dataset' | 'group' | 'missing' {
  // Walk the path so a missing intermediate group is not an HDF5 error.
  const parts = key.split('/').filter((p) => p.length > 0);
  let prefix = '';
  for (let i = 0; i < parts.length; i++) {
    const parent = prefix === '' ? file : (file.get(prefix) as H5File | null);
    if (parent === null || !(parent instanceof h5.Group)) return 'missing';
    if (!parent.keys().includes(parts[i]!)) return 'missing';
    prefix = prefix === '' ? parts[i]! : `${prefix}/${parts[i]!}`;
  }
  const obj = file.get(key);
  if (obj instanceof h5.Dataset) return 'dataset';
  if (obj instanceof h5.Group) return 'group';
  return 'missing';
}

const H5T_CLASS_NAMES = ['integer', 'float', 'time', 'string', 'bitfield', 'opaque', 'compound', 'reference', 'enum', 'variable-length', 'array'];
const H5T_INTEGER = 0;
const H5T_FLOAT = 1;
const H5T_ENUM = 8;

/** Reads the raw bytes of a whole dataset (no conversion), as stored in the file's type. */
function rawBytes(h5: H5wasm, ds: Dataset, nbytes: number): Uint8Array {
  const module = h5.Module;
  const ptr = module._malloc(Math.max(1, nbytes));
  if (ptr === 0) throw new Hdf5Error(`${ds.path}: out of wasm memory reading ${nbytes} bytes`);
  try {
    module.get_dataset_data(ds.file_id, ds.path, null, null, null, BigInt(ptr));
    return module.HEAPU8.slice(ptr, ptr + nbytes);
  } finally {
    module._free(ptr);
  }
}

/**
 * Reads the numeric dataset `key` whole. Throws an `Hdf5Error` naming `label` and `key` for a
 * dataset of another type (strings, compounds, references, ...) or of an unsupported size.
 */
export function readNumeric(h5: H5wasm, file: H5File, key: string, label: string): NumericData {
  return withHdf5Errors(h5, `${label}: ${key}`, () => {
    const ds = file.get(key);
    if (!(ds instanceof h5.Dataset)) throw new Hdf5Error(`${label}: ${key} is not a dataset`);
    const meta = ds.metadata;
    const shape = meta.shape ?? [];
    let type = meta.type;
    const { size, signed } = meta;
    let kind: NumericKind;
    if (type === H5T_ENUM && meta.enum_type) {
      const members = meta.enum_type.members;
      const names = Object.keys(members).sort();
      const isBool = names.length === 2 && names[0] === 'FALSE' && names[1] === 'TRUE' && members.FALSE === 0 && members.TRUE === 1;
      if (!isBool) throw new Hdf5Error(`${label}: ${key} is an enum (${names.join(', ')}); expected numbers or booleans`);
      type = meta.enum_type.type;
      kind = 'bool';
    } else if (type === H5T_FLOAT) {
      kind = 'float';
    } else if (type === H5T_INTEGER) {
      kind = signed ? 'int' : 'uint';
    } else {
      throw new Hdf5Error(`${label}: ${key} holds ${H5T_CLASS_NAMES[type] ?? `HDF5 type class ${type}`} data; expected numbers`);
    }
    if (kind === 'float' ? ![2, 4, 8].includes(size) : ![1, 2, 4, 8].includes(size)) {
      throw new Hdf5Error(`${label}: ${key} has ${size * 8}-bit elements, which are not supported`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    const bytes = rawBytes(h5, ds, count * size);
    // h5wasm reads big-endian data in little-endian memory order already.
    const buf = bytes.buffer;
    let data: NumericArray;
    if (type === H5T_FLOAT) {
      if (size === 8) data = new Float64Array(buf);
      else if (size === 4) data = new Float32Array(buf);
      else {
        const halves = new Uint16Array(buf);
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = halfToFloat(halves[i]!);
        data = out;
      }
    } else if (size === 8) {
      const big = signed ? new BigInt64Array(buf) : new BigUint64Array(buf);
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(big[i]!);
      data = out;
    } else if (size === 4) data = signed ? new Int32Array(buf) : new Uint32Array(buf);
    else if (size === 2) data = signed ? new Int16Array(buf) : new Uint16Array(buf);
    else data = signed ? new Int8Array(buf) : new Uint8Array(buf);
    return { shape, kind, bits: size * 8, data };
  });
}

/** h5wasm 0.10.3 writes no float16 (its C side refuses 2-byte floats), so neither does this. */
export type WriteDtype = 'float64' | 'float32' | 'uint8';

export interface WriteOptions {
  /** gzip level 1–9 (chunks of whole rows); 0 or undefined writes uncompressed. */
  compression?: number;
}

/** Rows per chunk: about 64 KiB of elements, at least one row, at most all rows. */
function chunkRows(rows: number, rowElems: number, elemBytes: number): number {
  const target = Math.floor((64 * 1024) / Math.max(1, rowElems * elemBytes));
  return Math.max(1, Math.min(rows, target));
}

/** Creates dataset `key` (its parent groups must exist) from row-major `data` of `shape`. */
export function writeNumeric(
  h5: H5wasm,
  file: H5File,
  key: string,
  shape: readonly number[],
  data: ArrayLike<number>,
  dtype: WriteDtype,
  label: string,
  options: WriteOptions = {},
): void {
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new RangeError(`${label}: ${key} has ${data.length} values, shape [${shape.join(', ')}] needs ${count}`);
  }
  const level = options.compression ?? 0;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new RangeError(`${label}: compression must be an integer gzip level 0–9, got ${level}`);
  }
  const elemBytes = dtype === 'float64' ? 8 : dtype === 'float32' ? 4 : 1;
  const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
  const chunks = level > 0 && count > 0 ? [chunkRows(shape[0]!, rowElems, elemBytes), ...shape.slice(1)] : null;
  const typed = dtype === 'float64' ? Float64Array.from(data) : dtype === 'float32' ? Float32Array.from(data) : Uint8Array.from(data);
  withHdf5Errors(h5, `${label}: ${key}`, () => {
    file.create_dataset({
      name: key,
      data: typed,
      shape: [...shape],
      dtype: dtype === 'float64' ? '<d' : dtype === 'float32' ? '<f' : '<B',
      ...(chunks ? { chunks, compression: level } : {}),
    });
  });
}
