/**
 * The download scheduler's rules, as pure logic: window, piece order
 * (rarest first / in order), source choice and fairness, penalties and bans,
 * fallbacks (re-lookup, cold, failure), and endgame duplication.
 */
import { describe, expect, it } from "vitest";
import { ChunkScheduler, COLD_SOURCE_ID, type Assignment, type SchedulerOptions } from "../../src/peer/chunk-scheduler.js";

/** A scheduler whose every piece has been looked up with `providers(piece)`. */
function ready(pieces: number, providers: (piece: number) => string[], options: SchedulerOptions = {}): ChunkScheduler {
  const s = new ChunkScheduler(pieces, { lookaheadPieces: pieces, lookupConcurrency: pieces, ...options });
  for (let i = 0; i < pieces; i++) for (const id of providers(i)) s.addSource(id, "peer");
  for (const piece of s.nextLookups()) s.lookupResult(piece, providers(piece));
  return s;
}

function byPiece(assignments: Assignment[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const a of assignments) out.set(a.piece, [...(out.get(a.piece) ?? []), a.sourceId]);
  return out;
}

/** The scheduler waits for a referral or a pause to end: nothing to start, look up or give up on, and the loop may sleep. */
function expectOnlyWaiting(s: ChunkScheduler) {
  expect(s.nextRequests()).toEqual([]);
  expect(s.nextLookups()).toEqual([]);
  expect(s.failedPieces()).toEqual([]);
  expect(s.hasDeferred()).toBe(true);
}

/** Completes a request and consumes the piece at once (a file-mode sink). */
function succeed(s: ChunkScheduler, a: Assignment) {
  const result = s.requestSucceeded(a.piece, a.sourceId, 100);
  if (result.accepted) s.consumed(a.piece);
  return result;
}

