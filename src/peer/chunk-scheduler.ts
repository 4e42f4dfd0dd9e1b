/**
 * Which chunk to fetch next, from which source — the download scheduler's
 * decisions as plain code, with no I/O, clock or randomness, so that every
 * rule below is unit-tested directly and the fetch loop (chunk-fetcher.ts)
 * only carries them out.
 *
 * The unit is a *piece*: one distinct chunk CID of a download (a file whose
 * chunks repeat, e.g. runs of zeros, fetches each distinct chunk once).
 * Pieces are numbered in the order they first occur in the file.
 *
 * Rules, and where they come from:
 * - **Window.** A piece holds one memory unit per request in flight and one
 *   while its bytes wait to be consumed (written, or emitted in order). New
 *   pieces start only while fewer than `windowChunks` units are held, so
 *   memory is bounded by window × largest chunk whatever the file size. In
 *   ordered (streaming) mode the head piece — the lowest one not consumed —
 *   may always start, so a full reorder buffer can never deadlock.
 * - **Piece order.** Ordered mode fetches lowest index first (the player
 *   needs the next bytes). Otherwise *rarest first* among the pieces whose
 *   providers are known (BitTorrent, Cohen 2003 §"Piece Selection"): the
 *   chunks held by fewest live peers are fetched first, so this downloader
 *   soonest becomes a provider of what the swarm lacks; ties by index.
 * - **Source choice.** Among a piece's providers, untried ones first, then
 *   the one that would deliver it soonest: its measured round trip plus its
 *   share of its measured rate behind the requests already in flight there,
 *   stretched by its failure rate, divided by its trust score
 *   (source-scores.ts; sources not measured yet count as average, so they
 *   get tried). A source that is slow — a thin uplink, or one every other
 *   downloader is also asking — thus gets fewer requests, in proportion to
 *   what it delivers, and re-measuring after every answer moves load as
 *   conditions change. Each source also has an in-flight cap
 *   (`perSourceInFlight`). Equal estimates are broken by a per-download
 *   random order (`tieBreakSeed`), not the directory's ranking, so that
 *   concurrent downloaders do not all start on the same source.
 * - **Penalties** (scores and bans: source-scores.ts). A source that sent
 *   corrupt bytes for a piece, or said it does not hold it, is never asked
 *   for that piece again; after an error it may be asked once more
 *   (`maxAttemptsPerSource`), after untried sources.
 * - **Fallbacks.** When every provider of a piece is exhausted, its
 *   providers are looked up again once (new providers appear as other
 *   downloaders finish), then the cold store (R2 through the edge) is tried;
 *   only when that fails too is the piece `failed`.
 * - **Swarm views** (swarm.ts). While several peers download the same file,
 *   each learns from the others which pieces they hold (`addCandidate`) and
 *   which they are fetching right now (`setRemoteInFlight`). A piece whose
 *   only holder is one source (typically the publisher, the swarm's
 *   bottleneck) and that another downloader is already fetching is
 *   *deferred*: it will have a second holder within one chunk time, and
 *   asking the single holder for it again would spend the scarce upload on
 *   a duplicate (BitTorrent's super-seeding, seen from the downloader side).
 *   A piece that another downloader still in progress holds (a
 *   *leecher*, in BitTorrent's words) is asked of leechers only, waiting
 *   for a free slot there if need be; seeds — the publisher, replicas,
 *   finished downloaders, every source without a view — then send only
 *   what no leecher can, so the publisher's uplink carries each piece
 *   about once. Endgame duplicates, too, go only to leechers while there are any.
 *   Requests to seeds while leechers exist say so (`asksSeedInSwarm`), and a
 *   seed that just sent the piece to another member refers this one to the
 *   swarm (super-seed.ts): the piece then *waits* — not asked of that seed,
 *   not looked up again, not failed — until `deferralEnded` (the seed's
 *   window is over) or another holder shows up.
 *   Ties in rarest first are broken by a per-download random order
 *   (`tieBreakSeed`), so concurrent downloaders start on different pieces.
 * - **Endgame** (BitTorrent "endgame mode"): once every unfinished piece has
 *   a request in flight, idle slots are used to ask a second source for the
 *   pieces in flight (lowest first); the first valid answer wins and the
 *   loser is cancelled. In ordered mode the same happens to the head piece
 *   whenever it blocks a full window. At most `endgameExtraRequests`
 *   duplicates run at once, and they may use that many units beyond the
 *   window.
 */

