/**
 * The native peer's local chunk store: one file per chunk, named by its CID.
 *
 * Layout under the store root:
 *   chunks/<2 hex chars>/<cid>  the ciphertext; the shard is the first byte of
 *                               the SHA-256 digest, so 256 directories share
 *                               the load evenly whatever the CIDs look like
 *   pins/<cid>                  an empty marker: this chunk is never evicted
 *                               (a hard link to pins/.empty where the
 *                               filesystem allows: one inode for all of
 *                               them, see pin-markers.ts)
 *
 * Invariants, and why they hold:
 * - A chunk file always holds exactly the bytes its CID names. `put` hashes
 *   before anything is written (`putTrusted` skips that for bytes this
 *   process sealed itself, see there), files appear only through an atomic
 *   rename (see atomic-file.ts) made after the data is fsynced, `scrub`
 *   re-hashes to catch bit rot, and a killed process leaves only `.tmp-*`
 *   files that `open` removes.
 * - Group commit (`{ sync: false }`, used by ingest): one fsync per chunk
 *   and per directory entry costs more than sealing the chunk, so such a put
 *   writes its temp file and returns; the chunk is readable at once (from
 *   the temp file) but *pending*. A background writeback fsyncs pending
 *   files a few at a time meanwhile, so the disk writes while ingest seals.
 *   `flush()` makes every pending chunk durable in one pass: pin markers'
 *   directory first, then per chunk fsync (unless the writeback did) +
 *   rename, then each touched shard directory once. The rename waits for
 *   the fsync on purpose: renaming first would let a power cut leave a file
 *   under a CID name with its data never written (delayed allocation gives
 *   an empty file), which `put` would then take for the chunk and a re-put
 *   would never repair. A crash before `flush()` loses pending chunks
 *   cleanly: their temp files are removed at `open`. Pending chunks are not
 *   announced: `added` fires, and `list()` shows them, only once durable.
 *   `adoptTrusted` is the same put for a temp file another thread already
 *   wrote (ingest's seal workers, spoolChunkSync in pending-files.ts): the
 *   store takes the file over instead of writing the bytes itself. Until it
 *   does, such a file is a `.tmp-*` file like any other (removed at `open`
 *   after a crash) and is not counted against `limitBytes`.
 * - No path is built from untrusted input: every name passes `parseCid`,
 *   which accepts only canonical base32 CIDv1 (no "/", "..", upper case).
 * - Stored bytes stay within `limitBytes`: a put reserves its size first and
 *   evicts unpinned chunks least-recently-used first; if pinned data leaves
 *   no room it fails with `StoreFullError`, as does ENOSPC from the OS.
 * - Per-CID operations that change files (put, pin, unpin, delete, the unlink
 *   after eviction, scrub) run one at a time per CID, so concurrent puts of
 *   one chunk cannot double-count it and a deferred eviction unlink never
 *   deletes a copy that was re-added meanwhile. Reads take no lock: a reader
 *   opens the file first, and POSIX keeps an unlinked file's bytes readable
 *   through open descriptors, so a read returns all bytes or null.
 *
 * Recency (for LRU) lives in memory; after a restart it is seeded from the
 * files' atime/mtime, which is approximate by design (no write per read).
 */
