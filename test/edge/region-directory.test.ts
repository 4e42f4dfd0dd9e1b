/**
 * Region directory, DHT side: FIND_NODE against a brute-force XOR sort on
 * random ID sets (over RPC and over the peer WebSocket), the bootstrap
 * answer of `register`, and state kept across an object restart.
 */
import { abortAllDurableObjects } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { compareDistance, nodeIdBytes } from "../../src/core/node-id.js";
import { PARAMS, connectPeer, directoryStub, freshRegion, peerInput, randomCid, randomNodeId, registerPeer, rpcError } from "./region-directory-support.js";

function bruteClosest(ids: readonly string[], target: string, n: number): string[] {
  const t = nodeIdBytes(target);
  return ids
    .map((id) => ({ id, bytes: nodeIdBytes(id) }))
    .sort((a, b) => compareDistance(t, a.bytes, b.bytes))
    .slice(0, n)
    .map((e) => e.id);
}

describe("FIND_NODE", () => {
  for (const size of [1, 5, 21, 120]) {
    it(`returns exactly the closest peers by XOR distance among ${size} registered peers`, async () => {
      const region = freshRegion();
      const stub = directoryStub(region);
      const ids: string[] = [];
      for (let i = 0; i < size; i++) ids.push(await registerPeer(stub, region));
      for (let q = 0; q < 12; q++) {
        const target = q % 4 === 0 ? ids[q % ids.length] : randomNodeId();
        for (const count of [1, 3, PARAMS.k, 100]) {
          const nodes = await stub.findNode(target, count);
          expect(nodes.map((n) => n.nodeId)).toEqual(bruteClosest(ids, target, count));
        }
        // The default count is k.
        expect((await stub.findNode(target)).map((n) => n.nodeId)).toEqual(bruteClosest(ids, target, PARAMS.k));
      }
      const nodes = await stub.findNode(ids[0], 1);
      expect(nodes[0]).toMatchObject({ nodeId: ids[0], region, state: "alive", roles: ["service"], addresses: ["http://203.0.113.7:7070"] });
    });
  }

  it("answers the same over the peer's WebSocket", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await registerPeer(stub, region));
    const peer = await connectPeer(stub, ids[0], region);
    expect(peer.welcome).toEqual({
      type: "welcome",
      nodeId: ids[0],
      region,
      heartbeatIntervalMs: PARAMS.heartbeatIntervalMs,
      statusIntervalMs: PARAMS.statusIntervalMs,
      serverTimeMs: expect.any(Number),
    });
    for (let q = 0; q < 10; q++) {
      const target = randomNodeId();
      const reply = await peer.request({ type: "find_node", id: `q${q}`, target, count: 7 });
      expect(reply.type).toBe("nodes");
      if (reply.type !== "nodes") continue;
      expect(reply.id).toBe(`q${q}`);
      expect(reply.nodes.map((n) => n.nodeId)).toEqual(bruteClosest(ids, target, 7));
    }
    peer.close();
  });

  it("rejects malformed targets and counts over RPC", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    await registerPeer(stub, region);
    expect((await rpcError(() => stub.findNode("not-a-node-id"))).message).toMatch(/findNode.target: must be 64 lower-case hex/);
    expect((await rpcError(() => stub.findNode(randomNodeId(), 0))).message).toMatch(/findNode.count/);
    expect((await rpcError(() => stub.findNode(randomNodeId(), 101))).message).toMatch(/findNode.count/);
  });
});

describe("register", () => {
  it("returns the k closest peers to the newcomer, without itself, then distinct random others", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await registerPeer(stub, region));
    const input = peerInput();
    const { peers } = await stub.register(region, input);
    const k = PARAMS.k;
    expect(peers).toHaveLength(k + PARAMS.bootstrapRandomPeers);
    expect(peers.slice(0, k).map((p) => p.nodeId)).toEqual(bruteClosest(ids, input.nodeId, k));
    const all = peers.map((p) => p.nodeId);
    expect(new Set(all).size).toBe(all.length);
    expect(all).not.toContain(input.nodeId);
    for (const id of all.slice(k)) expect(ids).toContain(id);
    // The newcomer is now itself findable, and re-registering keeps one record.
    await stub.register(region, { ...input, addresses: ["http://198.51.100.9:7070"] });
    const [self] = await stub.findNode(input.nodeId, 1);
    expect(self).toMatchObject({ nodeId: input.nodeId, addresses: ["http://198.51.100.9:7070"] });
    expect((await stub.summary()).peers.alive).toBe(61);
  });

  it("validates its input and refuses a second region name for one object", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    expect((await rpcError(() => stub.register(region, { ...peerInput(), hostId: "bad host!" }))).message).toMatch(/peer.hostId/);
    expect((await rpcError(() => stub.register(region, { ...peerInput(), roles: [] }))).message).toMatch(/peer.roles/);
    expect((await rpcError(() => stub.register("Not A Region", peerInput()))).message).toMatch(/region: must be a region name/);
    await registerPeer(stub, region);
    expect((await rpcError(() => stub.register("other", peerInput()))).message).toMatch(/serves region/);
    expect(await stub.peerState(randomNodeId())).toBeNull();
  });
});

describe("restart", () => {
  it("keeps peers, replicas and pins, and rebuilds the k-buckets", async () => {
    const region = freshRegion();
    let stub = directoryStub(region);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) ids.push(await registerPeer(stub, region));
    const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
    const cid = randomCid();
    const holder = await connectPeer(stub, ids[3], region);
    expect(await holder.request({ type: "announce", id: "a1", added: [cid], removed: [] })).toEqual({ type: "ack", id: "a1" });
    await stub.pin(publisher, [cid], 2, [4096]);
    const target = randomNodeId();
    const before = { nodes: await stub.findNode(target, 10), providers: await stub.findProviders(cid), summary: await stub.summary() };
    expect(before.providers.map((p) => p.nodeId)).toEqual([ids[3]]);
    expect(before.summary).toMatchObject({ pinnedChunks: 1, replicas: 1, storedBytes: 4096, underReplicatedChunks: 1 });

    holder.close();
    await holder.closed;
    await abortAllDurableObjects();
    // A new instance: the k-buckets (memory only) are rebuilt from SQL, so FIND_NODE answers as before.
    stub = directoryStub(region);
    expect(await stub.findNode(target, 10)).toEqual(before.nodes);
    expect(await stub.findProviders(cid)).toEqual(before.providers);
    const after = await stub.summary();
    expect({ ...after, updatedAtMs: 0, peers: { ...after.peers, connected: 0 } }).toEqual({
      ...before.summary,
      updatedAtMs: 0,
      peers: { ...before.summary.peers, connected: 0 },
    });
    expect(await stub.underReplicated()).toEqual([{ cid, missing: 1, sinceMs: expect.any(Number) }]);
    expect(await stub.peerState(ids[0])).toBe("alive");
  });
});
