/**
 * Region directory, replica registry: FIND_PROVIDERS after announcements
 * and after holders turn suspect or die, pinned chunks' live counts and the
 * under-replicated queue across a death and a revival, a holder's goodbye,
 * role checks, and placement of new replicas.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CLOSE_LEAVING } from "../../src/core/messages.js";
import { PARAMS, connectPeer, directoryStub, freshRegion, peerInput, randomCid, registerPeer, setClock, type PeerSocket } from "./region-directory-support.js";

const SUSPECT_MS = PARAMS.heartbeatIntervalMs * PARAMS.suspectAfterMissedHeartbeats;
const DEAD_MS = PARAMS.heartbeatIntervalMs * PARAMS.deadAfterMissedHeartbeats;

function status(queueLength: number, freeBytes: number, activeTransfers = 0) {
  return { type: "status", load: { activeTransfers, queueLength, cpu: 0.5 }, freeBytes } as const;
}

/** Sends a status report and waits until the directory has handled it (a later request's reply). */
async function report(peer: PeerSocket, queueLength: number, freeBytes: number): Promise<void> {
  peer.send(status(queueLength, freeBytes));
  await peer.request({ type: "find_node", id: "sync", target: peer.nodeId, count: 1 });
}

describe("FIND_PROVIDERS", () => {
  it("returns live holders, alive before suspect, least loaded first, and never dead ones", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await registerPeer(stub, region));
    const peers = await Promise.all(ids.map((id) => connectPeer(stub, id, region)));
    const [p0, p1, p2, p3] = peers;
    const cid = randomCid();
    const other = randomCid();

    await report(p0, 5, 1e9);
    await report(p1, 1, 1e9);
    await report(p2, 1, 5e9); // same load as p1, more free space
    for (const p of [p0, p1, p2]) expect(await p.request({ type: "announce", id: "a", added: [cid], removed: [] })).toEqual({ type: "ack", id: "a" });
    expect(await p3.request({ type: "announce", id: "b", added: [other], removed: [] })).toEqual({ type: "ack", id: "b" });

    expect((await stub.findProviders(cid)).map((p) => p.nodeId)).toEqual([ids[2], ids[1], ids[0]]);
    const reply = await p3.request({ type: "find_providers", id: "fp", cid, count: 2 });
    expect(reply).toMatchObject({ type: "providers", id: "fp", cid });
    if (reply.type !== "providers") throw new Error("unexpected reply");
    expect(reply.providers.map((p) => p.nodeId)).toEqual([ids[2], ids[1]]);
    expect(reply.providers[0]).toMatchObject({ state: "alive", freeBytes: 5e9, load: { queueLength: 1, activeTransfers: 0, cpu: 0.5 } });
    expect(await stub.findProviders(randomCid())).toEqual([]);

    // p2 goes silent: suspect after 90 s, so offered last; the others keep reporting.
    await setClock(stub, t0 + SUSPECT_MS);
    for (const p of [p0, p1, p3]) await report(p, p === p0 ? 5 : 1, 1e9);
    await runDurableObjectAlarm(stub);
    const afterSuspect = await stub.findProviders(cid);
    expect(afterSuspect.map((p) => [p.nodeId, p.state])).toEqual([
      [ids[1], "alive"],
      [ids[0], "alive"],
      [ids[2], "suspect"],
    ]);

    // Dead at 180 s: no longer a provider at all.
    await setClock(stub, t0 + DEAD_MS);
    for (const p of [p0, p1, p3]) await report(p, p === p0 ? 5 : 1, 1e9);
    await runDurableObjectAlarm(stub);
    expect(await stub.peerState(ids[2])).toBe("dead");
    expect((await stub.findProviders(cid)).map((p) => p.nodeId)).toEqual([ids[1], ids[0]]);

    // Removal is an announcement too.
    expect(await p1.request({ type: "announce", id: "r", added: [], removed: [cid] })).toEqual({ type: "ack", id: "r" });
    expect((await stub.findProviders(cid)).map((p) => p.nodeId)).toEqual([ids[0]]);
    for (const p of peers) p.close();
  });
});

