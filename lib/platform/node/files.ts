/**
 * Files, under Node: the disk. What the pipelines that read files (a D4RL dataset, a base
 * checkpoint, a Hugging Face folder) and the dataset writer use, so that the same modules run in a
 * browser, where `#platform/files` resolves to lib/platform/browser/files.ts (the bytes a page
 * hands to `provideFiles`).
 */
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { HfModel } from '../../models/hf.ts';

export { readCheckpointFile, saveCheckpoint } from '../../io/checkpoint.ts';

/** Where files come from here: the disk (a browser: the bytes its page provided). */
export const FILE_SOURCE: 'disk' | 'provided' = 'disk';

/**
 * Under Node rxrl reads files from disk; there is nothing to provide.
 * @param _files Ignored.
 * @returns Never: throws, naming what to do instead.
 */
export function provideFiles(_files: Readonly<Record<string, Uint8Array>>): never {
  throw new Error('provideFiles: under Node rxrl reads files from disk (provideFiles is for a browser, which has none)');
}

/**
 * What `path` is.
 * @param path A path, relative to the working directory or absolute.
 * @returns `file`, `directory`, `other` (a device, FIFO, ...) or `missing`.
 */
export function pathKind(path: string): 'file' | 'directory' | 'other' | 'missing' {
  try {
    const st = statSync(path);
    return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
  } catch {
    return 'missing';
  }
}

/**
 * `name` inside the directory `dir` (node:path's `join`: normalised).
 * @param dir The directory.
 * @param name A file name or relative path.
 * @returns The joined path.
 */
export function joinPath(dir: string, name: string): string {
  return join(dir, name);
}

/**
 * A fresh temporary name beside `path` (same directory: a rename onto `path` is atomic).
 * @param path The file to be written.
 * @returns `dir/.name.tmp-<pid>-<random>`.
 */
export function tempPathBeside(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/**
 * Renames `from` over `to` (atomic on one file system).
 * @param from The existing file.
 * @param to Its new name.
 */
export function renameFile(from: string, to: string): void {
  renameSync(from, to);
}

/**
 * Removes a file if it exists.
 * @param path The file.
 */
export function removeFile(path: string): void {
  rmSync(path, { force: true });
}

/**
 * A local Hugging Face model folder (lib/models/hf.ts, loaded on first use).
 * @param folder config.json, *.safetensors, tokenizer.json.
 * @returns The model and its tokenizer.
 */
export async function loadHfModel(folder: string): Promise<HfModel> {
  const hf = await import('../../models/hf.ts');
  return hf.loadHfModel(folder);
}
