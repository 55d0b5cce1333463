/**
 * Files, in a browser: a page has no disk, so the files a pipeline names (a D4RL dataset, a base
 * checkpoint, an `sft` run directory) are the bytes the page hands to `provideFiles` first, under
 * the paths the pipeline file uses (`provideFiles({ 'test/data/hopper-tiny.hdf5': bytes })`).
 * Reading one that was not provided fails as a missing file does under Node, with the same
 * message; writing files and loading Hugging Face folders run under Node only. Node resolves
 * `#platform/files` to lib/platform/node/files.ts (the disk).
 */
import { CheckpointError, type SaveCheckpointOptions } from '../../io/checkpoint-codec.ts';
import { SafetensorsError, headerLengthOf } from '../../io/safetensors-codec.ts';
import type { HfModel } from '../../models/hf.ts';

/** Where files come from here: the bytes the page provided (Node: the disk). */
export const FILE_SOURCE: 'disk' | 'provided' = 'provided';

const provided = new Map<string, Uint8Array>();

/** `a/./b//c/../d` → `a/b/d`; a leading `./` dropped; `/` kept for absolute paths. */
function normalize(path: string): string {
  const absolute = path.startsWith('/');
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (part !== '..' || !absolute) out.push(part);
  }
  const joined = out.join('/');
  return absolute ? `/${joined}` : joined || '.';
}

/**
 * Makes files readable by the pipelines of this page, by path (added to those provided before; a
 * path given again is replaced). The bytes are kept, not copied: do not change them afterwards.
 * @param files Path → contents, e.g. `{ 'test/data/hopper-tiny.hdf5': new Uint8Array(await (await fetch(url)).arrayBuffer()) }`.
 */
export function provideFiles(files: Readonly<Record<string, Uint8Array>>): void {
  for (const [path, bytes] of Object.entries(files)) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`provideFiles: ${path}: expected a Uint8Array, got ${typeof bytes}`);
    provided.set(normalize(path), bytes);
  }
}

/**
 * The bytes provided under `path` (lib/platform/browser/hdf5.ts reads them).
 * @param path The path.
 * @returns The bytes, or undefined when none were provided under it.
 */
export function providedFile(path: string): Uint8Array | undefined {
  return provided.get(normalize(path));
}

/**
 * What `path` is among the provided files: a file, a directory (a prefix of provided paths) or missing.
 * @param path The path a pipeline file names.
 * @returns `file`, `directory` or `missing` (never `other` here).
 */
export function pathKind(path: string): 'file' | 'directory' | 'other' | 'missing' {
  const p = normalize(path);
  if (provided.has(p)) return 'file';
  const dir = p === '.' ? '' : `${p}/`;
  for (const k of provided.keys()) if (k.startsWith(dir)) return 'directory';
  return 'missing';
}

/**
 * `name` inside the directory `dir`, normalised as node:path's `join` does.
 * @param dir The directory.
 * @param name A file name or relative path.
 * @returns The joined path.
 */
export function joinPath(dir: string, name: string): string {
  return normalize(dir === '' ? name : `${dir}/${name}`);
}

/**
 * A provided checkpoint file's bytes, checked as Node checks a file on disk (same messages).
 * @param path The file.
 * @returns Its bytes.
 */
export async function readCheckpointFile(path: string): Promise<Uint8Array> {
  const kind = pathKind(path);
  if (kind === 'missing') throw new CheckpointError(path, 'no such file');
  if (kind === 'directory') throw new CheckpointError(path, 'is a directory, not a checkpoint file');
  const bytes = provided.get(normalize(path))!;
  try {
    headerLengthOf(bytes.subarray(0, 8), bytes.length, `checkpoint ${path}`);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(path, e.detail);
    throw e;
  }
  return bytes;
}

/** A browser writes no files. */
function noWriting(what: string, path: string): never {
  throw new Error(`${path}: ${what} writes a file, which runs under Node only (in a browser, make the bytes in memory, e.g. checkpointBytes)`);
}

/**
 * Writing a checkpoint file runs under Node only.
 * @param path The file.
 * @param _opts What would be saved.
 */
export async function saveCheckpoint(path: string, _opts: SaveCheckpointOptions): Promise<void> {
  noWriting('saveCheckpoint', path);
}

/**
 * Temporary files are for writing, which runs under Node only.
 * @param path The file to be written.
 * @returns Never.
 */
export function tempPathBeside(path: string): string {
  return noWriting('writing', path);
}

/**
 * Renaming files runs under Node only.
 * @param from The file.
 * @param _to Its new name.
 */
export function renameFile(from: string, _to: string): void {
  noWriting('renaming', from);
}

/**
 * Removes a provided file (what is left of a failed write under Node).
 * @param path The file.
 */
export function removeFile(path: string): void {
  provided.delete(normalize(path));
}

/**
 * Loading a Hugging Face model folder runs under Node only (lib/models/hf.ts reads the folder).
 * @param folder The folder.
 * @returns Never.
 */
export async function loadHfModel(folder: string): Promise<HfModel> {
  throw new Error(`${folder}: loading a Hugging Face model folder runs under Node only`);
}
