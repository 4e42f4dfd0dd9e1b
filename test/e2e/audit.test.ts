/**
 * End to end: storage audits (issue 6, "Audits") with the real edge and four
 * peer daemons, audits every 2 s through the edge's parameters. A file is
 * put with --replicas 3; once its chunks are audited (passes in the
 * region summary of `peercloud status --json`), one holder's copy of a
 * chunk is corrupted behind its store's back. The next audit finds it: the
 * peer re-hashes, answers `corrupt` and drops the copy, the directory counts
 * a failed audit, and repair brings the chunk back to three holders (with a
 * good copy, possibly on the same peer); the file still downloads bit-exact. Times are printed, not asserted.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RegionSummary } from "../../durable-objects/region-directory-contract.js";
import { sha256File, startTestNetwork, waitUntil, writeRandomFile, type TestNetwork, type TestPeer } from "../helpers/peer-process.js";

const REPLICAS = 3;
let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork({
    peers: 4,
    edge: {
      vars: {
        HEARTBEAT_INTERVAL_MS: "2000",
        AUDIT_INTERVAL_MS: "2000",
        AUDIT_TIMEOUT_MS: "10000",
        AUDIT_CHUNKS_PER_PASS: "64",
        AUDITS_PER_PEER_PER_PASS: "64",
        REPAIR_JOB_TIMEOUT_MS: "30000",
        REPAIR_RETRY_BACKOFF_MS: "5000",
      },
    },
  });
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

async function audits(peer: TestPeer): Promise<RegionSummary["audits"] | null> {
  const res = await peer.run(["--json", "status"]);
  if (res.code !== 0) return null;
  const status = JSON.parse(res.stdout) as { regionSummary: RegionSummary | null };
  return status.regionSummary?.audits ?? null;
}

describe("audits", () => {
  it("a corrupted replica fails its audit, is dropped and repaired; the file downloads bit-exact", async () => {
    const [publisher] = net.peers;
    const path = join(net.dir("audit"), "file.bin");
    const size = 2 * 1024 * 1024 + 17;
    const sha = await writeRandomFile(path, size, "audit");
    const put = await publisher.put(path, ["--replicas", String(REPLICAS)]);
    const cids = [put.cid, ...(await publisher.fileChunks(put.link)).map((c) => c.cid)];
    await waitUntil("every chunk has 3 live providers", 60_000, async () => {
      for (const cid of cids) if ((await net.providersOf(cid)).length < REPLICAS) return false;
      return true;
    });
    await waitUntil("audits passed", 60_000, async () => ((await audits(publisher))?.passed ?? 0) > 0);

    const victimCid = cids[cids.length - 1];
    const victim = net.peers.find((p) => p !== publisher && p.holds(victimCid))!;
    expect(victim).toBeDefined();
    const startedAt = Date.now();
    await victim.corruptChunk(victimCid);
    // The victim drops its copy when it answers; repair may put a good one straight back on it (with 4 peers
    // and 3 replicas it is the only other host), so the directory's count of failed audits is what is awaited.
    await waitUntil("the corrupt copy failed an audit", 60_000, async () => ((await audits(publisher))?.failed ?? 0) > 0);
    const detectMs = Date.now() - startedAt;
    await waitUntil("the chunk is back at 3 providers", 90_000, async () => (await net.providersOf(victimCid)).length >= REPLICAS);
    const summary = await audits(publisher);
    console.log(`audit: corrupt copy found in ${detectMs} ms, repaired in ${Date.now() - startedAt} ms; audits ${JSON.stringify(summary)}`);

    const downloader = await net.addPeer({ start: false });
    const out = join(net.dir("audit-out"), "file.bin");
    const got = await downloader.get(put.link, out);
    expect(got.bytes).toBe(size);
    expect(await sha256File(out)).toBe(sha);
  }, 300_000);
});
