/**
 * One file through put's hot path: read → FastCDC (src/core/chunker.ts) →
 * seal (SHA-256, key, AES-256-GCM, CID: node:crypto, and the seal addon
 * where it is built, seal-addon.ts) → the local store
 * (pinned) and the replication queue.
 *
 * Large files (PARALLEL_MIN_BYTES and up) go through shared memory
 * (ingest-arena.ts), so no chunk is copied between the file and the store:
 *  - the main thread reads the file into input slabs, hands each slab's new
 *    bytes to the pool's file-hash worker for the whole-file SHA-256
 *    (SealPool.openFileHash), and finds the chunk boundaries in place
 *    (FastCdcCursor with the WebAssembly Gear scan, gear-scan-wasm.ts);
 *  - each chunk goes to the seal pool's workers (seal-pool.ts) as a view of
 *    the slab plus a place in the sealed ring; a worker reads the plaintext
 *    from the slab and writes ciphertext || tag into the ring
 *    (seal-into.ts), and only keys, CIDs and hashes travel as messages;
 *  - with `spoolDir` (the put's store's), the worker that sealed a chunk
 *    also writes it to its temp file in the store (spoolChunkSync,
 *    synchronous calls off the main thread), and the store adopts that file
 *    (ChunkStore.adoptTrusted) instead of writing the ring's bytes; a chunk
 *    the worker could not write (or found stored already) is stored from
 *    the ring as before, so every failure is still the store's to report;
 *  - sealed chunks are stored strictly in file order, from the ring, which is
 *    freed in the same order once each store call has settled. The chunk
 *    list, the store's contents and the replication queue are the same as
 *    with one thread.
 * Smaller files are read, chunked (FastCdcChunker) and sealed
 * (sealChunkNative) in-thread: starting workers and a 48 MiB arena costs
 * more than it saves there. Workers that cannot start leave the same
 * shared-memory path sealing in-thread (seal-pool.ts).
 *
 * Memory stays bounded whatever the file size: the arena (with 4 MiB
 * maximum chunks, 4 slabs of 8 MiB and a 16 MiB sealed ring: 48 MiB, reused
 * from file to file) and at most `2 × workers + 2` chunks being sealed and
 * STORE_WINDOW being written, all inside it. Only the chunk list (about 200
 * bytes per chunk) grows with the file. Writes to the store are
 * group-committed (`sync: false`): the put (ingest.ts) flushes the store
 * once, before anything is pinned or announced.
 *
 * Keys: convergent by default (identical plaintext chunks under one
 * convergence secret seal to identical bytes and CIDs, which is what makes a
 * re-put of a slightly changed file cheap); `private` draws a random file key
 * per file, so nothing de-duplicates. Either way the manifest records each
 * chunk's key.
 */
import { createHash, randomBytes, type Hash } from "node:crypto";
import { open, rm, type FileHandle } from "node:fs/promises";
import { CHUNK_TAG_BYTES, type ChunkKeying } from "../core/chunk-cipher.js";
import { FastCdcChunker, FastCdcCursor, resolveChunkerOptions, type Chunk, type ChunkerOptions } from "../core/chunker.js";
import { chunkRefOf, type ChunkRef } from "../core/manifest.js";
import { acquireIngestArena, arenaShape, type ArenaShape, type Slab } from "./ingest-arena.js";
import { sealChunkNative } from "./native-chunk-cipher.js";
import { acquireSealPool, type SealedIntoResult, type SealPool } from "./seal-pool.js";

/** Sealed chunks being written to the store while later ones are sealed. */
const STORE_WINDOW = 4;
/** Bytes per read on the in-thread path (two buffers alternate: one is read into while the other is chunked). */
const READ_BUFFER_BYTES = 8 * 1024 * 1024;
/** Smallest file sealed on the worker pool; below it, in-thread sealing finishes before workers would have started. */
export const PARALLEL_MIN_BYTES = 16 * 1024 * 1024;

/** What ingestFile needs from the put in progress. */
export interface FileIngestContext {
  /** Derives convergent chunk keys (unused when `private`). */
  convergenceSecret: Uint8Array;
  /** A random key per file instead of convergent keys. */
  private: boolean;
  chunker?: ChunkerOptions;
  signal?: AbortSignal;
  /**
   * Stores (pinned), counts, announces and queues replication of one sealed
   * chunk. For data chunks (`isData`) `sealed` is lent: it is reused once
   * the returned promise settles, so whatever keeps it longer must copy it.
   * `spooled`: these bytes are already written to that temp file under
   * `spoolDir`, which storeSealed takes over (ChunkStore.adoptTrusted
   * adopts or removes it, whatever happens).
   */
  storeSealed(cid: string, sealed: Uint8Array, isData: boolean, spooled?: string): Promise<void>;
  /** The store's ChunkStore.spoolDir: the seal workers write data chunks' temp files there themselves (large files only). Absent: storeSealed gets bytes only. */
  spoolDir?: string;
  /** Called after each chunk is sealed, with its plaintext size. */
  onChunk(plaintextBytes: number): void;
  /** Seal on worker threads: "auto" (default) for files of PARALLEL_MIN_BYTES or more, or always / never. */
  parallel?: "auto" | "always" | "never";
  /** Sizes of the shared-memory arena (ingest-arena.ts defaults; tests make them small). */
  arena?: Partial<Omit<ArenaShape, "maxChunkBytes">>;
}

