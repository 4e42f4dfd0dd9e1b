/**
 * The seal pool's worker thread (seal-pool.ts): seals the chunks it is sent
 * (node:crypto, and the seal addon where it is built) and hands the sealed bytes back by transfer, not by copy.
 * Posts "ready" once loaded, which is how the pool tells a worker that could
 * not start from one that crashed later.
 *
 * A chunk whose buffer has CHUNK_TAG_BYTES to spare after the plaintext (the
 * pool's copies do) is sealed in place: ciphertext and tag overwrite the
 * plaintext, so the sealed chunk needs no new buffer. That is sealChunkInto
 * (seal-into.ts) with the output starting at the plaintext, the same
 * sequence as sealChunkNative (plaintext SHA-256, key, nonce, AES-256-GCM,
 * CID from the SHA-256 of ciphertext + tag; through the seal addon where it
 * is built); seal-pool.test.ts checks the output against sealChunkNative
 * byte for byte. Other chunks go through sealChunkNative itself.
 *
 * A shared-memory request (ingest's: plaintext and output are views of
 * SharedArrayBuffers, see ingest-arena.ts) is sealed with sealChunkInto
 * straight from the plaintext into the output; only the key, CID and hash
 * travel back. With a `spoolDir`, the sealed bytes are then written to the
 * chunk's temp file in the store (spoolChunkSync, synchronous calls: this
 * thread has nothing else to do meanwhile), and the outcome travels back
 * with them.
 *
 * The pool's file-hash worker runs this same module and gets hash-stream
 * requests only: bytes added in order to a SHA-256 per stream (views of
 * shared memory, read in place), then the digest, or a discard.
 */
import { createHash, type Hash } from "node:crypto";
import { parentPort } from "node:worker_threads";
import { CHUNK_TAG_BYTES, type ChunkKeying, type SealedChunk } from "../core/chunk-cipher.js";
import { sealChunkNative } from "./native-chunk-cipher.js";
import { spoolChunkSync } from "./pending-files.js";
import { sealChunkInto } from "./seal-into.js";
import type { HashRequest, SealReply, SealRequest } from "./seal-pool.js";

if (!parentPort) throw new Error("seal-worker.ts runs only as a worker thread (see seal-pool.ts)");
const port = parentPort;

port.on("message", (request: SealRequest | HashRequest) => {
  if ("stream" in request) return hashStream(request);
  if ("output" in request) return sealShared(request);
  const { id, buffer, lengthBytes, keying } = request;
  let reply: SealReply;
  try {
    const spare = buffer.byteLength - lengthBytes >= CHUNK_TAG_BYTES;
    const sealed = spare ? sealInPlace(new Uint8Array(buffer), lengthBytes, keying) : sealChunkNative(new Uint8Array(buffer, 0, lengthBytes), keying);
    reply = { id, ...sealed, sealed: transferable(sealed.sealed) };
  } catch (error) {
    reply = { id, error: errorOf(error) };
  }
  port.postMessage(reply, "sealed" in reply ? [reply.sealed.buffer as ArrayBuffer] : []);
});

port.postMessage({ ready: true });

function sealShared({ id, plaintext, output, keying, spoolDir }: Extract<SealRequest, { output: Uint8Array }>): void {
  let reply: SealReply;
  try {
    const { key, cid, plaintextSha256, sealedBytes } = sealChunkInto(plaintext, output, keying);
    // Own 32-byte copies: a view of a larger buffer would be cloned whole.
    reply = plaintextSha256 ? { id, key: new Uint8Array(key), cid, plaintextSha256: new Uint8Array(plaintextSha256), sealedBytes } : { id, key: new Uint8Array(key), cid, sealedBytes };
    if (spoolDir !== undefined) reply.spool = spoolChunkSync(spoolDir, cid, output.subarray(0, sealedBytes));
  } catch (error) {
    reply = { id, error: errorOf(error) };
  }
  port.postMessage(reply);
}

/** Hash streams in progress (FileHash, seal-pool.ts), by stream number. */
const streams = new Map<number, Hash>();

function hashStream(request: HashRequest): void {
  let reply: SealReply;
  try {
    let hash = streams.get(request.stream);
    if ("bytes" in request) {
      if (!hash) streams.set(request.stream, (hash = createHash("sha256")));
      hash.update(request.bytes);
      reply = { id: request.id };
    } else {
      streams.delete(request.stream);
      reply = request.end === "digest" ? { id: request.id, digest: new Uint8Array((hash ?? createHash("sha256")).digest()) } : { id: request.id };
    }
  } catch (error) {
    reply = { id: request.id, error: errorOf(error) };
  }
  port.postMessage(reply);
}

function errorOf(error: unknown): { name: string; message: string } {
  const { name, message } = error instanceof Error ? error : { name: "Error", message: String(error) };
  return { name, message };
}

/** sealChunkNative's result, sealed with sealChunkInto over the plaintext at the start of `bytes` (in place: no new buffer). */
function sealInPlace(bytes: Uint8Array, lengthBytes: number, keying: ChunkKeying): SealedChunk {
  const { key, cid, plaintextSha256, sealedBytes } = sealChunkInto(bytes.subarray(0, lengthBytes), bytes, keying);
  const sealed = bytes.subarray(0, sealedBytes);
  return plaintextSha256 ? { key, sealed, cid, plaintextSha256 } : { key, sealed, cid };
}

/** The sealed bytes in a buffer of their own (a small Buffer shares Node's pool and must not be transferred). */
function transferable(sealed: Uint8Array): Uint8Array {
  const whole = sealed.byteOffset === 0 && sealed.byteLength === sealed.buffer.byteLength && sealed.buffer instanceof ArrayBuffer;
  // `new Uint8Array(view)` copies (Buffer#slice would not).
  return whole ? sealed : new Uint8Array(sealed);
}
