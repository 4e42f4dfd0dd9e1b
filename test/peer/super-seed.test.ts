/**
 * The seed's memory of recent sends (src/peer/super-seed.ts), on a virtual
 * clock: whom a chunk went to, for how long others are referred to the
 * swarm, and that the memory stays bounded. The refusal on the wire is
 * tested with a real server and clients in transfer.test.ts.
 */
import { describe, expect, it } from "vitest";
import { RecentSends } from "../../src/peer/super-seed.js";

describe("RecentSends", () => {
  it("refers others to the recipient until the window ends, never the recipient itself", () => {
    const sends = new RecentSends(1_000);
    sends.record("cid-a", "alice", 10_000);
    expect(sends.refusal("cid-a", "bob", 10_400)).toEqual({ sentTo: "alice", retryAfterMs: 600 });
    expect(sends.refusal("cid-a", "alice", 10_400)).toBeNull();
    expect(sends.refusal("cid-b", "bob", 10_400)).toBeNull();
    expect(sends.refusal("cid-a", "bob", 11_000)).toBeNull();
    // Sent again later (to bob): the window restarts with the new recipient.
    sends.record("cid-a", "bob", 11_000);
    expect(sends.refusal("cid-a", "alice", 11_500)).toEqual({ sentTo: "bob", retryAfterMs: 500 });
  });

  it("forgets a send only for the member it went to", () => {
    const sends = new RecentSends(1_000);
    sends.record("cid", "alice", 0);
    sends.forget("cid", "bob");
    expect(sends.refusal("cid", "carol", 1)).not.toBeNull();
    sends.forget("cid", "alice");
    expect(sends.refusal("cid", "carol", 1)).toBeNull();
  });

  it("keeps at most maxEntries sends, dropping the oldest, and drops expired ones as it goes", () => {
    const sends = new RecentSends(1_000_000, 3);
    for (let i = 0; i < 5; i++) sends.record(`cid-${i}`, "alice", i);
    expect([0, 1, 2, 3, 4].map((i) => sends.refusal(`cid-${i}`, "bob", 10) !== null)).toEqual([false, false, true, true, true]);
    const short = new RecentSends(10);
    short.record("old", "alice", 0);
    short.record("new", "alice", 100);
    expect(short.refusal("old", "bob", 5)).toBeNull(); // pruned when "new" was recorded, whatever the clock says now
  });
});
