/**
 * The peer's audit answers (src/peer/audit-responder.ts) against a real
 * ChunkStore in a temp dir: the proof equals the portable reference
 * (src/core/audit.ts, noble SHA-256) and a known-answer vector; ranges are
 * clamped to the chunk; an absent chunk answers `missing`; a chunk whose
 * file was corrupted behind the store's back — even outside the audited
 * range — answers `corrupt` and is removed.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditProof, auditProofOfChunk, auditSlice } from "../../src/core/audit.js";
import { parseCid } from "../../src/core/cid.js";
import { ChunkStore, shardOf } from "../../src/peer/chunk-store.js";
import { answerAudit, type AuditRequest } from "../../src/peer/audit-responder.js";
import { makeChunk, recordEvents } from "./store-contract.js";

const NONCE = "000102030405060708090a0b0c0d0e0f";

function audit(cid: string, offset: number, length: number): AuditRequest {
  return { type: "audit", jobId: "a1", cid, nonce: NONCE, offset, length, timeoutMs: 30_000 };
}

function chunkFile(root: string, cid: string): string {
  return join(root, "chunks", shardOf(parseCid(cid).digest), cid);
}

describe("audit proofs", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "peercloud-audit-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("the portable proof is SHA-256(nonce ‖ range) (known answer) and clamps the range to the chunk", () => {
    const bytes = new TextEncoder().encode("abc");
    // SHA-256 of the 16 nonce bytes followed by "abc", computed independently with node:crypto.
    const expected = createHash("sha256").update(Buffer.from(NONCE, "hex")).update("abc").digest("hex");
    expect(auditProof(NONCE, bytes)).toBe(expected);
    expect(auditProofOfChunk(NONCE, bytes, 0, 1000)).toBe(expected);
    expect(auditSlice(10, 4, 100)).toEqual({ start: 4, end: 10 });
    expect(auditSlice(10, 50, 100)).toEqual({ start: 10, end: 10 });
    expect(auditProofOfChunk(NONCE, bytes, 7, 5)).toBe(auditProof(NONCE, new Uint8Array(0)));
  });

  it("answers a proof over the audited range that matches the reference, for ranges inside, across and past the end", async () => {
    const store = await ChunkStore.open(dir);
    const c = makeChunk("audit", 100_000);
    await store.put(c.cid, c.bytes);
    for (const [offset, length] of [
      [0, 65_536],
      [12_345, 4096],
      [90_000, 65_536],
      [200_000, 10],
      [5, 0],
    ]) {
      const answer = await answerAudit(store, audit(c.cid, offset, length));
      expect(answer).toEqual({ type: "audit_result", jobId: "a1", cid: c.cid, ok: true, proof: auditProofOfChunk(NONCE, c.bytes, offset, length) });
    }
    // Another nonce, another proof: an old answer cannot be replayed.
    const other = await answerAudit(store, { ...audit(c.cid, 0, 100), nonce: "ff".repeat(16) });
    const same = await answerAudit(store, audit(c.cid, 0, 100));
    expect(other.ok && same.ok && other.proof !== same.proof).toBe(true);
    await store.close();
  });

  it("answers missing for a chunk it does not hold", async () => {
    const store = await ChunkStore.open(dir);
    const c = makeChunk("absent", 1000);
    expect(await answerAudit(store, audit(c.cid, 0, 100))).toMatchObject({ ok: false, code: "missing", cid: c.cid, jobId: "a1" });
    await store.close();
  });

  it("answers corrupt, and drops the copy, when the chunk file was altered — even outside the audited range", async () => {
    const store = await ChunkStore.open(dir);
    const events = recordEvents(store);
    const c = makeChunk("rot", 50_000);
    await store.put(c.cid, c.bytes);
    const bad = new Uint8Array(c.bytes);
    bad[49_999] ^= 0xff; // the last byte; the audit asks for the first 1000
    await writeFile(chunkFile(dir, c.cid), bad);
    expect(await answerAudit(store, audit(c.cid, 0, 1000))).toMatchObject({ ok: false, code: "corrupt" });
    expect(store.has(c.cid)).toBe(false);
    expect(events.removed).toEqual([[c.cid, "corrupt"]]);
    // Asked again, the copy is gone.
    expect(await answerAudit(store, audit(c.cid, 0, 1000))).toMatchObject({ ok: false, code: "missing" });
    await store.close();
  });
});
