/**
 * End to end: self-healing storage (issue 6, "Repair"). The real edge and
 * five peer daemons, with the heartbeat shortened through the edge's
 * parameters (HEARTBEAT_INTERVAL_MS; peers take it from the directory's
 * welcome) so that a dead peer is detected in seconds. A few files are put
 * with --replicas 3, one holder that is not the publisher is SIGKILLed, and
 * the test waits — polling the directory with a deadline, never sleeping —
 * until every chunk is back at three live replicas on the survivors, then
 * downloads every file bit-exact in a fresh home and checks the region
 * summary's repair figures (admin API and `status --json`).
 *
 * The bound: the dead timeout (heartbeat × deadAfterMissedHeartbeats) plus
 * an alarm interval for the sweep, plus the transfer budget. Timings are
 * printed, not asserted beyond that safety bound (DESIGN "Testing").
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RegionSummary } from "../../durable-objects/region-directory-contract.js";
import { DEFAULT_PARAMS } from "../../src/core/params.js";
import { startTestNetwork, waitUntil, type TestNetwork, type TestPeer, pinnedRegionSummary } from "../helpers/peer-process.js";
import { expectAllDownload, heaviestHolder, putReplicated } from "../helpers/replicated-files.js";

const HEARTBEAT_MS = 2000;
const DEAD_MS = HEARTBEAT_MS * DEFAULT_PARAMS.deadAfterMissedHeartbeats;
const REPAIR_TIMEOUT_MS = 30_000;
/** Detection (dead timeout + one sweep interval) plus the transfer budget of the repair jobs. */
const REPAIR_BOUND_MS = DEAD_MS + 2 * HEARTBEAT_MS + 2 * REPAIR_TIMEOUT_MS;
const REPLICAS = 3;

let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork({
    peers: 5,
    edge: { vars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), REPAIR_JOB_TIMEOUT_MS: String(REPAIR_TIMEOUT_MS), REPAIR_RETRY_BACKOFF_MS: "5000" } },
  });
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

function regionSummary(): Promise<RegionSummary> {
  return pinnedRegionSummary(net.edge);
}

/** Live providers of `cid` (the directory's answer) other than `except`. */
async function liveHolders(cid: string, except: TestPeer): Promise<string[]> {
  return (await net.providersOf(cid)).filter((p) => p.state !== "dead" && p.nodeId !== except.nodeId).map((p) => p.nodeId);
}

describe("replica repair after a holder dies", () => {
  it("SIGKILL of a holder: every chunk is back at 3 live replicas within the bound, and every file downloads bit-exact", async () => {
    const [publisher] = net.peers;
    const dir = net.dir("repair");
    // Every replica announced before the kill, so that what is missing afterwards is the victim's share only.
    const { files, cids } = await putReplicated(net, publisher, dir, [3 * 1024 * 1024 + 17, 1536 * 1024 + 5, 200_000], REPLICAS, "repair");
    const victim = heaviestHolder(net, publisher, cids);
    const lost = cids.filter((c) => victim.holds(c));
    expect(lost.length).toBeGreaterThan(0);
    const before = await regionSummary();

    const killedAt = Date.now();
    await victim.kill("SIGKILL");
    await waitUntil("the directory stops offering the dead peer", REPAIR_BOUND_MS, async () => !(await net.providersOf(lost[0])).some((p) => p.nodeId === victim.nodeId));
    const detectMs = Date.now() - killedAt;
    await waitUntil(`${cids.length} chunks back at ${REPLICAS} live replicas`, REPAIR_BOUND_MS, async () => {
      for (const cid of cids) if ((await liveHolders(cid, victim)).length < REPLICAS) return false;
      return true;
    });
    const repairMs = Date.now() - killedAt;
    console.log(
      `repair: ${lost.length} chunk(s) lost with the victim; detected dead after ${detectMs} ms (dead timeout ${DEAD_MS} ms), ` +
        `all back at ${REPLICAS} live replicas after ${repairMs} ms (bound ${REPAIR_BOUND_MS} ms)`,
    );

    // The stores agree with the directory: three survivors hold every chunk, the new copies pinned.
    const survivors = net.peers.filter((p) => p !== victim);
    for (const cid of cids) expect(survivors.filter((p) => p.holds(cid)).length, cid).toBeGreaterThanOrEqual(REPLICAS);

    const after = await regionSummary();
    console.log(`repair summary: ${JSON.stringify(after.repair)}, underReplicatedChunks ${after.underReplicatedChunks}`);
    expect(after.underReplicatedChunks).toBe(0);
    expect(after.repair.completedJobs - before.repair.completedJobs).toBeGreaterThanOrEqual(lost.length);
    expect(after.repair.bytesRepaired).toBeGreaterThan(before.repair.bytesRepaired);
    expect(after.repair).toMatchObject({ queuedJobs: 0, runningJobs: 0 });
    // The same figures in `status --json` of any peer of the region.
    const status = JSON.parse((await publisher.run(["--json", "status"])).stdout) as { regionSummary: RegionSummary | null; regionSummaryError?: string };
    expect(status.regionSummary, status.regionSummaryError).not.toBeNull();
    expect(status.regionSummary!).toMatchObject({ underReplicatedChunks: 0, repair: { completedJobs: after.repair.completedJobs, bytesRepaired: after.repair.bytesRepaired } });

    // Every file downloads bit-exact from the survivors, in a home that holds nothing.
    await expectAllDownload(net, files, net.dir("repair-out"));
  }, 300_000);
});
