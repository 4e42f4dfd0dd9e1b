/**
 * The peer's half of repair (src/peer/repair-worker.ts): when R2 lacks the
 * chunk, a region's share of a multi-region policy is copied from another
 * region's holder, still verified against the CID by the real chunk store;
 * a source peer that answers "busy" is waited for, not blamed.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cidOfBytes } from "../../src/core/cid.js";
import { ChunkStore } from "../../src/peer/chunk-store.js";
import { RepairWorker, type RepairJobMessage, type RepairResultMessage } from "../../src/peer/repair-worker.js";
import { AskLaterError } from "../../src/peer/sources.js";

let root: string;
let store: ChunkStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "peercloud-repair-worker-"));
  store = await ChunkStore.open(join(root, "store"));
});

afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

/** Runs one R2-sourced job to its result. */
function runJob(cid: string, fetchFromOtherRegions?: (cid: string) => Promise<Uint8Array | null>): Promise<RepairResultMessage> {
  return new Promise((resolve) => {
    const worker = new RepairWorker({
      store,
      fetchFromPeer: () => Promise.reject(new Error("no peer source in this job")),
      fetchFromR2: async () => null,
      ...(fetchFromOtherRegions ? { fetchFromOtherRegions: (c: string) => fetchFromOtherRegions(c) } : {}),
      announce: async () => {},
      report: resolve,
      concurrency: 1,
    });
    const job: RepairJobMessage = { type: "repair", jobId: "r1", cid, sizeBytes: null, source: { kind: "r2" }, timeoutMs: 10_000 };
    worker.handle(job);
  });
}

describe("repair from another region", () => {
  it("copies from another region's holder when R2 lacks the chunk, pinned", async () => {
    const bytes = randomBytes(50_000);
    const cid = await cidOfBytes(bytes);
    const asked: string[] = [];
    const result = await runJob(cid, async (c) => {
      asked.push(c);
      return bytes;
    });
    expect(result).toMatchObject({ ok: true, sizeBytes: bytes.length });
    expect(asked).toEqual([cid]);
    expect(Buffer.compare(Buffer.from((await store.get(cid))!), bytes)).toBe(0);
    expect(store.isPinned(cid)).toBe(true);
  });

  it("rejects wrong bytes from the other region as corrupt and keeps nothing", async () => {
    const cid = await cidOfBytes(randomBytes(1000));
    const result = await runJob(cid, async () => randomBytes(1000));
    expect(result).toMatchObject({ ok: false, code: "corrupt" });
    expect(await store.get(cid)).toBeNull();
  });

  it("says source_missing, naming both, when no region has it; and R2 alone without the fallback", async () => {
    const cid = await cidOfBytes(randomBytes(1000));
    expect(await runJob(cid, async () => null)).toMatchObject({ ok: false, code: "source_missing", message: expect.stringContaining("neither R2 nor another region") });
    expect(await runJob(cid)).toMatchObject({ ok: false, code: "source_missing", message: expect.stringContaining("R2 does not hold") });
  });
});

describe("repair from a busy peer", () => {
  function runPeerJob(cid: string, fetchFromPeer: () => Promise<Uint8Array>): Promise<RepairResultMessage> {
    return new Promise((resolve) => {
      const worker = new RepairWorker({
        store,
        fetchFromPeer,
        fetchFromR2: async () => null,
        announce: async () => {},
        report: resolve,
        concurrency: 1,
      });
      worker.handle({ type: "repair", jobId: "r2", cid, sizeBytes: null, source: { kind: "peer", nodeId: "n".repeat(52), addresses: ["http://127.0.0.1:9"] }, timeoutMs: 10_000 });
    });
  }

  it("waits out 'busy, ask later' answers from the source and copies the chunk; no fault is reported", async () => {
    const bytes = randomBytes(20_000);
    const cid = await cidOfBytes(bytes);
    let asked = 0;
    const result = await runPeerJob(cid, async () => {
      if (++asked <= 2) throw new AskLaterError("peer_busy", "source", 100, "every send slot is taken");
      return bytes;
    });
    expect(result).toMatchObject({ ok: true, sizeBytes: bytes.length });
    expect(asked).toBe(3);
    expect(store.isPinned(cid)).toBe(true);
  });

  it("gives up after a few busy answers as source_unreachable, keeping nothing", async () => {
    const cid = await cidOfBytes(randomBytes(1000));
    let asked = 0;
    const result = await runPeerJob(cid, async () => {
      asked++;
      throw new AskLaterError("peer_busy", "source", 0, "every send slot is taken");
    });
    expect(result).toMatchObject({ ok: false, code: "source_unreachable", message: expect.stringContaining("every send slot is taken") });
    expect(asked).toBe(6);
    expect(await store.get(cid)).toBeNull();
  });
});