import { auction, type AuctionBidder, type Benefit } from "../core/auction.js";
import { mulberry32 } from "../core/random.js";
import { SourceScores, type FailureReason, type RequestTiming, type SourceKind, type SourceStats } from "./source-scores.js";

export type { FailureReason, RequestTiming, SourceKind, SourceStats } from "./source-scores.js";

/** Estimates before anything was received: a 1 MiB piece, sources at 10 MB/s (only their ratios matter). */
const DEFAULT_PIECE_BYTES = 1 << 20;
const DEFAULT_RATE_BYTES_PER_SECOND = 10e6;

/** Id under which the cold store (R2) is registered when there is one. */
export const COLD_SOURCE_ID = "cold";

export interface SchedulerOptions {
  /** Memory units (requests in flight + pieces awaiting consumption). Default 16. */
  windowChunks?: number;
  /** Concurrent requests to one peer. Default 4. */
  perSourceInFlight?: number;
  /** Concurrent requests to the cold store. Default 4. */
  coldInFlight?: number;
  /** Streaming: lowest index first, head-of-line duplication. Default false (rarest first). */
  ordered?: boolean;
  /** Is a cold store available as the last resort? Default false. */
  hasCold?: boolean;
  /** Use endgame duplication. Default true. */
  endgame?: boolean;
  /** Concurrent requests for one piece during endgame. Default 2. */
  maxRequestsPerPiece?: number;
  /** Duplicates in flight at once, and units they may use beyond the window. Default 2. */
  endgameExtraRequests?: number;
  /** Pieces whose providers are known (or being looked up) but not started. Default = windowChunks. */
  lookaheadPieces?: number;
  /** Concurrent provider lookups. Default 8. */
  lookupConcurrency?: number;
  /** Provider lookups per piece (the first plus re-lookups after exhaustion). Default 2. */
  maxLookupsPerPiece?: number;
  /** Requests per (piece, source) after errors (corrupt answers are never retried). Default 2. */
  maxAttemptsPerSource?: number;
  /** Default 2. */
  banAfterCorruptions?: number;
  /** Default 4. */
  banAfterConsecutiveFailures?: number;
  /** Seed of the random order that breaks ties in rarest first; absent = lowest index first. */
  tieBreakSeed?: number;
}

export interface Assignment {
  piece: number;
  sourceId: string;
  /** A second request for a piece already in flight (endgame). */
  duplicate: boolean;
}

type PieceState = "new" | "looking-up" | "ready" | "received" | "done" | "failed";

interface Attempt {
  count: number;
  /** Never ask this source for this piece again (it sent wrong bytes, or does not have it). */
  final: boolean;
  /** Final because the source said it does not hold the piece: a later swarm view saying it does lifts that. */
  absent?: boolean;
  /** The source referred this piece to the swarm (super-seed.ts): not asked again until deferralEnded. */
  deferred?: boolean;
}

interface Piece {
  state: PieceState;
  /** Peer/local source ids from the latest lookup, best first. */
  candidates: string[];
  lookups: number;
  attempts: Map<string, Attempt>;
  requests: Set<string>;
}