describe("ChunkScheduler", () => {
  it("starts no more than the window, and no more than each source's limit", () => {
    const s = ready(40, () => ["a", "b", "c"], { windowChunks: 8, perSourceInFlight: 2, endgame: false });
    const first = s.nextRequests();
    expect(first).toHaveLength(6); // 3 sources x 2 slots < window 8
    const perSource = new Map<string, number>();
    for (const a of first) perSource.set(a.sourceId, (perSource.get(a.sourceId) ?? 0) + 1);
    expect([...perSource.values()]).toEqual([2, 2, 2]);
    expect(s.nextRequests()).toHaveLength(0);
    succeed(s, first[0]);
    expect(s.nextRequests()).toHaveLength(1);
  });

  it("bounds memory units: a received but unconsumed piece holds its slot", () => {
    const s = ready(10, () => ["a", "b", "c", "d"], { windowChunks: 3, perSourceInFlight: 4, endgame: false });
    const first = s.nextRequests();
    expect(first).toHaveLength(3);
    s.requestSucceeded(first[0].piece, first[0].sourceId, 1);
    expect(s.nextRequests()).toHaveLength(0);
    s.consumed(first[0].piece);
    expect(s.nextRequests()).toHaveLength(1);
  });

  it("spreads requests across providers (fairness by load)", () => {
    const s = ready(12, () => ["a", "b", "c"], { windowChunks: 12, perSourceInFlight: 4, endgame: false });
    const counts = new Map<string, number>();
    for (const a of s.nextRequests()) counts.set(a.sourceId, (counts.get(a.sourceId) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ a: 4, b: 4, c: 4 });
  });

  it("fetches the rarest pieces first, and in order when ordered", () => {
    const providers = (piece: number) => (piece === 3 ? ["a"] : piece === 2 ? ["a", "b"] : ["a", "b", "c"]);
    const rarest = ready(5, providers, { windowChunks: 2, perSourceInFlight: 8, endgame: false });
    expect(rarest.nextRequests().map((a) => a.piece)).toEqual([3, 2]);
    const ordered = ready(5, providers, { windowChunks: 2, perSourceInFlight: 8, ordered: true, endgame: false });
    expect(ordered.nextRequests().map((a) => a.piece)).toEqual([0, 1]);
  });

  it("looks providers up only a bounded distance ahead", () => {
    const s = new ChunkScheduler(100, { windowChunks: 4, lookaheadPieces: 4, lookupConcurrency: 8 });
    expect(s.nextLookups()).toEqual([0, 1, 2, 3]);
    expect(s.nextLookups()).toEqual([]);
    s.addSource("a", "peer");
    s.lookupResult(0, ["a"]);
    s.nextRequests();
    expect(s.nextLookups()).toEqual([4]);
  });

  it("retries a corrupt piece elsewhere, never on the corrupting source, and bans it after repeated corruption", () => {
    const s = ready(4, () => ["bad", "good"], { windowChunks: 4, perSourceInFlight: 1, banAfterCorruptions: 2, endgame: false });
    const first = byPiece(s.nextRequests());
    expect(first.get(0)).toEqual(["bad"]);
    expect(first.get(1)).toEqual(["good"]);
    s.requestFailed(0, "bad", "corrupt");
    const second = byPiece(s.nextRequests());
    // piece 0 must not go back to "bad"; "good" is busy with piece 1, so piece 2 may take "bad".
    expect(second.get(0)).toBeUndefined();
    expect(second.get(2)).toEqual(["bad"]);
    s.requestFailed(2, "bad", "corrupt");
    const stats = s.sourceStats().find((x) => x.id === "bad")!;
    expect(stats).toMatchObject({ corruptions: 2, banned: true });
    expect(stats.score).toBeLessThan(0.05);
    succeed(s, { piece: 1, sourceId: "good", duplicate: false });
    const rest: Assignment[] = [];
    for (let guard = 0; guard < 10 && !s.isFinished(); guard++) {
      for (const a of s.nextRequests()) {
        expect(a.sourceId).toBe("good");
        rest.push(a);
        succeed(s, a);
      }
    }
    expect(s.isFinished()).toBe(true);
    expect(s.penalisedSources()).toEqual(["bad"]);
  });

  it("bans a source after consecutive errors; a success resets the streak", () => {
    const s = ready(10, () => ["flaky"], { windowChunks: 1, perSourceInFlight: 1, banAfterConsecutiveFailures: 3, maxAttemptsPerSource: 10, endgame: false });
    const next = () => {
      const [a] = s.nextRequests();
      expect(a?.sourceId).toBe("flaky");
      return a;
    };
    const flaky = () => s.sourceStats().find((x) => x.id === "flaky")!;
    s.requestFailed(next().piece, "flaky", "error");
    s.requestFailed(next().piece, "flaky", "error");
    expect(flaky().score).toBeCloseTo(0.25);
    succeed(s, next());
    expect(flaky().banned).toBe(false);
    s.requestFailed(next().piece, "flaky", "error");
    s.requestFailed(next().piece, "flaky", "error");
    expect(flaky().banned).toBe(false);
    s.requestFailed(next().piece, "flaky", "error");
    expect(flaky()).toMatchObject({ banned: true, failures: 5, chunks: 1 });
    // Banned and no cold store: after one re-lookup (which finds only it) the piece has no option left.
    expect(s.nextRequests()).toEqual([]);
    const [again] = s.nextLookups();
    s.lookupResult(again, ["flaky"]);
    expect(s.nextRequests()).toEqual([]);
    expect(s.failedPieces()).toEqual([again]);
  });

  it("falls back to a re-lookup, then the cold store, then fails", () => {
    const s = new ChunkScheduler(1, { hasCold: true, maxLookupsPerPiece: 2 });
    s.addSource("p", "peer");
    expect(s.nextLookups()).toEqual([0]);
    s.lookupResult(0, ["p"]);
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: "p", duplicate: false }]);
    s.requestFailed(0, "p", "absent");
    expect(s.nextRequests()).toEqual([]);
    expect(s.nextLookups()).toEqual([0]); // re-lookup
    s.lookupResult(0, ["p"]); // same provider, already known absent
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: COLD_SOURCE_ID, duplicate: false }]);
    s.requestFailed(0, COLD_SOURCE_ID, "absent");
    expect(s.nextRequests()).toEqual([]);
    expect(s.failedPieces()).toEqual([0]);
    // "absent" is no misbehaviour.
    expect(s.penalisedSources()).toEqual([]);
  });

  it("goes straight to the cold store when no provider exists, and fails without one", () => {
    const withCold = new ChunkScheduler(1, { hasCold: true });
    withCold.nextLookups();
    withCold.lookupResult(0, []);
    expect(withCold.nextRequests()).toEqual([{ piece: 0, sourceId: COLD_SOURCE_ID, duplicate: false }]);
    const without = new ChunkScheduler(1);
    without.nextLookups();
    without.lookupResult(0, []);
    expect(without.nextRequests()).toEqual([]);
    expect(without.failedPieces()).toEqual([0]);
  });

  it("retries a piece on the same source after an error when nothing else is left (up to maxAttemptsPerSource)", () => {
    const s = ready(1, () => ["only"], { maxAttemptsPerSource: 2, maxLookupsPerPiece: 1 });
    expect(s.nextRequests()[0].sourceId).toBe("only");
    s.requestFailed(0, "only", "error");
    expect(s.nextRequests()[0].sourceId).toBe("only");
    s.requestFailed(0, "only", "error");
    expect(s.nextRequests()).toEqual([]);
    expect(s.failedPieces()).toEqual([0]);
  });

  it("endgame: duplicates the last pieces to a second source; the first answer wins and the loser is cancelled", () => {
    const s = ready(2, () => ["slow", "fast"], { windowChunks: 4, perSourceInFlight: 4 });
    const first = s.nextRequests();
    // Two pieces start, then endgame immediately duplicates each to the other source.
    expect(first.filter((a) => !a.duplicate)).toHaveLength(2);
    const dups = first.filter((a) => a.duplicate);
    expect(dups).toHaveLength(2);
    for (const d of dups) expect(d.sourceId).not.toBe(first.find((a) => a.piece === d.piece && !a.duplicate)!.sourceId);
    const winner = first.find((a) => a.piece === 0 && a.sourceId === "fast")!;
    const { accepted, cancel } = s.requestSucceeded(winner.piece, winner.sourceId, 10);
    expect(accepted).toBe(true);
    expect(cancel).toEqual(["slow"]);
    s.requestFailed(0, "slow", "cancelled");
    s.consumed(0);
    expect(s.sourceStats().find((x) => x.id === "slow")).toMatchObject({ cancelled: 1, failures: 0, score: 1 });
    // A late second answer is not accepted twice.
    const other = first.filter((a) => a.piece === 1);
    expect(s.requestSucceeded(1, other[0].sourceId, 10).accepted).toBe(true);
    expect(s.requestSucceeded(1, other[1].sourceId, 10).accepted).toBe(false);
    s.consumed(1);
    expect(s.isFinished()).toBe(true);
  });

  it("endgame: runs at most endgameExtraRequests duplicates at once, and starts the next when one ends", () => {
    const s = ready(6, () => ["a", "b"], { windowChunks: 8, perSourceInFlight: 8, endgameExtraRequests: 2 });
    const first = s.nextRequests();
    expect(first.filter((a) => !a.duplicate)).toHaveLength(6);
    // The window has room for all six, but a duplicate takes downlink from the pieces still missing: two at a time.
    const dups = first.filter((a) => a.duplicate);
    expect(dups.map((a) => a.piece)).toEqual([0, 1]);
    expect(s.nextRequests()).toEqual([]);
    // Piece 0's duplicate wins; its original is cancelled: one duplicate left, so the next piece gets one.
    const original = first.find((a) => a.piece === 0 && !a.duplicate)!;
    const { cancel } = s.requestSucceeded(0, dups[0].sourceId, 10);
    expect(cancel).toEqual([original.sourceId]);
    s.requestFailed(0, original.sourceId, "cancelled");
    s.consumed(0);
    const next = s.nextRequests();
    expect(next.map((a) => [a.piece, a.duplicate])).toEqual([[2, true]]);
  });

  it("does not duplicate before the endgame", () => {
    const s = ready(50, () => ["a", "b"], { windowChunks: 4, perSourceInFlight: 4, lookaheadPieces: 8 });
    expect(s.nextRequests().some((a) => a.duplicate)).toBe(false);
  });

  it("ordered mode: the head piece may always start and is duplicated when it blocks a full window", () => {
    const s = ready(6, () => ["a", "b"], { windowChunks: 2, perSourceInFlight: 4, ordered: true, endgameExtraRequests: 1 });
    const first = s.nextRequests();
    expect(first.filter((a) => !a.duplicate).map((a) => a.piece)).toEqual([0, 1]);
    // Piece 1 arrives first and waits in the reorder buffer; piece 0 is the head and blocks.
    const one = first.find((a) => a.piece === 1 && !a.duplicate)!;
    expect(s.requestSucceeded(1, one.sourceId, 1).accepted).toBe(true);
    const next = s.nextRequests();
    expect(next.every((a) => a.piece === 0 && a.duplicate)).toBe(true);
    expect(next.length + first.filter((a) => a.piece === 0 && a.duplicate).length).toBe(1);
    // The head failing outright is retried even though the window is full.
    const zero = [...first, ...next].filter((a) => a.piece === 0);
    for (const a of zero) s.requestFailed(0, a.sourceId, "error");
    const retry = s.nextRequests();
    expect(retry.some((a) => a.piece === 0 && !a.duplicate)).toBe(true);
  });

  it("markDone skips resumed pieces", () => {
    const s = new ChunkScheduler(3);
    s.markDone(0);
    s.markDone(2);
    expect(s.nextLookups()).toEqual([1]);
    s.addSource("a", "peer");
    s.lookupResult(1, ["a"]);
    const [a] = s.nextRequests();
    succeed(s, a);
    expect(s.isFinished()).toBe(true);
  });

  it("rejects nonsense options", () => {
    expect(() => new ChunkScheduler(1, { windowChunks: 0 })).toThrow(RangeError);
    expect(() => new ChunkScheduler(-1)).toThrow(RangeError);
  });
});