import { EventEmitter } from "node:events";
import { createHash } from "node:crypto";
import { createReadStream, renameSync } from "node:fs";
import { mkdir, open, readdir, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { cidFromSha256, isCid, parseCid, type ParsedCid } from "../core/cid.js";
import { PeercloudError } from "../core/errors.js";
import { DEFAULT_PARAMS } from "../core/params.js";
import { cleanupTempFiles, errorCode, fsyncDirectory, fsyncFile, isTempFileName, writeFileAtomic } from "./atomic-file.js";
import { shardOf, Writeback, writeTempFile, type WritebackOutcome } from "./pending-files.js";
import { PinMarkers } from "./pin-markers.js";

export { shardOf };

/** Bytes that do not hash to the CID they were offered under. */
export class ChunkMismatchError extends PeercloudError {
  constructor(cid: string, actualCid: string) {
    super("chunk_mismatch", `chunk bytes do not match ${cid} (they hash to ${actualCid})`, 422, { cid, actualCid });
    this.name = "ChunkMismatchError";
  }
}

/** No room: pinned data fills the storage limit, or the filesystem itself is full. */
export class StoreFullError extends PeercloudError {
  constructor(message: string, details: Record<string, unknown>) {
    super("store_full", message, 507, details);
    this.name = "StoreFullError";
  }
}

export class ChunkTooLargeError extends PeercloudError {
  constructor(sizeBytes: number, maxChunkBytes: number) {
    super("chunk_too_large", `chunk of ${sizeBytes} bytes exceeds the ${maxChunkBytes}-byte maximum`, 413, { sizeBytes, maxChunkBytes });
    this.name = "ChunkTooLargeError";
  }
}

/** A byte range outside the chunk (HTTP 416). */
export class ChunkRangeError extends PeercloudError {
  constructor(message: string) {
    super("range_not_satisfiable", message, 416);
    this.name = "ChunkRangeError";
  }
}

export class StoreClosedError extends PeercloudError {
  constructor() {
    super("store_closed", "the chunk store is closed", 503);
    this.name = "StoreClosedError";
  }
}

export interface ChunkStoreOptions {
  /** Upper bound on stored chunk bytes (not counting filesystem overhead). Default: unlimited (Infinity). */
  limitBytes?: number;
  /** Largest chunk `put` accepts. Default: DEFAULT_PARAMS.maxChunkBytes (8 MiB); the daemon passes the network's value. */
  maxChunkBytes?: number;
  /** Clock for recency; injectable for tests and the simulator. Default: Date.now. */
  now?: () => number;
}

/** "corrupt" also covers a chunk file that vanished from under the store. */
export type RemovalReason = "evicted" | "deleted" | "corrupt";

export interface ChunkStoreEvents {
  /** A chunk became readable and durable (announce it): at put, or at flush() for `{ sync: false }` puts. Listeners run synchronously and must not throw. */
  added: [cid: string, sizeBytes: number];
  /** A chunk stopped being served (withdraw it). Emitted before its file is unlinked. */
  removed: [cid: string, reason: RemovalReason];
}

export interface ChunkInfo {
  cid: string;
  sizeBytes: number;
  pinned: boolean;
  lastAccessMs: number;
}

export interface ChunkStoreStats {
  chunks: number;
  usedBytes: number;
  pinnedBytes: number;
  /** Infinity when unlimited. */
  limitBytes: number;
  /** Room left under the limit, after bytes reserved by puts in progress. */
  freeBytes: number;
}

/** A byte range [start, end) of a chunk: `end` is exclusive, like `Uint8Array.slice`, and clamped to the chunk size. */
export interface ByteRange {
  start?: number;
  end?: number;
}

export interface ChunkReadStream {
  /** The requested bytes. Consume or destroy it: it owns an open file descriptor. */
  stream: Readable;
  /** Size of the whole chunk. */
  sizeBytes: number;
  start: number;
  /** Exclusive. */
  end: number;
}

export interface PutOptions {
  /** Never evict this chunk (persistently). Default false. */
  pin?: boolean;
  /**
   * Default true: the chunk is durable when the promise resolves. false:
   * group commit, the chunk is durable (and announced) once a later
   * `flush()` resolves; a crash before that loses it cleanly.
   */
  sync?: boolean;
}

export interface ScrubOptions {
  onCorrupt?: (cid: string) => void | Promise<void>;
  /** Stops the scrub between chunks (it rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface ScrubResult {
  checked: number;
  corrupt: string[];
}

interface Entry {
  sizeBytes: number;
  pinned: boolean;
  lastAccessMs: number;
  /** Set while a `{ sync: false }` put's bytes sit in this temp file (not yet renamed into place). */
  pendingPath?: string;
  /** The early writeback fsynced `pendingPath` (flush need not), or failed to (flush must drop the chunk). */
  pendingSync?: WritebackOutcome;
}

/** What a put stores: bytes to write, or a temp file already written in the chunk's shard directory (adoptTrusted). */
type PutSource = { bytes: Uint8Array } | { spooled: string; sizeBytes: number };

/** An evicted chunk whose file is unlinked after the put that evicted it. */
interface Victim {
  cid: string;
  pendingPath?: string;
}

const CHUNKS_DIR = "chunks";
const PINS_DIR = "pins";
const SHARD_NAME = /^[0-9a-f]{2}$/;
const SCRUB_READ_BYTES = 1024 * 1024;
/**
 * Read size of openRead's streams: a typical chunk (1 MiB average) in one or
 * a few reads rather than createReadStream's 64 KiB default, i.e. ~16 times
 * fewer syscalls, buffers and socket writes per chunk served — the seeds of a
 * swarm spend their CPU there.
 */
const READ_CHUNK_BYTES = 1024 * 1024;
/** fsyncs a flush keeps in flight: enough for the disk and the journal to batch them, few enough to leave libuv threads for reads. */
const FLUSH_CONCURRENCY = 3;

export class ChunkStore extends EventEmitter<ChunkStoreEvents> {
  readonly rootDir: string;
  readonly limitBytes: number;
  readonly maxChunkBytes: number;
  private readonly now: () => number;
  private readonly chunksDir: string;
  private readonly pinsDir: string;
  private readonly markers: PinMarkers;
  /** Every present chunk. */
  private readonly entries = new Map<string, Entry>();
  /** Present unpinned chunks, least recently used first (Map keeps insertion order; a touch re-inserts). */
  private readonly evictable = new Map<string, Entry>();
  /** Pinned CIDs, present or not: pinning ahead of a download protects the chunk as soon as it lands. */
  private readonly pins = new Set<string>();
  private readonly shards = new Set<string>();
  /** CIDs put with `{ sync: false }` that are not durable yet (not announced, not in list()). */
  private readonly unsynced = new Set<string>();
  /** A pin marker was created without fsyncing its directory. */
  private pinsDirDirty = false;
  /** A shard directory was created without fsyncing `chunks/`. */
  private chunksDirDirty = false;
  /** Early fsyncs of pending chunks' temp files (pending-files.ts). */
  private readonly writeback = new Writeback();
  private readonly locks = new Map<string, Promise<void>>();
  private readonly pending = new Set<Promise<unknown>>();
  private usedBytes = 0;
  private pinnedBytes = 0;
  /** Bytes of puts that made room but have not committed yet. */
  private reservedBytes = 0;
  private reservationWaiters: (() => void)[] = [];
  private closed = false;

  private constructor(rootDir: string, options: ChunkStoreOptions) {
    super();
    const limitBytes = options.limitBytes ?? Infinity;
    if (typeof limitBytes !== "number" || Number.isNaN(limitBytes) || limitBytes < 0) throw new RangeError(`ChunkStore: limitBytes must be a non-negative number, got ${limitBytes}`);
    const maxChunkBytes = options.maxChunkBytes ?? DEFAULT_PARAMS.maxChunkBytes;
    if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes <= 0) throw new RangeError(`ChunkStore: maxChunkBytes must be a positive integer, got ${maxChunkBytes}`);
    this.rootDir = rootDir;
    this.limitBytes = limitBytes;
    this.maxChunkBytes = maxChunkBytes;
    this.now = options.now ?? Date.now;
    this.chunksDir = join(rootDir, CHUNKS_DIR);
    this.pinsDir = join(rootDir, PINS_DIR);
    this.markers = new PinMarkers(this.pinsDir);
  }

  /**
   * Opens (creating if needed) the store at `rootDir`: removes temp files a
   * killed writer left, loads pins, indexes chunk files, and evicts unpinned
   * chunks if a lowered limit is exceeded (no events: take the inventory from
   * `list()` after opening). One process per store at a time.
   */
  static async open(rootDir: string, options: ChunkStoreOptions = {}): Promise<ChunkStore> {
    const store = new ChunkStore(resolve(rootDir), options);
    await store.load();
    return store;
  }

  has(cid: string): boolean {
    return this.entries.has(parseCid(cid).cid);
  }

  /** Whether a chunk is present and durable (not waiting for a flush): what may be announced. */
  isDurable(cid: string): boolean {
    const parsed = parseCid(cid).cid;
    return this.entries.has(parsed) && !this.unsynced.has(parsed);
  }

  /** Size in bytes of a present chunk, or null. */
  sizeBytes(cid: string): number | null {
    return this.entries.get(parseCid(cid).cid)?.sizeBytes ?? null;
  }

  isPinned(cid: string): boolean {
    return this.pins.has(parseCid(cid).cid);
  }

  /**
   * The whole chunk, or null when absent. With `verify`, the bytes are
   * re-hashed first and a corrupt copy is removed (reason "corrupt") and
   * reported as absent.
   */
  async get(cid: string, options: { verify?: boolean } = {}): Promise<Uint8Array | null> {
    const parsed = parseCid(cid);
    const entry = this.entries.get(parsed.cid);
    if (!entry) return null;
    const handle = await this.openEntryFile(parsed, entry);
    if (!handle) return null;
    let bytes: Uint8Array;
    try {
      const buffer = await handle.readFile();
      // A plain Uint8Array view (no copy), the type every store implementation returns.
      bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } finally {
      await handle.close();
    }
    if (options.verify && !createHash("sha256").update(bytes).digest().equals(parsed.digest)) {
      await this.removeCorrupt(parsed, entry);
      return null;
    }
    this.touch(parsed.cid);
    return bytes;
  }

  /** Streams a chunk or a range of it (for serving and HTTP Range), or null when absent. */
  async openRead(cid: string, range: ByteRange = {}): Promise<ChunkReadStream | null> {
    const parsed = parseCid(cid);
    const entry = this.entries.get(parsed.cid);
    if (!entry) return null;
    const handle = await this.openEntryFile(parsed, entry);
    if (!handle) return null;
    try {
      const sizeBytes = (await handle.stat()).size;
      const start = range.start ?? 0;
      const end = Math.min(range.end ?? sizeBytes, sizeBytes);
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > sizeBytes || end < start) {
        throw new ChunkRangeError(`range [${range.start}, ${range.end}) is not within chunk ${parsed.cid} of ${sizeBytes} bytes`);
      }
      let stream: Readable;
      if (end === start) {
        await handle.close();
        stream = Readable.from([]);
      } else {
        // createReadStream's `end` is inclusive.
        stream = handle.createReadStream({ start, end: end - 1, autoClose: true, highWaterMark: READ_CHUNK_BYTES });
      }
      this.touch(parsed.cid);
      return { stream, sizeBytes, start, end };
    } catch (error) {
      await handle.close().catch(() => {});
      throw error;
    }
  }

  /**
   * Stores a chunk after checking SHA-256(bytes) against the CID. Idempotent:
   * a chunk already present is only touched (and pinned if asked), with
   * `added: false` (a `sync` put of a pending chunk also makes it durable).
   * Makes room by evicting unpinned chunks, LRU first. As with `fs.write`,
   * `bytes` must not change until the promise settles (they are hashed first
   * and written later; scrub would catch the damage).
   */
  async put(cid: string, bytes: Uint8Array, options: PutOptions = {}): Promise<{ added: boolean }> {
    this.assertOpen();
    const parsed = this.checkPut(cid, bytes);
    const actual = createHash("sha256").update(bytes).digest();
    if (!actual.equals(parsed.digest)) throw new ChunkMismatchError(parsed.cid, cidFromSha256(actual));
    return this.putChecked(parsed, { bytes }, options);
  }

  /**
   * `put` without re-hashing the bytes: only for bytes whose CID the caller
   * computed itself, in this process, from these very bytes (ingest seals a
   * chunk and hashes the ciphertext for its CID a moment earlier; hashing it
   * again here was a fifth of ingest's CPU). Never pass bytes that came from
   * a socket, a peer, R2, a file or any other process: those go through
   * `put`, which is what the transfer server and the download path call.
   * A wrong CID here would store a chunk that does not match its name, which
   * `scrub` and every downloader's verification would then catch.
   */
  async putTrusted(cid: string, bytes: Uint8Array, options: PutOptions = {}): Promise<{ added: boolean }> {
    this.assertOpen();
    return this.putChecked(this.checkPut(cid, bytes), { bytes }, options);
  }

  /**
   * The directory under which a chunk's temp file is written for
   * `adoptTrusted` (by `spoolChunkSync`, pending-files.ts, which picks the
   * chunk's shard directory in it).
   */
  get spoolDir(): string {
    return this.chunksDir;
  }

  /**
   * `putTrusted(cid, bytes, { pin, sync: false })` for bytes already written
   * to `tempPath`, a temp file in the chunk's shard directory under
   * `spoolDir` (spoolChunkSync writes one), not fsynced: the store takes the
   * file over as the chunk's pending copy instead of writing the bytes
   * again, and from there it is a group-commit put like any other (fsynced
   * by the writeback, renamed into place and announced at `flush()`). The
   * same trust rule as putTrusted: `cid` was computed in this process from
   * the bytes written to that file, and `sizeBytes` is their length.
   *
   * The store owns the file from the call on, whatever happens: adopted, or
   * removed (the chunk was already present, no room, the store is closed…).
   * A path that is not a temp file in a shard directory of this store is
   * refused with a RangeError and left alone.
   *
   * Why: ingest's seal workers write each chunk's temp file themselves, with
   * synchronous calls, which costs a fraction of the main thread's
   * async open + write + close (pending-files.ts).
   */
  async adoptTrusted(cid: string, tempPath: string, sizeBytes: number, options: { pin?: boolean } = {}): Promise<{ added: boolean }> {
    if (typeof tempPath !== "string") throw new TypeError(`ChunkStore.adoptTrusted: tempPath must be a string, got ${typeof tempPath}`);
    const shardDir = dirname(tempPath);
    if (!isTempFileName(tempPath) || dirname(shardDir) !== this.chunksDir || !SHARD_NAME.test(basename(shardDir))) {
      throw new RangeError(`ChunkStore.adoptTrusted: ${tempPath} is not a temp file in a shard directory of ${this.chunksDir}`);
    }
    try {
      this.assertOpen();
      const parsed = parseCid(cid);
      if (basename(shardDir) !== shardOf(parsed.digest)) throw new RangeError(`ChunkStore.adoptTrusted: ${tempPath} is not in the shard directory of ${parsed.cid}`);
      if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new RangeError(`ChunkStore.adoptTrusted: sizeBytes must be a non-negative integer, got ${sizeBytes}`);
      if (sizeBytes > this.maxChunkBytes) throw new ChunkTooLargeError(sizeBytes, this.maxChunkBytes);
      return await this.putChecked(parsed, { spooled: tempPath, sizeBytes }, { pin: options.pin, sync: false });
    } catch (error) {
      // Not adopted (an adopted file is never given up with an error): nobody else will remove it.
      await rm(tempPath, { force: true }).catch(() => {});
      throw error;
    }
  }

  /**
   * Makes every chunk put with `{ sync: false }` before this call durable,
   * then emits their `added` events. Resolves once all of it is on disk; a
   * chunk whose fsync or rename fails is dropped (never announced) and the
   * flush rejects. Cheap when nothing is pending.
   */
  async flush(): Promise<void> {
    this.assertOpen();
    await this.track(this.flushPending());
  }

  /** Protects a chunk from eviction, persistently. The CID need not be present yet. */
  async pin(cid: string): Promise<void> {
    this.assertOpen();
    const parsed = parseCid(cid);
    await this.track(this.withLock(parsed.cid, () => this.pinLocked(parsed.cid)));
  }

  /** Makes a chunk evictable again (as most recently used). Returns whether it was pinned. */
  async unpin(cid: string): Promise<boolean> {
    this.assertOpen();
    const parsed = parseCid(cid);
    return this.track(this.withLock(parsed.cid, () => this.unpinLocked(parsed.cid)));
  }

  /** Removes a chunk and its pin. Returns whether the chunk was present. */
  async delete(cid: string): Promise<boolean> {
    this.assertOpen();
    const parsed = parseCid(cid);
    return this.track(
      this.withLock(parsed.cid, async () => {
        if (this.pins.has(parsed.cid)) await this.unpinLocked(parsed.cid);
        const entry = this.forgetAndReport(parsed.cid, "deleted");
        if (!entry) return false;
        await rm(this.pathOf(parsed, entry), { force: true });
        return true;
      }),
    );
  }

  /**
   * Present and durable chunks (the inventory to announce: pending
   * `{ sync: false }` chunks appear after `flush()`), in no promised order;
   * a live view (chunks added or removed while iterating may or may not appear).
   */
  *list(): IterableIterator<ChunkInfo> {
    for (const [cid, entry] of this.entries) {
      if (this.unsynced.has(cid)) continue;
      yield { cid, sizeBytes: entry.sizeBytes, pinned: entry.pinned, lastAccessMs: entry.lastAccessMs };
    }
  }

  stats(): ChunkStoreStats {
    return {
      chunks: this.entries.size,
      usedBytes: this.usedBytes,
      pinnedBytes: this.pinnedBytes,
      limitBytes: this.limitBytes,
      freeBytes: Math.max(0, this.limitBytes - this.usedBytes - this.reservedBytes),
    };
  }

  /**
   * Re-hashes every chunk present when the scrub starts, streaming with
   * bounded memory, and removes the corrupt or vanished ones (event reason
   * "corrupt"). Meant to run periodically from the daemon.
   */
  async scrub(options: ScrubOptions = {}): Promise<ScrubResult> {
    this.assertOpen();
    return this.track(
      (async () => {
        const result: ScrubResult = { checked: 0, corrupt: [] };
        for (const cid of Array.from(this.entries.keys())) {
          options.signal?.throwIfAborted();
          const parsed = parseCid(cid);
          const corrupt = await this.withLock(cid, async () => {
            const entry = this.entries.get(cid);
            if (!entry) return false;
            result.checked++;
            if (await this.fileMatches(parsed, entry)) return false;
            this.forgetAndReport(cid, "corrupt");
            await rm(this.pathOf(parsed, entry), { force: true });
            return true;
          });
          if (corrupt) {
            result.corrupt.push(cid);
            await options.onCorrupt?.(cid);
          }
        }
        return result;
      })(),
    );
  }

  /** Waits for operations in progress and flushes pending chunks; later mutations throw StoreClosedError. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.pending.size > 0) await Promise.allSettled(Array.from(this.pending));
    await this.writeback.idle();
    if (this.unsynced.size > 0 || this.pinsDirDirty || this.chunksDirDirty) await this.flushPending();
  }

  // ---- internals ----

  private async load(): Promise<void> {
    await mkdir(this.chunksDir, { recursive: true });
    await mkdir(this.pinsDir, { recursive: true });
    await cleanupTempFiles(this.rootDir);
    await cleanupTempFiles(this.chunksDir);
    await cleanupTempFiles(this.pinsDir);
    for (const name of await readdir(this.pinsDir)) if (isCid(name)) this.pins.add(name);

    const found: { cid: string; sizeBytes: number; lastAccessMs: number }[] = [];
    for (const shard of await readdir(this.chunksDir, { withFileTypes: true })) {
      if (!shard.isDirectory() || !SHARD_NAME.test(shard.name)) continue;
      const shardDir = join(this.chunksDir, shard.name);
      await cleanupTempFiles(shardDir);
      this.shards.add(shard.name);
      const names = await readdir(shardDir);
      // Foreign or misplaced files are left alone and never served.
      const stats = await Promise.all(
        names.map(async (name) => {
          if (!isCid(name) || shardOf(parseCid(name).digest) !== shard.name) return null;
          const info = await stat(join(shardDir, name));
          return info.isFile() ? { cid: name, sizeBytes: info.size, lastAccessMs: Math.max(info.atimeMs, info.mtimeMs) } : null;
        }),
      );
      for (const s of stats) if (s) found.push(s);
    }
    found.sort((a, b) => a.lastAccessMs - b.lastAccessMs);
    for (const f of found) this.insert(f.cid, f.sizeBytes, f.lastAccessMs);

    // A lowered limit: shed unpinned data now; pinned data above it just blocks new puts.
    const victims: string[] = [];
    for (const cid of this.evictable.keys()) {
      if (this.usedBytes <= this.limitBytes) break;
      this.forget(cid);
      victims.push(cid);
    }
    for (const cid of victims) await rm(this.chunkPath(parseCid(cid)), { force: true });
  }

  /**
   * One attempt at a put, under the CID's lock. Returns `wait` when the room
   * it needs is held by other puts in progress: the caller waits for a
   * reservation to be released *outside* the lock and tries again, so no put
   * ever holds a lock while waiting for room (that could deadlock with an
   * eviction unlink queued on this CID).
   */
  private async putLocked(parsed: ParsedCid, source: PutSource, pin: boolean, sync: boolean): Promise<{ added: boolean } | { wait: Promise<void> }> {
    const existing = this.entries.get(parsed.cid);
    if (existing) {
      // An adopted temp file of a chunk the store holds already is not needed (removed first, so that nothing below can leave it behind).
      if ("spooled" in source) await rm(source.spooled, { force: true });
      if (pin) await this.pinLocked(parsed.cid, sync);
      // A durable put of a chunk still pending makes it durable now rather than at the next flush.
      if (sync && this.unsynced.has(parsed.cid)) {
        if (this.pinsDirDirty) await this.syncPinsDir();
        await this.commitLocked(parsed, existing);
        await fsyncDirectory(join(this.chunksDir, shardOf(parsed.digest)));
        this.markDurable(parsed.cid);
      }
      this.touch(parsed.cid);
      return { added: false };
    }
    const sizeBytes = "bytes" in source ? source.bytes.length : source.sizeBytes;
    const reservation = this.reserve(parsed.cid, sizeBytes);
    if ("wait" in reservation) return reservation;
    const newlyPinned = pin && !this.pins.has(parsed.cid);
    const path = this.chunkPath(parsed);
    let pendingPath: string | undefined;
    try {
      try {
        // The pin marker goes first (and flush syncs its directory first): a crash in between leaves a pin waiting for its chunk, never an unprotected chunk.
        if (newlyPinned) await this.pinLocked(parsed.cid, sync);
        await Promise.all(reservation.victims.map((victim) => this.unlinkEvicted(victim)));
        const shard = shardOf(parsed.digest);
        if (!this.shards.has(shard)) {
          // An adopted file's writer created its shard directory (spoolChunkSync); it is as new to the disk as one made here.
          if ("bytes" in source) await mkdir(join(this.chunksDir, shard), { recursive: true });
          this.shards.add(shard);
          if (sync) await fsyncDirectory(this.chunksDir);
          else this.chunksDirDirty = true;
        }
        if ("spooled" in source) pendingPath = source.spooled;
        else if (sync) await writeFileAtomic(path, source.bytes);
        else pendingPath = await writeTempFile(join(this.chunksDir, shard), source.bytes);
      } finally {
        this.releaseReservation(sizeBytes);
      }
    } catch (error) {
      // Nothing half-done stays: not the file (if the failure came after the rename), not a pin this put created.
      // (An adopted temp file is removed by adoptTrusted.)
      await rm(path, { force: true }).catch(() => {});
      if (newlyPinned) await this.unpinLocked(parsed.cid).catch(() => {});
      throw this.translateDiskFull(error, parsed.cid);
    }
    this.insert(parsed.cid, sizeBytes, this.now(), pendingPath);
    if (sync) this.emit("added", parsed.cid, sizeBytes);
    else {
      this.unsynced.add(parsed.cid);
      this.startWriteback(parsed.cid, this.entries.get(parsed.cid)!, pendingPath!);
    }
    return { added: true };
  }

  /** Argument checks shared by put and putTrusted. */
  private checkPut(cid: string, bytes: Uint8Array): ParsedCid {
    const parsed = parseCid(cid);
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`ChunkStore.put: bytes must be a Uint8Array, got ${typeof bytes}`);
    if (bytes.length > this.maxChunkBytes) throw new ChunkTooLargeError(bytes.length, this.maxChunkBytes);
    return parsed;
  }

  private putChecked(parsed: ParsedCid, source: PutSource, options: PutOptions): Promise<{ added: boolean }> {
    const sync = options.sync !== false;
    return this.track(
      (async () => {
        for (;;) {
          const outcome = await this.withLock(parsed.cid, () => this.putLocked(parsed, source, options.pin === true, sync));
          if (!("wait" in outcome)) return outcome;
          await outcome.wait;
        }
      })(),
    );
  }

  /**
   * The group commit: pin markers' directory, then every chunk pending when
   * the flush began (fsync, rename, under its lock, a few at a time), then
   * `chunks/` if shards were created and each touched shard directory once;
   * only then are the chunks announced. Stops at nothing: every chunk gets
   * its attempt, and the first failure is rethrown at the end.
   */
  private async flushPending(): Promise<void> {
    const batch = Array.from(this.unsynced);
    if (this.pinsDirDirty) await this.syncPinsDir();
    const shards = new Set<string>();
    let failure: unknown;
    let next = 0;
    const commitNext = async (): Promise<void> => {
      while (next < batch.length) {
        const cid = batch[next++];
        const parsed = parseCid(cid);
        try {
          await this.withLock(cid, async () => {
            const entry = this.entries.get(cid);
            if (!entry || !this.unsynced.has(cid)) return; // evicted, deleted, or made durable by a sync put meanwhile
            await this.commitLocked(parsed, entry);
            shards.add(shardOf(parsed.digest));
          });
        } catch (error) {
          failure ??= this.translateDiskFull(error, cid);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(FLUSH_CONCURRENCY, batch.length) }, commitNext));
    try {
      if (this.chunksDirDirty) {
        this.chunksDirDirty = false;
        await fsyncDirectory(this.chunksDir).catch((error) => {
          this.chunksDirDirty = true;
          throw error;
        });
      }
      await Promise.all(Array.from(shards, (shard) => fsyncDirectory(join(this.chunksDir, shard))));
    } catch (error) {
      // The renames may not be durable: those chunks stay unannounced, and the next flush syncs their directories again.
      throw failure ?? error;
    }
    for (const cid of batch) if (this.entries.get(cid)?.pendingPath === undefined) this.markDurable(cid);
    if (failure) throw failure;
  }

  /**
   * Under the CID's lock: fsyncs a pending chunk's temp file and renames it
   * into place. A chunk that cannot be made durable is dropped (removed,
   * never announced): after a failed fsync the kernel may have discarded
   * the data, so the temp file is worthless.
   */
  private async commitLocked(parsed: ParsedCid, entry: Entry): Promise<void> {
    const pendingPath = entry.pendingPath;
    if (pendingPath === undefined) return;
    try {
      if (entry.pendingSync !== undefined && entry.pendingSync !== "done") throw entry.pendingSync.error;
      if (entry.pendingSync !== "done") await fsyncFile(pendingPath);
      // Eviction forgets a chunk without its lock; its unlink (queued on this lock) removes the file.
      if (this.entries.get(parsed.cid) !== entry) return;
      // Synchronous: a flush renames every chunk of a put, and an async rename's hand-off to libuv costs several times the rename (fsyncFile, atomic-file.ts).
      renameSync(pendingPath, this.chunkPath(parsed));
      entry.pendingPath = undefined;
    } catch (error) {
      if (this.entries.get(parsed.cid) === entry) this.forgetAndReport(parsed.cid, "corrupt");
      await rm(pendingPath, { force: true }).catch(() => {});
      throw error;
    }
  }

  /**
   * Queues a pending chunk's temp file for the early fsync, so a flush finds
   * most of its work done (see pending-files.ts). Takes no lock: the path is
   * unique to the entry, and if a flush, a delete or an eviction moved or
   * removed it meanwhile, the outcome is not recorded. A failure is recorded
   * and makes the flush drop the chunk.
   */
  private startWriteback(cid: string, entry: Entry, path: string): void {
    const wanted = () => !this.closed && this.entries.get(cid) === entry && entry.pendingPath === path;
    this.writeback.add(path, wanted, (outcome) => (entry.pendingSync = outcome));
  }

  /** A pending chunk became durable: announce it. */
  private markDurable(cid: string): void {
    if (!this.unsynced.delete(cid)) return;
    const entry = this.entries.get(cid);
    if (entry) this.emit("added", cid, entry.sizeBytes);
  }

  private async syncPinsDir(): Promise<void> {
    this.pinsDirDirty = false;
    try {
      await this.markers.sync();
    } catch (error) {
      this.pinsDirDirty = true;
      throw error;
    }
  }

  /**
   * Claims room for `sizeBytes`, forgetting LRU unpinned chunks as needed,
   * and returns them for unlinking. Throws StoreFullError when pinned data
   * alone leaves no room; returns `wait` when room is held by puts in
   * progress, whose chunks become evictable (or pinned) once they commit.
   */
  private reserve(cid: string, sizeBytes: number): { victims: Victim[] } | { wait: Promise<void> } {
    const fits = () => this.usedBytes + this.reservedBytes + sizeBytes <= this.limitBytes;
    if (!fits() && this.pinnedBytes + this.reservedBytes + sizeBytes > this.limitBytes) {
      if (this.reservedBytes === 0 || this.pinnedBytes + sizeBytes > this.limitBytes) {
        throw new StoreFullError(`chunk store full: ${cid} (${sizeBytes} bytes) does not fit; ${this.usedBytes} bytes used (${this.pinnedBytes} pinned) of the ${this.limitBytes}-byte limit`, {
          sizeBytes,
          usedBytes: this.usedBytes,
          pinnedBytes: this.pinnedBytes,
          limitBytes: this.limitBytes,
        });
      }
      return { wait: new Promise<void>((resolve) => this.reservationWaiters.push(resolve)) };
    }
    const victims: Victim[] = [];
    for (const victim of this.evictable.keys()) {
      if (fits()) break;
      const entry = this.forgetAndReport(victim, "evicted")!;
      victims.push({ cid: victim, pendingPath: entry.pendingPath });
    }
    this.reservedBytes += sizeBytes;
    return { victims };
  }

  private releaseReservation(sizeBytes: number): void {
    this.reservedBytes -= sizeBytes;
    for (const wake of this.reservationWaiters.splice(0)) wake();
  }

  /**
   * Deferred unlink of an evicted chunk: its temp file if it was pending
   * (unique to it), and its committed file unless a put re-added the CID
   * before the lock came free.
   */
  private unlinkEvicted(victim: Victim): Promise<void> {
    return this.withLock(victim.cid, async () => {
      if (victim.pendingPath !== undefined) await rm(victim.pendingPath, { force: true });
      if (this.entries.has(victim.cid)) return;
      await rm(this.chunkPath(parseCid(victim.cid)), { force: true });
    });
  }

  /** Creates the pin marker (pin-markers.ts); `sync: false` leaves making it durable to the next flush. */
  private async pinLocked(cid: string, sync = true): Promise<void> {
    if (this.pins.has(cid)) return;
    try {
      this.markers.create(cid);
      if (sync) await this.markers.sync();
      else this.pinsDirDirty = true;
    } catch (error) {
      throw this.translateDiskFull(error, cid);
    }
    this.pins.add(cid);
    const entry = this.entries.get(cid);
    if (entry && !entry.pinned) {
      entry.pinned = true;
      this.evictable.delete(cid);
      this.pinnedBytes += entry.sizeBytes;
    }
  }

  private async unpinLocked(cid: string): Promise<boolean> {
    if (!this.pins.has(cid)) return false;
    await this.markers.remove(cid);
    this.pins.delete(cid);
    const entry = this.entries.get(cid);
    if (entry?.pinned) {
      entry.pinned = false;
      this.pinnedBytes -= entry.sizeBytes;
      this.evictable.set(cid, entry);
    }
    return true;
  }

  /**
   * Opens an indexed chunk's file for reading, or null (forgetting the
   * chunk) when it vanished. Takes no lock: a flush may rename a pending
   * chunk between choosing the path and opening it, which shows as ENOENT
   * on the temp path while the entry's path has moved on: then try again.
   */
  private async openEntryFile(parsed: ParsedCid, entry: Entry): Promise<FileHandle | null> {
    for (;;) {
      const path = this.pathOf(parsed, entry);
      try {
        return await open(path, "r");
      } catch (error) {
        if (errorCode(error) !== "ENOENT") throw error;
        if (this.entries.get(parsed.cid) === entry && this.pathOf(parsed, entry) !== path) continue;
        await this.dropVanished(parsed, entry);
        return null;
      }
    }
  }

  /** The file of an indexed chunk disappeared behind our back (not by eviction or delete, which unindex first). */
  private async dropVanished(parsed: ParsedCid, entry: Entry): Promise<void> {
    await this.withLock(parsed.cid, async () => {
      if (this.entries.get(parsed.cid) !== entry) return;
      this.forgetAndReport(parsed.cid, "corrupt");
    });
  }

  private async removeCorrupt(parsed: ParsedCid, entry: Entry): Promise<void> {
    await this.withLock(parsed.cid, async () => {
      // Re-check under the lock: the copy read may already have been replaced by a good one.
      if (this.entries.get(parsed.cid) !== entry || (await this.fileMatches(parsed, entry))) return;
      this.forgetAndReport(parsed.cid, "corrupt");
      await rm(this.pathOf(parsed, entry), { force: true });
    });
  }

  private async fileMatches(parsed: ParsedCid, entry: Entry): Promise<boolean> {
    const hash = createHash("sha256");
    try {
      for await (const piece of createReadStream(this.pathOf(parsed, entry), { highWaterMark: SCRUB_READ_BYTES })) hash.update(piece as Buffer);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return false;
      throw error;
    }
    return hash.digest().equals(parsed.digest);
  }

  private insert(cid: string, sizeBytes: number, lastAccessMs: number, pendingPath?: string): void {
    const pinned = this.pins.has(cid);
    const entry: Entry = { sizeBytes, pinned, lastAccessMs, pendingPath };
    this.entries.set(cid, entry);
    this.usedBytes += sizeBytes;
    if (pinned) this.pinnedBytes += sizeBytes;
    else this.evictable.set(cid, entry);
  }

  /** Unindexes a chunk and emits `removed`, unless it was pending and so never announced. */
  private forgetAndReport(cid: string, reason: RemovalReason): Entry | undefined {
    const announced = !this.unsynced.has(cid);
    const entry = this.forget(cid);
    if (entry && announced) this.emit("removed", cid, reason);
    return entry;
  }

  private forget(cid: string): Entry | undefined {
    const entry = this.entries.get(cid);
    if (!entry) return undefined;
    this.entries.delete(cid);
    this.unsynced.delete(cid);
    this.evictable.delete(cid);
    this.usedBytes -= entry.sizeBytes;
    if (entry.pinned) this.pinnedBytes -= entry.sizeBytes;
    return entry;
  }

  private touch(cid: string): void {
    const entry = this.entries.get(cid);
    if (!entry) return;
    entry.lastAccessMs = this.now();
    if (!entry.pinned) {
      this.evictable.delete(cid);
      this.evictable.set(cid, entry);
    }
  }

  /** The only place a chunk path is made, and only from a parsed (canonical) CID. */
  private chunkPath(parsed: ParsedCid): string {
    return join(this.chunksDir, shardOf(parsed.digest), parsed.cid);
  }

  /** Where an indexed chunk's bytes are now: its temp file while pending, else its committed file. */
  private pathOf(parsed: ParsedCid, entry: Entry): string {
    return entry.pendingPath ?? this.chunkPath(parsed);
  }

  private translateDiskFull(error: unknown, cid: string): unknown {
    const code = errorCode(error);
    if (code !== "ENOSPC" && code !== "EDQUOT") return error;
    return new StoreFullError(`disk full while storing ${cid}: the filesystem under ${this.rootDir} has no space left (${code}); the store holds ${this.usedBytes} bytes, limit ${this.limitBytes}`, {
      usedBytes: this.usedBytes,
      limitBytes: this.limitBytes,
      osCode: code,
    });
  }

  /** Runs `fn` after every earlier holder of `key` has finished (a per-CID mutex). */
  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = previous.then(() => mine);
    this.locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  private track<T>(operation: Promise<T>): Promise<T> {
    this.pending.add(operation);
    operation.then(
      () => this.pending.delete(operation),
      () => this.pending.delete(operation),
    );
    return operation;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }
}
