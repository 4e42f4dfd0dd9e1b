/**
 * End to end: draining a storage peer before it leaves (issue 6, "Drain").
 * The real edge and five peer daemons (heartbeat shortened through the
 * edge's parameters, so the directory's alarm runs its repair passes
 * often). Files are put with --replicas 2; the non-publisher peer holding
 * most of their chunks runs `peercloud --json peer drain`, which must end
 * on its own once every chunk it holds has two live replicas on other
 * peers. Then that peer is stopped for good, and every file downloads
 * bit-exact in a fresh home. The drain's time and bytes moved are printed,
 * not asserted (DESIGN "Testing").
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestNetwork, type TestNetwork } from "../helpers/peer-process.js";
import { expectAllDownload, heaviestHolder, putReplicated } from "../helpers/replicated-files.js";

const HEARTBEAT_MS = 2000;
const REPLICAS = 2;

let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork({ peers: 5, edge: { vars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), REPAIR_JOB_TIMEOUT_MS: "30000", REPAIR_RETRY_BACKOFF_MS: "5000" } } });
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

describe("peer drain", () => {
  it("drains a holder until nothing would be lost, then the files survive its shutdown bit-exact", async () => {
    const [publisher] = net.peers;
    const dir = net.dir("drain");
    const { files, cids } = await putReplicated(net, publisher, dir, [3 * 1024 * 1024 + 11, 1024 * 1024 + 3, 150_000], REPLICAS, "drain");
    const leaving = heaviestHolder(net, publisher, cids);
    const held = cids.filter((c) => leaving.holds(c));
    expect(held.length).toBeGreaterThan(0);

    const startedAt = Date.now();
    const drain = await leaving.run(["--json", "peer", "drain", "--poll", "250"]);
    const drainMs = Date.now() - startedAt;
    expect(drain.code, drain.stderr).toBe(0);
    const result = JSON.parse(drain.stdout.trim().split("\n").pop()!) as { done: boolean; heldChunks: number; remainingChunks: number; movedBytes: number; durationMs: number };
    expect(result).toMatchObject({ done: true, remainingChunks: 0 });
    const progressLines = drain.stderr.split("\n").filter((l) => l.includes('"op":"drain"'));
    expect(progressLines.length).toBeGreaterThan(0);
    console.log(`drain: ${held.length} chunk(s) on the leaving peer, ${result.heldChunks} pinned; done in ${drainMs} ms, ${result.movedBytes} bytes moved`);

    // Nothing lost by shutting it down: the other peers hold every chunk at least twice.
    const rest = net.peers.filter((p) => p !== leaving);
    for (const cid of cids) expect(rest.filter((p) => p.holds(cid)).length, cid).toBeGreaterThanOrEqual(REPLICAS);
    await leaving.stop();

    await expectAllDownload(net, files, net.dir("drain-out"));
  }, 300_000);
});
