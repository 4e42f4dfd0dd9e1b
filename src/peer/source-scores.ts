/**
 * How much one download trusts each source, and how busy each one is — the
 * bookkeeping behind chunk-scheduler.ts's source choice, as plain code.
 *
 * - A score in (0, 1], starting at 1: success moves it a tenth of the way
 *   back to 1; an error (or timeout) halves it; a corrupt answer (bytes that
 *   do not hash to the CID) divides it by ten. The scheduler ranks sources
 *   by `score / (1 + inFlight)`, so a penalised or busy source is asked less.
 * - Bans: `banAfterCorruptions` corrupt answers, or
 *   `banAfterConsecutiveFailures` errors in a row, and the source is not
 *   asked again in this download (BitTorrent clients do the same with peers
 *   that fail hash checks: "snubbing" and banning).
 * - "absent" (the source does not hold the chunk) and "cancelled" (we
 *   aborted the request, e.g. the endgame loser) are no misbehaviour and
 *   cost nothing.
 * - An in-flight cap per source (`perSourceInFlight`; the cold store has its
 *   own, `coldInFlight`).
 * Scores live for one download only; nothing here persists.
 */

export type SourceKind = "peer" | "r2" | "local";
export type FailureReason = "error" | "corrupt" | "absent" | "cancelled";

export interface SourceStats {
  id: string;
  kind: SourceKind;
  inFlight: number;
  chunks: number;
  bytes: number;
  failures: number;
  corruptions: number;
  cancelled: number;
  score: number;
  banned: boolean;
}

export interface SourceScoreOptions {
  perSourceInFlight: number;
  coldInFlight: number;
  banAfterCorruptions: number;
  banAfterConsecutiveFailures: number;
}

interface Source extends SourceStats {
  limit: number;
  consecutiveFailures: number;
}

const SUCCESS_RECOVERY = 0.1;
const ERROR_FACTOR = 0.5;
const CORRUPT_FACTOR = 0.1;

export class SourceScores {
  private readonly sources = new Map<string, Source>();

  constructor(private readonly options: SourceScoreOptions) {}

  /** Registers a source (idempotent). */
  add(id: string, kind: SourceKind): void {
    if (this.sources.has(id)) return;
    const limit = kind === "r2" ? this.options.coldInFlight : this.options.perSourceInFlight;
    this.sources.set(id, { id, kind, limit, inFlight: 0, chunks: 0, bytes: 0, failures: 0, corruptions: 0, cancelled: 0, score: 1, banned: false, consecutiveFailures: 0 });
  }

  has(id: string): boolean {
    return this.sources.has(id);
  }

  isBanned(id: string): boolean {
    return this.get(id).banned;
  }

  hasFreeSlot(id: string): boolean {
    const s = this.get(id);
    return s.inFlight < s.limit;
  }

  /** Higher is better: trust over load. */
  rank(id: string): number {
    const s = this.get(id);
    return s.score / (1 + s.inFlight);
  }

  started(id: string): void {
    this.get(id).inFlight++;
  }

  /** A request ended; records its outcome. */
  ended(id: string, outcome: { ok: true; sizeBytes: number } | { ok: false; reason: FailureReason }): void {
    const s = this.get(id);
    if (s.inFlight <= 0) throw new Error(`SourceScores: no request in flight to ${id}`);
    s.inFlight--;
    if (outcome.ok) {
      s.chunks++;
      s.bytes += outcome.sizeBytes;
      s.consecutiveFailures = 0;
      s.score += (1 - s.score) * SUCCESS_RECOVERY;
      return;
    }
    switch (outcome.reason) {
      case "cancelled":
        s.cancelled++;
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
    return [...this.sources.values()].map(({ limit: _limit, consecutiveFailures: _streak, ...stats }) => ({ ...stats }));
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
