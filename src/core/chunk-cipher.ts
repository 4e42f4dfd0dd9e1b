/**
 * The chunk AEAD: AES-256-GCM (NIST SP 800-38D, used as the RFC 5116
 * AEAD_AES_256_GCM algorithm) with a 12-byte nonce, a 16-byte tag and no
 * associated data. A sealed chunk is `ciphertext || tag`, nothing else: the
 * manifest records each chunk's key and sizes, and the chunk's CID (SHA-256
 * of the sealed bytes) names it, so any peer can verify it without a key.
 *
 * Keys (every key encrypts exactly one plaintext, so a nonce derived from
 * the key is never reused with a different message under that key):
 *  - convergent (default): key = HMAC-SHA256(convergenceSecret,
 *    "peercloud/v1/chunk-key" || SHA-256(plaintext)). Identical chunks under
 *    one secret give identical sealed bytes and CIDs, so they de-duplicate.
 *    Whoever knows the secret can confirm a guessed plaintext; that is the
 *    price of de-duplication, bounded by who holds the secret.
 *  - private: a random 32-byte file key; chunk key = HKDF-SHA256 (RFC 5869)
 *    with ikm = fileKey, no salt, info = "peercloud/v1/chunk" || u64be(index),
 *    length 32. No two chunks share a key, and nothing de-duplicates.
 *  - nonce = the first 12 bytes of HMAC-SHA256(key, "peercloud/v1/nonce").
 *
 * Implementations: the noble one here is the portable reference (slow, about
 * 50 MB/s); the WebCrypto one is native speed in browsers and workerd; the
 * node:crypto one (src/peer/native-chunk-cipher.ts) is the peers' fast path.
 * All three are cross-tested byte for byte.
 */
import { gcm } from "@noble/ciphers/aes.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { utf8 } from "./bytes.js";
import { cidFromSha256 } from "./cid.js";
import { PeercloudError } from "./errors.js";

export const CHUNK_KEY_BYTES = 32;
export const CHUNK_NONCE_BYTES = 12;
export const CHUNK_TAG_BYTES = 16;
/** Shortest convergence secret accepted (128 bits). */
export const MIN_CONVERGENCE_SECRET_BYTES = 16;

/** Domain-separation labels; part of the format, never change them. */
export const CONVERGENT_KEY_LABEL = utf8("peercloud/v1/chunk-key");
export const NONCE_LABEL = utf8("peercloud/v1/nonce");
export const PRIVATE_CHUNK_INFO_LABEL = utf8("peercloud/v1/chunk");

/** A sealed chunk or manifest failed authentication: wrong key, or the bytes were altered. */
export class ChunkAuthError extends PeercloudError {
  constructor(message = "chunk failed authentication (wrong key or tampered data)") {
    super("chunk_auth_failed", message, 400);
    this.name = "ChunkAuthError";
  }
}

/** How a chunk's key is chosen. */
export type ChunkKeying = { mode: "convergent"; convergenceSecret: Uint8Array } | { mode: "private"; fileKey: Uint8Array; chunkIndex: number };

export interface SealedChunk {
  /** The chunk's 32-byte AES key (what the manifest records). */
  key: Uint8Array;
  /** ciphertext || tag. */
  sealed: Uint8Array;
  /** CIDv1 raw sha2-256 of `sealed`. */
  cid: string;
  /** SHA-256 of the plaintext: computed for convergent keys only (it is a third of the work of sealing). */
  plaintextSha256?: Uint8Array;
}

