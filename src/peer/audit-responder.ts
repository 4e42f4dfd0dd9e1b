/**
 * The peer's half of storage audits (issue 6 item 7; the directory's half is
 * durable-objects/region-directory/auditor.ts): answers `audit` from the
 * chunk store with hex SHA-256(nonce ‖ chunk[offset, offset + length)), the
 * range clamped to the chunk (src/core/audit.ts).
 *
 * The whole chunk is read and re-hashed against its CID first (a chunk is
 * at most 8 MiB: a few ms of SHA-NI): a copy that rotted anywhere — not
 * only in the audited range — is removed by the store and answered
 * `corrupt`, so the directory drops the replica and repair re-creates it
 * from a good one, instead of this peer serving bad bytes until a
 * downloader notices. A chunk the store does not have answers `missing`.
 * node:crypto hashes the proof (the portable auditProof is the reference
 * the tests compare it with).
 */
import { createHash } from "node:crypto";
import { auditSlice } from "../core/audit.js";
import type { DirectoryToPeer, PeerToDirectory } from "../core/messages.js";
import type { ChunkStore } from "./chunk-store.js";

export type AuditRequest = Extract<DirectoryToPeer, { type: "audit" }>;
export type AuditAnswer = Extract<PeerToDirectory, { type: "audit_result" }>;

/** The answer to one audit; never throws (a read error answers `failed`). */
export async function answerAudit(store: Pick<ChunkStore, "has" | "get">, audit: AuditRequest): Promise<AuditAnswer> {
  const { jobId, cid } = audit;
  try {
    if (!store.has(cid)) return { type: "audit_result", jobId, cid, ok: false, code: "missing", message: "chunk not in this peer's store" };
    const chunk = await store.get(cid, { verify: true });
    if (chunk === null) {
      // Present a moment ago: the verified read found it corrupt (and removed it), or it was deleted meanwhile.
      const code = store.has(cid) ? "failed" : "corrupt";
      return { type: "audit_result", jobId, cid, ok: false, code, message: code === "corrupt" ? "stored copy did not match its CID; removed" : "chunk could not be read" };
    }
    const { start, end } = auditSlice(chunk.length, audit.offset, audit.length);
    const proof = createHash("sha256").update(Buffer.from(audit.nonce, "hex")).update(chunk.subarray(start, end)).digest("hex");
    return { type: "audit_result", jobId, cid, ok: true, proof };
  } catch (err) {
    return { type: "audit_result", jobId, cid, ok: false, code: "failed", message: String((err as Error).message ?? err).slice(0, 500) };
  }
}
