/**
 * Content identifiers for chunks and manifests.
 *
 * Every stored object is addressed by a CIDv1 with the `raw` codec (0x55) over
 * the SHA-256 multihash (0x12) of its *ciphertext*, encoded base32 lower-case
 * (multibase `b`), exactly as `ipfs add --cid-version 1 --raw-leaves` names a
 * single block; see https://github.com/multiformats/cid. Anyone can verify a
 * chunk against its CID without a key. Only this one shape is accepted, so a
 * CID string maps 1:1 to a digest and is safe to use as a file name.
 */
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import { ValidationError } from "./errors.js";
import { bufferSource, bytesEqual, toHex } from "./bytes.js";

export const RAW_CODEC = 0x55;
export const SHA2_256_CODE = 0x12;
/** Length of a canonical chunk CID string: "b" + base32(1+1+1+1+32 bytes). */
export const CID_STRING_LENGTH = 59;

export interface ParsedCid {
  /** Canonical string form (base32, CIDv1). */
  cid: string;
  /** The 32-byte SHA-256 digest of the ciphertext. */
  digest: Uint8Array;
}

export function cidFromSha256(digest: Uint8Array): string {
  if (digest.length !== 32) throw new RangeError(`cidFromSha256: expected a 32-byte digest, got ${digest.length}`);
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256_CODE, digest)).toString();
}

/**
 * Parses untrusted text as a chunk CID. Rejects everything but canonical
 * CIDv1/raw/sha2-256 in base32, so that no two strings name one chunk.
 */
export function parseCid(text: unknown): ParsedCid {
  if (typeof text !== "string" || text.length !== CID_STRING_LENGTH || !/^b[a-z2-7]+$/.test(text)) {
    throw new ValidationError(`not a peercloud CID (expected a ${CID_STRING_LENGTH}-character CIDv1 raw sha2-256 in base32): ${describe(text)}`, "invalid_cid");
  }
  let cid: CID;
  try {
    cid = CID.parse(text);
  } catch {
    throw new ValidationError(`not a valid CID: ${describe(text)}`, "invalid_cid");
  }
  if (cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== SHA2_256_CODE || cid.multihash.digest.length !== 32) {
    throw new ValidationError(`unsupported CID (need CIDv1, raw codec, sha2-256): ${text}`, "invalid_cid");
  }
  if (cid.toString() !== text) throw new ValidationError(`CID is not in canonical form: ${text}`, "invalid_cid");
  return { cid: text, digest: cid.multihash.digest };
}

export function isCid(text: unknown): text is string {
  try {
    parseCid(text);
    return true;
  } catch {
    return false;
  }
}

/** SHA-256 through WebCrypto: native speed in workerd, Node and browsers. */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bufferSource(bytes)));
}

export async function cidOfBytes(bytes: Uint8Array): Promise<string> {
  return cidFromSha256(await sha256(bytes));
}

/** True when `digest` is the SHA-256 named by `cid`. */
export function cidMatchesDigest(cid: string, digest: Uint8Array): boolean {
  return bytesEqual(parseCid(cid).digest, digest);
}

export function cidDigestHex(cid: string): string {
  return toHex(parseCid(cid).digest);
}

function describe(value: unknown): string {
  if (typeof value !== "string") return typeof value;
  return JSON.stringify(value.length > 80 ? value.slice(0, 80) + "…" : value);
}
