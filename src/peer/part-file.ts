/**
 * A download in progress on disk: `<out>.peercloud-part` receives chunks at
 * their offsets (positional writes into a file pre-sized with ftruncate, so
 * chunks may land in any order), and `<out>.peercloud-part.state` records
 * which chunks are in it, so that a re-run after an interruption fetches
 * only the rest. The final name appears only through `commit`: whole-file
 * SHA-256 check, fsync, rename, directory fsync (atomic-file.ts's recipe),
 * so no partial file is ever named as if complete.
 *
 * The state file is JSON (written atomically, replaced every
 * `stateEveryChunks` chunks or `stateEveryMs`, whichever comes first):
 *   { "version": 1, "manifestCid": "<cid>", "layout": "<hex>",
 *     "sizeBytes": n, "chunkCount": n, "done": [[start, end), …] }
 * `layout` is the SHA-256 of the chunk list (CIDs and sizes): a state file
 * is used only for the same content at the same offsets, whatever manifest
 * led to it. Before the state claims chunks, the part file is fdatasync'ed,
 * so a claimed chunk survives a power loss too. A state file that does not
 * parse or does not match starts the download over (it is only an
 * optimisation). Resumed chunks are re-verified by the caller (download.ts).
 */
import { createHash } from "node:crypto";
import { open, readFile, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { PeercloudError } from "../core/errors.js";
import { errorCode, fsyncDirectory, writeFileAtomic } from "./atomic-file.js";

export const PART_SUFFIX = ".peercloud-part";
export const STATE_SUFFIX = ".state";

export interface PartLayout {
  /** The file manifest's CID (or "<directory manifest CID>/<path>" for inline entries); informational. */
  manifestCid: string;
  sizeBytes: number;
  chunks: readonly { cid: string; sizeBytes: number }[];
}

export interface PartFileOptions {
  /** Default 16. */
  stateEveryChunks?: number;
  /** Default 1000. */
  stateEveryMs?: number;
  now?: () => number;
}

interface StateDoc {
  version: 1;
  manifestCid: string;
  layout: string;
  sizeBytes: number;
  chunkCount: number;
  done: [number, number][];
}

export class FileHashMismatchError extends PeercloudError {
  constructor(path: string, expected: string, actual: string) {
    super("file_hash_mismatch", `downloaded ${path} does not match the manifest's SHA-256 (expected ${expected}, got ${actual}); the partial file was removed, run again to start over`, 502, {
      expected,
      actual,
    });
    this.name = "FileHashMismatchError";
  }
}

export class PartFile {
  readonly partPath: string;
  readonly statePath: string;
  /** Chunk indexes the state file claimed when opened (to be re-verified). */
  readonly resumed: ReadonlySet<number>;
  private readonly done: Set<number>;
  private readonly layoutHash: string;
  private readonly stateEveryChunks: number;
  private readonly stateEveryMs: number;
  private readonly now: () => number;
  private sinceStateChunks = 0;
  private lastStateMs: number;
  private stateWrite: Promise<void> | null = null;
  private stateDirty = false;
  private closed = false;

  private constructor(
    readonly finalPath: string,
    private readonly handle: FileHandle,
    private readonly layout: PartLayout,
    layoutHash: string,
    resumed: Set<number>,
    options: PartFileOptions,
  ) {
    this.partPath = finalPath + PART_SUFFIX;
    this.statePath = this.partPath + STATE_SUFFIX;
    this.layoutHash = layoutHash;
    this.resumed = resumed;
    this.done = new Set(resumed);
    this.stateEveryChunks = options.stateEveryChunks ?? 16;
    this.stateEveryMs = options.stateEveryMs ?? 1000;
    this.now = options.now ?? Date.now;
    this.lastStateMs = this.now();
  }

  /** Opens (resuming when a matching state exists) or creates the part file for `finalPath`, pre-sized. */
  static async open(finalPath: string, layout: PartLayout, options: PartFileOptions = {}): Promise<PartFile> {
    const partPath = finalPath + PART_SUFFIX;
    const layoutHash = hashLayout(layout);
    const resumed = await readState(partPath + STATE_SUFFIX, layout, layoutHash);
    let handle: FileHandle;
    try {
      handle = await open(partPath, resumed ? "r+" : "w+", 0o600);
      if (resumed && (await handle.stat()).size !== layout.sizeBytes) {
        resumed.clear();
        await handle.truncate(0);
      }
    } catch (error) {
      if (errorCode(error) === "ENOENT" && resumed) {
        resumed.clear();
        handle = await open(partPath, "w+", 0o600);
      } else {
        throw error;
      }
    }
    await handle.truncate(layout.sizeBytes);
    return new PartFile(finalPath, handle, layout, layoutHash, resumed ?? new Set(), options);
  }

  async readAt(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    const out = Buffer.allocUnsafe(lengthBytes);
    let read = 0;
    while (read < lengthBytes) {
      const { bytesRead } = await this.handle.read(out, read, lengthBytes - read, offsetBytes + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return out.subarray(0, read);
  }

  async writeAt(bytes: Uint8Array, offsetBytes: number): Promise<void> {
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written, offsetBytes + written);
      written += bytesWritten;
    }
  }

  isDone(index: number): boolean {
    return this.done.has(index);
  }

  /** Forgets a resumed chunk that failed re-verification. */
  unmark(index: number): void {
    this.done.delete(index);
  }

  /** Records written chunks; persists the state when enough has changed. */
  async markDone(indexes: readonly number[]): Promise<void> {
    for (const index of indexes) this.done.add(index);
    this.sinceStateChunks += indexes.length;
    if (this.sinceStateChunks >= this.stateEveryChunks || this.now() - this.lastStateMs >= this.stateEveryMs) await this.saveState();
  }

  /** Writes the state now (serialised: one write at a time, the latest state wins). */
  async saveState(): Promise<void> {
    this.stateDirty = true;
    while (this.stateWrite) await this.stateWrite;
    if (!this.stateDirty || this.closed) return;
    this.stateDirty = false;
    this.sinceStateChunks = 0;
    this.lastStateMs = this.now();
    const doc: StateDoc = {
      version: 1,
      manifestCid: this.layout.manifestCid,
      layout: this.layoutHash,
      sizeBytes: this.layout.sizeBytes,
      chunkCount: this.layout.chunks.length,
      done: toRanges(this.done),
    };
    this.stateWrite = (async () => {
      await this.handle.datasync();
      await writeFileAtomic(this.statePath, JSON.stringify(doc));
    })();
    try {
      await this.stateWrite;
    } finally {
      this.stateWrite = null;
    }
  }

  /**
   * Checks the whole plaintext against `sha256Hex`, makes the file durable,
   * sets `mode` and renames it into place; removes the state. On a mismatch
   * the part and state are removed (nothing of them can be trusted).
   */
  async commit(sha256Hex: string, mode: number): Promise<void> {
    const hash = createHash("sha256");
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    for (let offset = 0; offset < this.layout.sizeBytes;) {
      const { bytesRead } = await this.handle.read(buffer, 0, Math.min(buffer.length, this.layout.sizeBytes - offset), offset);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      offset += bytesRead;
    }
    const actual = hash.digest("hex");
    if (actual !== sha256Hex) {
      await this.discard();
      throw new FileHashMismatchError(this.finalPath, sha256Hex, actual);
    }
    while (this.stateWrite) await this.stateWrite;
    await this.handle.chmod(mode);
    await this.handle.sync();
    this.closed = true;
    await this.handle.close();
    await rename(this.partPath, this.finalPath);
    await fsyncDirectory(dirname(this.finalPath));
    await rm(this.statePath, { force: true });
  }

  /** Stops, keeping the part file and a final state for the next run. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.saveState();
    } finally {
      this.closed = true;
      await this.handle.close().catch(() => {});
    }
  }

  /** Removes the part file and its state. */
  async discard(): Promise<void> {
    while (this.stateWrite) await this.stateWrite.catch(() => {});
    if (!this.closed) {
      this.closed = true;
      await this.handle.close().catch(() => {});
    }
    await rm(this.partPath, { force: true });
    await rm(this.statePath, { force: true });
  }
}

function hashLayout(layout: PartLayout): string {
  const hash = createHash("sha256").update(`${layout.sizeBytes}\n`);
  for (const chunk of layout.chunks) hash.update(`${chunk.cid} ${chunk.sizeBytes}\n`);
  return hash.digest("hex");
}

/** The chunk indexes a matching state file claims, or null (no state, or one for other content). */
async function readState(statePath: string, layout: PartLayout, layoutHash: string): Promise<Set<number> | null> {
  let doc: Partial<StateDoc>;
  try {
    doc = JSON.parse(await readFile(statePath, "utf8"));
  } catch {
    return null;
  }
  if (doc?.version !== 1 || doc.layout !== layoutHash || doc.sizeBytes !== layout.sizeBytes || doc.chunkCount !== layout.chunks.length || !Array.isArray(doc.done)) return null;
  const done = new Set<number>();
  for (const range of doc.done) {
    if (!Array.isArray(range) || range.length !== 2) return null;
    const [start, end] = range;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > layout.chunks.length || start >= end) return null;
    for (let i = start; i < end; i++) done.add(i);
  }
  return done;
}

/** {0,1,2,5} → [[0,3],[5,6]]. */
export function toRanges(indexes: Iterable<number>): [number, number][] {
  const sorted = [...indexes].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] === i) last[1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}