/** One implementation of the chunk AEAD and the hash around it. */
export interface ChunkCipher {
  readonly name: string;
  sha256(bytes: Uint8Array): Promise<Uint8Array>;
  /** Encrypts `plaintext` under `key` with the nonce derived from `key`. */
  seal(key: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  /** Decrypts; throws ChunkAuthError if the key is wrong or the bytes were altered. */
  open(key: Uint8Array, sealed: Uint8Array): Promise<Uint8Array>;
}

export function sealedSizeBytes(plaintextBytes: number): number {
  return plaintextBytes + CHUNK_TAG_BYTES;
}

export function assertChunkKey(key: Uint8Array, label = "key"): void {
  if (!(key instanceof Uint8Array)) throw new TypeError(`${label}: expected a Uint8Array`);
  if (key.length !== CHUNK_KEY_BYTES) throw new RangeError(`${label}: expected ${CHUNK_KEY_BYTES} bytes, got ${key.length}`);
}

function assertBytes(value: Uint8Array, label: string): void {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${label}: expected a Uint8Array`);
}

/** nonce = HMAC-SHA256(key, "peercloud/v1/nonce")[0..12). */
export function chunkNonce(key: Uint8Array): Uint8Array {
  assertChunkKey(key);
  return hmac(nobleSha256, key, NONCE_LABEL).subarray(0, CHUNK_NONCE_BYTES);
}

/** key = HMAC-SHA256(secret, "peercloud/v1/chunk-key" || SHA-256(plaintext)). */
export function convergentChunkKey(convergenceSecret: Uint8Array, plaintextSha256: Uint8Array): Uint8Array {
  assertConvergenceSecret(convergenceSecret);
  if (!(plaintextSha256 instanceof Uint8Array) || plaintextSha256.length !== 32) throw new RangeError("plaintextSha256: expected 32 bytes");
  return hmac.create(nobleSha256, convergenceSecret).update(CONVERGENT_KEY_LABEL).update(plaintextSha256).digest();
}

export function assertConvergenceSecret(secret: Uint8Array): void {
  assertBytes(secret, "convergenceSecret");
  if (secret.length < MIN_CONVERGENCE_SECRET_BYTES) {
    throw new RangeError(`convergenceSecret: expected at least ${MIN_CONVERGENCE_SECRET_BYTES} bytes, got ${secret.length}`);
  }
}

/** info = "peercloud/v1/chunk" || u64be(chunkIndex), the HKDF context of chunk `chunkIndex` of a private file. */
export function privateChunkInfo(chunkIndex: number): Uint8Array {
  if (!Number.isSafeInteger(chunkIndex) || chunkIndex < 0) throw new RangeError(`chunkIndex: expected a non-negative safe integer, got ${chunkIndex}`);
  const info = new Uint8Array(PRIVATE_CHUNK_INFO_LABEL.length + 8);
  info.set(PRIVATE_CHUNK_INFO_LABEL);
  new DataView(info.buffer).setBigUint64(PRIVATE_CHUNK_INFO_LABEL.length, BigInt(chunkIndex), false);
  return info;
}

/** key = HKDF-SHA256(ikm = fileKey, salt = none, info = privateChunkInfo(index), L = 32). */
export function privateChunkKey(fileKey: Uint8Array, chunkIndex: number): Uint8Array {
  assertChunkKey(fileKey, "fileKey");
  return hkdf(nobleSha256, fileKey, undefined, privateChunkInfo(chunkIndex), CHUNK_KEY_BYTES);
}

/** The chunk key for `keying`, given the plaintext's SHA-256 (unused, may be omitted, in private mode). */
export function chunkKeyFor(keying: ChunkKeying, plaintextSha256?: Uint8Array): Uint8Array {
  if (keying.mode === "convergent" && plaintextSha256 === undefined) throw new TypeError("chunkKeyFor: convergent keys need the plaintext's SHA-256");
  return keying.mode === "convergent" ? convergentChunkKey(keying.convergenceSecret, plaintextSha256!) : privateChunkKey(keying.fileKey, keying.chunkIndex);
}

/** Portable synchronous seal (noble). */
export function sealChunkSync(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  assertBytes(plaintext, "plaintext");
  return gcm(key, chunkNonce(key)).encrypt(plaintext);
}

/** Portable synchronous open (noble); throws ChunkAuthError on a wrong key or altered bytes. */
export function openChunkSync(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  assertBytes(sealed, "sealed");
  const nonce = chunkNonce(key);
  if (sealed.length < CHUNK_TAG_BYTES) throw new ChunkAuthError(`sealed chunk is ${sealed.length} bytes, shorter than its ${CHUNK_TAG_BYTES}-byte tag`);
  try {
    return gcm(key, nonce).decrypt(sealed);
  } catch {
    throw new ChunkAuthError();
  }
}

/** The portable reference implementation (noble ciphers and hashes). */
export const nobleChunkCipher: ChunkCipher = {
  name: "noble",
  async sha256(bytes) {
    return nobleSha256(bytes);
  },
  async seal(key, plaintext) {
    return sealChunkSync(key, plaintext);
  },
  async open(key, sealed) {
    return openChunkSync(key, sealed);
  },
};

/** WebCrypto's BufferSource type excludes views of SharedArrayBuffer; ours are plain ArrayBuffer views. */
function buffer(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

/** WebCrypto implementation: native AES-GCM and SHA-256 in browsers, workerd and Node. */
export const webCryptoChunkCipher: ChunkCipher = {
  name: "webcrypto",
  async sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", buffer(bytes)));
  },
  async seal(key, plaintext) {
    assertBytes(plaintext, "plaintext");
    const nonce = chunkNonce(key);
    const aesKey = await crypto.subtle.importKey("raw", buffer(key), "AES-GCM", false, ["encrypt"]);
    return new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: buffer(nonce), tagLength: CHUNK_TAG_BYTES * 8 }, aesKey, buffer(plaintext)));
  },
  async open(key, sealed) {
    assertBytes(sealed, "sealed");
    const nonce = chunkNonce(key);
    if (sealed.length < CHUNK_TAG_BYTES) throw new ChunkAuthError(`sealed chunk is ${sealed.length} bytes, shorter than its ${CHUNK_TAG_BYTES}-byte tag`);
    const aesKey = await crypto.subtle.importKey("raw", buffer(key), "AES-GCM", false, ["decrypt"]);
    try {
      return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: buffer(nonce), tagLength: CHUNK_TAG_BYTES * 8 }, aesKey, buffer(sealed)));
    } catch {
      throw new ChunkAuthError();
    }
  },
};

/**
 * Hashes, derives the key, seals and names one chunk with any implementation.
 * The peers' hot path has a synchronous node:crypto twin (sealChunkNative).
 */
export async function encryptChunk(cipher: ChunkCipher, plaintext: Uint8Array, keying: ChunkKeying): Promise<SealedChunk> {
  const plaintextSha256 = keying.mode === "convergent" ? await cipher.sha256(plaintext) : undefined;
  const key = chunkKeyFor(keying, plaintextSha256);
  const sealed = await cipher.seal(key, plaintext);
  const cid = cidFromSha256(await cipher.sha256(sealed));
  return plaintextSha256 ? { key, sealed, cid, plaintextSha256 } : { key, sealed, cid };
}