describe("ChunkScheduler in a swarm", () => {
  it("breaks rarest-first ties in a seeded random order: two downloaders start on different pieces", () => {
    const first = (seed: number) =>
      ready(64, () => ["origin"], { windowChunks: 4, perSourceInFlight: 4, endgame: false, tieBreakSeed: seed })
        .nextRequests()
        .map((a) => a.piece);
    const a = first(1);
    const b = first(2);
    expect(a).toHaveLength(4);
    expect(first(1)).toEqual(a); // deterministic for a seed
    expect(a).not.toEqual([0, 1, 2, 3]);
    expect(a.filter((piece) => b.includes(piece)).length).toBeLessThan(4);
  });

  it("defers a piece another downloader is fetching from its only holder, and starts it once that downloader holds it", () => {
    const s = ready(3, () => ["origin"], { windowChunks: 8, perSourceInFlight: 8, endgame: false });
    s.addSource("peer-b", "peer");
    s.setRemoteInFlight("peer-b", [0]);
    expect(
      s
        .nextRequests()
        .map((a) => a.piece)
        .sort(),
    ).toEqual([1, 2]);
    expect(s.hasDeferred()).toBe(true);
    expect(s.nextRequests()).toEqual([]);
    // peer-b received it: now two holders; the busy origin has more load, so peer-b is asked.
    s.setRemoteInFlight("peer-b", []);
    s.addCandidate(0, "peer-b");
    expect(s.hasDeferred()).toBe(false);
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: "peer-b", duplicate: false }]);
  });

  it("a member that said 'not here' for a piece it relayed is asked again once its view lists the piece; one that sent wrong bytes never is", () => {
    const s = ready(1, () => ["origin"], { windowChunks: 4, perSourceInFlight: 4, endgame: false });
    for (const id of ["relay", "liar"]) {
      s.addSource(id, "peer");
      s.setLeecher(id, true);
      s.addCandidate(0, id);
    }
    const first = s.nextRequests();
    expect(first).toHaveLength(1);
    const firstSource = first[0].sourceId;
    expect(["relay", "liar"]).toContain(firstSource);
    // Whichever was asked first: "relay" lost its copy mid-arrival (404), "liar" sent wrong bytes.
    s.requestFailed(0, firstSource, firstSource === "relay" ? "absent" : "corrupt");
    const second = s.nextRequests();
    expect(second.map((a) => a.sourceId)).toEqual([firstSource === "relay" ? "liar" : "relay"]);
    s.requestFailed(0, second[0].sourceId, second[0].sourceId === "relay" ? "absent" : "corrupt");
    // Views list the piece again for both: only the one that said "not here" is asked (leechers first, so not the origin).
    s.addCandidate(0, "relay");
    s.addCandidate(0, "liar");
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: "relay", duplicate: false }]);
  });

  it("asks a leecher for a piece it holds, waiting for its slots rather than asking the publisher again", () => {
    const s = ready(3, () => ["origin"], { windowChunks: 8, perSourceInFlight: 1, endgame: false });
    s.addSource("peer-b", "peer");
    s.setLeecher("peer-b", true);
    for (const piece of [0, 1]) s.addCandidate(piece, "peer-b");
    // Piece 2 is the origin's alone; 0 and 1 go to peer-b one at a time (its one slot), never to the origin.
    const first = s.nextRequests();
    expect(first.map((a) => `${a.piece}@${a.sourceId}`).sort()).toEqual(["0@peer-b", "2@origin"]);
    succeed(
      s,
      first.find((a) => a.sourceId === "origin")!,
    );
    expect(s.nextRequests()).toEqual([]);
    succeed(
      s,
      first.find((a) => a.sourceId === "peer-b")!,
    );
    expect(s.nextRequests()).toEqual([{ piece: 1, sourceId: "peer-b", duplicate: false }]);
  });

  it("endgame duplicates go to leechers only while there are any; to the seed once they have finished", () => {
    // The origin holds both pieces and has a free slot throughout; peer-b (a leecher) holds piece 0.
    const s = ready(2, () => ["origin"], { windowChunks: 8, perSourceInFlight: 2 });
    s.addSource("peer-b", "peer");
    s.setLeecher("peer-b", true);
    s.addCandidate(0, "peer-b");
    expect(
      s
        .nextRequests()
        .map((a) => `${a.piece}@${a.sourceId}${a.duplicate ? "+" : ""}`)
        .sort(),
    ).toEqual(["0@peer-b", "1@origin"]);
    // Endgame now (nothing left to start), but the only other holder of piece 0 is a seed: no duplicate.
    expect(s.nextRequests()).toEqual([]);
    // peer-b finishes its own download (a seed now): the origin may take the duplicate.
    s.setLeecher("peer-b", false);
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: "origin", duplicate: true }]);
  });

  it("uses any holder once the other downloader has finished (a seed like the publisher)", () => {
    const s = ready(2, () => ["origin"], { windowChunks: 8, perSourceInFlight: 1, endgame: false });
    s.addSource("peer-b", "peer");
    s.setLeecher("peer-b", true);
    for (const piece of [0, 1]) s.addCandidate(piece, "peer-b");
    expect(s.nextRequests()).toHaveLength(1);
    s.setLeecher("peer-b", false);
    expect(s.nextRequests()).toEqual([{ piece: 1, sourceId: "origin", duplicate: false }]);
  });

  it("a seed's referral to the swarm makes the piece wait (no re-lookup, no cold, no failure, no attempt used) until the swarm has it or the referral ends", () => {
    const s = ready(2, () => ["origin"], { windowChunks: 8, perSourceInFlight: 4, endgame: false, hasCold: true, maxAttemptsPerSource: 1 });
    s.addSource("peer-b", "peer");
    s.setLeecher("peer-b", true);
    expect(s.asksSeedInSwarm("origin")).toBe(true);
    expect(s.asksSeedInSwarm("peer-b")).toBe(false);
    const first = s.nextRequests();
    expect(first.map((a) => `${a.piece}@${a.sourceId}`).sort()).toEqual(["0@origin", "1@origin"]);
    s.requestFailed(0, "origin", "deferred");
    expectOnlyWaiting(s);
    expect(s.sourceStats().find((x) => x.id === "origin")).toMatchObject({ deferred: 1, failures: 0, score: 1 });
    // The member it went to shows it: asked there.
    s.addCandidate(0, "peer-b");
    const fromSwarm = s.nextRequests();
    expect(fromSwarm).toEqual([{ piece: 0, sourceId: "peer-b", duplicate: false }]);
    succeed(s, fromSwarm[0]);
    s.deferralEnded(0, "origin"); // its timer, later: harmless for a piece already done
    // Piece 1: referred too, and nobody shows it; when the referral ends the origin is asked again, although
    // maxAttemptsPerSource is 1 (a referral is no attempt).
    s.requestFailed(1, "origin", "deferred");
    expect(s.nextRequests()).toEqual([]);
    s.deferralEnded(1, "origin");
    expect(s.hasDeferred()).toBe(false);
    expect(s.nextRequests()).toEqual([{ piece: 1, sourceId: "origin", duplicate: false }]);
    // With no leecher left, nothing is a seed in a swarm any more.
    s.setLeecher("peer-b", false);
    expect(s.asksSeedInSwarm("origin")).toBe(false);
  });

  it("a busy source takes no request for any piece until it is resumed; the pause uses no attempt", () => {
    const s = ready(3, (piece) => (piece === 2 ? ["seed", "other"] : ["seed"]), { windowChunks: 8, perSourceInFlight: 1, endgame: false, maxAttemptsPerSource: 1 });
    // Rarest first: pieces 0 and 1 (the seed alone) before 2; the seed's one slot takes 0, "other" takes 2.
    expect(s.nextRequests().map((a) => `${a.piece}@${a.sourceId}`)).toEqual(["0@seed", "2@other"]);
    s.requestFailed(0, "seed", "busy");
    // Nothing goes to the seed while it is paused, for piece 0 or 1; nothing fails or is looked up again.
    expectOnlyWaiting(s);
    expect(s.sourceStats().find((x) => x.id === "seed")).toMatchObject({ busy: 1, failures: 0, score: 1 });
    s.sourceResumed("seed");
    expect(s.hasDeferred()).toBe(false);
    // Asked again for piece 0 (maxAttemptsPerSource is 1: the busy answer was no attempt).
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: "seed", duplicate: false }]);
  });

  it("stops deferring when the other downloader is forgotten", () => {
    const s = ready(1, () => ["origin"], { endgame: false });
    s.addSource("peer-b", "peer");
    s.setRemoteInFlight("peer-b", [0]);
    expect(s.nextRequests()).toEqual([]);
    s.setRemoteInFlight("peer-b", []);
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: "origin", duplicate: false }]);
  });

  it("fetches pieces held only by the origin before pieces other downloaders also hold", () => {
    const s = ready(4, () => ["origin"], { windowChunks: 1, perSourceInFlight: 4, endgame: false });
    s.addSource("peer-b", "peer");
    for (const piece of [0, 1, 3]) s.addCandidate(piece, "peer-b");
    expect(s.nextRequests()).toEqual([{ piece: 2, sourceId: "origin", duplicate: false }]);
  });

  it("makes a piece not looked up yet ready from a swarm view alone, and keeps swarm candidates across a lookup", () => {
    const s = new ChunkScheduler(2, { lookaheadPieces: 1, lookupConcurrency: 1, endgame: false });
    s.addSource("origin", "peer");
    s.addSource("peer-b", "peer");
    expect(s.nextLookups()).toEqual([0]);
    s.addCandidate(0, "peer-b"); // arrives while the lookup is in flight
    s.addCandidate(1, "peer-b"); // never looked up
    s.lookupResult(0, ["origin"]);
    const started = s.nextRequests();
    expect(started.map((a) => a.piece).sort()).toEqual([0, 1]);
    expect(started.find((a) => a.piece === 1)!.sourceId).toBe("peer-b");
    // Both sources for piece 0: a failure at one leaves the other.
    const zero = started.find((a) => a.piece === 0)!;
    s.requestFailed(0, zero.sourceId, "absent");
    expect(s.nextRequests()).toEqual([{ piece: 0, sourceId: zero.sourceId === "origin" ? "peer-b" : "origin", duplicate: false }]);
  });

  it("ignores views naming pieces out of range, and candidates for pieces already done", () => {
    const s = ready(2, () => ["origin"], { endgame: false });
    s.addSource("peer-b", "peer");
    s.setRemoteInFlight("peer-b", [-1, 2, 1.5]);
    expect(s.hasDeferred()).toBe(false);
    const all = s.nextRequests();
    all.forEach((a) => succeed(s, a));
    s.addCandidate(0, "peer-b");
    expect(s.isFinished()).toBe(true);
    expect(s.nextRequests()).toEqual([]);
  });
});

