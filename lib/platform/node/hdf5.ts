/**
 * HDF5 files under Node: h5wasm's Node build (the host file system through Emscripten's NODERAWFS)
 * opens a path on disk. A browser resolves `#platform/hdf5` to lib/platform/browser/hdf5.ts (the
 * bytes a page provided, in h5wasm's in-memory file system).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { File as H5File } from 'h5wasm';
import { Hdf5Error, hasHdf5Signature, withHdf5Errors, type H5wasm } from '../../datasets/hdf5.ts';

let loaded: Promise<H5wasm> | undefined;

/**
 * h5wasm's Node build, loaded once.
 * @returns The module, ready.
 */
export function loadH5wasm(): Promise<H5wasm> {
  if (loaded === undefined) {
    loaded = (async () => {
      const h5 = (await import('h5wasm/node')) as H5wasm;
      await h5.ready;
      return h5;
    })();
    loaded.catch(() => {
      loaded = undefined;
    });
  }
  return loaded;
}

function signatureOnDisk(path: string, size: number): boolean {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(8);
    return hasHdf5Signature((offset) => {
      readSync(fd, buf, 0, 8, offset);
      return buf;
    }, size);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens `path` for reading ('r') or creates/truncates it ('w'). Reading refuses a missing file,
 * a directory and a file without the HDF5 signature with an `Hdf5Error` naming the path.
 * @param path The file.
 * @param mode 'r' or 'w'.
 * @returns h5wasm and the open file (close it).
 */
export async function openHdf5(path: string, mode: 'r' | 'w'): Promise<{ h5: H5wasm; file: H5File }> {
  if (mode === 'r') {
    let size: number;
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new Hdf5Error(`${path}: not a file`);
      size = st.size;
    } catch (e) {
      if (e instanceof Hdf5Error) throw e;
      throw new Hdf5Error(`${path}: no such file`);
    }
    if (!signatureOnDisk(path, size)) throw new Hdf5Error(`${path}: not an HDF5 file (no HDF5 signature)`);
  }
  const h5 = await loadH5wasm();
  const file = withHdf5Errors(h5, path, () => new h5.File(path, mode));
  return { h5, file };
}
