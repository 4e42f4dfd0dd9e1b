/** Provider ranking and replica placement rules (src/core/placement.ts). */
import { describe, expect, it } from "vitest";
import type { Load, PeerState } from "../../src/core/messages.js";
import { choosePlacement, loadScore, rankProviders, type RankedPeer } from "../../src/core/placement.js";
import type { Role } from "../../src/core/roles.js";

const load = (queueLength: number, activeTransfers = 0, cpu = 0.5): Load => ({ queueLength, activeTransfers, cpu });
function peer(nodeId: string, over: Partial<RankedPeer> = {}): RankedPeer {
  return { nodeId, hostId: `h-${nodeId}`, roles: ["service"] as Role[], state: "alive" as PeerState, load: load(0), freeBytes: 1000, ...over };
}

describe("rankProviders", () => {
  it("puts alive before suspect, drops dead, then orders by load, free space and node ID", () => {
    const peers = [
      peer("a", { state: "suspect", load: load(0) }),
      peer("b", { load: load(3) }),
      peer("c", { load: load(1, 1) }),
      peer("d", { load: load(2), freeBytes: 5000 }),
      peer("e", { state: "dead", load: load(0) }),
      peer("f", { load: null }),
      peer("g", { load: load(1, 1, 0.1) }),
    ];
    // d, g and c have equal queues: g has the idlest CPU, then d the most free space.
    expect(rankProviders(peers).map((p) => p.nodeId)).toEqual(["g", "d", "c", "b", "f", "a"]);
    expect(rankProviders(peers, 2).map((p) => p.nodeId)).toEqual(["g", "d"]);
    expect(loadScore(null)).toBe(Infinity);
  });
});

describe("choosePlacement", () => {
  const peers = [
    peer("a", { hostId: "h1", freeBytes: 100 }),
    peer("b", { hostId: "h1", freeBytes: 300 }),
    peer("c", { hostId: "h2", freeBytes: 200 }),
    peer("d", { hostId: "h3", freeBytes: 10 }),
    peer("e", { hostId: "h4", freeBytes: null }),
    peer("f", { hostId: "h5", freeBytes: 999, roles: ["client"] }),
    peer("g", { hostId: "h6", freeBytes: 999, state: "suspect" }),
    peer("h", { hostId: "h7", freeBytes: 200, load: load(5) }),
  ];

  it("picks alive storage peers, one per host, most free space then least load first", () => {
    expect(choosePlacement(peers, { count: 10 }).map((p) => p.nodeId)).toEqual(["b", "c", "h", "d", "e"]);
    expect(choosePlacement(peers, { count: 2 }).map((p) => p.nodeId)).toEqual(["b", "c"]);
  });

  it("skips peers without room when both sizes are known", () => {
    expect(choosePlacement(peers, { count: 10, sizeBytes: 150 }).map((p) => p.nodeId)).toEqual(["b", "c", "h", "e"]);
  });

  it("avoids excluded peers and their hosts", () => {
    expect(choosePlacement(peers, { count: 10, exclude: ["b", "c"] }).map((p) => p.nodeId)).toEqual(["h", "d", "e"]);
    expect(choosePlacement(peers, { count: 10, exclude: ["unknown"] })).toHaveLength(5);
  });
});
