/**
 * Storage audits (issue 6 item 7), the part both sides share: what a proof
 * is and how a holder's standing is scored. The directory challenges the
 * holders of a chunk with one fresh random nonce and byte range; each
 * answers SHA-256(nonce ‖ chunk[offset, offset + length)) in lower-case hex.
 * The nonce makes an old answer worthless and the range makes a holder read
 * the bytes; the directory, which holds no chunk, checks the answers against
 * each other (see durable-objects/region-directory/auditor.ts and the
 * "Audits" section of docs/architecture.md for the threat model).
 *
 * The range is clamped to the chunk, so every honest holder of the same
 * bytes computes the same proof even when the directory's idea of the
 * chunk's size (the publisher's claim) is wrong. Portable (noble SHA-256):
 * the range is small; the peer hashes with node:crypto and the tests
 * cross-check the two.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { concatBytes, fromHex, toHex } from "./bytes.js";

/** Nonce length in bytes (hex on the wire). */
export const AUDIT_NONCE_BYTES = 16;

/** The byte range [start, end) an audit of (offset, length) covers in a chunk of `sizeBytes`. */
export function auditSlice(sizeBytes: number, offset: number, length: number): { start: number; end: number } {
  const start = Math.min(offset, sizeBytes);
  return { start, end: Math.min(start + length, sizeBytes) };
}

/** The proof over the already-sliced range bytes: hex SHA-256(nonce ‖ bytes). */
export function auditProof(nonceHex: string, rangeBytes: Uint8Array): string {
  return toHex(sha256(concatBytes(fromHex(nonceHex), rangeBytes)));
}

/** The proof a holder of the whole `chunk` gives for (nonce, offset, length). */
export function auditProofOfChunk(nonceHex: string, chunk: Uint8Array, offset: number, length: number): string {
  const { start, end } = auditSlice(chunk.length, offset, length);
  return auditProof(nonceHex, chunk.subarray(start, end));
}

/**
 * A holder's reputation from its audit record, in (0, 1]: 1 for a peer
 * never audited, and one failure weighs as much as `FAILURE_WEIGHT` passes
 * (a fresh peer that fails once drops to ~0.09; one with 100 passes to
 * ~0.91). Placement should rank peers below `LOW_REPUTATION` last.
 */
export const FAILURE_WEIGHT = 10;
export const LOW_REPUTATION = 0.5;
export function reputationScore(passed: number, failed: number): number {
  return (passed + 1) / (passed + 1 + FAILURE_WEIGHT * failed);
}
