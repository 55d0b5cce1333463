/**
 * safetensors files on disk (Node): whole-file and lazy reading, atomic writing. The format
 * itself, in memory, is lib/io/safetensors-codec.ts (re-exported here), which the browser build
 * uses without this module.
 *
 * Writing is atomic: a temporary file `.<name>.tmp-<pid>-<random>` in the target's directory is
 * written, fsynced, renamed over the target, and the directory is fsynced; a crash leaves the old
 * file intact (and at most a stale temporary, which the next write to that target removes once its
 * writer process is gone).
 *
 * ```ts
 * await writeSafetensors('w.safetensors', { w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } }, { note: 'hi' });
 * const { tensors, metadata } = await readSafetensors('w.safetensors');
 * const reader = await openSafetensors('big.safetensors');   // lazy, one tensor at a time
 * const emb = toFloat32(await reader.read('model.embed_tokens.weight'));
 * await reader.close();
 * ```
 */
import { open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { atomicWrite } from './atomic.ts';
import {
  DTYPE_CTOR,
  SafetensorsError,
  encodeSafetensors,
  headerLengthOf,
  parseHeader,
  parseSafetensors,
  sealChecksum,
  type SafetensorsHeader,
  type SafetensorsTensor,
} from './safetensors-codec.ts';

export * from './safetensors-codec.ts';

export interface WriteOptions {
  /** Put a whole-file SHA-256 under this `__metadata__` key (see the codec's module doc). */
  checksumKey?: string;
  /** Called as data is written: (bytes written so far, total bytes of the file). */
  onProgress?: (written: number, total: number) => void;
}

/** Reads and validates a whole file; every tensor decoded. Files up to 2 GiB (Node's readFile limit). */
export async function readSafetensors(
  path: string,
  opts: { label?: string } = {},
): Promise<{ tensors: Record<string, SafetensorsTensor>; metadata: Record<string, string>; header: SafetensorsHeader }> {
  const label = opts.label ?? `safetensors file ${path}`;
  const bytes = await readFile(path);
  const parsed = parseSafetensors(bytes, label);
  const tensors: Record<string, SafetensorsTensor> = {};
  for (const t of parsed.header.tensors) tensors[t.name] = parsed.tensor(t.name);
  return { tensors, metadata: { ...parsed.header.metadata }, header: parsed.header };
}

/** Lazy reader: the header is read and validated on open; tensors are read one at a time. */
export interface SafetensorsReader {
  readonly path: string;
  readonly header: SafetensorsHeader;
  readonly names: readonly string[];
  read(name: string): Promise<SafetensorsTensor>;
  close(): Promise<void>;
}

export async function openSafetensors(path: string, opts: { label?: string } = {}): Promise<SafetensorsReader> {
  const label = opts.label ?? `safetensors file ${path}`;
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const prefix = new Uint8Array(8);
    await readFully(fh, prefix, 0);
    const n = headerLengthOf(prefix, size, label);
    const hb = new Uint8Array(n);
    await readFully(fh, hb, 8);
    const header = parseHeader(hb, size, label);
    return {
      path,
      header,
      names: header.tensors.map((t) => t.name),
      async read(name) {
        const info = header.byName.get(name);
        if (!info) throw new SafetensorsError(label, `has no tensor ${name}`);
        const buf = new Uint8Array(new ArrayBuffer(info.end - info.begin));
        await readFully(fh, buf, header.dataStart + info.begin);
        return { dtype: info.dtype, shape: info.shape, data: new DTYPE_CTOR[info.dtype](buf.buffer as ArrayBuffer) };
      },
      close: () => fh.close(),
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

async function readFully(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + off}`);
    off += bytesRead;
  }
}

/**
 * Writes a safetensors file atomically (temporary file, fsync, rename, fsync of the directory).
 */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, SafetensorsTensor>>,
  metadata: Readonly<Record<string, string>> = {},
  opts: WriteOptions = {},
): Promise<void> {
  const encoded = encodeSafetensors(tensors, metadata, opts.checksumKey);
  const { total } = encoded;
  const chunks = await sealChecksum(encoded);
  await atomicWrite(path, async (fh) => {
    let written = 0;
    const CHUNK = 8 << 20;
    for (const c of chunks) {
      for (let off = 0; off < c.length; off += CHUNK) {
        const part = c.subarray(off, Math.min(c.length, off + CHUNK));
        await writeFully(fh, part);
        written += part.length;
        opts.onProgress?.(written, total);
      }
    }
  });
}

async function writeFully(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}
