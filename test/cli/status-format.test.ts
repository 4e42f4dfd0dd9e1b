/**
 * The human `peercloud status` lines of the region summary
 * (status-region.ts): repair, audits, cold chunks, rebalance figures when
 * the edge sends them, and the estimates of the quality between regions;
 * and that a summary from an edge without the newer fields still prints.
 */
import { describe, expect, it } from "vitest";
import type { RegionSummary } from "../../durable-objects/region-directory-contract.js";
import { formatFigures, formatRegionStatus } from "../../src/cli/commands/status-region.js";

const MiB = 1024 * 1024;

/** A summary without rebalance figures, as an edge that does not run the rebalancer sends it. */
type SummaryWithoutRebalance = Omit<RegionSummary, "rebalance">;
const sent = (s: SummaryWithoutRebalance & { rebalance?: object }) => ({ regionSummary: s as RegionSummary });

function summary(): SummaryWithoutRebalance {
  return {
    region: "eu",
    peers: { alive: 3, suspect: 1, dead: 0, connected: 3 },
    storedBytes: 9 * MiB,
    replicas: 9,
    pinnedChunks: 3,
    underReplicatedChunks: 1,
    coldChunks: 2,
    repair: { queuedJobs: 1, runningJobs: 2, failedJobs: 0, completedJobs: 5, failedAttempts: 1, bytesRepaired: 3 * MiB },
    audits: { pendingAudits: 4, passed: 10, failed: 2, inconclusive: 1, lowReputationPeers: 1 },
    regionQuality: [
      { region: "eu", rttMs: 20.4, rateBytesPerSecond: 50 * MiB, samples: 3, updatedMs: 1 },
      { region: "ap", rttMs: null, rateBytesPerSecond: 5 * MiB, samples: 1, updatedMs: 2 },
    ],
    r2EgressBytes: 0,
    updatedAtMs: 3,
  };
}

describe("formatRegionStatus", () => {
  it("prints the network, repair, audit and region-quality figures", () => {
    expect(formatRegionStatus(sent(summary()))).toEqual([
      "network  3 alive / 1 suspect / 0 dead peer(s); 9 replica(s) of 3 pinned chunk(s), 1 under-replicated, 2 cold (in R2 only)",
      "repair   1 queued, 2 running, 0 failed (backing off); 5 done, 3.00 MiB repaired, 1 failed attempt(s)",
      "audits   4 pending; 10 passed, 2 failed, 1 inconclusive; 1 peer(s) of low reputation",
      "regions  measured from eu: eu 20 ms, 50.0 MiB/s (3 downloads); ap ? ms, 5.00 MiB/s (1 download)",
    ]);
  });

  it("says when no region was measured yet, and counts the regions beyond the first six", () => {
    const none = formatRegionStatus(sent({ ...summary(), regionQuality: [] }));
    expect(none.at(-1)).toBe("regions  nothing measured from eu yet");
    const regions = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    const many = formatRegionStatus(sent({ ...summary(), regionQuality: regions.map((region) => ({ region, rttMs: 1, rateBytesPerSecond: 1, samples: 1, updatedMs: 0 })) }));
    const line = many.at(-1)!;
    expect(line).toContain("a6 1 ms, 1 B/s (1 download); 2 more");
    expect(line).not.toContain("a7");
  });

  it("prints the rebalance figures only when the edge sends them", () => {
    expect(formatRegionStatus(sent(summary())).some((l) => l.startsWith("rebalance"))).toBe(false);
    const withRebalance = { ...summary(), rebalance: { queuedMoves: 1, runningMoves: 0, completedMoves: 4, movedBytes: 2 * MiB, failedAttempts: 1 } };
    expect(formatRegionStatus(sent(withRebalance))).toContain("rebalance 1 queued moves, 0 running moves, 4 completed moves, 2.00 MiB moved, 1 failed attempts");
  });

  it("still prints a summary from an edge without audits, cold chunks or region quality", () => {
    const { audits: _audits, coldChunks: _cold, regionQuality: _quality, ...older } = summary();
    expect(formatRegionStatus(sent(older as SummaryWithoutRebalance))).toEqual([
      "network  3 alive / 1 suspect / 0 dead peer(s); 9 replica(s) of 3 pinned chunk(s), 1 under-replicated",
      "repair   1 queued, 2 running, 0 failed (backing off); 5 done, 3.00 MiB repaired, 1 failed attempt(s)",
    ]);
  });

  it("says why the summary is missing", () => {
    expect(formatRegionStatus({ regionSummary: null, regionSummaryError: "fetch failed" })).toEqual(["network  region summary unavailable (fetch failed)"]);
  });
});

describe("formatFigures", () => {
  it("turns camelCase names into words, prints byte figures as sizes, and skips what is not a number", () => {
    expect(formatFigures({ movesPlanned: 3, movedBytes: 1536, note: "x", nested: { a: 1 } })).toBe("3 moves planned, 1.50 KiB moved");
    expect(formatFigures({})).toBe("nothing to report");
  });
});
