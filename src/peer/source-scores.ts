/**
 * How much one download trusts each source, and how busy each one is — the
 * bookkeeping behind chunk-scheduler.ts's source choice, as plain code.
 *
 * - A score in (0, 1], starting at 1: success moves it a tenth of the way
 *   back to 1; an error (or timeout) halves it; a corrupt answer (bytes that
 *   do not hash to the CID) divides it by ten. The scheduler divides a
 *   source's expected delivery time by it, so a penalised source is asked less.
 * - Bans: `banAfterCorruptions` corrupt answers, or
 *   `banAfterConsecutiveFailures` errors in a row, and the source is not
 *   asked again in this download (BitTorrent clients do the same with peers
 *   that fail hash checks: "snubbing" and banning).
 * - "absent" (the source does not hold the chunk), "cancelled" (we
 *   aborted the request, e.g. the endgame loser), "deferred" (a seed sent
 *   us to the swarm for that piece, super-seed.ts) and "busy" (its send
 *   queue is full: ask later) are no misbehaviour and cost nothing. A busy
 *   source takes no request until `resume` (the fetcher's timer).
 * - An in-flight cap per source (`perSourceInFlight`; the cold store has its
 *   own, `coldInFlight`).
 * - Measurements (for the scheduler's auction, issue 5): per source, its
 *   delivery rate to this downloader and its round-trip time (time to the
 *   first byte of an answer), both moving averages that forget: a sample's
 *   weight against the old estimate grows with the time since the last one
 *   (half-life `memoryMs`), so a source that slowed down or sped up is seen
 *   as it is now within seconds, not after a fixed number of samples. The
 *   rate of one request is corrected for the requests it shared the source
 *   with (k in flight at the source each get about 1/k of its bandwidth),
 *   and a failure rate (errors per request, same forgetting) completes the
 *   picture. `expectedSeconds` turns them into the time a new request
 *   would take, the cost the auction minimises.
 * Scores live for one download only; nothing here persists.
 */

export type SourceKind = "peer" | "r2" | "local";
export type FailureReason = "error" | "corrupt" | "absent" | "cancelled" | "deferred" | "busy";

export interface SourceStats {
  id: string;
  kind: SourceKind;
  inFlight: number;
  chunks: number;
  bytes: number;
  failures: number;
  corruptions: number;
  cancelled: number;
  /** Requests this seed referred to the swarm (super-seed.ts). */
  deferred: number;
  /** Requests it answered "busy, ask later" (transfer-server.ts). */
  busy: number;
  score: number;
  banned: boolean;
  /** Moving-average delivery rate to this downloader, bytes/s; null until a request succeeded. */
  rateBytesPerSecond: number | null;
  /** Moving-average time to first byte, ms; null until measured. */
  rttMs: number | null;
  /** Moving-average share of requests that failed (errors and corrupt answers). */
  failureRate: number;
}

/** How a successful request went, for the source's moving averages (all optional: the local store has no network). */
export interface RequestTiming {
  /** When it ended (ms, any monotonic clock shared by all calls). */
  atMs: number;
  /** From start to the last byte. */
  elapsedMs: number;
  /** From start to the first byte of the answer. */
  firstByteMs?: number;
}

export interface SourceScoreOptions {
  perSourceInFlight: number;
  coldInFlight: number;
  banAfterCorruptions: number;
  banAfterConsecutiveFailures: number;
  /** Half-life of the moving averages' memory. Default 5,000 ms. */
  memoryMs?: number;
}

interface Source extends SourceStats {
  limit: number;
  /** "Busy" answers not yet followed by `resume`: no request while any is open. */
  pauses: number;
  consecutiveFailures: number;
  /** When the rate and RTT averages last took a sample. */
  sampledAtMs: number | null;
  /** Successes and failures, each weighing less as it ages (same half-life); failureRate derives from them. */
  recentOk: number;
  recentFailed: number;
  countedAtMs: number | null;
}

const SUCCESS_RECOVERY = 0.1;
const ERROR_FACTOR = 0.5;
const CORRUPT_FACTOR = 0.1;
/** The smallest weight a new sample gets (samples arriving back to back), so that one outlier moves an estimate only a little. */
const MIN_SAMPLE_WEIGHT = 0.2;

export class SourceScores {
  private readonly sources = new Map<string, Source>();

  constructor(private readonly options: SourceScoreOptions) {}

  /** Registers a source (idempotent). */
  add(id: string, kind: SourceKind): void {
    if (this.sources.has(id)) return;
    const limit = kind === "r2" ? this.options.coldInFlight : this.options.perSourceInFlight;
    this.sources.set(id, {
      id,
      kind,
      limit,
      pauses: 0,
      inFlight: 0,
      chunks: 0,
      bytes: 0,
      failures: 0,
      corruptions: 0,
      cancelled: 0,
      deferred: 0,
      busy: 0,
      score: 1,
      banned: false,
      consecutiveFailures: 0,
      rateBytesPerSecond: null,
      rttMs: null,
      failureRate: 0,
      sampledAtMs: null,
      recentOk: 0,
      recentFailed: 0,
      countedAtMs: null,
    });
  }

  has(id: string): boolean {
    return this.sources.has(id);
  }

  isBanned(id: string): boolean {
    return this.get(id).banned;
  }

  hasFreeSlot(id: string): boolean {
    const s = this.get(id);
    return s.pauses === 0 && s.inFlight < s.limit;
  }

  /** Requests this source may still take now, and how many it has in flight. */
  slots(id: string): { free: number; inFlight: number } {
    const s = this.get(id);
    return { free: s.pauses > 0 ? 0 : Math.max(0, s.limit - s.inFlight), inFlight: s.inFlight };
  }

