/**
 * Progress reporters: JSON lines (throttled, phase changes and the end always
 * written), the terminal bar only on a TTY, and the byte formatting.
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createProgressReporter, formatBytes, RateMeter, type ProgressEvent } from "../../src/peer/progress.js";

function capture(isTTY: boolean): PassThrough & { isTTY: boolean; text(): string; columns: number } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d) => (text += d.toString()));
  return Object.assign(stream, { isTTY, columns: 120, text: () => text, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
}

const event = (phase: ProgressEvent["phase"], bytesDone: number): ProgressEvent => ({ op: "get", phase, bytesDone, bytesTotal: 100, chunksDone: 0, chunksTotal: 4 });

describe("progress reporters", () => {
  it("json: one line per event at most every intervalMs, plus every phase change, the end and the last pending event", () => {
    const out = capture(false);
    let nowMs = 0;
    const reporter = createProgressReporter({ mode: "json", stream: out, intervalMs: 100, now: () => nowMs });
    reporter.update(event("fetch", 0));
    nowMs = 10;
    reporter.update(event("fetch", 10)); // throttled
    nowMs = 20;
    reporter.update(event("fetch", 20)); // throttled, pending
    nowMs = 150;
    reporter.update(event("fetch", 30)); // interval passed
    reporter.update(event("verify", 100)); // phase change
    reporter.update(event("verify", 100)); // throttled, pending
    reporter.stop(); // flushes the pending one
    const lines = out
      .text()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.type, l.phase, l.bytesDone])).toEqual([
      ["progress", "fetch", 0],
      ["progress", "fetch", 30],
      ["progress", "verify", 100],
      ["progress", "verify", 100],
    ]);
  });

  it("auto: nothing on a non-TTY stream", () => {
    const out = capture(false);
    const reporter = createProgressReporter({ stream: out });
    reporter.update(event("fetch", 50));
    reporter.stop();
    expect(out.text()).toBe("");
  });

  it("auto: a bar with bytes and rate on a TTY", () => {
    const out = capture(true);
    let nowMs = 0;
    const reporter = createProgressReporter({ stream: out, label: "get", now: () => nowMs });
    reporter.update({ ...event("fetch", 0), bytesTotal: 10 * 1024 * 1024 });
    nowMs = 1000;
    reporter.update({ ...event("fetch", 5 * 1024 * 1024), bytesTotal: 10 * 1024 * 1024 });
    reporter.stop();
    reporter.stop();
    expect(out.text()).toContain("get fetch");
    expect(out.text()).toContain("5.00 MiB / 10.0 MiB");
    expect(out.text()).toContain("5.00 MiB/s");
  });

  it("formats sizes and measures rates", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(256 * 1024 * 1024)).toBe("256.0 MiB");
    let t = 0;
    const meter = new RateMeter(() => t, 5000);
    expect(meter.sample(0)).toBe(0);
    t = 2000;
    expect(meter.sample(2000)).toBe(1000);
  });
});
