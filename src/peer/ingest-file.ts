/**
 * One file through put's hot path: read → FastCDC (src/core/chunker.ts) →
 * seal with node:crypto (native-chunk-cipher.ts: SHA-256, key, AES-256-GCM,
 * CID in one call) → the local store (pinned) and the replication queue.
 *
 * Memory stays bounded whatever the file size: the read stream holds one
 * buffer, the chunker at most one maximum chunk, and at most
 * `STORE_WINDOW` sealed chunks are being written to the store while the next
 * ones are sealed (the store fsyncs each chunk, so overlapping its writes
 * with sealing keeps the CPU busy). Only the chunk list (about 200 bytes per
 * chunk) grows with the file.
 *
 * Keys: convergent by default (identical plaintext chunks under one
 * convergence secret seal to identical bytes and CIDs, which is what makes a
 * re-put of a slightly changed file cheap); `private` draws a random file key
 * per file, so nothing de-duplicates. Either way the manifest records each
 * chunk's key.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import type { ChunkKeying } from "../core/chunk-cipher.js";
import { FastCdcChunker, type Chunk, type ChunkerOptions } from "../core/chunker.js";
import { chunkRefOf, type ChunkRef } from "../core/manifest.js";
import { sealChunkNative } from "./native-chunk-cipher.js";

/** Sealed chunks being written to the store while later ones are sealed. */
const STORE_WINDOW = 4;
/** Bytes per read from the file. */
const READ_BUFFER_BYTES = 1024 * 1024;

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
  const writes: Promise<void>[] = [];
  let sizeBytes = 0;

  const handle = async (chunk: Chunk) => {
    ctx.signal?.throwIfAborted();
    wholeFile.update(chunk.bytes);
    const sealed = sealChunkNative(chunk.bytes, keying(chunks.length));
    chunks.push(chunkRefOf(sealed));
    sizeBytes += chunk.bytes.length;
    const write = ctx.storeSealed(sealed.cid, sealed.sealed, true);
    write.catch(() => {}); // awaited below, in order; this only marks it handled meanwhile
    writes.push(write);
    ctx.onChunk(chunk.bytes.length);
    if (writes.length >= STORE_WINDOW) await writes.shift();
  };

  const stream = createReadStream(path, { highWaterMark: READ_BUFFER_BYTES, signal: ctx.signal });
  try {
    for await (const data of stream) for (const chunk of chunker.push(data as Buffer)) await handle(chunk);
    for (const chunk of chunker.finish()) await handle(chunk);
    while (writes.length > 0) await writes.shift();
  } finally {
    stream.destroy();
    // On an error, let the writes already started settle before the caller moves on.
    await Promise.allSettled(writes);
  }
  return { chunks, sizeBytes, sha256: new Uint8Array(wholeFile.digest()) };
}
