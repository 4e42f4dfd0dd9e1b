/**
 * End to end: replica policies across regions (issue 6 "Policies"). The
 * real edge with its configured regions (eu, us, ap), three peer daemons in
 * the local edge's default region ("home") and two in the first other
 * region of the configuration ("far"), none in the third:
 *
 *  1. `put --replicas 3 --min-regions 2` keeps two copies at home (the
 *     publisher's and one more) and one in far — the nearest other region
 *     (no measurements yet, so the configured order);
 *  2. the far holder is SIGKILLed: the far directory repairs its share on
 *     the other far peer, though neither R2 nor any far peer has the
 *     chunks (the repair copies them from home);
 *  3. `pin --replicas 2 --min-regions 1` withdraws the far share: nobody
 *     pins it there any more, so the far directory has its holder release
 *     it (unpinned: evictable cache); home keeps two;
 *  4. that holder leaves, a new far peer joins, and `pin --min-regions 2`
 *     seeds far again from the publisher's store; the file downloads
 *     bit-exact in a fresh far home.
 *
 * Times are printed; the waits are bounded by detection + repair timeouts.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_PARAMS } from "../../src/core/params.js";
import { PeerHome } from "../../src/peer/home.js";
import { parseJsonResult, sha256File, startTestNetwork, waitUntil, writeRandomFile, type TestNetwork, type TestPeer } from "../helpers/peer-process.js";

const HEARTBEAT_MS = 2000;
const DEAD_MS = HEARTBEAT_MS * DEFAULT_PARAMS.deadAfterMissedHeartbeats;
const REPAIR_TIMEOUT_MS = 30_000;
const BOUND_MS = DEAD_MS + 2 * HEARTBEAT_MS + 2 * REPAIR_TIMEOUT_MS;

let net: TestNetwork;
let far: TestPeer[];
let farRegion: string;
let thirdRegion: string;

beforeAll(async () => {
  net = await startTestNetwork({
    peers: 3,
    edge: { vars: { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), REPAIR_JOB_TIMEOUT_MS: String(REPAIR_TIMEOUT_MS), REPAIR_RETRY_BACKOFF_MS: "5000", TRIM_GRACE_MS: "1000" } },
  });
  const { config } = await new PeerHome(net.peers[0].home).load();
  const regions = ((await (await fetch(`${net.edgeUrl}/v1/network`)).json()) as { regions: string[] }).regions.filter((r) => r !== config.region);
  expect(regions.length).toBeGreaterThanOrEqual(2);
  [farRegion, thirdRegion] = regions;
  far = [];
  for (let i = 0; i < 2; i++) far.push(await net.addPeer({ region: farRegion, start: false, roles: ["service", "client", "publisher"] }));
  await Promise.all(far.map((p) => p.start()));
  net.peers.push(...far);
  await net.waitUntilPlaceable(far);
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

interface PinJson {
  replicas: number;
  minRegions: number;
  regions: { region: string | null; replicas: number; pushedTo: string[] }[];
  withdrawnFrom: string[];
}

describe("replicas across regions", () => {
  it("min-regions spreads a file over regions, each region repairs its share, and pin changes the policy both ways", async () => {
    const [publisher, ...euOthers] = net.peers.filter((p) => !far.includes(p));
    const dir = net.dir("regions");
    const path = join(dir, "f.bin");
    const sha = await writeRandomFile(path, 3 * 1024 * 1024 + 7, "regions");

    const put = await publisher.put(path, ["--replicas", "3", "--min-regions", "2"]);
    expect(put.regions).toEqual([
      { region: null, replicas: 2, achieved: 2 },
      { region: farRegion, replicas: 1, achieved: 1 },
    ]);
    const cids = [put.cid, ...(await publisher.fileChunks(put.link)).map((c) => c.cid)];
    const holdsAll = (p: TestPeer) => cids.every((c) => p.holds(c));
    const pinsAny = (p: TestPeer) => cids.some((c) => p.pins(c));
    expect(euOthers.filter(holdsAll)).toHaveLength(1);
    const [farHolder, ...farRest] = far.filter(holdsAll);
    expect(farHolder).toBeDefined();
    expect(farRest).toEqual([]);
    const survivor = far.find((p) => p !== farHolder)!;

    // 2. The far copy dies; R2 has nothing (no --cold) and no other far peer has it: repaired from home.
    const killedAt = Date.now();
    await farHolder.kill("SIGKILL");
    await waitUntil("the far share repaired on the other far peer", BOUND_MS, () => holdsAll(survivor));
    console.log(`regions: far holder killed, share repaired from home in ${Date.now() - killedAt} ms (bound ${BOUND_MS} ms)`);

    // 3. Withdraw the far share: home keeps 2, the far copy is released.
    const home = parseJsonResult<PinJson>(await publisher.run(["--json", "pin", put.link, "--replicas", "2", "--min-regions", "1"]), "pin home");
    expect(home).toMatchObject({ replicas: 2, minRegions: 1, regions: [{ region: null, replicas: 2 }] });
    expect(home.withdrawnFrom).toEqual(expect.arrayContaining([farRegion, thirdRegion]));
    const releasedAt = Date.now();
    await waitUntil("the far copy released", BOUND_MS, () => !pinsAny(survivor));
    console.log(`regions: far share withdrawn, its copy released in ${Date.now() - releasedAt} ms`);
    expect(euOthers.filter(holdsAll).length).toBeGreaterThanOrEqual(1);
    expect(cids.every((c) => publisher.pins(c))).toBe(true);

    // 4. The far holder leaves (a goodbye: suspect at once), a new far peer joins; back to two regions: seeded again.
    await survivor.stop();
    const newcomer = await net.addPeer({ region: farRegion, roles: ["service", "client", "publisher"] });
    await net.waitUntilPlaceable([newcomer]);
    const spread = parseJsonResult<PinJson>(await publisher.run(["--json", "pin", put.link, "--min-regions", "2"]), "pin spread");
    expect(spread).toMatchObject({
      replicas: 2,
      minRegions: 2,
      regions: [
        { region: null, replicas: 1 },
        { region: farRegion, replicas: 1, pushedTo: [newcomer.nodeId] },
      ],
    });
    expect(cids.every((c) => newcomer.pins(c))).toBe(true);

    const reader = await net.addPeer({ region: farRegion, start: false });
    const out = join(dir, "out.bin");
    const got = await reader.get(put.link, out);
    expect(got.bytes).toBe(3 * 1024 * 1024 + 7);
    expect(await sha256File(out)).toBe(sha);
  }, 300_000);
});
