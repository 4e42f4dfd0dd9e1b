/**
 * SourceScores' measurements: the delivery rate corrected for requests that
 * shared the source, the round trip, forgetting of stale samples, the
 * failure rate with its prior, and the delivery-time estimate built on them.
 */
import { describe, expect, it } from "vitest";
import { SourceScores } from "../../src/peer/source-scores.js";

const MiB = 1 << 20;
const options = { perSourceInFlight: 8, coldInFlight: 4, banAfterCorruptions: 2, banAfterConsecutiveFailures: 4, memoryMs: 5000 };

/** One request to `id` of `size` bytes that took `elapsedMs`, with `sharing - 1` others in flight at the source meanwhile. */
function deliver(scores: SourceScores, id: string, atMs: number, size: number, elapsedMs: number, sharing = 1, firstByteMs?: number): void {
  for (let i = 0; i < sharing; i++) scores.started(id);
  scores.ended(id, { ok: true, sizeBytes: size, timing: { atMs, elapsedMs, firstByteMs } });
  for (let i = 1; i < sharing; i++) scores.ended(id, { ok: false, reason: "cancelled" });
}

function stat(scores: SourceScores, id: string) {
  return scores.stats().find((s) => s.id === id)!;
}

describe("SourceScores measurements", () => {
  it("measures a source's rate, counting the requests that shared it, and its round trip", () => {
    const scores = new SourceScores(options);
    scores.add("a", "peer");
    expect(stat(scores, "a").rateBytesPerSecond).toBeNull();
    // 1 MiB in 250 ms while 4 requests shared the source: the source delivers 4 MiB per 250 ms = 16 MiB/s.
    deliver(scores, "a", 1000, MiB, 250, 4, 30);
    expect(stat(scores, "a").rateBytesPerSecond).toBeCloseTo(16 * MiB, -3);
    expect(stat(scores, "a").rttMs).toBe(30);
  });

  it("forgets: a source that slowed down is seen at its new rate within a few half-lives", () => {
    const scores = new SourceScores(options);
    scores.add("a", "peer");
    for (let t = 0; t < 10_000; t += 100) deliver(scores, "a", t, MiB, 100); // 10 MiB/s for 10 s
    expect(stat(scores, "a").rateBytesPerSecond! / MiB).toBeCloseTo(10, 1);
    // Now 1 MiB/s, a sample a second: after 5 s (one half-life) the estimate is at least half way there, after 20 s nearly exact.
    let t = 10_000;
    for (; t < 15_000; t += 1000) deliver(scores, "a", t, MiB, 1000);
    const afterOneHalfLife = stat(scores, "a").rateBytesPerSecond! / MiB;
    expect(afterOneHalfLife).toBeLessThanOrEqual(5.5);
    for (; t < 30_000; t += 1000) deliver(scores, "a", t, MiB, 1000);
    expect(stat(scores, "a").rateBytesPerSecond! / MiB).toBeLessThan(1.15);
  });

  it("weighs back-to-back samples little, so that one outlier barely moves the estimate", () => {
    const scores = new SourceScores(options);
    scores.add("a", "peer");
    for (let t = 0; t < 5000; t += 10) deliver(scores, "a", t, MiB, 100);
    deliver(scores, "a", 5001, MiB, 10_000); // one request 100× slower, 1 ms after the previous
    expect(stat(scores, "a").rateBytesPerSecond! / MiB).toBeGreaterThan(7.5);
  });

  it("a first error is not a 100 % failure rate; a run of errors approaches it, and successes bring it down again", () => {
    const scores = new SourceScores({ ...options, banAfterConsecutiveFailures: 100 });
    scores.add("a", "peer");
    scores.started("a");
    scores.ended("a", { ok: false, reason: "error", atMs: 0 });
    expect(stat(scores, "a").failureRate).toBeCloseTo(0.5, 5);
    for (let t = 1; t <= 20; t++) {
      scores.started("a");
      scores.ended("a", { ok: false, reason: "error", atMs: t });
    }
    expect(stat(scores, "a").failureRate).toBeGreaterThan(0.9);
    for (let t = 100; t <= 30_000; t += 100) deliver(scores, "a", t, MiB, 100);
    expect(stat(scores, "a").failureRate).toBeLessThan(0.02);
    // Absent and cancelled answers are no failures.
    const other = new SourceScores(options);
    other.add("b", "peer");
    for (const reason of ["absent", "cancelled"] as const) {
      other.started("b");
      other.ended("b", { ok: false, reason, atMs: 1 });
    }
    expect(stat(other, "b").failureRate).toBe(0);
  });

  it("expects a new request to take longer on a slower, busier, or failing source; unmeasured ones count as the fallback rate", () => {
    const scores = new SourceScores({ ...options, banAfterConsecutiveFailures: 100 });
    for (const id of ["fast", "slow", "busy", "flaky", "new"]) scores.add(id, "peer");
    deliver(scores, "fast", 0, MiB, 100); // 10 MiB/s
    deliver(scores, "slow", 0, MiB, 1000); // 1 MiB/s
    deliver(scores, "busy", 0, MiB, 100);
    deliver(scores, "flaky", 0, MiB, 100);
    for (let i = 0; i < 3; i++) scores.started("busy");
    for (let t = 1; t <= 3; t++) {
      scores.started("flaky");
      scores.ended("flaky", { ok: false, reason: "error", atMs: t });
    }
    const eta = (id: string) => scores.expectedSeconds(id, MiB, 10 * MiB);
    expect(eta("fast")).toBeCloseTo(0.1, 3);
    expect(eta("slow")).toBeCloseTo(1, 3);
    expect(eta("busy")).toBeCloseTo(0.4, 3); // three ahead of it
    expect(eta("flaky")).toBeGreaterThan(eta("fast") * 2);
    expect(eta("new")).toBeCloseTo(0.1, 3);
    expect(scores.meanRate()! / MiB).toBeCloseTo(10 * 0.75 + 1 * 0.25, 3); // mean of 10, 1, 10, 10
  });
});