export class ChunkScheduler {
  readonly pieceCount: number;
  private readonly o: Required<Omit<SchedulerOptions, "tieBreakSeed">>;
  private readonly pieces: Piece[];
  private readonly sources: SourceScores;
  /** Pieces with known providers, not received, and no request in flight. */
  private readonly ready = new Set<number>();
  /** Pieces with at least one request in flight. */
  private readonly active = new Set<number>();
  /** Pieces waiting for a (re-)lookup ahead of the cursor. */
  private readonly relookups: number[] = [];
  private lookupCursor = 0;
  private lookupsInFlight = 0;
  private requestsInFlight = 0;
  private receivedUnconsumed = 0;
  private finishedPieces = 0;
  /** Lowest piece not consumed (ordered mode's head). */
  private head = 0;
  private readonly failed: number[] = [];
  /** Rank among equally rare pieces (lower first): a seeded permutation, or the index. */
  private readonly tieRank: Uint32Array | null;
  /** Per source, the pieces its latest swarm view said it is fetching. */
  private readonly remoteInFlight = new Map<string, readonly number[]>();
  /** How many other downloaders are fetching each piece (sum over remoteInFlight). */
  private readonly pendingElsewhere: Uint16Array;
  /** Sources whose swarm view says they are still downloading. */
  private readonly leechers = new Set<string>();
  /** (piece, source) referrals to the swarm and "busy" pauses not yet ended (deferralEnded, sourceResumed). */
  private deferrals = 0;
  /** For the delivery-time estimates: bytes and pieces received so far. */
  private deliveredBytes = 0;
  private deliveredPieces = 0;
  /** Per-download random rank of each source (tie-breaks between equal estimates). */
  private readonly sourceTieRank = new Map<string, number>();
  private readonly sourceTieRandom: (() => number) | null;

  constructor(pieceCount: number, options: SchedulerOptions = {}) {
    if (!Number.isSafeInteger(pieceCount) || pieceCount < 0) throw new RangeError(`ChunkScheduler: pieceCount must be a non-negative integer, got ${pieceCount}`);
    const windowChunks = options.windowChunks ?? 16;
    this.o = {
      windowChunks,
      perSourceInFlight: options.perSourceInFlight ?? 4,
      coldInFlight: options.coldInFlight ?? 4,
      ordered: options.ordered ?? false,
      hasCold: options.hasCold ?? false,
      endgame: options.endgame ?? true,
      maxRequestsPerPiece: options.maxRequestsPerPiece ?? 2,
      endgameExtraRequests: options.endgameExtraRequests ?? 2,
      lookaheadPieces: options.lookaheadPieces ?? windowChunks,
      lookupConcurrency: options.lookupConcurrency ?? 8,
      maxLookupsPerPiece: options.maxLookupsPerPiece ?? 2,
      maxAttemptsPerSource: options.maxAttemptsPerSource ?? 2,
      banAfterCorruptions: options.banAfterCorruptions ?? 2,
      banAfterConsecutiveFailures: options.banAfterConsecutiveFailures ?? 4,
    };
    for (const [name, value] of Object.entries(this.o)) {
      if (typeof value === "number" && (!Number.isSafeInteger(value) || value < 1)) throw new RangeError(`ChunkScheduler: ${name} must be a positive integer, got ${value}`);
    }
    this.sources = new SourceScores(this.o);
    this.pieceCount = pieceCount;
    this.pieces = Array.from({ length: pieceCount }, () => ({ state: "new" as PieceState, candidates: [], lookups: 0, attempts: new Map(), requests: new Set() }));
    this.pendingElsewhere = new Uint16Array(pieceCount);
    this.tieRank = options.tieBreakSeed === undefined ? null : shuffledRanks(pieceCount, options.tieBreakSeed);
    this.sourceTieRandom = options.tieBreakSeed === undefined ? null : mulberry32(options.tieBreakSeed ^ 0x5bd1e995);
    if (this.o.hasCold) this.addSource(COLD_SOURCE_ID, "r2");
  }

  /** Registers a source (idempotent). Sources must be added before a lookup result names them. */
  addSource(id: string, kind: SourceKind): void {
    this.sources.add(id, kind);
  }

  /** A piece already present (resumed, or in the local store): it is never fetched. */
  markDone(piece: number): void {
    const p = this.piece(piece);
    if (p.state === "done") return;
    if (p.requests.size > 0 || p.state === "received") throw new Error(`ChunkScheduler.markDone: piece ${piece} is being fetched`);
    if (p.state === "looking-up") this.lookupsInFlight--;
    this.ready.delete(piece);
    p.state = "done";
    this.finishedPieces++;
    this.advanceHead();
  }