export interface IngestedFile {
  chunks: ChunkRef[];
  sizeBytes: number;
  sha256: Uint8Array;
}

export async function ingestFile(path: string, ctx: FileIngestContext): Promise<IngestedFile> {
  const file = await open(path, "r");
  try {
    const parallel = ctx.parallel ?? "auto";
    if (parallel === "never" || (parallel === "auto" && (await file.stat()).size < PARALLEL_MIN_BYTES)) return await ingestInThread(file, ctx);
    const lease = acquireSealPool();
    try {
      return await ingestShared(file, ctx, lease.pool);
    } finally {
      lease.release();
    }
  } finally {
    await file.close();
  }
}

function keyingFor(ctx: FileIngestContext): (chunkIndex: number) => ChunkKeying {
  const fileKey = ctx.private ? new Uint8Array(randomBytes(32)) : null;
  return (chunkIndex) => (fileKey ? { mode: "private", fileKey, chunkIndex } : { mode: "convergent", convergenceSecret: ctx.convergenceSecret });
}

/** The shared-memory path (see the module comment). */
async function ingestShared(file: FileHandle, ctx: FileIngestContext, pool: SealPool): Promise<IngestedFile> {
  const keying = keyingFor(ctx);
  const { maxChunkBytes } = resolveChunkerOptions(ctx.chunker);
  const lease = acquireIngestArena(arenaShape(maxChunkBytes, ctx.arena));
  const { input, slabs, sealed: ring, scanner, shape } = lease.arena;
  const cursor = new FastCdcCursor(ctx.chunker, scanner);
  const wholeFile = pool.openFileHash();
  /** Per slab (by index), its bytes' turn in the whole-file hash: read into the slab again only once settled. */
  const hashing: (Promise<void> | undefined)[] = [];
  const chunks: ChunkRef[] = [];
  /** Chunks being sealed, in file order, and the store writes after them (each awaited in order). */
  const sealing: { sealed: Promise<SealedIntoResult>; slab: Slab; output: Uint8Array; plaintextBytes: number }[] = [];
  const writing: { write: Promise<void>; output: Uint8Array }[] = [];
  // Two per worker keep each busy (one sealing, one waiting); two more let this thread run ahead of them.
  const maxSealing = 2 * pool.size + 2;
  let submitted = 0;
  let sizeBytes = 0;

  /** The oldest write: awaited, then its place in the ring is free. */
  const finishWrite = async () => {
    const oldest = writing[0];
    await oldest.write;
    writing.shift();
    ring.free(oldest.output);
  };
  /** The oldest chunk in sealing: to the chunk list, the store and the replication queue. */
  const storeNext = async () => {
    const next = sealing.shift()!;
    const result = await next.sealed;
    next.slab.refs--;
    const sealed = next.output.subarray(0, result.sealedBytes);
    chunks.push(chunkRefOf({ cid: result.cid, key: result.key, sealed }));
    // The temp file (if the worker wrote one) is the store's from here on; a failed or skipped one means storing the ring's bytes.
    const write = ctx.storeSealed(result.cid, sealed, true, spooledPath(result));
    write.catch(() => {}); // awaited in order by finishWrite; this only marks it handled meanwhile
    writing.push({ write, output: next.output });
    ctx.onChunk(next.plaintextBytes);
    if (writing.length >= STORE_WINDOW) await finishWrite();
  };
  /** A place for a sealed chunk of `n` bytes, storing and writing older chunks until the ring has room. */
  const place = async (n: number): Promise<Uint8Array> => {
    for (;;) {
      const view = ring.alloc(n);
      if (view) return view;
      if (writing.length > 0) await finishWrite();
      else await storeNext(); // the ring is not empty, so something is sealing
    }
  };
  const submit = async (slab: Slab, start: number, end: number) => {
    ctx.signal?.throwIfAborted();
    sizeBytes += end - start;
    const output = await place(end - start + CHUNK_TAG_BYTES);
    slab.refs++;
    const sealed = pool.sealInto(input.subarray(start, end), output, keying(submitted++), { spoolDir: ctx.spoolDir });
    sealed.catch(() => {});
    sealing.push({ sealed, slab, output, plaintextBytes: end - start });
    while (sealing.length >= maxSealing) await storeNext();
  };

  // Slabs are used round-robin; the next one is read into while the current one is chunked.
  const read = (slab: Slab) => file.read(input, slab.dataStart, shape.readBytes, null);
  let next = 0;
  let reading: Promise<{ bytesRead: number }> | null = read(slabs[next]);
  /** The current chunk's bytes so far are input[chunkStart, end), in slab `current`. */
  let current: Slab | null = null;
  let chunkStart = 0;
  let end = 0;
  try {
    for (;;) {
      const { bytesRead } = await reading;
      reading = null;
      if (bytesRead === 0) break;
      ctx.signal?.throwIfAborted();
      const slab = slabs[next];
      // The unfinished chunk moves into this slab's headroom, just before the new bytes.
      const carried = end - chunkStart;
      if (carried > 0) input.copyWithin(slab.dataStart - carried, chunkStart, end);
      current = slab;
      chunkStart = slab.dataStart - carried;
      end = slab.dataStart + bytesRead;
      const hashed = wholeFile.update(input.subarray(slab.dataStart, end));
      hashed.catch(() => {}); // awaited before the slab is read into again (and at the end); this only marks it handled meanwhile
      hashing[next] = hashed;

      next = (next + 1) % slabs.length;
      await hashing[next];
      while (slabs[next].refs > 0) await storeNext();
      reading = read(slabs[next]);

      for (let cut = cursor.next(input, chunkStart, end); cut >= 0; cut = cursor.next(input, chunkStart, end)) {
        await submit(slab, chunkStart, cut);
        chunkStart = cut;
      }
    }
    if (current && end > chunkStart) await submit(current, chunkStart, end);
    while (sealing.length > 0) await storeNext();
    while (writing.length > 0) await finishWrite();
    await Promise.all(hashing);
    return { chunks, sizeBytes, sha256: await wholeFile.digest() };
  } finally {
    // On an error, everything still reading into or sealing out of the arena settles before it is reused,
    // and temp files written for chunks that never reached the store are removed.
    await reading?.catch(() => {});
    await Promise.allSettled(hashing);
    wholeFile.discard(); // a no-op once digested
    const unstored = await Promise.allSettled(sealing.map((s) => s.sealed));
    await Promise.allSettled(writing.map((w) => w.write));
    for (const outcome of unstored) {
      const path = outcome.status === "fulfilled" ? spooledPath(outcome.value) : undefined;
      if (path !== undefined) await rm(path, { force: true }).catch(() => {});
    }
    lease.release();
  }
}

