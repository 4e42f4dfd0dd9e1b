/**
 * Rebalance planning (src/core/rebalance.ts): moves pair a peer below the
 * mean fill with one above it while either is outside the band, never
 * leave the target fuller than the source, respect slots, hosts and holders, and leave a
 * balanced region alone. Checked on hand-made regions and, as properties,
 * on seeded random ones.
 */
import { describe, expect, it } from "vitest";
import { meanFill, planMoves, type BalancePeer, type MoveCandidate, type PlannedMove } from "../../src/core/rebalance.js";
import { mulberry32 } from "../../src/core/random.js";

const peer = (nodeId: string, usedBytes: number, capacityBytes = 10_000, slots = 100): BalancePeer => ({ nodeId, hostId: `host-${nodeId}`, usedBytes, capacityBytes, slots });

/** Chunks held by the listed peers (on their own hosts), `count` of `sizeBytes` each. */
function heldBy(holders: string[], count: number, sizeBytes: number, prefix = "c"): MoveCandidate[] {
  return Array.from({ length: count }, (_, i) => ({ cid: `${prefix}${i}`, sizeBytes, holders, holderHosts: holders.map((h) => `host-${h}`) }));
}

/** Every peer's fill after the moves. */
function fillsAfter(peers: readonly BalancePeer[], moves: readonly PlannedMove[]): Map<string, number> {
  const used = new Map(peers.map((p) => [p.nodeId, p.usedBytes]));
  for (const m of moves) {
    used.set(m.to, used.get(m.to)! + m.sizeBytes);
    used.set(m.from, used.get(m.from)! - m.sizeBytes);
  }
  return new Map(peers.map((p) => [p.nodeId, used.get(p.nodeId)! / p.capacityBytes]));
}