  /** Pieces to look providers up for now, in priority order; they are marked as being looked up. */
  nextLookups(): number[] {
    const out: number[] = [];
    while (this.lookupsInFlight < this.o.lookupConcurrency) {
      let piece = this.relookups.shift();
      if (piece === undefined) {
        if (this.ready.size + this.lookupsInFlight >= this.o.lookaheadPieces) break;
        while (this.lookupCursor < this.pieceCount && this.pieces[this.lookupCursor].state !== "new") this.lookupCursor++;
        if (this.lookupCursor >= this.pieceCount) break;
        piece = this.lookupCursor++;
      }
      const p = this.pieces[piece];
      p.state = "looking-up";
      p.lookups++;
      this.lookupsInFlight++;
      out.push(piece);
    }
    return out;
  }

  /** Providers found for a piece (ids already added), best first; a failed lookup reports []. */
  lookupResult(piece: number, sourceIds: string[]): void {
    const p = this.piece(piece);
    if (p.state !== "looking-up") return;
    this.lookupsInFlight--;
    for (const id of sourceIds) if (!this.sources.has(id)) throw new Error(`ChunkScheduler.lookupResult: unknown source ${id}`);
    // Swarm candidates that arrived during the lookup are kept.
    p.candidates = [...new Set([...sourceIds.filter((id) => id !== COLD_SOURCE_ID), ...p.candidates])];
    p.state = "ready";
    this.ready.add(piece);
  }

  /**
   * A swarm view says `sourceId` (already added) holds `piece`, or relays it
   * while it arrives there (arriving-chunks.ts). A piece not
   * looked up yet becomes ready with it (the directory is asked only if
   * every candidate fails); a ready one gains a candidate.
   */
  addCandidate(piece: number, sourceId: string): void {
    const p = this.piece(piece);
    if (!this.sources.has(sourceId)) throw new Error(`ChunkScheduler.addCandidate: unknown source ${sourceId}`);
    const attempt = p.attempts.get(sourceId);
    // "Not here" may have been true a moment ago only (a relayed piece whose fetch failed there, then succeeded).
    if (attempt?.absent) attempt.final = attempt.absent = false;
    if (p.candidates.includes(sourceId)) return;
    if (attempt?.final) return;
    if (p.state === "new") {
      const queued = this.relookups.indexOf(piece);
      if (queued >= 0) this.relookups.splice(queued, 1);
      p.candidates = [sourceId];
      p.state = "ready";
      this.ready.add(piece);
    } else if (p.state === "ready" || p.state === "looking-up") {
      p.candidates.push(sourceId);
    }
  }

  /** A swarm view says whether `sourceId` is still downloading (a leecher) or holds everything. */
  setLeecher(sourceId: string, leeching: boolean): void {
    if (leeching) this.leechers.add(sourceId);
    else this.leechers.delete(sourceId);
  }

  /** A swarm view: the pieces `sourceId` is fetching now (replaces its previous view; [] forgets it). */
  setRemoteInFlight(sourceId: string, pieces: readonly number[]): void {
    for (const piece of this.remoteInFlight.get(sourceId) ?? []) this.pendingElsewhere[piece]--;
    const valid = pieces.filter((piece) => Number.isSafeInteger(piece) && piece >= 0 && piece < this.pieceCount);
    for (const piece of valid) this.pendingElsewhere[piece]++;
    if (valid.length > 0) this.remoteInFlight.set(sourceId, valid);
    else this.remoteInFlight.delete(sourceId);
  }

