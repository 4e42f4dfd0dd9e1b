/** The announcement batching rules, without sockets: coalescing, batch size, and what survives a reconnect. */
import { describe, expect, it } from "vitest";
import { AnnounceQueue } from "../../src/peer/announce-queue.js";

describe("AnnounceQueue", () => {
  it("keeps only the last change per CID, in the order changes happened", () => {
    const q = new AnnounceQueue(10);
    q.add(["a", "b"], []);
    q.add([], ["a"]);
    q.add(["c"], []);
    expect(q.takeBatch()).toEqual({ added: ["b", "c"], removed: ["a"], kind: "delta" });
    expect(q.takeBatch()).toBeNull();
  });

  it("cuts batches at maxBatchCids, counting additions and removals together", () => {
    const q = new AnnounceQueue(3);
    q.add(["a", "b"], ["c", "d", "e"]);
    expect(q.takeBatch()).toEqual({ added: ["a", "b"], removed: ["c"], kind: "delta" });
    expect(q.takeBatch()).toEqual({ added: [], removed: ["d", "e"], kind: "delta" });
    expect([...q.inventoryBatches(["x", "y", "z", "w"])].map((b) => b.added)).toEqual([["x", "y", "z"], ["w"]]);
  });

  it("is settled only when every sent batch was acknowledged", () => {
    const q = new AnnounceQueue(10);
    expect(q.settled).toBe(true);
    q.add(["a"], []);
    expect(q.settled).toBe(false);
    q.sent("1", q.takeBatch()!);
    expect(q.settled).toBe(false);
    expect(q.settle("2")).toBe(false);
    expect(q.settle("1")).toBe(true);
    expect(q.settled).toBe(true);
  });

  it("re-sends unacknowledged changes after a reconnect but forgets stale inventory batches", () => {
    const q = new AnnounceQueue(10);
    q.add(["a"], []);
    q.sent("1", q.takeBatch()!);
    for (const [i, batch] of [...q.inventoryBatches(["x"])].entries()) q.sent(`inv${i}`, batch);
    q.add([], ["b"]);
    q.sent("2", q.takeBatch()!);
    expect(q.takeForResend()).toEqual([
      { added: ["a"], removed: [], kind: "delta" },
      { added: [], removed: ["b"], kind: "delta" },
    ]);
    expect(q.unackedCount).toBe(0);
  });

  it("refuses a non-positive batch size", () => {
    expect(() => new AnnounceQueue(0)).toThrow(RangeError);
  });
});