  /** The pause of one "busy" answer is over. */
  resume(id: string): void {
    const s = this.get(id);
    if (s.pauses > 0) s.pauses--;
  }

  /** Trust in (0, 1]: lowered by errors and corrupt answers, recovering with successes. */
  score(id: string): number {
    return this.get(id).score;
  }

  started(id: string): void {
    this.get(id).inFlight++;
  }

  /**
   * Seconds a new request of `sizeBytes` to this source would take now:
   * its round trip plus its share of the source's rate behind the requests
   * already in flight there, stretched by the failure rate (a failed
   * request costs its time and a retry). A source not measured yet is
   * assumed as fast as `fallbackRate` (the downloader's mean), so that it
   * gets tried.
   */
  expectedSeconds(id: string, sizeBytes: number, fallbackRate: number, queuedAhead = this.get(id).inFlight): number {
    const s = this.get(id);
    const rate = s.rateBytesPerSecond ?? fallbackRate;
    const rtt = (s.rttMs ?? 0) / 1000;
    return (rtt + ((queuedAhead + 1) * sizeBytes) / rate) / Math.max(0.05, 1 - s.failureRate);
  }

  /** The mean measured rate over the sources that have one (bytes/s), or null. */
  meanRate(): number | null {
    let sum = 0;
    let n = 0;
    for (const s of this.sources.values()) {
      if (s.rateBytesPerSecond === null || s.banned) continue;
      sum += s.rateBytesPerSecond;
      n++;
    }
    return n > 0 ? sum / n : null;
  }

  /** A request ended; records its outcome (and, for a success with `timing`, updates the moving averages). */
  ended(id: string, outcome: { ok: true; sizeBytes: number; timing?: RequestTiming } | { ok: false; reason: FailureReason; atMs?: number }): void {
    const s = this.get(id);
    if (s.inFlight <= 0) throw new Error(`SourceScores: no request in flight to ${id}`);
    // Requests that shared the source with this one, this one included.
    const sharing = s.inFlight;
    s.inFlight--;
    if (outcome.ok) {
      s.chunks++;
      s.bytes += outcome.sizeBytes;
      s.consecutiveFailures = 0;
      s.score += (1 - s.score) * SUCCESS_RECOVERY;
      const t = outcome.timing;
      if (t && t.elapsedMs > 0) {
        const w = this.sampleWeight(s, t.atMs);
        const rate = (outcome.sizeBytes * sharing) / (t.elapsedMs / 1000);
        s.rateBytesPerSecond = s.rateBytesPerSecond === null ? rate : s.rateBytesPerSecond + w * (rate - s.rateBytesPerSecond);
        if (t.firstByteMs !== undefined) s.rttMs = s.rttMs === null ? t.firstByteMs : s.rttMs + w * (t.firstByteMs - s.rttMs);
        s.sampledAtMs = t.atMs;
        this.count(s, t.atMs, true);
      }
      return;
    }
    if ((outcome.reason === "error" || outcome.reason === "corrupt") && outcome.atMs !== undefined) this.count(s, outcome.atMs, false);
    switch (outcome.reason) {
      case "cancelled":
        s.cancelled++;
        return;
      case "deferred":
        s.deferred++;
        return;
      case "busy":
        s.busy++;
        s.pauses++;
        return;
      case "absent":
        return;
      case "corrupt":
        s.corruptions++;
        s.score *= CORRUPT_FACTOR;
        if (s.corruptions >= this.options.banAfterCorruptions) s.banned = true;
        return;
      case "error":
        s.failures++;
        s.consecutiveFailures++;
        s.score *= ERROR_FACTOR;
        if (s.consecutiveFailures >= this.options.banAfterConsecutiveFailures) s.banned = true;
        return;
    }
  }

  stats(): SourceStats[] {
    return [...this.sources.values()].map(
      ({ limit: _limit, pauses: _pauses, consecutiveFailures: _streak, sampledAtMs: _at, recentOk: _ok, recentFailed: _failed, countedAtMs: _counted, ...stats }) => ({ ...stats }),
    );
  }

  /** Ages the recent counts to `atMs`, adds one outcome, and derives the failure rate (one success assumed a priori, so a first error is not a 100 % rate). */
  private count(s: Source, atMs: number, ok: boolean): void {
    if (s.countedAtMs !== null) {
      const keep = 2 ** (-Math.max(0, atMs - s.countedAtMs) / (this.options.memoryMs ?? 5000));
      s.recentOk *= keep;
      s.recentFailed *= keep;
    }
    s.countedAtMs = atMs;
    if (ok) s.recentOk++;
    else s.recentFailed++;
    s.failureRate = s.recentFailed / (s.recentOk + s.recentFailed + 1);
  }

  /** Weight of a sample taken at `atMs` against the estimate so far: 1 − 2^(−Δt / half-life), at least MIN_SAMPLE_WEIGHT. */
  private sampleWeight(s: Source, atMs: number): number {
    if (s.sampledAtMs === null) return 1;
    const dt = Math.max(0, atMs - s.sampledAtMs);
    return Math.max(MIN_SAMPLE_WEIGHT, 1 - 2 ** (-dt / (this.options.memoryMs ?? 5000)));
  }

  /** Sources penalised at least once (an error or a corrupt answer). */
  penalised(): string[] {
    return [...this.sources.values()].filter((s) => s.failures > 0 || s.corruptions > 0).map((s) => s.id);
  }

  private get(id: string): Source {
    const s = this.sources.get(id);
    if (!s) throw new Error(`SourceScores: unknown source ${id}`);
    return s;
  }
}