  /**
   * The requests to start now. Each is counted in flight until reported with
   * requestSucceeded or requestFailed. Pieces left with no option at all
   * become failed (see failedPieces()).
   */
  nextRequests(): Assignment[] {
    const out: Assignment[] = [];
    if (!this.o.ordered) this.auctionRequests(out);
    for (const piece of this.startOrder()) {
      const p = this.pieces[piece];
      const isHead = this.o.ordered && piece === this.head;
      if (this.units() >= this.o.windowChunks && !isHead) continue;
      const choice = this.chooseSource(piece, p);
      if (choice === "wait") continue;
      if (choice === "relookup") {
        this.ready.delete(piece);
        p.state = "new";
        this.relookups.push(piece);
        continue;
      }
      if (choice === "failed") {
        this.ready.delete(piece);
        p.state = "failed";
        this.failed.push(piece);
        continue;
      }
      this.start(piece, choice, false);
      out.push({ piece, sourceId: choice, duplicate: false });
    }
    if (this.o.endgame) out.push(...this.duplicates());
    return out;
  }

  /**
   * A source answered with bytes that match the piece's CID. Returns whether
   * they are the first (use them) and the other sources whose requests for
   * the piece should now be cancelled.
   */
  requestSucceeded(piece: number, sourceId: string, sizeBytes: number, timing?: RequestTiming): { accepted: boolean; cancel: string[] } {
    const p = this.piece(piece);
    this.endRequest(p, sourceId);
    this.sources.ended(sourceId, { ok: true, sizeBytes, timing });
    this.deliveredBytes += sizeBytes;
    this.deliveredPieces++;
    if (p.state !== "ready") return { accepted: false, cancel: [] };
    this.active.delete(piece);
    p.state = "received";
    this.receivedUnconsumed++;
    return { accepted: true, cancel: [...p.requests] };
  }

  /**
   * A request ended without usable bytes. "absent" (the source does not hold
   * the chunk: evicted, or R2 never had it) and "cancelled" (we aborted it)
   * cost the source nothing; the source is not asked for an absent piece again.
   */
  requestFailed(piece: number, sourceId: string, reason: FailureReason, atMs?: number): void {
    const p = this.piece(piece);
    this.endRequest(p, sourceId);
    this.sources.ended(sourceId, { ok: false, reason, atMs });
    const attempt = p.attempts.get(sourceId)!;
    // A source banned for wrong bytes stays banned whatever it says later.
    if (reason === "absent" || reason === "corrupt") attempt.absent = reason === "absent" && !attempt.final;
    if (reason === "corrupt" || reason === "absent") attempt.final = true;
    if (reason === "deferred") {
      // A referral is no attempt: the source may be asked again (maxAttemptsPerSource) once its window is over.
      attempt.count--;
      attempt.deferred = true;
      this.deferrals++;
    }
    if (reason === "busy") {
      // Nor is "busy": the whole source takes nothing until sourceResumed (SourceScores counts the pause).
      attempt.count--;
      this.deferrals++;
    }
    if (p.state === "ready" && p.requests.size === 0) {
      this.active.delete(piece);
      this.ready.add(piece);
    }
  }

  /** The seed that referred `piece` to the swarm (requestFailed "deferred") may be asked for it again. */
  deferralEnded(piece: number, sourceId: string): void {
    const attempt = this.piece(piece).attempts.get(sourceId);
    if (!attempt?.deferred) return;
    attempt.deferred = false;
    this.deferrals--;
  }

  /** The pause after a "busy" answer from `sourceId` (requestFailed "busy") is over. */
  sourceResumed(sourceId: string): void {
    this.sources.resume(sourceId);
    this.deferrals--;
  }

  /**
   * Whether a request to `sourceId` should offer to wait for the swarm
   * instead (super-seed.ts): it is a seed (no swarm view says it is still
   * downloading) and other downloaders are in progress to get pieces from.
   */
  asksSeedInSwarm(sourceId: string): boolean {
    return this.leechers.size > 0 && !this.leechers.has(sourceId);
  }

  /** The piece's bytes were written (or emitted): its memory unit is free. */
  consumed(piece: number): void {
    const p = this.piece(piece);
    if (p.state !== "received") throw new Error(`ChunkScheduler.consumed: piece ${piece} was not received`);
    p.state = "done";
    this.receivedUnconsumed--;
    this.finishedPieces++;
    this.advanceHead();
  }

