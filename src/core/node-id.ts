/**
 * Node IDs and the XOR metric of Kademlia (Maymounkov & Mazières, 2002).
 *
 * A peer's node ID is the SHA-256 of its Ed25519 public key, written as 64
 * lower-case hex characters; content keys (CIDs) map into the same 256-bit
 * space through their SHA-256 digest, so "closest peers to a chunk" is a
 * meaningful question. IDs are compared as big-endian unsigned integers.
 */
import { fromHex, toHex } from "./bytes.js";
import { sha256 } from "./cid.js";

export const NODE_ID_BYTES = 32;
export const NODE_ID_BITS = NODE_ID_BYTES * 8;
const NODE_ID_RE = /^[0-9a-f]{64}$/;

export type NodeId = string;

export function isNodeId(value: unknown): value is NodeId {
  return typeof value === "string" && NODE_ID_RE.test(value);
}

export async function nodeIdFromPublicKey(publicKey: Uint8Array): Promise<NodeId> {
  return toHex(await sha256(publicKey));
}

export function nodeIdBytes(id: NodeId): Uint8Array {
  if (!isNodeId(id)) throw new TypeError(`not a node ID: ${String(id).slice(0, 80)}`);
  return fromHex(id);
}

export function xorDistance(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** Negative when `a` is closer to `target` than `b`, 0 when equal, positive otherwise. */
export function compareDistance(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = a[i] ^ target[i];
    const db = b[i] ^ target[i];
    if (da !== db) return da - db;
  }
  return 0;
}

/** Number of leading bits `a` and `b` share (256 when equal). */
export function commonPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ^ b[i];
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return a.length * 8;
}

/** Bit `index` (0 = most significant) of `id`. */
export function bitAt(id: Uint8Array, index: number): 0 | 1 {
  return ((id[index >> 3] >> (7 - (index & 7))) & 1) as 0 | 1;
}
