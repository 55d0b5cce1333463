/**
 * Checkpoint files on disk (Node): `saveCheckpoint` writes one `.safetensors` file atomically
 * (temporary file, fsync, rename), `readCheckpoint` / `loadCheckpoint` read it whole after checking
 * what the path is. The format, in memory, is lib/io/checkpoint-codec.ts (re-exported here: the file
 * layout, verification and loading rules are documented there); the browser build uses the codec
 * without this module.
 *
 * ```ts
 * await saveCheckpoint('runs/x/ckpt.safetensors', { params: lm.params.map, optimizer: opt, config: cfg,
 *   state: { iteration: 12, rng: rng.state(), lambda: dual.state } });
 * const { state } = await loadCheckpoint('runs/x/ckpt.safetensors', { params: lm.params.map, optimizer: opt,
 *   expectConfig: cfg });
 * ```
 */
import { open, stat } from 'node:fs/promises';
import { SafetensorsError, headerLengthOf, writeSafetensors } from './safetensors.ts';
import {
  CheckpointError,
  META_SHA256,
  checkpointTensors,
  loadCheckpointBytes,
  readCheckpointBytes,
  type CheckpointContents,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  type SaveCheckpointOptions,
} from './checkpoint-codec.ts';

export * from './checkpoint-codec.ts';

/**
 * Writes a checkpoint atomically (a crash mid-write keeps the previous file).
 * @param path The `.safetensors` file.
 * @param opts What to save (see `SaveCheckpointOptions`).
 */
export async function saveCheckpoint(path: string, opts: SaveCheckpointOptions): Promise<void> {
  const { tensors, metadata } = await checkpointTensors(opts);
  await writeSafetensors(path, tensors, metadata, { checksumKey: META_SHA256, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
}

/**
 * A checkpoint file's bytes, after checking what it is without reading it whole: a regular file
 * (not `/dev/zero`, a FIFO or a directory, which would be read forever or fail obscurely), whose
 * safetensors header length is sane and fits in the file. Errors are `CheckpointError`s naming it.
 * @param path The file.
 * @returns Its bytes.
 */
export async function readCheckpointFile(path: string): Promise<Uint8Array> {
  const fail = (detail: string): never => {
    throw new CheckpointError(path, detail);
  };
  try {
    const st = await stat(path);
    if (st.isDirectory()) fail('is a directory, not a checkpoint file');
    if (!st.isFile()) fail('is not a regular file');
    const fh = await open(path, 'r');
    try {
      const head = new Uint8Array(Math.min(8, st.size));
      await fh.read(head, 0, head.length, 0);
      try {
        headerLengthOf(head, st.size, `checkpoint ${path}`); // a sane header length that fits in the file
      } catch (e) {
        if (e instanceof SafetensorsError) fail(e.detail);
        throw e;
      }
      const bytes = new Uint8Array(st.size);
      let off = 0;
      while (off < st.size) {
        const { bytesRead } = await fh.read(bytes, off, st.size - off, off);
        if (bytesRead === 0) break;
        off += bytesRead;
      }
      if (off !== st.size) fail(`changed while being read (${off} of ${st.size} bytes)`);
      return bytes;
    } finally {
      await fh.close();
    }
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? 'no such file' : `cannot be read (${(e as Error).message})`);
  }
}

/**
 * Reads and verifies a checkpoint file without assigning anything.
 * @param path The file.
 * @param opts `expectConfig`: refuse a checkpoint written for another config.
 * @returns Its config, run state, metadata, weights and optimizer states.
 */
export async function readCheckpoint(path: string, opts: { expectConfig?: unknown } = {}): Promise<CheckpointContents> {
  return readCheckpointBytes(await readCheckpointFile(path), { ...opts, label: path });
}

/**
 * Verifies a checkpoint file completely, then loads weights into `params` and state into
 * `optimizer`. Nothing is assigned unless everything checks out.
 * @param path The file.
 * @param opts What to load into (see `LoadCheckpointOptions`).
 * @returns The config and run state.
 */
export async function loadCheckpoint(path: string, opts: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  return loadCheckpointBytes(await readCheckpointFile(path), { ...opts, label: path });
}
