/**
 * Atomic file writes, the one place for them (checkpoints, run directories, reports): a fresh
 * temporary file `.<name>.tmp-<pid>-<random>` in the target's directory is written, fsynced,
 * closed and renamed over the target, and the directory is fsynced so the rename is durable. A
 * crash leaves the old file intact and at most a stale temporary, which the next write to that
 * target removes once its writer process is gone.
 *
 * ```ts
 * await writeFileAtomic('runs/x/report.html', html);
 * writeFileAtomicSync('runs/x/summary.json', JSON.stringify(summary));
 * ```
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Temporary-file name pattern of `atomicWrite` for a target basename. */
function tmpPattern(base: string): RegExp {
  const esc = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^\\.${esc}\\.tmp-(\\d+)-[0-9a-f]+$`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporary files left by crashed writers of `path` (`.<name>.tmp-<pid>-<hex>` whose
 * pid is not a running process). Returns the names removed.
 */
export async function removeStaleTempFiles(path: string): Promise<string[]> {
  return removeStaleTempFilesSync(path);
}

/**
 * Writes `path` atomically: `write` fills a fresh temporary file in the same directory, which is
 * then fsynced, closed and renamed over `path`; the directory is fsynced so the rename is durable.
 * On any error the temporary file is removed and `path` is untouched.
 */
export async function atomicWrite(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  const dir = dirname(path);
  await removeStaleTempFiles(path);
  const tmp = tmpName(path);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await write(fh);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | null = null;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    if (!dirSyncUnsupported(e)) throw e;
  } finally {
    await fh?.close();
  }
}

function tmpName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** `atomicWrite` of a whole string (UTF-8) or byte buffer. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  await atomicWrite(path, async (fh) => {
    let off = 0;
    while (off < bytes.length) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
  });
}

/**
 * The synchronous `writeFileAtomic` (for callers that must not yield to the event loop between
 * deciding to write and having written): same temporary file, fsync, rename and directory fsync.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const dir = dirname(path);
  removeStaleTempFilesSync(path);
  const tmp = tmpName(path);
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDirSync(dir);
}

function removeStaleTempFilesSync(path: string): string[] {
  const dir = dirname(path);
  const re = tmpPattern(basename(path));
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = re.exec(n);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    rmSync(join(dir, n), { force: true });
    removed.push(n);
  }
  return removed;
}

function fsyncDirSync(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch (e) {
    if (!dirSyncUnsupported(e)) throw e;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Some platforms cannot open or fsync a directory (Windows: EISDIR/EPERM); the rename stands. */
function dirSyncUnsupported(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EPERM' || code === 'EINVAL' || code === 'EBADF';
}