  /** Some ready piece waits for another downloader to finish fetching it, or for a seed's referral or busy pause to end (see "Swarm views"). */
  hasDeferred(): boolean {
    if (this.deferrals > 0) return true;
    for (const piece of this.ready) if (this.isDeferred(piece)) return true;
    return false;
  }

  isFinished(): boolean {
    return this.finishedPieces === this.pieceCount;
  }

  /** Every piece is either done or failed. */
  isSettled(): boolean {
    return this.finishedPieces + this.failed.length === this.pieceCount;
  }

  /** The lowest piece not done (pieceCount when all are). */
  headPiece(): number {
    return this.head;
  }

  /** Pieces for which every option is exhausted. */
  failedPieces(): readonly number[] {
    return this.failed;
  }

  sourceStats(): SourceStats[] {
    return this.sources.stats();
  }

  /** Sources that were penalised at least once (error or corruption), for the result. */
  penalisedSources(): string[] {
    return this.sources.penalised();
  }

  private piece(piece: number): Piece {
    const p = this.pieces[piece];
    if (!p) throw new RangeError(`ChunkScheduler: no piece ${piece}`);
    return p;
  }

  private units(): number {
    return this.requestsInFlight + this.receivedUnconsumed;
  }

  /** Ready pieces in the order they should start (deferred ones left out). */
  private startOrder(): number[] {
    const order = [...this.ready];
    if (this.o.ordered) return order.sort((a, b) => a - b);
    const weight = new Map<number, number>();
    const startable: number[] = [];
    for (const piece of order) {
      // Per event and per ready piece: the holder count is taken once, without allocating.
      const holders = this.holders(piece);
      if (this.pendingElsewhere[piece] > 0 && holders === 1) continue; // deferred (isDeferred)
      weight.set(piece, holders + this.pendingElsewhere[piece]);
      startable.push(piece);
    }
    const tie = this.tieRank;
    return startable.sort((a, b) => weight.get(a)! - weight.get(b)! || (tie ? tie[a] - tie[b] : a - b));
  }

  private holders(piece: number): number {
    let n = 0;
    for (const id of this.pieces[piece].candidates) if (!this.sources.isBanned(id)) n++;
    return n;
  }

  /** One holder, and another downloader is already getting the piece from there (see the header). */
  private isDeferred(piece: number): boolean {
    return this.pendingElsewhere[piece] > 0 && this.holders(piece) === 1;
  }

  private chooseSource(piece: number, p: Piece): string | "wait" | "relookup" | "failed" {
    const eligible = p.candidates.filter((id) => this.eligible(p, id));
    if (eligible.length > 0) return this.best(p, this.preferLeechers(eligible)) ?? "wait";
    if (p.requests.size > 0) return "wait";
    // A seed sent it to another member: that member's view, or the end of the referral, brings it.
    for (const attempt of p.attempts.values()) if (attempt.deferred) return "wait";
    if (p.candidates.length > 0 && p.lookups < this.o.maxLookupsPerPiece) return "relookup";
    if (this.o.hasCold && this.eligible(p, COLD_SOURCE_ID)) return this.best(p, [COLD_SOURCE_ID]) ?? "wait";
    return "failed";
  }

  /** The leechers among a piece's sources when there are any (see "Swarm views"), else all of them. */
  private preferLeechers(eligible: string[]): string[] {
    if (this.leechers.size === 0) return eligible;
    const leechers = eligible.filter((id) => this.leechers.has(id));
    return leechers.length > 0 ? leechers : eligible;
  }

  private eligible(p: Piece, id: string): boolean {
    if (this.sources.isBanned(id) || p.requests.has(id)) return false;
    const attempt = p.attempts.get(id);
    return !attempt || (!attempt.final && !attempt.deferred && attempt.count < this.o.maxAttemptsPerSource);
  }

