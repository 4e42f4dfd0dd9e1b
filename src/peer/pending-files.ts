/**
 * The file side of the chunk store's group commit (chunk-store.ts, `put`
 * with `{ sync: false }` and `adoptTrusted`): a pending chunk is written to
 * a temp file without fsync, fsynced early in the background, and renamed
 * into place by the store's flush.
 *
 * Why a background writeback: without it the kernel writes nothing until
 * its dirty-page thresholds (gigabytes on a large machine) or the flush's
 * fsyncs, so a put would finish sealing and then wait for every byte to
 * reach the disk. Syncing files as soon as they are written, a few at a
 * time (WRITEBACK_CONCURRENCY), lets the disk work while ingest is still
 * sealing, and leaves libuv's other threads to the pipeline's reads.
 *
 * Why some calls here are synchronous: on this project's VM an async fs call
 * costs ~40-100 µs of CPU (the hand-off to libuv's pool and back), a
 * synchronous one of the same kind ~7-20 µs, and ingest made ~9 of them per
 * chunk. So the thread that seals a chunk also writes its temp file
 * (`spoolChunkSync`, on a seal worker, which has nothing else to wait for),
 * and the writeback opens and closes with synchronous calls, keeping only
 * the fsync itself, which waits for the disk, off the calling thread.
 */
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { open, rm } from "node:fs/promises";
import { join } from "node:path";
import { toHex } from "../core/bytes.js";
import { parseCid } from "../core/cid.js";
import { errorCode, fsyncFile, TEMP_FILE_PREFIX } from "./atomic-file.js";

/** Shard directory (under the store's chunks/) of a chunk: the hex of its digest's first byte. */
export function shardOf(digest: Uint8Array): string {
  return toHex(digest.subarray(0, 1));
}

/**
 * What `spoolChunkSync` did: wrote the chunk to the temp file `spooled`
 * (which ChunkStore.adoptTrusted then takes over), found the chunk already
 * committed under its name (`present`: nothing written), or failed (nothing
 * left behind; the caller stores the bytes the ordinary way, which reports
 * the store's own error, such as store_full for ENOSPC).
 */
export type SpoolOutcome = { spooled: string } | { present: true } | { failed: { code?: string; message: string } };

/**
 * Writes a sealed chunk to a new temp file in its shard directory under
 * `chunksDir` (ChunkStore.spoolDir), creating the shard directory if needed,
 * with synchronous calls and without fsync: the store's writeback and flush
 * make it durable once adopted. Meant for the thread that sealed the chunk
 * (ingest's seal workers, seal-worker.ts): `cid` must have been computed in
 * this process from these very bytes, as for ChunkStore.putTrusted. Never
 * throws.
 */
export function spoolChunkSync(chunksDir: string, cid: string, bytes: Uint8Array): SpoolOutcome {
  let path: string | undefined;
  let fd: number | undefined;
  try {
    const shardDir = join(chunksDir, shardOf(parseCid(cid).digest));
    // A re-put finds most chunks committed already: a stat instead of a write (the store then only touches them).
    if (existsSync(join(shardDir, cid))) return { present: true };
    path = join(shardDir, TEMP_FILE_PREFIX + randomBytes(8).toString("hex"));
    try {
      // "wx": never clobber, even in the (2^-64) case of a name collision.
      fd = openSync(path, "wx");
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
      mkdirSync(shardDir, { recursive: true });
      fd = openSync(path, "wx");
    }
    for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    closeSync(fd);
    fd = undefined;
    return { spooled: path };
  } catch (error) {
    try {
      if (fd !== undefined) closeSync(fd);
      if (path !== undefined) rmSync(path, { force: true });
    } catch {
      // Left for the store's start-up cleanup of temp files.
    }
    return { failed: { code: errorCode(error), message: error instanceof Error ? error.message : String(error) } };
  }
}

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
    for (let offset = 0; offset < bytes.length;) offset += (await handle.write(bytes, offset, bytes.length - offset)).bytesWritten;
    await handle.close();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(path, { force: true }).catch(() => {});
    throw error;
  }
  return path;
}

/**
 * fsyncs the writeback keeps in flight. One at a time fell behind ingest on
 * this project's disk (~2 ms per 1.2 MB chunk file, each a journal commit):
 * a 512 MiB put left a third of its chunks for the flush, 110-140 ms with
 * the cores idle. Two or three keep up (the flush then syncs 1-2 files) and
 * let the journal batch commits; three still leaves one of libuv's four
 * threads to the input reads.
 */
export const WRITEBACK_CONCURRENCY = 3;

/** The outcome of an early fsync: done, or the error (after which the data may be gone even if a retry succeeds). */
export type WritebackOutcome = "done" | { error: unknown };

interface Job {
  path: string;
  /** Asked just before syncing and again after: a file the store moved or dropped meanwhile is skipped or its outcome ignored. */
  wanted: () => boolean;
  settle: (outcome: WritebackOutcome) => void;
}

/** fsyncs queued files, oldest first, WRITEBACK_CONCURRENCY at a time, in the background. */
export class Writeback {
  private readonly queue: Job[] = [];
  private readonly runners = new Set<Promise<void>>();

  add(path: string, wanted: () => boolean, settle: (outcome: WritebackOutcome) => void): void {
    this.queue.push({ path, wanted, settle });
    if (this.runners.size >= WRITEBACK_CONCURRENCY) return;
    // Started a microtask later, so that the runner is in `runners` before its drain() can end and remove it.
    const runner: Promise<void> = Promise.resolve().then(() => this.drain(runner));
    this.runners.add(runner);
  }

  /** Resolves once the queue is empty (files queued meanwhile included). */
  async idle(): Promise<void> {
    while (this.runners.size > 0) await Promise.all(this.runners);
  }

  private async drain(self: Promise<void>): Promise<void> {
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
      this.runners.delete(self);
    }
  }
}
