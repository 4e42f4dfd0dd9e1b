/**
 * One file through put's hot path: read → FastCDC (src/core/chunker.ts) →
 * seal with node:crypto (native-chunk-cipher.ts: SHA-256, key, AES-256-GCM,
 * CID in one call) → the local store (pinned) and the replication queue.
 *
 * Threads: the main thread reads, chunks, hashes the whole file and hands
 * chunks to the seal pool's workers (seal-pool.ts), which seal them in
 * parallel; the sealed chunks are stored strictly in file order, so the
 * chunk list, the store's contents and the replication queue are the same
 * as with one thread. Files under PARALLEL_MIN_BYTES are sealed in-thread
 * (starting workers costs more than it saves there), as is everything when
 * workers cannot start.
 *
 * Memory stays bounded whatever the file size: two read buffers, the
 * chunker's one maximum chunk, at most `2 × workers + 2` chunks being sealed
 * (each one buffer: the pool seals in place) and `STORE_WINDOW` sealed
 * chunks being written; with 2 workers and 4 MiB maximum chunks, under
 * 60 MiB. Only the chunk list (about 200 bytes per chunk) grows with the
 * file. Writes to the store are group-committed (`sync: false`): the put
 * (ingest.ts) flushes the store once, before anything is pinned or
 * announced.
 *
 * Keys: convergent by default (identical plaintext chunks under one
 * convergence secret seal to identical bytes and CIDs, which is what makes a
 * re-put of a slightly changed file cheap); `private` draws a random file key
 * per file, so nothing de-duplicates. Either way the manifest records each
 * chunk's key.
 */
import { createHash, randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import type { ChunkKeying, SealedChunk } from "../core/chunk-cipher.js";
import { FastCdcChunker, type Chunk, type ChunkerOptions } from "../core/chunker.js";
import { chunkRefOf, type ChunkRef } from "../core/manifest.js";
import { sealChunkNative } from "./native-chunk-cipher.js";
import { acquireSealPool } from "./seal-pool.js";

/** Sealed chunks being written to the store while later ones are sealed. */
const STORE_WINDOW = 4;
/**
 * Bytes per read from the file (two buffers alternate: one is read into
 * while the other is chunked). Several average chunks per read: a chunk
 * inside one read is a view the pool gets one copy of, while a chunk that
 * spans reads is copied twice by the chunker (into its carry-over buffer,
 * then into the chunk), which 1 MiB reads did for nearly every chunk.
 */
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
  /** Stores (pinned), counts, announces and queues replication of one sealed chunk. */
  storeSealed(cid: string, sealed: Uint8Array, isData: boolean): Promise<void>;
  /** Called after each chunk is sealed, with its plaintext size. */
  onChunk(plaintextBytes: number): void;
  /** Seal on worker threads: "auto" (default) for files of PARALLEL_MIN_BYTES or more, or always / never. */
  parallel?: "auto" | "always" | "never";
}

export interface IngestedFile {
  chunks: ChunkRef[];
  sizeBytes: number;
  sha256: Uint8Array;
}

export async function ingestFile(path: string, ctx: FileIngestContext): Promise<IngestedFile> {
  const fileKey = ctx.private ? new Uint8Array(randomBytes(32)) : null;
  const keying = (chunkIndex: number): ChunkKeying =>
    fileKey ? { mode: "private", fileKey, chunkIndex } : { mode: "convergent", convergenceSecret: ctx.convergenceSecret };
  const chunker = new FastCdcChunker(ctx.chunker);
  const wholeFile = createHash("sha256");
  const chunks: ChunkRef[] = [];
  /** Chunks handed to sealing, in file order, and the store writes after them (both awaited in order). */
  const sealing: { sealed: Promise<SealedChunk>; plaintextBytes: number }[] = [];
  const writes: Promise<void>[] = [];
  let submitted = 0;
  let sizeBytes = 0;

  const file = await open(path, "r");
  let lease: ReturnType<typeof acquireSealPool> | null = null;
  try {
    const parallel = ctx.parallel ?? "auto";
    if (parallel === "always" || (parallel === "auto" && (await file.stat()).size >= PARALLEL_MIN_BYTES)) lease = acquireSealPool();
  } catch (error) {
    await file.close();
    throw error;
  }
  const pool = lease?.pool;
  const seal = pool
    ? (bytes: Uint8Array, k: ChunkKeying, transfer: boolean) => pool.seal(bytes, k, { transfer })
    : async (bytes: Uint8Array, k: ChunkKeying) => sealChunkNative(bytes, k);
  // Two per worker keep each busy (one sealing, one waiting); two more let this thread run ahead of them.
  const maxSealing = pool ? 2 * pool.size + 2 : 1;

  /** The oldest chunk in sealing: to the chunk list, the store and the replication queue. */
  const storeNext = async () => {
    const next = sealing.shift()!;
    const sealed = await next.sealed;
    chunks.push(chunkRefOf(sealed));
    const write = ctx.storeSealed(sealed.cid, sealed.sealed, true);
    write.catch(() => {}); // awaited below, in order; this only marks it handled meanwhile
    writes.push(write);
    ctx.onChunk(next.plaintextBytes);
    if (writes.length >= STORE_WINDOW) await writes.shift();
  };
  const submit = async (chunk: Chunk) => {
    ctx.signal?.throwIfAborted();
    sizeBytes += chunk.bytes.length;
    const plaintextBytes = chunk.bytes.length;
    // Views of a read buffer are copied by the pool; a chunk the chunker assembled across reads is a
    // buffer of its own that nothing else uses, so it is handed over instead.
    const inReadBuffer = chunk.bytes.buffer === buffers[0].buffer || chunk.bytes.buffer === buffers[1].buffer;
    const sealed = seal(chunk.bytes, keying(submitted++), !inReadBuffer && chunk.bytes.byteOffset === 0);
    sealed.catch(() => {});
    sealing.push({ sealed, plaintextBytes });
    while (sealing.length >= maxSealing) await storeNext();
  };

  const buffers = [Buffer.allocUnsafeSlow(READ_BUFFER_BYTES), Buffer.allocUnsafeSlow(READ_BUFFER_BYTES)];
  let current = 0;
  let reading = file.read(buffers[current], 0, READ_BUFFER_BYTES, null);
  try {
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) break;
      ctx.signal?.throwIfAborted();
      const data = buffers[current].subarray(0, bytesRead);
      // Read the next piece into the other buffer while this one is hashed and chunked; every chunk
      // that views `data` is copied or sealed before `data`'s buffer is read into again.
      current ^= 1;
      reading = file.read(buffers[current], 0, READ_BUFFER_BYTES, null);
      wholeFile.update(data);
      for (const chunk of chunker.push(data)) await submit(chunk);
    }
    for (const chunk of chunker.finish()) await submit(chunk);
    while (sealing.length > 0) await storeNext();
    while (writes.length > 0) await writes.shift();
  } finally {
    // On an error, let the reads, seals and writes already started settle before the caller moves on.
    await reading.catch(() => {});
    await Promise.allSettled([...sealing.map((s) => s.sealed), ...writes]);
    await file.close();
    lease?.release();
  }
  return { chunks, sizeBytes, sha256: new Uint8Array(wholeFile.digest()) };
}
