/**
 * Crash-safe file replacement for the native peer: chunks, config files,
 * identity keys, finished downloads.
 *
 * A reader (or a restarted process) sees either the old file or the complete
 * new one, never a prefix: the data goes to a uniquely named temp file in the
 * target's own directory (rename is only atomic within one filesystem), the
 * file is fsynced, renamed over the target, and the directory is fsynced so
 * the rename itself survives a power loss (the classic POSIX recipe; see
 * rename(2) and "Files are hard" by Dan Luu). On any error the temp file is
 * removed. A process killed mid-write leaves only a `.tmp-*` file, which
 * `cleanupTempFiles` removes on the next start.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsync, openSync } from "node:fs";
import { open, readdir, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Every temp file starts with this; no committed file name may (CIDs start with "b", config names with letters). */
export const TEMP_FILE_PREFIX = ".tmp-";

export type AtomicFileData = Uint8Array | string | Iterable<Uint8Array> | AsyncIterable<Uint8Array | string>;

export interface WriteFileAtomicOptions {
  /**
   * Permission bits of the new file, applied with chmod so the process umask
   * cannot widen or narrow them (use 0o600 for secrets). Default: 0o666
   * filtered by the umask, like `fs.writeFile`.
   */
  mode?: number;
  /**
   * Runs after the data is written and fsynced, just before the rename makes
   * it visible. Throwing aborts the write and removes the temp file; used to
   * check a digest computed while streaming.
   */
  beforeCommit?: () => void | Promise<void>;
}

/** Atomically creates or replaces `targetPath` with `data`. */
export async function writeFileAtomic(targetPath: string, data: AtomicFileData, options: WriteFileAtomicOptions = {}): Promise<void> {
  const dir = dirname(targetPath);
  const tempPath = join(dir, tempFileName());
  // "wx": never clobber, even in the (2^-64) case of a name collision.
  let handle: FileHandle | undefined = await open(tempPath, "wx", options.mode ?? 0o666);
  try {
    if (typeof data === "string" || data instanceof Uint8Array) {
      await writeAll(handle, typeof data === "string" ? Buffer.from(data, "utf8") : data);
    } else {
      for await (const piece of data as AsyncIterable<Uint8Array | string>) {
        await writeAll(handle, typeof piece === "string" ? Buffer.from(piece, "utf8") : piece);
      }
    }
    if (options.mode !== undefined) await handle.chmod(options.mode);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await options.beforeCommit?.();
    await rename(tempPath, targetPath);
  } catch (error) {
    if (handle) await handle.close().catch(() => {});
    await rm(tempPath, { force: true }).catch(() => {});
    throw error;
  }
  await fsyncDirectory(dir);
}

/**
 * Removes the temp files a killed writer left in `dir` (not recursive).
 * Call only while no writer is active in that directory, i.e. on startup.
 * Returns how many were removed; a missing directory counts as clean.
 */
export async function cleanupTempFiles(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return 0;
    throw error;
  }
  let removed = 0;
  for (const name of names) {
    if (!isTempFileName(name)) continue;
    await rm(join(dir, name), { force: true, recursive: true });
    removed++;
  }
  return removed;
}

export function isTempFileName(pathOrName: string): boolean {
  return basename(pathOrName).startsWith(TEMP_FILE_PREFIX);
}

/**
 * Makes a completed create, rename or unlink in `dir` durable. Platforms that
 * cannot open or sync a directory (Windows, some network filesystems) report
 * it with these codes; there the rename is as durable as the OS makes it.
 */
export async function fsyncDirectory(dir: string): Promise<void> {
  try {
    await fsyncFile(dir);
  } catch (error) {
    if (!DIR_SYNC_UNSUPPORTED.has(errorCode(error) ?? "")) throw error;
  }
}

/**
 * fsync through a read-only descriptor (Linux and macOS flush a file's or a
 * directory's data and metadata whatever the open mode). Only the fsync,
 * which waits for the disk, goes to libuv's pool; opening and closing are
 * synchronous: on this project's VM an async fs call costs ~40-100 µs of
 * CPU (the hand-off to libuv's pool and back), a synchronous one of the
 * same kind ~7-20 µs, and a put's flush syncs a file per chunk and up to
 * 256 shard directories (pending-files.ts).
 */
export async function fsyncFile(path: string): Promise<void> {
  const fd = openSync(path, "r");
  try {
    await new Promise<void>((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
  } finally {
    closeSync(fd);
  }
}

const DIR_SYNC_UNSUPPORTED = new Set(["EISDIR", "EPERM", "EACCES", "EINVAL", "ENOTSUP", "EOPNOTSUPP"]);

export function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && typeof (error as NodeJS.ErrnoException).code === "string" ? (error as NodeJS.ErrnoException).code : undefined;
}

function tempFileName(): string {
  return TEMP_FILE_PREFIX + randomBytes(8).toString("hex");
}

/** FileHandle.write may write less than asked (signals, pipes); loop until all of it is down. */
async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}
