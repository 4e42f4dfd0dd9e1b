/** Provider ranking and replica placement rules (src/core/placement.ts). */
import { describe, expect, it } from "vitest";
import type { Load, PeerState } from "../../src/core/messages.js";
import { choosePlacement, loadScore, placeBatch, rankProviders, type PlacementJob, type RankedPeer } from "../../src/core/placement.js";
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

describe("upload capacity", () => {
  const up = (uploadBps: number) => ({ storageBytes: 1e12, uploadBps, downloadBps: 0 });
  it("ranks holders of equal load by reported upload capacity, before free space; unmeasured last", () => {
    const peers = [peer("a", { capacity: up(1e6), freeBytes: 9000 }), peer("b", { capacity: up(5e7) }), peer("c", { capacity: null, freeBytes: 99_000 }), peer("d", { capacity: up(1e7) })];
    expect(rankProviders(peers).map((p) => p.nodeId)).toEqual(["b", "d", "a", "c"]);
    // Load still comes first.
    expect(rankProviders([peer("slow", { capacity: up(1e6) }), peer("busy", { capacity: up(1e9), load: load(3) })]).map((p) => p.nodeId)).toEqual(["slow", "busy"]);
  });

  it("places on the better connected of equally roomy, equally idle peers, but never over much more room", () => {
    const peers = [peer("a", { capacity: up(1e6) }), peer("b", { capacity: up(1e8) }), peer("c", { capacity: up(1e7) })];
    expect(choosePlacement(peers, { count: 2 }).map((p) => p.nodeId)).toEqual(["b", "c"]);
    const roomier = [peer("fast", { capacity: up(1e8), freeBytes: 500 }), peer("roomy", { capacity: up(1e6), freeBytes: 1000 })];
    expect(choosePlacement(roomier, { count: 1 }).map((p) => p.nodeId)).toEqual(["roomy"]);
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

describe("placeBatch (the auction over many chunks)", () => {
  /** 30 peers on 20 hosts (some hosts run two), free space spread 10×. */
  const peers = Array.from({ length: 30 }, (_, i) => peer(`p${String(i).padStart(2, "0")}`, { hostId: `h${i % 20}`, freeBytes: 1000 * (1 + (i % 10)) }));
  const totalFree = peers.reduce((sum, p) => sum + p.freeBytes!, 0);

  it("places every replica on distinct hosts, avoiding each job's excluded peers and their hosts", () => {
    const jobs: PlacementJob[] = Array.from({ length: 300 }, (_, i) => ({ id: `c${i}`, count: 3, exclude: i % 2 ? [peers[i % 30].nodeId] : [] }));
    const placed = placeBatch(peers, jobs);
    for (const job of jobs) {
      const chosen = placed.get(job.id)!;
      expect(chosen).toHaveLength(3);
      expect(new Set(chosen.map((p) => p.hostId)).size).toBe(3);
      for (const id of job.exclude ?? []) {
        const excludedHost = peers.find((p) => p.nodeId === id)!.hostId;
        expect(chosen.some((p) => p.nodeId === id || p.hostId === excludedHost)).toBe(false);
      }
    }
  });

  it("fills peers in proportion to their free space (max/mean of fill close to 1), unlike the roomiest-first greedy rule", () => {
    const jobs: PlacementJob[] = Array.from({ length: 1000 }, (_, i) => ({ id: `c${i}`, count: 3 }));
    const counts = new Map<string, number>();
    for (const chosen of placeBatch(peers, jobs).values()) for (const p of chosen) counts.set(p.nodeId, (counts.get(p.nodeId) ?? 0) + 1);
    // Fill = replicas received / free space; ideal is the same for everyone.
    const fills = peers.map((p) => (counts.get(p.nodeId) ?? 0) / p.freeBytes!);
    const mean = 3000 / totalFree;
    const maxOverMean = Math.max(...fills) / mean;
    console.log(`[placeBatch] 1000 chunks × 3 on 30 peers: max/mean fill ${maxOverMean.toFixed(3)}`);
    expect(maxOverMean).toBeLessThan(1.2);
    // Repeating the single-chunk rule 1000 times (nothing reported in between) sends every replica to the same three peers.
    const greedy = new Set(
      Array.from({ length: 1000 }, () =>
        choosePlacement(peers, { count: 3 })
          .map((p) => p.nodeId)
          .join(),
      ),
    );
    expect(greedy.size).toBe(1);
  });

  it("never gives a peer more than fits when the size is known, and places what is feasible when hosts run out", () => {
    const small = [peer("a", { hostId: "x", freeBytes: 250 }), peer("b", { hostId: "y", freeBytes: 1000 }), peer("c", { hostId: "z", freeBytes: 1000 })];
    const placed = placeBatch(
      small,
      Array.from({ length: 10 }, (_, i) => ({ id: `c${i}`, count: 2, sizeBytes: 100 })),
    );
    const onA = [...placed.values()].flat().filter((p) => p.nodeId === "a").length;
    expect(onA).toBeLessThanOrEqual(2);
    expect([...placed.values()].every((chosen) => chosen.length === 2)).toBe(true);
    // Four replicas asked on three hosts: three placed, on distinct hosts.
    expect(
      placeBatch(small, [{ id: "x", count: 4 }])
        .get("x")!
        .map((p) => p.hostId)
        .sort(),
    ).toEqual(["x", "y", "z"]);
    expect(placeBatch([], [{ id: "x", count: 2 }]).get("x")).toEqual([]);
  });
});

describe("audit reputation", () => {
  it("offers and chooses peers that failed too many audits after every other, but still uses them when nothing else can", () => {
    const trusted = peer("t", { hostId: "h1", freeBytes: 100, load: load(3) });
    const liar = peer("l", { hostId: "h2", freeBytes: 10_000, load: load(0), reputation: 0.2 });
    expect(rankProviders([liar, trusted]).map((p) => p.nodeId)).toEqual(["t", "l"]);
    expect(choosePlacement([liar, trusted], { count: 1 }).map((p) => p.nodeId)).toEqual(["t"]);
    expect(choosePlacement([liar, trusted], { count: 2 }).map((p) => p.nodeId)).toEqual(["t", "l"]);
    // A good record (reputation 0.9) changes nothing.
    expect(choosePlacement([peer("g", { hostId: "h3", freeBytes: 10_000, reputation: 0.9 }), trusted], { count: 1 }).map((p) => p.nodeId)).toEqual(["g"]);
  });
});
