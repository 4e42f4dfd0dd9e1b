/**
 * The swarm watcher's membership lookups (src/peer/swarm-watcher.ts) on a
 * virtual wait: often at the start, then backing off while they find
 * nobody new, back to the base interval when they do. Polling of members
 * and the views themselves are exercised with real servers in swarm.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { ChunkSource, ProviderDirectory } from "../../src/peer/sources.js";
import { SwarmWatcher } from "../../src/peer/swarm-watcher.js";

function member(id: string): ChunkSource {
  return {
    id,
    kind: "peer",
    fetch: () => Promise.reject(new Error("not used")),
    // Complete at once: polled a single time, so only lookups ask for waits below.
    swarmView: async () => ({ pieces: 1, seq: 1, bitmap: "AQ", inFlight: [], complete: true }),
  };
}

describe("SwarmWatcher membership lookups", () => {
  it("look often at first, back off to maxRefreshMs while nobody new appears, and return to refreshMs when someone does", async () => {
    const controller = new AbortController();
    const lookupWaits: number[] = [];
    let lookups = 0;
    const members = [member("a")];
    const providers: ProviderDirectory = {
      async providers() {
        lookups++;
        if (lookups === 15) members.push(member("b")); // a newcomer on the 15th lookup
        return [...members];
      },
    };
    const views: string[] = [];
    await new SwarmWatcher({
      key: "file",
      rootCid: "root",
      pieces: 1,
      providers,
      signal: controller.signal,
      refreshMs: 1_000,
      maxRefreshMs: 8_000,
      onView: (source) => views.push(source.id),
      onGone: () => {},
      wait: async (ms) => {
        // Waits of the membership loop are the ones that follow a lookup; a member's single poll asks none.
        lookupWaits.push(ms);
        if (lookupWaits.length === 20) controller.abort();
      },
    }).run();
    expect(lookupWaits).toEqual([
      ...Array<number>(10).fill(200), // the early lookups
      2_000,
      4_000,
      8_000,
      8_000, // nobody new: doubling, capped
      1_000, // the 15th lookup found "b"
      2_000,
      4_000,
      8_000,
      8_000,
      8_000,
    ]);
    expect(views.sort()).toEqual(["a", "b"]);
  });
});

describe("SwarmWatcher polls", () => {
  it("wait as long as the pollMs function says at each turn (the fetcher's follows its pieces' transfer time)", async () => {
    const controller = new AbortController();
    const paces = [333, 444, 555];
    let asked = 0;
    const pollWaits: number[] = [];
    const leecher: ChunkSource = {
      id: "leecher",
      kind: "peer",
      fetch: () => Promise.reject(new Error("not used")),
      swarmView: async () => ({ pieces: 1, seq: 0, bitmap: "AA", inFlight: [0], complete: false }),
    };
    await new SwarmWatcher({
      key: "file",
      rootCid: "root",
      pieces: 1,
      providers: { providers: async () => [leecher] },
      signal: controller.signal,
      pollMs: () => paces[Math.min(asked++, paces.length - 1)],
      onView: () => {},
      onGone: () => {},
      wait: async (ms) => {
        // The membership loop's waits are 200 ms and up from 1000; the member's polls take the paces above.
        if (!paces.includes(ms)) return;
        pollWaits.push(ms);
        if (pollWaits.length === 4) controller.abort();
      },
    }).run();
    expect(pollWaits).toEqual([333, 444, 555, 555]);
  });
});
