/**
 * sealChunkNative (native-chunk-cipher.ts) writing the sealed chunk into a
 * place the caller gives, instead of into new buffers: the form ingest's
 * seal workers use over shared memory (ingest-arena.ts, seal-pool.ts).
 * Same format and derivations, byte for byte (seal-pool.test.ts and
 * seal-addon.test.ts check it): SHA-256 of the plaintext (convergent keys),
 * the key, the nonce, AES-256-GCM, and the CID from the SHA-256 of
 * ciphertext || tag.
 *
 * The encryption and the CID's hash go through the seal addon
 * (seal-addon.ts) when it is built: it encrypts straight into the output.
 * node:crypto cannot, so without the addon the plaintext goes through the
 * cipher in SEAL_PIECE_BYTES pieces: each piece's ciphertext is hashed and
 * copied into place while it is still in the cache, and the small piece
 * buffers are reused by the allocator, where whole-chunk outputs were fresh
 * memory (page faults, zeroing, garbage collection) every time.
 */
import { createCipheriv, createHash } from "node:crypto";
import { CHUNK_TAG_BYTES, type ChunkKeying } from "../core/chunk-cipher.js";
import { cidFromSha256 } from "../core/cid.js";
import { nativeChunkKeyFor, nativeChunkNonce, nativeSha256 } from "./native-chunk-cipher.js";
import { sealAddon } from "./seal-addon.js";

/**
 * Plaintext bytes per cipher.update() call. Measured in ingest's workers:
 * 8–16 KiB pieces cost ~3.5 CPU ns per byte for chunk + seal, 256 KiB ~5.5,
 * whole chunks more: each update's output is a new zero-filled allocation,
 * and only small ones come back from the allocator warm instead of as new
 * pages.
 */
export const SEAL_PIECE_BYTES = 16 * 1024;

/** A chunk sealed into a caller's buffer: everything SealedChunk has but the bytes, which are output[0, sealedBytes). */
export interface SealedInto {
  key: Uint8Array;
  cid: string;
  plaintextSha256?: Uint8Array;
  sealedBytes: number;
}

/**
 * AES-256-GCM of `plaintext` under (key, nonce) into
 * output[0, plaintext.length + CHUNK_TAG_BYTES), returning the SHA-256 of
 * those bytes; `output` is long enough and either starts where `plaintext`
 * does (in place) or does not overlap it.
 */
export type EncryptInto = (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, output: Uint8Array) => Uint8Array;

/** The seal addon's sealInto when it loaded, else encryptIntoWithNodeCrypto. */
export const defaultEncryptInto: EncryptInto = sealAddon ? sealAddon.sealInto : encryptIntoWithNodeCrypto;

/**
 * Seals `plaintext` into output[0, plaintext.length + CHUNK_TAG_BYTES).
 * `output` may start at the plaintext's first byte (sealed in place, as
 * the pool's whole-buffer seals are: both encryptions read each piece
 * before writing its ciphertext over it) but must not overlap it
 * otherwise. `encryptInto` is for tests and benchmarks that hold the two
 * implementations against each other.
 */
export function sealChunkInto(plaintext: Uint8Array, output: Uint8Array, keying: ChunkKeying, encryptInto: EncryptInto = defaultEncryptInto): SealedInto {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError("plaintext: expected a Uint8Array");
  if (!(output instanceof Uint8Array)) throw new TypeError("output: expected a Uint8Array");
  const lengthBytes = plaintext.length;
  const sealedBytes = lengthBytes + CHUNK_TAG_BYTES;
  if (output.length < sealedBytes) throw new RangeError(`output: ${output.length} bytes cannot hold a ${sealedBytes}-byte sealed chunk`);
  if (overlapsAside(plaintext, output, sealedBytes)) throw new RangeError("output: overlaps the plaintext without starting where it does");
  const plaintextSha256 = keying.mode === "convergent" ? nativeSha256(plaintext) : undefined;
  const key = nativeChunkKeyFor(keying, plaintextSha256);
  const cid = cidFromSha256(encryptInto(key, nativeChunkNonce(key), plaintext, output));
  return plaintextSha256 ? { key, cid, plaintextSha256, sealedBytes } : { key, cid, sealedBytes };
}

/** EncryptInto on node:crypto alone, in SEAL_PIECE_BYTES pieces (see the top of this file). */
export function encryptIntoWithNodeCrypto(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, output: Uint8Array): Uint8Array {
  const lengthBytes = plaintext.length;
  const sealedBytes = lengthBytes + CHUNK_TAG_BYTES;
  const cipher = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: CHUNK_TAG_BYTES });
  const hash = createHash("sha256");
  // Buffer#fill with a Buffer of exactly the range's length is one memcpy; Uint8Array#set into shared
  // memory is V8's element-wise "relaxed" copy, measured 2.7x slower (5% of ingest's CPU).
  const target = Buffer.from(output.buffer, output.byteOffset, sealedBytes);
  let written = 0;
  const put = (ciphertext: Buffer) => {
    if (ciphertext.length === 0) return;
    hash.update(ciphertext);
    target.fill(ciphertext, written, written + ciphertext.length);
    written += ciphertext.length;
  };
  for (let at = 0; at < lengthBytes; at += SEAL_PIECE_BYTES) put(cipher.update(plaintext.subarray(at, Math.min(lengthBytes, at + SEAL_PIECE_BYTES))));
  put(cipher.final());
  if (written !== lengthBytes) throw new Error(`aes-256-gcm: ${written} bytes of ciphertext for ${lengthBytes} of plaintext`);
  put(cipher.getAuthTag());
  return hash.digest();
}

/** Whether output[0, bLength) shares bytes with `a` other than by starting at a's first byte (in place). */
function overlapsAside(a: Uint8Array, b: Uint8Array, bLength: number): boolean {
  if (a.buffer !== b.buffer || a.byteOffset === b.byteOffset) return false;
  return a.byteOffset < b.byteOffset + bLength && b.byteOffset < a.byteOffset + a.length;
}
