/** RegionQualityMeter (src/peer/region-quality.ts): what a daemon's downloads measured of each region's sources. */
import { describe, expect, it } from "vitest";
import { MAX_REGION_QUALITY_ENTRIES } from "../../src/core/messages.js";
import { RegionQualityMeter } from "../../src/peer/region-quality.js";

describe("RegionQualityMeter", () => {
  it("reports nothing until something was measured, then moving averages per region", () => {
    const m = new RegionQualityMeter();
    expect(m.report()).toBeUndefined();
    m.record({ region: "eu", rttMs: null, rateBytesPerSecond: null });
    expect(m.report()).toBeUndefined();
    m.record({ region: "eu", rttMs: 10, rateBytesPerSecond: 1000 });
    m.record({ region: "eu", rttMs: 20, rateBytesPerSecond: null });
    m.record({ region: "us", rttMs: null, rateBytesPerSecond: 500 });
    expect(m.report()).toEqual([
      { region: "eu", rttMs: 13, rateBytesPerSecond: 1000, samples: 2 },
      { region: "us", rttMs: null, rateBytesPerSecond: 500, samples: 1 },
    ]);
  });

  it("keeps the most recently measured regions when there are more than a report may carry", () => {
    const m = new RegionQualityMeter();
    for (let i = 0; i <= MAX_REGION_QUALITY_ENTRIES; i++) m.record({ region: `r${i}`, rttMs: i, rateBytesPerSecond: null });
    const regions = m.report()!.map((e) => e.region);
    expect(regions).toHaveLength(MAX_REGION_QUALITY_ENTRIES);
    expect(regions).not.toContain("r0");
    expect(regions.at(-1)).toBe(`r${MAX_REGION_QUALITY_ENTRIES}`);
  });
});
