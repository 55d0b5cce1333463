/**
 * HDF5 files in a browser: a page has no disk, so the file is the bytes the page handed to
 * `provideFiles` (lib/platform/browser/files.ts), copied into h5wasm's in-memory file system for
 * HDF5 to open, and removed from it when the file is closed. h5wasm's browser build is one ES
 * module with the wasm inside (4.1 MB), imported on first use. Reading only: writing HDF5 files
 * runs under Node (lib/platform/node/hdf5.ts).
 */
import type { File as H5File } from 'h5wasm';
import { Hdf5Error, hasHdf5Signature, withHdf5Errors, type H5wasm } from '../../datasets/hdf5.ts';
import { pathKind, providedFile } from './files.ts';

let loaded: Promise<H5wasm> | undefined;

/**
 * h5wasm's browser build, loaded once.
 * @returns The module, ready.
 */
export function loadH5wasm(): Promise<H5wasm> {
  if (loaded === undefined) {
    loaded = (async () => {
      const h5 = await import('h5wasm');
      await h5.ready;
      return h5;
    })();
    loaded.catch(() => {
      loaded = undefined;
    });
  }
  return loaded;
}

let opened = 0;

/**
 * Opens a provided file for reading; the same refusals and messages as under Node (a missing file,
 * a directory, no HDF5 signature).
 * @param path The path the file was provided under.
 * @param mode Only 'r' here.
 * @returns h5wasm and the open file (close it: that also frees its copy).
 */
export async function openHdf5(path: string, mode: 'r' | 'w'): Promise<{ h5: H5wasm; file: H5File }> {
  if (mode === 'w') throw new Hdf5Error(`${path}: writing HDF5 files runs under Node only`);
  const kind = pathKind(path);
  if (kind === 'missing') throw new Hdf5Error(`${path}: no such file`);
  const bytes = providedFile(path);
  if (bytes === undefined) throw new Hdf5Error(`${path}: not a file`);
  if (!hasHdf5Signature((offset) => bytes.subarray(offset, offset + 8), bytes.length)) throw new Hdf5Error(`${path}: not an HDF5 file (no HDF5 signature)`);
  const h5 = await loadH5wasm();
  const fs = h5.Module.FS;
  const name = `/rxrl-provided-${opened++}.h5`;
  fs.writeFile(name, bytes);
  try {
    const file = withHdf5Errors(h5, path, () => new h5.File(name, 'r'));
    const close = file.close.bind(file);
    file.close = () => {
      try {
        return close();
      } finally {
        fs.unlink(name);
      }
    };
    return { h5, file };
  } catch (e) {
    fs.unlink(name);
    throw e;
  }
}
