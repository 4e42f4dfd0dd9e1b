/**
 * Region directory, inventory sync and batched lookups: a full-inventory
 * sync (announce batches with `sync: { epoch, done }`) forgets what the
 * peer no longer lists only on its last batch, keeps additions announced
 * meanwhile, and survives a sync cut off before `done`; a batched
 * `find_providers` answers exactly what one lookup per CID answers.
 */
import { describe, expect, it } from "vitest";
import { MAX_PROVIDER_BATCH_CIDS } from "../../src/core/messages.js";
import { connectPeer, directoryStub, freshRegion, randomCid, registerPeer, type PeerSocket } from "./region-directory-support.js";

const holdersOf = async (stub: ReturnType<typeof directoryStub>, cid: string) => (await stub.findProviders(cid)).map((p) => p.nodeId).sort();

async function announce(peer: PeerSocket, id: string, added: string[], removed: string[] = [], sync?: { epoch: string; done: boolean }) {
  expect(await peer.request({ type: "announce", id, added, removed, ...(sync ? { sync } : {}) })).toEqual({ type: "ack", id });
}

describe("full-inventory sync", () => {
  it("drops what a resync no longer lists, on its last batch only, and keeps additions announced meanwhile", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const [n1, n2] = [await registerPeer(stub, region), await registerPeer(stub, region)];
    const [peer, other] = [await connectPeer(stub, n1, region), await connectPeer(stub, n2, region)];
    const [a, b, c, d] = [randomCid(), randomCid(), randomCid(), randomCid()];

    await announce(peer, "1", [a, b, c]);
    await announce(other, "2", [b]);
    await stub.pin(publisher, [b], 2);
    expect(await stub.underReplicated()).toEqual([]);
    expect((await stub.summary()).replicas).toBe(4);

    // The peer comes back without b (deleted while offline) and syncs a, c in two batches.
    await announce(peer, "s1", [a], [], { epoch: "e1", done: false });
    // Nothing is forgotten before the last batch: b keeps both holders and its live count.
    expect(await holdersOf(stub, b)).toEqual([n1, n2].sort());
    expect(await stub.underReplicated()).toEqual([]);
    // A chunk added meanwhile (a plain delta) is not in the sync's listing, but must survive its sweep.
    await announce(peer, "d1", [d]);
    await announce(peer, "s2", [c], [], { epoch: "e1", done: true });

    expect(await holdersOf(stub, b)).toEqual([n2]);
    for (const cid of [a, c, d]) expect(await holdersOf(stub, cid)).toEqual([n1]);
    expect(await stub.underReplicated()).toEqual([{ cid: b, missing: 1, sinceMs: expect.any(Number) }]);
    expect((await stub.summary()).replicas).toBe(4); // a, c, d on n1; b on n2

    // A sync cut off before `done` removes nothing; the next one (fresh epoch) sweeps as usual.
    await announce(peer, "s3", [a], [], { epoch: "e2", done: false });
    expect(await holdersOf(stub, c)).toEqual([n1]);
    await announce(peer, "s4", [c], [], { epoch: "e3", done: true });
    expect(await holdersOf(stub, a)).toEqual([]);
    expect(await holdersOf(stub, d)).toEqual([]);
    expect(await holdersOf(stub, c)).toEqual([n1]);
    expect((await stub.summary()).replicas).toBe(2);

    // An empty sync forgets everything the peer held.
    await announce(peer, "s5", [], [], { epoch: "e4", done: true });
    expect(await holdersOf(stub, c)).toEqual([]);
    expect((await stub.summary()).replicas).toBe(1);
    // Messages without `sync` still parse (older peers), and a malformed `sync` is refused.
    expect(await peer.request({ type: "announce", id: "bad", added: [a], removed: [], sync: { epoch: "", done: true } } as never)).toMatchObject({
      type: "error",
      id: "bad",
      code: "invalid_request",
    });
    peer.close();
    other.close();
  });
});

describe("batched FIND_PROVIDERS", () => {
  it("answers every CID exactly as one lookup per CID would, over the socket and over RPC", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const ids = [await registerPeer(stub, region), await registerPeer(stub, region), await registerPeer(stub, region)];
    const sockets = await Promise.all(ids.map((id) => connectPeer(stub, id, region)));
    const cids = Array.from({ length: 6 }, () => randomCid());
    // Holders vary per CID: cid i is held by peers j ≤ i % 4 (so some have none).
    for (let j = 0; j < 3; j++)
      await announce(
        sockets[j],
        `a${j}`,
        cids.filter((_, i) => j < i % 4),
      );
    const asked = [...cids, randomCid(), cids[0]]; // one nobody holds, and a repeat

    const reply = await sockets[0].request({ type: "find_providers", id: "batch", cids: asked, count: 2 });
    if (reply.type !== "providers_batch") throw new Error(`expected providers_batch, got ${JSON.stringify(reply)}`);
    expect(reply.id).toBe("batch");
    expect(Object.keys(reply.providers).sort()).toEqual([...new Set(asked)].sort());
    for (const cid of new Set(asked)) expect(reply.providers[cid]).toEqual(await stub.findProviders(cid, 2));
    expect(await stub.findProvidersBatch(asked, 2)).toEqual(reply.providers);
    expect(await stub.findProvidersBatch(asked)).toEqual(Object.fromEntries(await Promise.all([...new Set(asked)].map(async (cid) => [cid, await stub.findProviders(cid)]))));

    // Limits: 1..256 CIDs, each a CID.
    const tooMany = Array.from({ length: MAX_PROVIDER_BATCH_CIDS + 1 }, () => cids[0]);
    expect(await sockets[0].request({ type: "find_providers", id: "big", cids: tooMany } as never)).toMatchObject({ type: "error", id: "big", code: "invalid_request" });
    expect(await sockets[0].request({ type: "find_providers", id: "none", cids: [] } as never)).toMatchObject({ type: "error", id: "none", code: "invalid_request" });
    expect(await sockets[0].request({ type: "find_providers", id: "junk", cids: ["bafy"] } as never)).toMatchObject({ type: "error", id: "junk", code: "invalid_request" });
    // The single form is unchanged.
    expect(await sockets[0].request({ type: "find_providers", id: "one", cid: cids[3] })).toMatchObject({ type: "providers", id: "one", cid: cids[3] });
    for (const s of sockets) s.close();
  });

  it("bounds a full batch's answer by lowering the per-CID count", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const ids = [];
    for (let i = 0; i < 10; i++) ids.push(await registerPeer(stub, region));
    const sockets = await Promise.all(ids.map((id) => connectPeer(stub, id, region)));
    const cids = Array.from({ length: MAX_PROVIDER_BATCH_CIDS }, () => randomCid());
    for (const [i, s] of sockets.entries()) await announce(s, `a${i}`, cids.slice(0, 4));
    const answer = await stub.findProvidersBatch(cids, 100);
    // 2048 entries over 256 CIDs: at most 8 each.
    expect(answer[cids[0]]).toHaveLength(8);
    expect(answer[cids[0]]).toEqual(await stub.findProviders(cids[0], 8));
    expect(answer[cids[10]]).toEqual([]);
    expect((await stub.findProvidersBatch(cids.slice(0, 2), 100))[cids[0]]).toHaveLength(10);
    for (const s of sockets) s.close();
  });
});