/**
 * A download driven by a simulated clock: each source is a link of fixed
 * rate shared equally by the requests in flight on it (processor sharing,
 * as TCP flows through one bottleneck roughly are). Returns which source
 * served each piece and when the last piece arrived.
 */
function simulate(pieces: number, pieceBytes: number, initialRates: Record<string, number>, options: SchedulerOptions = {}, ratesAt: (nowMs: number) => Record<string, number> = () => initialRates) {
  const ids = Object.keys(initialRates);
  const deliveries: { atMs: number; id: string }[] = [];
  const s = ready(pieces, () => ids, { windowChunks: 16, perSourceInFlight: 4, ...options });
  const flows = new Map<string, { piece: number; sourceId: string; remaining: number; startMs: number }[]>(ids.map((id) => [id, []]));
  const servedBy = new Map<string, number>(ids.map((id) => [id, 0]));
  let nowMs = 0;
  for (let guard = 0; !s.isFinished(); guard++) {
    if (guard > 100_000) throw new Error("simulation did not finish");
    const ratesBytesPerSecond = ratesAt(nowMs);
    for (const a of s.nextRequests()) flows.get(a.sourceId)!.push({ piece: a.piece, sourceId: a.sourceId, remaining: pieceBytes, startMs: nowMs });
    // The next flow to finish, given each source's rate split among its flows.
    let nextMs = Infinity;
    for (const [id, fs] of flows) for (const f of fs) nextMs = Math.min(nextMs, nowMs + (f.remaining / (ratesBytesPerSecond[id] / fs.length)) * 1000);
    const dt = (nextMs - nowMs) / 1000;
    nowMs = nextMs;
    for (const [id, fs] of flows) {
      for (const f of fs) f.remaining -= (ratesBytesPerSecond[id] / fs.length) * dt;
      const done = fs.filter((f) => f.remaining <= 1e-6);
      flows.set(
        id,
        fs.filter((f) => f.remaining > 1e-6),
      );
      for (const f of done) {
        const { accepted, cancel } = s.requestSucceeded(f.piece, f.sourceId, pieceBytes, { atMs: nowMs, elapsedMs: nowMs - f.startMs, firstByteMs: 1 });
        for (const loser of cancel) {
          flows.set(
            loser,
            flows.get(loser)!.filter((g) => g.piece !== f.piece),
          );
          s.requestFailed(f.piece, loser, "cancelled");
        }
        if (accepted) {
          servedBy.set(id, servedBy.get(id)! + 1);
          deliveries.push({ atMs: nowMs, id });
          s.consumed(f.piece);
        }
      }
    }
  }
  const total = Object.values(initialRates).reduce((a, b) => a + b, 0);
  /** Pieces each source delivered from `fromMs` on. */
  const servedSince = (fromMs: number) => {
    const out = new Map<string, number>(ids.map((id) => [id, 0]));
    for (const { atMs, id } of deliveries) if (atMs >= fromMs) out.set(id, out.get(id)! + 1);
    return out;
  };
  return { servedBy, servedSince, seconds: nowMs / 1000, idealSeconds: (pieces * pieceBytes) / total };
}