  /**
   * When several pieces can start at once (the download's start, a burst of
   * answers, new holders found), they and the free request slots are
   * matched by auction (auction.ts) rather than one piece at a time: each
   * slot of a source is a bidder worth less the later it would deliver
   * (the k-th free slot queues behind k more requests), untried sources
   * first as in best(), and rarer pieces weigh more than any difference in
   * delivery time, so the rarest pieces get slots first and then each goes
   * where the whole batch finishes soonest — a piece only a slow source
   * holds is not crowded out of it by a piece that fast sources also hold.
   * A single startable piece goes the greedy way (same choice). Pieces with
   * no eligible peer are left to the loop after this (re-lookup, cold,
   * failed).
   */
  private auctionRequests(out: Assignment[]): void {
    const room = this.o.windowChunks - this.units();
    if (room < 2) return;
    const batch: { piece: number; sources: string[] }[] = [];
    for (const piece of this.startOrder()) {
      if (batch.length >= room) break;
      const p = this.pieces[piece];
      const eligible = p.candidates.filter((id) => this.eligible(p, id));
      if (eligible.length === 0) continue;
      const sources = this.preferLeechers(eligible).filter((id) => this.sources.hasFreeSlot(id));
      if (sources.length > 0) batch.push({ piece, sources });
    }
    const distinct = new Set(batch.flatMap((b) => b.sources));
    if (batch.length < 2 || distinct.size < 2) return;

    const size = this.typicalPieceBytes();
    const fallbackRate = this.sources.meanRate() ?? DEFAULT_RATE_BYTES_PER_SECOND;
    const slotCost = new Map<string, number[]>();
    let horizon = 1;
    for (const id of distinct) {
      const { free, inFlight } = this.sources.slots(id);
      const costs = Array.from({ length: Math.min(free, batch.length) }, (_, k) => this.sources.expectedSeconds(id, size, fallbackRate, inFlight + k) / this.sources.score(id));
      slotCost.set(id, costs);
      for (const c of costs) horizon = Math.max(horizon, c + 1);
    }
    const bidders: AuctionBidder[] = [];
    for (const [id, costs] of slotCost) costs.forEach((_, k) => bidders.push({ id: `${id}\u0000${k}`, capacity: 1 }));
    const benefits = new Map<string, Benefit[]>();
    batch.forEach(({ piece, sources }, rank) => {
      const p = this.pieces[piece];
      const rarity = (batch.length - rank) * 3 * horizon;
      const list: Benefit[] = [];
      for (const id of sources) {
        const untried = p.attempts.has(id) ? 0 : horizon;
        slotCost.get(id)!.forEach((cost, k) => list.push({ bidder: `${id}\u0000${k}`, value: rarity + untried + horizon - cost }));
      }
      benefits.set(String(piece), list);
    });
    const { assignment } = auction({ items: batch.map((b) => ({ id: String(b.piece) })), bidders, benefits });
    for (const { piece } of batch) {
      const slot = assignment.get(String(piece));
      if (slot === undefined) continue;
      const sourceId = slot.slice(0, slot.indexOf("\u0000"));
      this.start(piece, sourceId, false);
      out.push({ piece, sourceId, duplicate: false });
    }
  }

  /** The best source with a free slot (see "Source choice"), or null when all eligible ones are busy. */
  private best(p: Piece, eligible: string[]): string | null {
    let bestId: string | null = null;
    let bestUntried = false;
    let bestCost = Infinity;
    let bestTie = Infinity;
    const size = this.typicalPieceBytes();
    const fallbackRate = this.sources.meanRate() ?? DEFAULT_RATE_BYTES_PER_SECOND;
    for (let i = 0; i < eligible.length; i++) {
      const id = eligible[i];
      if (!this.sources.hasFreeSlot(id)) continue;
      // Untried (for this piece) first; then the soonest delivery, trust-weighted; then the tie order.
      const untried = !p.attempts.has(id);
      const cost = this.sources.expectedSeconds(id, size, fallbackRate) / this.sources.score(id);
      const tie = this.sourceTie(id, i);
      if (untried !== bestUntried ? untried : cost < bestCost * (1 - 1e-9) || (cost <= bestCost * (1 + 1e-9) && tie < bestTie)) {
        bestId = id;
        bestUntried = untried;
        bestCost = cost;
        bestTie = tie;
      }
    }
    return bestId;
  }

