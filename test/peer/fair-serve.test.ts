/** Round-robin serving of chunk responses among requesters (src/peer/fair-serve.ts). */
import { describe, expect, it } from "vitest";
import { FairServeQueue } from "../../src/peer/fair-serve.js";

/** Acquires in order and records who was granted, in grant order. */
function recorder(queue: FairServeQueue) {
  const granted: string[] = [];
  const releases = new Map<string, (() => void)[]>();
  const ask = (who: string, signal?: AbortSignal) =>
    queue.acquire(who, signal).then((release) => {
      granted.push(who);
      releases.set(who, [...(releases.get(who) ?? []), release]);
    });
  /** Releases the oldest slot `who` holds. */
  const release = (who: string) => releases.get(who)!.shift()!();
  return { granted, ask, release };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("FairServeQueue", () => {
  it("serves waiting requesters in turn, however many requests each has queued", async () => {
    const q = new FairServeQueue(2);
    const r = recorder(q);
    // "greedy" fills both slots and queues six more; "a" and "b" queue one each, later.
    for (let i = 0; i < 8; i++) void r.ask("greedy");
    void r.ask("a");
    void r.ask("b");
    await settle();
    expect(r.granted).toEqual(["greedy", "greedy"]);
    expect(q.queued).toBe(8);
    for (const holder of ["greedy", "greedy", "greedy", "a"]) {
      r.release(holder);
      await settle();
    }
    // Each freed slot went to the next requester in the ring, not to the oldest request.
    expect(r.granted.slice(2)).toEqual(["greedy", "a", "b", "greedy"]);
    expect(q.queued).toBe(4);
  });

  it("gives one requester alone every slot at once", async () => {
    const q = new FairServeQueue(3);
    const r = recorder(q);
    for (let i = 0; i < 3; i++) void r.ask("solo");
    await settle();
    expect(r.granted).toEqual(["solo", "solo", "solo"]);
    expect(q.queued).toBe(0);
  });

  it("drops a waiter whose reader went away, and a double release frees one slot only", async () => {
    const q = new FairServeQueue(1);
    const r = recorder(q);
    void r.ask("x");
    await settle();
    const gone = new AbortController();
    const waiting = r.ask("y", gone.signal).catch((e: unknown) => e);
    void r.ask("z");
    await settle();
    gone.abort(new Error("reader left"));
    expect(await waiting).toEqual(new Error("reader left"));
    const releaseX = () => r.release("x");
    releaseX();
    await settle();
    expect(r.granted).toEqual(["x", "z"]);
    expect(q.queued).toBe(0);
    expect(() => new FairServeQueue(0)).toThrow(RangeError);
  });
});
