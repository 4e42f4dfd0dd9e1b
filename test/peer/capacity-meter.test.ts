/**
 * The capacity meter, driven with explicit timestamps and byte totals: the
 * peak rate over windows, its fading in busy time only, the configured
 * upload cap, and zero only before anything was measured.
 */
import { describe, expect, it } from "vitest";
import { CapacityMeter } from "../../src/peer/capacity-meter.js";

const MB = 1_000_000;

/** Feeds `meter` one sample per entry: [ms, bytes sent so far, bytes received so far]. */
function feed(meter: CapacityMeter, samples: [number, number, number][]): void {
  for (const [atMs, sentBytes, receivedBytes] of samples) meter.sample(atMs, { sentBytes, receivedBytes });
}

describe("CapacityMeter", () => {
  it("reports zero until a window saw bytes move", () => {
    const meter = new CapacityMeter();
    expect(meter.capacity()).toEqual({ uploadBps: 0, downloadBps: 0 });
    feed(meter, [
      [0, 0, 0],
      [1000, 0, 0],
      [2000, 0, 0],
    ]);
    expect(meter.capacity()).toEqual({ uploadBps: 0, downloadBps: 0 });
  });

  it("keeps the peak rate of each direction over one-second windows", () => {
    const meter = new CapacityMeter({ halfLifeMs: 1e12 });
    feed(meter, [
      [0, 0, 0],
      [1000, 2 * MB, 1 * MB], // 2 MB/s up, 1 MB/s down
      [2000, 7 * MB, 2 * MB], // 5 MB/s up, 1 MB/s down
      [3000, 8 * MB, 6 * MB], // 1 MB/s up, 4 MB/s down
    ]);
    expect(meter.capacity()).toEqual({ uploadBps: 5 * MB, downloadBps: 4 * MB });
  });

  it("merges samples closer than the window, so a burst into socket buffers is not taken for the link's rate", () => {
    const meter = new CapacityMeter({ halfLifeMs: 1e12 });
    // 1 MB within 10 ms, then nothing for the rest of the second: 1 MB/s, not 100 MB/s.
    feed(meter, [
      [0, 0, 0],
      [10, MB, 0],
      [1000, MB, 0],
    ]);
    expect(meter.capacity().uploadBps).toBe(MB);
  });

  it("fades the peak by half per half-life of busy time, and never below what the latest window measured", () => {
    const meter = new CapacityMeter({ halfLifeMs: 2000 });
    feed(meter, [
      [0, 0, 0],
      [1000, 8 * MB, 0], // peak 8 MB/s
      [2000, 8 * MB + 1, 0], // 1 s busy (a trickle): 8 MB/s · 2^-0.5
      [3000, 8 * MB + 2, 0], // 2 s busy: 4 MB/s
    ]);
    expect(meter.capacity().uploadBps).toBe(4 * MB);
    feed(meter, [[4000, 11 * MB + 2, 0]]); // 3 MB/s measured, above the faded 2.83 MB/s
    expect(meter.capacity().uploadBps).toBe(3 * MB);
  });

  it("keeps the capacity through idle time: an idle window says nothing about the link", () => {
    const meter = new CapacityMeter({ halfLifeMs: 1000 });
    feed(meter, [
      [0, 0, 0],
      [1000, 0, 6 * MB],
    ]);
    for (let t = 2000; t <= 3_600_000; t += 1000) meter.sample(t, { sentBytes: 0, receivedBytes: 6 * MB });
    expect(meter.capacity().downloadBps).toBe(6 * MB);
  });

  it("reports a configured upload cap as the upload capacity, whatever was measured", () => {
    const meter = new CapacityMeter({ uploadLimitBps: 750_000, halfLifeMs: 1e12 });
    expect(meter.capacity()).toEqual({ uploadBps: 750_000, downloadBps: 0 });
    feed(meter, [
      [0, 0, 0],
      [1000, 600_000, 3 * MB],
    ]);
    expect(meter.capacity()).toEqual({ uploadBps: 750_000, downloadBps: 3 * MB });
  });

  it("reports a slow measured rate as at least 1 B/s, so a measured link never reads as unmeasured", () => {
    const meter = new CapacityMeter();
    feed(meter, [
      [0, 0, 0],
      [4000, 1, 0], // 0.25 B/s
    ]);
    expect(meter.capacity().uploadBps).toBe(1);
  });

  it("treats a counter that went backwards as no evidence", () => {
    const meter = new CapacityMeter({ halfLifeMs: 1e12 });
    feed(meter, [
      [0, 5 * MB, 0],
      [1000, 6 * MB, 0],
      [2000, 0, 0],
      [3000, 2 * MB, 0],
    ]);
    expect(meter.capacity().uploadBps).toBe(2 * MB);
  });

  it("refuses nonsense options", () => {
    expect(() => new CapacityMeter({ windowMs: 0 })).toThrow(RangeError);
    expect(() => new CapacityMeter({ halfLifeMs: -1 })).toThrow(RangeError);
    expect(() => new CapacityMeter({ uploadLimitBps: 0 })).toThrow(RangeError);
  });
});
