/**
 * The chunk store's pin markers (chunk-store.ts): `pins/<cid>`, an empty
 * file whose presence means "never evict <cid>". The store reads only the
 * names (at open), so how a marker is made is this module's business.
 *
 * Each marker is a hard link to one empty file, `pins/.empty`, rather than
 * a file of its own. A link is a directory entry; a file is a directory
 * entry and an inode, and finding a free inode was the dearest single step
 * of storing a chunk on this project's disk: ext4 without a journal steps
 * over every inode deleted in the last minutes (`recently_deleted`), which
 * measured ~300-450 µs of CPU per new empty file against ~10-30 µs per link
 * (tmpfs: ~20 against ~8). Ingest pins every chunk, so that was one inode
 * per chunk. To every reader (the store's open, `ls`, an older version of
 * the store) a link is just an empty file named pins/<cid>.
 *
 * The source is made with the first marker. Where no link can be made (no
 * source yet or no longer, a filesystem without hard links, ext4's limit of
 * 65,000 links per inode) the source is replaced once and, failing that,
 * the marker is an empty file of its own.
 *
 * Markers are created with synchronous calls (~10-30 µs; an async call
 * costs more CPU than that in libuv's hand-off alone, see pending-files.ts).
 * Durability is `sync()`'s: the directory, and the source's link count,
 * which fsyncing the directory alone does not write on every filesystem
 * (ext4 without a journal): a count lower on disk than the links there
 * would let later unpins free the inode under the remaining markers.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, openSync, renameSync, rmSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { errorCode, fsyncDirectory, fsyncFile, TEMP_FILE_PREFIX } from "./atomic-file.js";

/** The empty file every marker links to; not a CID, so the store's open ignores it as a pin. */
export const PIN_SOURCE_NAME = ".empty";

export class PinMarkers {
  private readonly source: string;
  /** Links were made to the source since its last fsync. */
  private sourceDirty = false;

  constructor(readonly dir: string) {
    this.source = join(dir, PIN_SOURCE_NAME);
  }

  /** Creates the marker of `cid` (a canonical CID: the caller parsed it) if it does not exist yet. Throws what the filesystem throws (ENOSPC…). */
  create(cid: string): void {
    const marker = join(this.dir, cid);
    if (this.tryLink(marker)) return;
    try {
      this.renewSource();
    } catch {
      // Then an own file, below, which reports the filesystem's error if it fails too.
    }
    if (this.tryLink(marker)) return;
    closeSync(openSync(marker, "a"));
  }

  /** Removes the marker of `cid` and makes that durable. */
  async remove(cid: string): Promise<void> {
    await rm(join(this.dir, cid), { force: true });
    await fsyncDirectory(this.dir);
  }

  /** Makes every marker created so far durable. */
  async sync(): Promise<void> {
    await fsyncDirectory(this.dir);
    if (!this.sourceDirty) return;
    this.sourceDirty = false;
    try {
      await fsyncFile(this.source);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return; // replaced meanwhile: renewSource synced the old one
      this.sourceDirty = true;
      throw error;
    }
  }

  private tryLink(marker: string): boolean {
    try {
      linkSync(this.source, marker);
      this.sourceDirty = true;
      return true;
    } catch (error) {
      return errorCode(error) === "EEXIST";
    }
  }

  /** A new empty source, atomically in place of the old one (whose links stay valid, its count synced first). */
  private renewSource(): void {
    if (this.sourceDirty) {
      try {
        const fd = openSync(this.source, "r");
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        if (errorCode(error) !== "ENOENT") throw error;
      }
      this.sourceDirty = false;
    }
    const temp = join(this.dir, TEMP_FILE_PREFIX + randomBytes(8).toString("hex"));
    try {
      closeSync(openSync(temp, "wx"));
      renameSync(temp, this.source);
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
  }
}