describe("ChunkScheduler with measured sources", () => {
  it("a slow source serves proportionally fewer pieces, and the download ends near the ideal time (file / sum of rates)", () => {
    const MiB = 1 << 20;
    const rates = { fast: 8 * MiB, medium: 4 * MiB, slow: 1 * MiB };
    const { servedBy, seconds, idealSeconds } = simulate(200, MiB, rates);
    const share = (id: keyof typeof rates) => servedBy.get(id)! / 200;
    console.log(
      `[scheduler sim] shares fast ${share("fast").toFixed(3)} medium ${share("medium").toFixed(3)} slow ${share("slow").toFixed(3)}; ${seconds.toFixed(2)} s vs ideal ${idealSeconds.toFixed(2)} s`,
    );
    // Rate shares are 8/13, 4/13, 1/13.
    expect(share("fast")).toBeCloseTo(8 / 13, 1);
    expect(share("medium")).toBeCloseTo(4 / 13, 1);
    expect(share("slow")).toBeLessThan(2 / 13);
    expect(seconds / idealSeconds).toBeLessThan(1.1);
  });

  it("matches a batch of startable pieces to request slots by delivery time: a 10× faster source gets most of them", () => {
    const MiB = 1 << 20;
    const s = ready(12, () => ["fast", "slow"], { windowChunks: 2, perSourceInFlight: 4, endgame: false });
    // One measured piece from each (window 2: one each, untried first).
    const first = s.nextRequests();
    expect(first.map((a) => a.sourceId).sort()).toEqual(["fast", "slow"]);
    for (const a of first) {
      s.requestSucceeded(a.piece, a.sourceId, MiB, { atMs: 1000, elapsedMs: a.sourceId === "fast" ? 100 : 1000 });
      s.consumed(a.piece);
    }
    // Two units free again: a batch of two pieces, matched together. Both go to the fast source: its second slot
    // (0.2 s) still beats the slow one's first (1 s).
    const batch = s.nextRequests();
    expect(batch.map((a) => a.sourceId)).toEqual(["fast", "fast"]);
  });

  it("moves load away from a source that slows down mid-download", () => {
    const MiB = 1 << 20;
    // Two equal sources for 10 s; then b drops to a tenth of its rate.
    const before = { a: 8 * MiB, b: 8 * MiB };
    const after = { a: 8 * MiB, b: 0.8 * MiB };
    const { servedSince, servedBy } = simulate(400, MiB, before, {}, (nowMs) => (nowMs < 10_000 ? before : after));
    const late = servedSince(15_000); // after a few half-lives of the estimates' memory
    console.log(
      `[scheduler sim] before: a ${servedBy.get("a")! - servedSince(10_000).get("a")!} b ${servedBy.get("b")! - servedSince(10_000).get("b")!}; from 15 s: a ${late.get("a")} b ${late.get("b")}`,
    );
    expect(late.get("a")!).toBeGreaterThan(5 * late.get("b")!);
    expect(servedBy.get("b")! - servedSince(10_000).get("b")!).toBeGreaterThan(50); // b did its share while it was fast
  });
});