describe("pins and the under-replicated queue", () => {
  it("counts live replicas, queues chunks below target when a holder dies, and dequeues them when it returns", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const a = await registerPeer(stub, region);
    const b = await registerPeer(stub, region);
    const peerA = await connectPeer(stub, a, region);
    const peerB = await connectPeer(stub, b, region);
    const [x, y, z] = [randomCid(), randomCid(), randomCid()];

    await peerA.request({ type: "announce", id: "1", added: [x, y], removed: [] });
    await peerB.request({ type: "announce", id: "2", added: [x], removed: [] });
    await stub.pin(publisher, [x, y, z], 2, [1000, 2000, 3000]);
    // x has 2 live replicas, y 1, z none.
    expect(await stub.underReplicated()).toEqual([
      { cid: z, missing: 2, sinceMs: t0 },
      { cid: y, missing: 1, sinceMs: t0 },
    ]);
    expect(await stub.summary()).toMatchObject({ pinnedChunks: 3, replicas: 3, storedBytes: 2 * 1000 + 1 * 2000, underReplicatedChunks: 2 });

    // b dies (a keeps talking): x drops to one live replica and joins the queue; b's replica rows are kept.
    await setClock(stub, t0 + DEAD_MS);
    await report(peerA, 0, 1e9);
    await runDurableObjectAlarm(stub);
    expect(await stub.peerState(b)).toBe("dead");
    // Most missing first, then longest waiting: y has been short since t0, x only since b died.
    expect(await stub.underReplicated()).toEqual([
      { cid: z, missing: 2, sinceMs: t0 },
      { cid: y, missing: 1, sinceMs: t0 },
      { cid: x, missing: 1, sinceMs: t0 + DEAD_MS },
    ]);
    expect(await stub.summary()).toMatchObject({ replicas: 2, storedBytes: 1000 + 2000, underReplicatedChunks: 3 });

    // b comes back on its old socket: any message revives it, and its replicas count again.
    await report(peerB, 0, 1e9);
    expect(await stub.peerState(b)).toBe("alive");
    expect((await stub.underReplicated()).map((q) => q.cid)).toEqual([z, y]);
    expect((await stub.findProviders(x)).map((p) => p.nodeId).sort()).toEqual([a, b].sort());

    // Unpinning drops a chunk from the queue; raising the target queues it again.
    await stub.pin(publisher, [z], 0);
    await stub.pin(publisher, [x], 3);
    expect((await stub.underReplicated()).map((q) => [q.cid, q.missing])).toEqual([
      [y, 1],
      [x, 1],
    ]);
    expect((await stub.summary()).pinnedChunks).toBe(2);
    peerA.close();
    peerB.close();
  });

  it("a holder that leaves with a goodbye is offered last at once, still counts until the dead timeout, and is alive again on reconnect", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const [a, b, c] = [await registerPeer(stub, region), await registerPeer(stub, region), await registerPeer(stub, region)];
    const [peerA, peerB, peerC] = [await connectPeer(stub, a, region), await connectPeer(stub, b, region), await connectPeer(stub, c, region)];
    const x = randomCid();
    for (const p of [peerA, peerB, peerC]) await p.request({ type: "announce", id: "x", added: [x], removed: [] });
    await stub.pin(publisher, [x], 3, [1000]);
    expect(await stub.underReplicated()).toEqual([]);

    // A dropped socket (any other close code) changes nothing: a deploy or a blip must not reorder providers.
    peerB.close(1001, "going away");
    await peerB.closed;
    expect(await stub.peerState(b)).toBe("alive");

    // c says goodbye: suspect at once, offered after the live holders, its replica still counted.
    peerC.close(CLOSE_LEAVING, "peer leaving");
    await peerC.closed;
    expect(await stub.peerState(c)).toBe("suspect");
    expect((await stub.findProviders(x)).map((p) => [p.nodeId, p.state]).at(-1)).toEqual([c, "suspect"]);
    expect(await stub.underReplicated()).toEqual([]);

    // Restarted, it is alive again.
    const again = await connectPeer(stub, c, region);
    expect(await stub.peerState(c)).toBe("alive");
    again.close(CLOSE_LEAVING, "peer leaving");
    await again.closed;

    // Gone for good (it left at t0): dead once the rest of the dead timeout has passed, not the whole of it; then x is short of one replica.
    await setClock(stub, t0 + DEAD_MS - SUSPECT_MS - 1);
    await report(peerA, 0, 1e9);
    await runDurableObjectAlarm(stub);
    expect(await stub.peerState(c)).toBe("suspect");
    await setClock(stub, t0 + DEAD_MS - SUSPECT_MS);
    await report(peerA, 0, 1e9);
    await runDurableObjectAlarm(stub);
    expect(await stub.peerState(c)).toBe("dead");
    expect((await stub.underReplicated()).map((q) => [q.cid, q.missing])).toEqual([[x, 1]]);
    peerA.close();
  });

  it("accepts announcements only from storage peers and pins only from publishers", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const client = await registerPeer(stub, region, { roles: ["client"] });
    const service = await registerPeer(stub, region, { roles: ["service"] });
    const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const [c, s, p] = await Promise.all([client, service, publisher].map((id) => connectPeer(stub, id, region)));
    const cid = randomCid();

    expect(await c.request({ type: "announce", id: "1", added: [cid], removed: [] })).toMatchObject({ type: "error", id: "1", code: "not_a_storage_peer" });
    expect(await stub.findProviders(cid)).toEqual([]);
    expect(await s.request({ type: "pin", id: "2", cids: [cid], replicas: 2 })).toMatchObject({ type: "error", id: "2", code: "forbidden" });
    expect(await p.request({ type: "pin", id: "3", cids: [cid], replicas: 2, sizeBytes: [1, 2] })).toMatchObject({ type: "error", id: "3", code: "invalid_request" });
    expect(await p.request({ type: "pin", id: "4", cids: [cid], replicas: 2, sizeBytes: [10] })).toEqual({ type: "ack", id: "4" });
    expect(await stub.underReplicated()).toEqual([{ cid, missing: 2, sinceMs: expect.any(Number) }]);
    expect(await s.request({ type: "announce", id: "5", added: [cid, cid], removed: [] })).toEqual({ type: "ack", id: "5" });
    expect(await stub.underReplicated()).toEqual([{ cid, missing: 1, sinceMs: expect.any(Number) }]);
    expect((await stub.summary()).replicas).toBe(1);

    // A service peer that re-registers without the service role no longer holds replicas.
    await stub.register(region, peerInput({ nodeId: service, roles: ["client"] }));
    expect(await stub.findProviders(cid)).toEqual([]);
    expect(await stub.underReplicated()).toEqual([{ cid, missing: 2, sinceMs: expect.any(Number) }]);
    for (const sock of [c, s, p]) sock.close();
  });
});

