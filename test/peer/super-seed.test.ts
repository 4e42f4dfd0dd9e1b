/**
 * The seed's memory of recent sends (src/peer/super-seed.ts), on a virtual
 * clock: whom a chunk went to, for how long others are referred to the
 * swarm, and that the memory stays bounded. The refusal on the wire is
 * tested with a real server and clients in transfer.test.ts.
 */
import { describe, expect, it } from "vitest";
import { RecentSends } from "../../src/peer/super-seed.js";

describe("RecentSends", () => {
  it("refers others to the recipient while sending and for the window after the end, never the recipient itself", () => {
    const sends = new RecentSends(1_000);
    sends.started("cid-a", "alice", 10_000);
    // A long send: still refused long after it began, with one window to wait.
    expect(sends.refusal("cid-a", "bob", 15_000)).toEqual({ sentTo: "alice", retryAfterMs: 1_000 });
    sends.ended("cid-a", "alice", 20_000);
    expect(sends.refusal("cid-a", "bob", 20_400)).toEqual({ sentTo: "alice", retryAfterMs: 600 });
    expect(sends.refusal("cid-a", "alice", 20_400)).toBeNull();
    expect(sends.refusal("cid-b", "bob", 20_400)).toBeNull();
    expect(sends.refusal("cid-a", "bob", 21_000)).toBeNull();
    // Sent again later (to bob): the refusal follows the new recipient.
    sends.started("cid-a", "bob", 21_000);
    sends.ended("cid-a", "bob", 21_100);
    expect(sends.refusal("cid-a", "alice", 21_600)).toEqual({ sentTo: "bob", retryAfterMs: 500 });
  });

  it("forgets, or ends, a send only for the member it went to", () => {
    const sends = new RecentSends(1_000);
    sends.started("cid", "alice", 0);
    sends.forget("cid", "bob");
    sends.ended("cid", "bob", 0);
    expect(sends.refusal("cid", "carol", 5_000)).toEqual({ sentTo: "alice", retryAfterMs: 1_000 }); // still sending
    sends.forget("cid", "alice");
    expect(sends.refusal("cid", "carol", 5_000)).toBeNull();
  });

  it("keeps at most maxEntries sends, dropping the oldest, and drops expired ones as it goes", () => {
    const sends = new RecentSends(1_000_000, 3);
    for (let i = 0; i < 5; i++) sends.started(`cid-${i}`, "alice", i);
    expect([0, 1, 2, 3, 4].map((i) => sends.refusal(`cid-${i}`, "bob", 10) !== null)).toEqual([false, false, true, true, true]);
    const short = new RecentSends(10);
    short.started("old", "alice", 0);
    short.ended("old", "alice", 0);
    short.started("running", "alice", 1);
    short.started("new", "alice", 100);
    // "old" ended over a window before "new" began: pruned then, whatever the clock says now; a send in progress never is.
    expect(short.refusal("old", "bob", 5)).toBeNull();
    expect(short.refusal("running", "bob", 5)).not.toBeNull();
  });
});