/** The in-thread path: FastCdcChunker over two alternating read buffers, sealChunkNative, STORE_WINDOW writes in flight. */
async function ingestInThread(file: FileHandle, ctx: FileIngestContext): Promise<IngestedFile> {
  const keying = keyingFor(ctx);
  const chunker = new FastCdcChunker(ctx.chunker);
  const wholeFile = createHash("sha256");
  const chunks: ChunkRef[] = [];
  const writes: Promise<void>[] = [];
  let submitted = 0;
  let sizeBytes = 0;

  const submit = async (chunk: Chunk) => {
    ctx.signal?.throwIfAborted();
    sizeBytes += chunk.bytes.length;
    // A new buffer per sealed chunk: nothing else holds it, so lending it to storeSealed is safe.
    const sealed = sealChunkNative(chunk.bytes, keying(submitted++));
    chunks.push(chunkRefOf(sealed));
    const write = ctx.storeSealed(sealed.cid, sealed.sealed, true);
    write.catch(() => {}); // awaited below, in order; this only marks it handled meanwhile
    writes.push(write);
    ctx.onChunk(chunk.bytes.length);
    if (writes.length >= STORE_WINDOW) await writes.shift();
  };

  const buffers = [Buffer.allocUnsafeSlow(READ_BUFFER_BYTES), Buffer.allocUnsafeSlow(READ_BUFFER_BYTES)];
  let current = 0;
  let reading: Promise<{ bytesRead: number }> | null = file.read(buffers[current], 0, READ_BUFFER_BYTES, null);
  try {
    for (;;) {
      const { bytesRead } = await reading;
      reading = null;
      if (bytesRead === 0) break;
      ctx.signal?.throwIfAborted();
      const data = buffers[current].subarray(0, bytesRead);
      // Read the next piece into the other buffer while this one is hashed and chunked; every chunk
      // that views `data` is sealed (into a buffer of its own) before `data`'s buffer is read into again.
      current ^= 1;
      reading = file.read(buffers[current], 0, READ_BUFFER_BYTES, null);
      wholeFile.update(data);
      for (const chunk of chunker.push(data)) await submit(chunk);
    }
    for (const chunk of chunker.finish()) await submit(chunk);
    while (writes.length > 0) await writes.shift();
  } finally {
    await reading?.catch(() => {});
    await Promise.allSettled(writes);
  }
  return { chunks, sizeBytes, sha256: digestOf(wholeFile) };
}

function spooledPath(result: SealedIntoResult): string | undefined {
  return result.spool && "spooled" in result.spool ? result.spool.spooled : undefined;
}

function digestOf(hash: Hash): Uint8Array {
  return new Uint8Array(hash.digest());
}
