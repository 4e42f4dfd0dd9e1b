/**
 * Region directory, release (durable-objects/region-directory/releaser.ts):
 * when the last pin of a chunk is withdrawn its holders are told to release
 * it (a `release` message on their sockets, from the next alarm pass); a
 * chunk another publisher still pins is not released; a holder that is
 * away is told once it is back; pinning again cancels a pending release.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { RegionDirectory } from "../../durable-objects/region-directory.js";
import { RELEASE_RETRY_MS } from "../../durable-objects/region-directory/releaser.js";
import { connectPeer, directoryStub, freshRegion, randomCid, registerPeer, setClock, type DirectoryStub, type PeerSocket } from "./region-directory-support.js";

async function announce(peer: PeerSocket, cids: string[]): Promise<void> {
  expect(await peer.request({ type: "announce", id: "a", added: cids, removed: [] })).toEqual({ type: "ack", id: "a" });
}

async function pendingReleases(stub: DirectoryStub): Promise<string[]> {
  return runInDurableObject(stub, (_obj: RegionDirectory, state) =>
    state.storage.sql
      .exec<{ cid: string }>(`SELECT cid FROM released_chunks ORDER BY cid`)
      .toArray()
      .map((r) => r.cid),
  );
}

describe("release of chunks nobody pins", () => {
  it("tells every holder once the last pin is withdrawn, not before; an absent holder when it is back", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const p1 = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const p2 = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const [h1, h2] = [await registerPeer(stub, region), await registerPeer(stub, region)];
    const s1 = await connectPeer(stub, h1, region);
    let s2 = await connectPeer(stub, h2, region);
    const [x, y] = [randomCid(), randomCid()];
    await announce(s1, [x, y]);
    await announce(s2, [x]);
    await stub.pin(p1, [x, y], 2);
    await stub.pin(p2, [x], 2);

    // p1 withdraws both: y has no pinner left, x still has p2's.
    await stub.pin(p1, [x, y], 0);
    expect(await pendingReleases(stub)).toEqual([y]);
    await runDurableObjectAlarm(stub);
    expect(await s1.next()).toEqual({ type: "release", cids: [y] });
    expect(await pendingReleases(stub)).toEqual([]);

    // h2 goes away; p2 withdraws x: h1 is told at once, h2's release waits for it.
    s2.close();
    await s2.closed;
    await stub.pin(p2, [x], 0);
    await runDurableObjectAlarm(stub);
    expect(await s1.next()).toEqual({ type: "release", cids: [x] });
    expect(await pendingReleases(stub)).toEqual([x]);
    // Past the retry interval (RELEASE_RETRY_MS) h2 is back; the next pass tells it.
    await setClock(stub, Date.now() + 2 * RELEASE_RETRY_MS);
    s2 = await connectPeer(stub, h2, region);
    await runDurableObjectAlarm(stub);
    expect(await s2.next()).toEqual({ type: "release", cids: [x] });
    expect(await pendingReleases(stub)).toEqual([]);
    s1.close();
    s2.close();
  });

  it("cancels a pending release when the chunk is pinned again", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const p1 = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const h1 = await registerPeer(stub, region);
    const x = randomCid();
    await stub.pin(p1, [x], 2);
    await stub.pin(p1, [x], 0);
    expect(await pendingReleases(stub)).toEqual([x]);
    await stub.pin(p1, [x], 3);
    expect(await pendingReleases(stub)).toEqual([]);
    // Nothing is sent to a holder that connects later.
    const s1 = await connectPeer(stub, h1, region);
    await announce(s1, [x]);
    await runDurableObjectAlarm(stub);
    expect(await s1.request({ type: "announce", id: "b", added: [], removed: [] })).toEqual({ type: "ack", id: "b" });
    s1.close();
  });
});