describe("rebalance planning", () => {
  it("gives an empty newcomer chunks from the full peers until everyone is inside the band", () => {
    // Three peers at 80 %, one empty: mean 60 %. 80 chunks of 1 % of a peer each, held by all three.
    const peers = [peer("a", 8000), peer("b", 8000), peer("c", 8000), peer("d", 0)];
    const chunks = heldBy(["a", "b", "c"], 80, 100);
    const moves = planMoves(peers, () => chunks, { thresholdPercent: 10, maxMoves: 1000 });
    const mean = meanFill(peers);
    expect(mean).toBeCloseTo(0.6);
    expect(moves.length).toBeGreaterThan(0);
    expect(moves.every((m) => m.to === "d" && m.from !== "d")).toBe(true);
    for (const fill of fillsAfter(peers, moves).values()) expect(Math.abs(fill - mean)).toBeLessThanOrEqual(0.1 + 1e-9);
    // Each chunk moves at most once, and only from a peer that holds it.
    expect(new Set(moves.map((m) => m.cid)).size).toBe(moves.length);
  });

  it("moves nothing when every peer is inside the band", () => {
    const peers = [peer("a", 6500), peer("b", 5600), peer("c", 6000), peer("d", 5100)];
    expect(planMoves(peers, () => heldBy(["a", "b", "c", "d"], 10, 100), { thresholdPercent: 10, maxMoves: 100 })).toEqual([]);
  });

  it("never moves onto a holder or a peer on a holder's host", () => {
    const peers = [peer("a", 9000), peer("b", 9000), { ...peer("d", 0), hostId: "host-a" }, peer("e", 0)];
    const chunks = heldBy(["a", "b"], 20, 100);
    const moves = planMoves(peers, () => chunks, { thresholdPercent: 10, maxMoves: 100 });
    expect(moves.length).toBeGreaterThan(0);
    expect(moves.every((m) => m.to === "e")).toBe(true);
    // With only d (sharing a's host) empty, nothing can move.
    expect(planMoves(peers.slice(0, 3), () => chunks, { thresholdPercent: 10, maxMoves: 100 })).toEqual([]);
  });

  it("stays within each peer's slots and the pass limit", () => {
    const peers = [peer("a", 9000, 10_000, 1), peer("b", 9000, 10_000, 2), peer("d", 0, 10_000, 2)];
    const chunks = heldBy(["a", "b"], 20, 100);
    const moves = planMoves(peers, () => chunks, { thresholdPercent: 10, maxMoves: 100 });
    expect(moves.filter((m) => m.from === "a").length).toBeLessThanOrEqual(1);
    expect(moves.filter((m) => m.to === "d").length).toBe(2);
    expect(planMoves(peers, () => chunks, { thresholdPercent: 10, maxMoves: 1 })).toHaveLength(1);
  });

  it("weighs fills by capacity: a small full peer gives to a big empty one", () => {
    const peers = [peer("small", 1000, 1000, 1000), peer("big", 0, 100_000, 1000), peer("mid", 5000, 10_000, 1000)];
    const mean = meanFill(peers);
    expect(mean).toBeCloseTo(6000 / 111_000);
    // Each holds its own chunks of 10 bytes: as many as its used bytes say.
    const moves = planMoves(peers, (from) => heldBy([from], peers.find((p) => p.nodeId === from)!.usedBytes / 10, 10, from), { thresholdPercent: 10, maxMoves: 1000 });
    expect(moves.every((m) => m.to === "big")).toBe(true);
    for (const fill of fillsAfter(peers, moves).values()) expect(Math.abs(fill - mean)).toBeLessThanOrEqual(0.1 + 1e-9);
  });

  it("on random regions: every move is legal, goes downhill without swapping the pair, and lowers the squared deviation", () => {
    let regionsWithMoves = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const rand = mulberry32(seed);
      const n = 2 + Math.floor(rand() * 8);
      const hosts = 1 + Math.floor(rand() * n);
      const peers: BalancePeer[] = Array.from({ length: n }, (_, i) => {
        const capacityBytes = 1000 * (1 + Math.floor(rand() * 20));
        return { nodeId: `p${i}`, hostId: `h${Math.floor(rand() * hosts)}`, usedBytes: Math.floor(rand() * capacityBytes), capacityBytes, slots: Math.floor(rand() * 4) };
      });
      const hostOf = new Map(peers.map((p) => [p.nodeId, p.hostId]));
      const chunks: MoveCandidate[] = Array.from({ length: 40 }, (_, i) => {
        const holders = peers.filter(() => rand() < 0.4).map((p) => p.nodeId);
        return { cid: `c${i}`, sizeBytes: 1 + Math.floor(rand() * 500), holders, holderHosts: holders.map((h) => hostOf.get(h)!) };
      });
      const thresholdPercent = 1 + Math.floor(rand() * 30);
      const maxMoves = Math.floor(rand() * 12);
      const moves = planMoves(peers, (from) => chunks.filter((c) => c.holders.includes(from)), { thresholdPercent, maxMoves });

      const mean = meanFill(peers);
      const band = thresholdPercent / 100;
      const used = new Map(peers.map((p) => [p.nodeId, p.usedBytes]));
      const byId = new Map(peers.map((p) => [p.nodeId, p]));
      const fill = (id: string) => used.get(id)! / byId.get(id)!.capacityBytes;
      const deviation = () => peers.reduce((sum, p) => sum + (fill(p.nodeId) - mean) ** 2 * p.capacityBytes, 0);
      expect(moves.length).toBeLessThanOrEqual(maxMoves);
      expect(new Set(moves.map((m) => m.cid)).size).toBe(moves.length);
      for (const m of moves) {
        const chunk = chunks.find((c) => c.cid === m.cid)!;
        expect(chunk.holders).toContain(m.from);
        expect(chunk.holders).not.toContain(m.to);
        expect(chunk.holderHosts).not.toContain(byId.get(m.to)!.hostId);
        expect(m.sizeBytes).toBe(chunk.sizeBytes);
        // Below and above the mean, one of them out of the band before the move; the target no fuller than the source after it.
        expect(fill(m.to)).toBeLessThan(mean);
        expect(fill(m.from)).toBeGreaterThan(mean);
        expect(fill(m.to) < mean - band || fill(m.from) > mean + band).toBe(true);
        const before = deviation();
        used.set(m.to, used.get(m.to)! + m.sizeBytes);
        used.set(m.from, used.get(m.from)! - m.sizeBytes);
        expect(fill(m.to)).toBeLessThanOrEqual(fill(m.from) + 1e-12);
        expect(deviation()).toBeLessThan(before);
      }
      for (const p of peers) expect(moves.filter((m) => m.from === p.nodeId || m.to === p.nodeId).length).toBeLessThanOrEqual(p.slots);
      if (moves.length > 0) regionsWithMoves++;
    }
    // Not vacuous: a good share of the random regions is unbalanced enough to plan moves.
    expect(regionsWithMoves).toBeGreaterThan(20);
  });
});