describe("placement", () => {
  it("chooses alive storage peers on distinct hosts with room for the chunk, most free space first", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const s1 = await registerPeer(stub, region, { hostId: "h1" });
    const s2 = await registerPeer(stub, region, { hostId: "h1" });
    const s3 = await registerPeer(stub, region, { hostId: "h2" });
    const s4 = await registerPeer(stub, region, { hostId: "h3" });
    const s5 = await registerPeer(stub, region, { hostId: "h4" }); // never reported free space
    await registerPeer(stub, region, { hostId: "h5", roles: ["client"] });
    const sockets = await Promise.all([s1, s2, s3, s4].map((id) => connectPeer(stub, id, region)));
    const free = [100e9, 200e9, 50e9, 1000];
    for (let i = 0; i < 4; i++) await report(sockets[i], 0, free[i]);

    const place = async (count: number, exclude: string[] = [], sizeBytes?: number) => (await stub.place(count, exclude, sizeBytes)).map((p) => p.nodeId);
    // s2 beats s1 on host h1; s4 is too small; s5's free space is unknown, so it ranks last but qualifies.
    expect(await place(5, [], 4096)).toEqual([s2, s3, s5]);
    expect(await place(2, [], 4096)).toEqual([s2, s3]);
    expect(await place(5)).toEqual([s2, s3, s4, s5]);
    // Excluding a holder also avoids its host.
    expect(await place(5, [s2], 4096)).toEqual([s3, s5]);

    const reply = await sockets[0].request({ type: "place", id: "pl", count: 2, exclude: [s3], sizeBytes: 4096 });
    expect(reply).toMatchObject({ type: "nodes", id: "pl" });
    if (reply.type === "nodes") expect(reply.nodes.map((n) => n.nodeId)).toEqual([s2, s5]);
    for (const sock of sockets) sock.close();
  });
});

describe("estimates of the quality between regions", () => {
  it("folds the peers' measurements of each region into moving averages, shown in the summary best rate first", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const [a, b] = [await registerPeer(stub, region), await registerPeer(stub, region)];
    const [peerA, peerB] = [await connectPeer(stub, a, region), await connectPeer(stub, b, region)];
    const quality = (entries: { region: string; rttMs: number | null; rateBytesPerSecond: number | null; samples: number }[]) =>
      ({ type: "status", load: { activeTransfers: 0, queueLength: 0, cpu: 0.1 }, freeBytes: 1e9, regionQuality: entries }) as const;
    expect((await stub.summary()).regionQuality).toEqual([]);
    peerA.send(
      quality([
        { region: "eu", rttMs: 20, rateBytesPerSecond: 50e6, samples: 1 },
        { region: "ap", rttMs: 200, rateBytesPerSecond: 5e6, samples: 1 },
      ]),
    );
    await peerA.request({ type: "find_node", id: "sync", target: a, count: 1 });
    // The first report sets the estimate; a later one moves it by its weight (0.1 per download summarised).
    peerB.send(quality([{ region: "eu", rttMs: 40, rateBytesPerSecond: 30e6, samples: 2 }]));
    await peerB.request({ type: "find_node", id: "sync", target: b, count: 1 });
    const summary = (await stub.summary()).regionQuality;
    expect(summary.map((q) => q.region)).toEqual(["eu", "ap"]);
    expect(summary[0].rttMs).toBeCloseTo(20 + 0.2 * (40 - 20), 6);
    expect(summary[0].rateBytesPerSecond).toBeCloseTo(50e6 + 0.2 * (30e6 - 50e6), 0);
    expect(summary[0].samples).toBe(3);
    expect(summary[1]).toMatchObject({ region: "ap", rttMs: 200, rateBytesPerSecond: 5e6, samples: 1 });
    // Bad measurements are refused like any bad frame: an error reply, nothing recorded.
    const bad = await peerA.request({ ...quality([{ region: "eu", rttMs: -1, rateBytesPerSecond: 1, samples: 1 }]), type: "status" } as never);
    expect(bad).toMatchObject({ type: "error" });
    expect((await stub.summary()).regionQuality[0].samples).toBe(3);
    peerA.close();
    peerB.close();
  });
});
