/**
 * The chunk AEAD on node:crypto (OpenSSL, AES-NI and SHA-NI): the native
 * peer's fast path for ingest and for verifying chunks it receives. Same
 * format and derivations as src/core/chunk-cipher.ts (AES-256-GCM per
 * NIST SP 800-38D / RFC 5116, HMAC-SHA256 and HKDF-SHA256 per RFC 5869),
 * cross-tested byte for byte against the noble and WebCrypto versions.
 *
 * sealChunkNative() is the ingest hot path: one call hashes the plaintext,
 * derives key and nonce, encrypts, and hashes the ciphertext for its CID.
 * The only copy beyond what OpenSSL must produce is joining ciphertext and
 * tag into one buffer (node:crypto cannot encrypt into a caller's buffer).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync } from "node:crypto";
import {
  CHUNK_KEY_BYTES,
  CHUNK_NONCE_BYTES,
  CHUNK_TAG_BYTES,
  CONVERGENT_KEY_LABEL,
  ChunkAuthError,
  NONCE_LABEL,
  assertChunkKey,
  assertConvergenceSecret,
  privateChunkInfo,
  type ChunkCipher,
  type ChunkKeying,
  type SealedChunk,
} from "../core/chunk-cipher.js";
import { cidFromSha256 } from "../core/cid.js";

const NO_SALT = new Uint8Array(0);

export function nativeSha256(bytes: Uint8Array): Uint8Array {
  return createHash("sha256").update(bytes).digest();
}

export function nativeChunkNonce(key: Uint8Array): Uint8Array {
  assertChunkKey(key);
  return createHmac("sha256", key).update(NONCE_LABEL).digest().subarray(0, CHUNK_NONCE_BYTES);
}

export function nativeConvergentChunkKey(convergenceSecret: Uint8Array, plaintextSha256: Uint8Array): Uint8Array {
  assertConvergenceSecret(convergenceSecret);
  if (!(plaintextSha256 instanceof Uint8Array) || plaintextSha256.length !== 32) throw new RangeError("plaintextSha256: expected 32 bytes");
  return createHmac("sha256", convergenceSecret).update(CONVERGENT_KEY_LABEL).update(plaintextSha256).digest();
}

/** RFC 5869 with no salt: OpenSSL, like noble, then uses HashLen zero bytes. */
export function nativePrivateChunkKey(fileKey: Uint8Array, chunkIndex: number): Uint8Array {
  assertChunkKey(fileKey, "fileKey");
  return new Uint8Array(hkdfSync("sha256", fileKey, NO_SALT, privateChunkInfo(chunkIndex), CHUNK_KEY_BYTES));
}

export function nativeChunkKeyFor(keying: ChunkKeying, plaintextSha256?: Uint8Array): Uint8Array {
  if (keying.mode === "convergent" && plaintextSha256 === undefined) throw new TypeError("nativeChunkKeyFor: convergent keys need the plaintext's SHA-256");
  return keying.mode === "convergent" ? nativeConvergentChunkKey(keying.convergenceSecret, plaintextSha256!) : nativePrivateChunkKey(keying.fileKey, keying.chunkIndex);
}

/** ciphertext and tag, still separate (callers that write with writev can skip the join). */
function encryptParts(key: Uint8Array, plaintext: Uint8Array): [Uint8Array, Uint8Array] {
  const cipher = createCipheriv("aes-256-gcm", key, nativeChunkNonce(key), { authTagLength: CHUNK_TAG_BYTES });
  const ciphertext = cipher.update(plaintext);
  const rest = cipher.final(); // always empty for GCM, kept for form
  if (rest.length !== 0) throw new Error("aes-256-gcm: unexpected output from final()");
  return [ciphertext, cipher.getAuthTag()];
}

function join(ciphertext: Uint8Array, tag: Uint8Array): Uint8Array {
  const sealed = Buffer.allocUnsafe(ciphertext.length + tag.length);
  sealed.set(ciphertext, 0);
  sealed.set(tag, ciphertext.length);
  return sealed;
}

/** Encrypts `plaintext` under `key` (nonce derived from the key): ciphertext || tag. */
export function sealNative(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const [ciphertext, tag] = encryptParts(key, plaintext);
  return join(ciphertext, tag);
}

/** Decrypts and authenticates; throws ChunkAuthError on a wrong key or altered bytes. */
export function openNative(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  const nonce = nativeChunkNonce(key);
  if (sealed.length < CHUNK_TAG_BYTES) throw new ChunkAuthError(`sealed chunk is ${sealed.length} bytes, shorter than its ${CHUNK_TAG_BYTES}-byte tag`);
  const split = sealed.length - CHUNK_TAG_BYTES;
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: CHUNK_TAG_BYTES });
  decipher.setAuthTag(sealed.subarray(split));
  const plaintext = decipher.update(sealed.subarray(0, split));
  try {
    decipher.final();
  } catch {
    throw new ChunkAuthError();
  }
  return plaintext;
}

/**
 * The ingest hot path: SHA-256 of the plaintext (convergent mode only), the
 * chunk key for `keying`, AES-256-GCM, and the CID from the SHA-256 of the
 * sealed bytes (hashed as ciphertext + tag, before they are joined).
 */
export function sealChunkNative(plaintext: Uint8Array, keying: ChunkKeying): SealedChunk {
  if (!(plaintext instanceof Uint8Array)) throw new TypeError("plaintext: expected a Uint8Array");
  // Private keys do not depend on the plaintext: skip a third of the work.
  const plaintextSha256 = keying.mode === "convergent" ? nativeSha256(plaintext) : undefined;
  const key = nativeChunkKeyFor(keying, plaintextSha256);
  const [ciphertext, tag] = encryptParts(key, plaintext);
  const cid = cidFromSha256(createHash("sha256").update(ciphertext).update(tag).digest());
  const sealed = join(ciphertext, tag);
  return plaintextSha256 ? { key, sealed, cid, plaintextSha256 } : { key, sealed, cid };
}

/** SHA-256 CID of sealed bytes, for verifying what a peer sent. */
export function nativeCidOf(sealed: Uint8Array): string {
  return cidFromSha256(nativeSha256(sealed));
}

/** node:crypto behind the portable ChunkCipher interface. */
export const nodeChunkCipher: ChunkCipher = {
  name: "node",
  async sha256(bytes) {
    return nativeSha256(bytes);
  },
  async seal(key, plaintext) {
    return sealNative(key, plaintext);
  },
  async open(key, sealed) {
    return openNative(key, sealed);
  },
};
