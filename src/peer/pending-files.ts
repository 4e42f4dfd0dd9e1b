/**
 * The file side of the chunk store's group commit (chunk-store.ts, `put`
 * with `{ sync: false }`): a pending chunk is written to a temp file without
 * fsync, fsynced early in the background, and renamed into place by the
 * store's flush.
 *
 * Why a background writeback: without it the kernel writes nothing until
 * its dirty-page thresholds (gigabytes on a large machine) or the flush's
 * fsyncs, so a put would finish sealing and then wait for every byte to
 * reach the disk. Syncing one file at a time as soon as it is written lets
 * the disk work while ingest is still sealing, and leaves libuv's other
 * threads to the pipeline's reads and writes.
 */
import { randomBytes } from "node:crypto";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { errorCode, TEMP_FILE_PREFIX } from "./atomic-file.js";

/**
 * Writes `bytes` to a new temp file in `dir` (the target's own directory, so
 * the later rename stays within one filesystem), without fsync. Returns its
 * path; on failure nothing is left behind.
 */
export async function writeTempFile(dir: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, TEMP_FILE_PREFIX + randomBytes(8).toString("hex"));
  // "wx": never clobber, even in the (2^-64) case of a name collision.
  const handle = await open(path, "wx");
  try {
    for (let offset = 0; offset < bytes.length; ) offset += (await handle.write(bytes, offset, bytes.length - offset)).bytesWritten;
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(path, { force: true }).catch(() => {});
    throw error;
  }
  return path;
}

/** fsync through a read-only descriptor (Linux and macOS flush the file's data and metadata whatever the open mode). */
export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The outcome of an early fsync: done, or the error (after which the data may be gone even if a retry succeeds). */
export type WritebackOutcome = "done" | { error: unknown };

interface Job {
  path: string;
  /** Asked just before syncing and again after: a file the store moved or dropped meanwhile is skipped or its outcome ignored. */
  wanted: () => boolean;
  settle: (outcome: WritebackOutcome) => void;
}

/** fsyncs queued files one at a time, oldest first, in the background. */
export class Writeback {
  private readonly queue: Job[] = [];
  private running: Promise<void> | null = null;

  add(path: string, wanted: () => boolean, settle: (outcome: WritebackOutcome) => void): void {
    this.queue.push({ path, wanted, settle });
    // Started a microtask later, so that `running` is set before drain() can end and clear it.
    this.running ??= Promise.resolve().then(() => this.drain());
  }

  /** Resolves once the queue is empty (files queued meanwhile included). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      for (let job = this.queue.shift(); job; job = this.queue.shift()) {
        if (!job.wanted()) continue;
        let outcome: WritebackOutcome;
        try {
          await fsyncFile(job.path);
          outcome = "done";
        } catch (error) {
          // ENOENT: renamed by a flush or removed by the store meanwhile; the flush decides what that means.
          if (errorCode(error) === "ENOENT") continue;
          outcome = { error };
        }
        if (job.wanted()) job.settle(outcome);
      }
    } finally {
      // In the same turn as the loop's last (empty) check, so no job added meanwhile is left unserved.
      this.running = null;
    }
  }
}
