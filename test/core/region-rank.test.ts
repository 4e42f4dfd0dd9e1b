/** Ranking of other regions by measured quality (src/core/region-rank.ts). */
import { describe, expect, it } from "vitest";
import { rankRegions } from "../../src/core/region-rank.js";

const MB = 1024 * 1024;

describe("rankRegions", () => {
  it("keeps the configured order, without the local region, until something is measured", () => {
    expect(rankRegions("eu", ["us", "eu", "ap", "sa"], [])).toEqual(["us", "ap", "sa"]);
  });

  it("puts measured regions first, the quickest expected chunk fetch first", () => {
    const ranked = rankRegions(
      "eu",
      ["us", "eu", "ap", "sa", "af"],
      [
        // 100 ms + 1 MiB at 10 MB/s ≈ 200 ms
        { region: "us", rttMs: 100, rateBytesPerSecond: 10 * MB },
        // 20 ms + 1 MiB at 2 MB/s ≈ 520 ms: a shorter round trip does not make up for the rate
        { region: "ap", rttMs: 20, rateBytesPerSecond: 2 * MB },
        // 300 ms + 1 MiB at 100 MB/s ≈ 310 ms
        { region: "af", rttMs: 300, rateBytesPerSecond: 100 * MB },
        // the local region's own estimate is a baseline, never a candidate
        { region: "eu", rttMs: 1, rateBytesPerSecond: 1000 * MB },
      ],
    );
    expect(ranked).toEqual(["us", "af", "ap", "sa"]);
  });

  it("fills a missing half of an estimate with the worst measured one, and ignores empty estimates", () => {
    const ranked = rankRegions(
      "eu",
      ["a", "b", "c", "d"],
      [
        { region: "a", rttMs: 50, rateBytesPerSecond: null }, // 50 + 1 MiB at the worst rate (1 MB/s) ≈ 1050
        { region: "b", rttMs: 400, rateBytesPerSecond: 1 * MB }, // ≈ 1400
        { region: "c", rttMs: null, rateBytesPerSecond: 50 * MB }, // the worst rtt (400) + 20 ≈ 420
        { region: "d", rttMs: null, rateBytesPerSecond: null },
      ],
    );
    expect(ranked).toEqual(["c", "a", "b", "d"]);
  });

  it("breaks equal costs by configured order and drops repeated names", () => {
    const same = { rttMs: 10, rateBytesPerSecond: 5 * MB };
    expect(
      rankRegions(
        "x",
        ["b", "a", "b", "x"],
        [
          { region: "a", ...same },
          { region: "b", ...same },
        ],
      ),
    ).toEqual(["b", "a"]);
  });
});