  /** The mean size of the pieces received so far (the unit of the delivery-time estimates). */
  private typicalPieceBytes(): number {
    return this.deliveredPieces > 0 ? this.deliveredBytes / this.deliveredPieces : DEFAULT_PIECE_BYTES;
  }

  /** Without a seed, the candidate order (directory ranking); with one, a random rank fixed per source for this download. */
  private sourceTie(id: string, index: number): number {
    if (!this.sourceTieRandom) return index;
    let rank = this.sourceTieRank.get(id);
    if (rank === undefined) {
      rank = this.sourceTieRandom();
      this.sourceTieRank.set(id, rank);
    }
    return rank;
  }

  private start(piece: number, sourceId: string, duplicate: boolean): void {
    const p = this.pieces[piece];
    const attempt = p.attempts.get(sourceId);
    if (attempt) attempt.count++;
    else p.attempts.set(sourceId, { count: 1, final: false });
    p.requests.add(sourceId);
    this.sources.started(sourceId);
    this.requestsInFlight++;
    if (!duplicate) {
      this.ready.delete(piece);
      this.active.add(piece);
    }
  }

  private endRequest(p: Piece, sourceId: string): void {
    if (!p.requests.delete(sourceId)) throw new Error(`ChunkScheduler: no request in flight to ${sourceId}`);
    this.requestsInFlight--;
  }

  /** Endgame and head-of-line duplicate requests, lowest piece first. */
  private duplicates(): Assignment[] {
    const lookupsPending = this.lookupsInFlight > 0 || this.relookups.length > 0 || this.lookupCursor < this.pieceCount;
    // (Deferred pieces stay in `ready`: the endgame waits for them, they arrive elsewhere within a chunk time.)
    const endgame = !lookupsPending && this.ready.size === 0;
    const headBlocked = this.o.ordered && this.units() >= this.o.windowChunks && this.active.has(this.head);
    if (!endgame && !headBlocked) return [];
    const candidates = endgame ? [...this.active].sort((a, b) => a - b) : [this.head];
    // A duplicate's bytes share the downlink with the pieces still missing — in a swarm every downlink is full to
    // the end — so only a few run at once: enough to route around a stalled source, not a second copy of the
    // whole window (at 16 peers on 10 Mbit/s the last window is a quarter of a 64 MiB file, and duplicating all of
    // it cost the swarm benchmark 79 s against 74 s without an endgame).
    let duplicates = 0;
    for (const piece of this.active) duplicates += Math.max(0, this.pieces[piece].requests.size - 1);
    const out: Assignment[] = [];
    for (const piece of candidates) {
      if (this.units() >= this.o.windowChunks + this.o.endgameExtraRequests || duplicates >= this.o.endgameExtraRequests) break;
      const p = this.pieces[piece];
      if (p.requests.size >= this.o.maxRequestsPerPiece) continue;
      // Only peers: the cold store stays the last resort, reached through failures. While other
      // downloaders are still in progress, only they take duplicates: a seed's upload (the publisher's,
      // the swarm's bottleneck) is still owed pieces nobody else has, and a duplicate would delay those.
      let eligible = p.candidates.filter((id) => this.eligible(p, id));
      if (this.leechers.size > 0) eligible = eligible.filter((id) => this.leechers.has(id));
      const choice = this.best(p, eligible);
      if (choice === null) continue;
      this.start(piece, choice, true);
      duplicates++;
      out.push({ piece, sourceId: choice, duplicate: true });
    }
    return out;
  }

  private advanceHead(): void {
    while (this.head < this.pieceCount && this.pieces[this.head].state === "done") this.head++;
  }
}

/** A permutation's ranks from a 32-bit seed (mulberry32 + Fisher–Yates): the same seed, the same order. */
function shuffledRanks(n: number, seed: number): Uint32Array {
  const next = mulberry32(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const ranks = new Uint32Array(n);
  order.forEach((piece, rank) => (ranks[piece] = rank));
  return ranks;
}
