/**
 * Cross-region provider lookups (`scope=all`, single and batched) top up
 * from the other regions nearest first by the asking region's estimates of
 * the quality between regions (what its peers' status reports measured),
 * not in configuration order: holders exist only in us and ap (configured
 * eu, us, ap), and the estimates of eu say first that ap is the nearer,
 * then that us is.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connectPeer, directoryStub, randomCid, registerPeer, type PeerSocket } from "./region-directory-support.js";
import { joinPeer, json, signedFetch, signedJson, type Peer } from "./helpers.js";

const sockets: PeerSocket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

async function connected(region: string): Promise<PeerSocket> {
  const stub = directoryStub(region);
  const socket = await connectPeer(stub, await registerPeer(stub, region), region);
  sockets.push(socket);
  return socket;
}

/** Two holders of `cid` in `region`, announced and acknowledged. */
async function holders(region: string, cid: string): Promise<void> {
  for (let i = 0; i < 2; i++) {
    const holder = await connected(region);
    expect(await holder.request({ type: "announce", id: "a", added: [cid], removed: [] })).toMatchObject({ type: "ack" });
  }
}

/**
 * A peer of eu reports that sources in `near` were fast and in `far` slow, four times with ten downloads
 * each (every report moves the estimates half way), so the estimates say so whatever they said before.
 */
async function measure(reporter: PeerSocket, near: string, far: string): Promise<void> {
  for (let i = 0; i < 4; i++) {
    reporter.send({
      type: "status",
      load: { activeTransfers: 0, queueLength: 0, cpu: 0.1 },
      freeBytes: 1e9,
      regionQuality: [
        { region: near, rttMs: 20, rateBytesPerSecond: 50e6, samples: 10 },
        { region: far, rttMs: 250, rateBytesPerSecond: 2e6, samples: 10 },
      ],
    });
  }
  // Handled in order: the reply to a later request means the reports were folded in.
  await reporter.request({ type: "find_node", id: "sync", target: reporter.nodeId, count: 1 });
}

async function regionsOfSingle(asker: Peer, cid: string, count: number): Promise<string[]> {
  const body = await json(await signedFetch(asker, "GET", `/v1/regions/eu/providers/${cid}?scope=all&count=${count}`));
  return body.providers.map((p: { region: string }) => p.region);
}

async function regionsOfBatch(asker: Peer, cid: string, count: number): Promise<string[]> {
  const body = await json(await signedJson(asker, "POST", "/v1/regions/eu/providers", { cids: [cid], count, scope: "all" }));
  return body.providers[cid].map((p: { region: string }) => p.region);
}

describe("scope=all lookups ask the nearest other regions first", () => {
  it("lists the holders of the region the estimates call nearer first, and follows the estimates when they change", async () => {
    const cid = randomCid();
    await holders("us", cid);
    await holders("ap", cid);
    const reporter = await connected("eu");
    const asker = await joinPeer({ region: "eu" });

    // ap measured nearer than us: against the configuration order.
    await measure(reporter, "ap", "us");
    expect(await regionsOfSingle(asker, cid, 4)).toEqual(["ap", "ap", "us", "us"]);
    expect(await regionsOfSingle(asker, cid, 2)).toEqual(["ap", "ap"]);
    expect(await regionsOfBatch(asker, cid, 4)).toEqual(["ap", "ap", "us", "us"]);
    expect(await regionsOfBatch(asker, cid, 2)).toEqual(["ap", "ap"]);

    // Now us is the nearer one.
    await measure(reporter, "us", "ap");
    expect(await regionsOfSingle(asker, cid, 4)).toEqual(["us", "us", "ap", "ap"]);
    expect(await regionsOfSingle(asker, cid, 2)).toEqual(["us", "us"]);
    expect(await regionsOfBatch(asker, cid, 4)).toEqual(["us", "us", "ap", "ap"]);
    expect(await regionsOfBatch(asker, cid, 2)).toEqual(["us", "us"]);
  });
});
