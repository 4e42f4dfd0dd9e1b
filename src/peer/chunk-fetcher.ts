/**
 * The fetch loop: carries out the decisions of chunk-scheduler.ts with real
 * I/O — provider lookups, requests with AbortSignals and a per-request
 * timeout, SHA-256 verification of every answer, the local store as a cache,
 * announcements — and hands each verified sealed chunk to a sink (write at
 * an offset, or emit in order). Used for manifests, chunk pages and file
 * chunks alike, so every object a download needs is fetched one way.
 *
 * The loop is event-driven: every finished lookup, request or sink wakes it,
 * it asks the scheduler what to start, and sleeps until the next event. It
 * never polls and never sleeps on a timer (the only timers are the request
 * timeout and the end of a seed's referral to the swarm, super-seed.ts, or
 * of a busy source's pause). Remote misbehaviour (errors, wrong bytes, hangs) is recorded and
 * penalised by the scheduler, never thrown. A chunk for which every option
 * is exhausted fails the run — after every other chunk has been fetched
 * (so a re-run needs only the missing ones), or in ordered mode once every
 * chunk before it has been delivered (a stream cannot skip it). A local
 * failure (a sink throwing, e.g. a full disk) or the caller's abort ends the
 * run at once. On any exit the loop aborts what is in flight and waits for
 * it, so no sink runs after `run` returns.
 *
 * Sources per chunk: this peer's own store first (if it holds the chunk,
 * nothing is looked up), then the providers from the directory, then R2.
 * Chunks fetched from elsewhere are put into the store unpinned (a cache the
 * store may evict) and announced, so this peer becomes a provider.
 */
import { createHash } from "node:crypto";
import { setMaxListeners } from "node:events";
import { parseCid } from "../core/cid.js";
import { PeercloudError } from "../core/errors.js";
import { ChunkScheduler, COLD_SOURCE_ID, type SchedulerOptions } from "./chunk-scheduler.js";
import type { SourceStats } from "./source-scores.js";
import type { ChunkStore } from "./chunk-store.js";
import type { ArrivingChunks } from "./arriving-chunks.js";
import { AskLaterError, coldSource, type Announcer, type ChunkSource, type ColdStore, type ProviderDirectory } from "./sources.js";
import type { RegionQualityMeter } from "./region-quality.js";
import type { SwarmBoard, SwarmProgress } from "./swarm.js";
import { SwarmWatcher } from "./swarm-watcher.js";
import { abortable } from "../core/abort.js";

/** Id of this peer's own store as a source. */
export const SELF_SOURCE_ID = "self";

export interface FetchPiece {
  cid: string;
  /** Expected sealed size when known (from the manifest): an answer of another size is corrupt, unhashed. */
  sealedSizeBytes?: number;
}

export interface FetchDeps {
  store: ChunkStore;
  providers?: ProviderDirectory;
  cold?: ColdStore;
  announcer?: Announcer;
  /** This peer's board of downloads (the daemon's, served to other peers): with it, a fetch that names a `swarm` joins it. */
  swarmBoard?: SwarmBoard;
  /** Where a swarm fetch offers chunks to the other members while their bytes still arrive (the daemon's transfer server serves them). */
  arrivals?: ArrivingChunks;
  /** Receives, when the fetch ends, what it measured of each peer source, by the source's region. */
  regionQuality?: RegionQualityMeter;
}

/** Which swarm a file's fetch belongs to (swarm.ts). */
export interface SwarmTicket {
  key: string;
  rootCid: string;
}

export interface FetcherOptions extends Omit<SchedulerOptions, "hasCold"> {
  /** A request with no answer after this long is aborted and counts as an error. Default 60,000. */
  requestTimeoutMs?: number;
  signal?: AbortSignal;
  /** Remote misbehaviour, one line each (for logs; never thrown). */
  onWarning?: (message: string) => void;
  /** Trade pieces with the other downloaders of this file (needs deps.swarmBoard and deps.providers). */
  swarm?: SwarmTicket;
  /** Between two polls of one swarm member. Default: a quarter of the time a piece takes to arrive, within 250–1000 ms. */
  swarmPollMs?: number;
}

/**
 * Cached bytes after which the fetch makes its cache writes durable (and
 * announces them) while still running. Cache writes are group-committed:
 * a fetched chunk is written unsynced and servable at once (ChunkStore
 * `sync: false`), and one flush per this many bytes replaces an fsync,
 * rename and directory sync per chunk on the download's hot path.
 */
const CACHE_FLUSH_BYTES = 32 * 1024 * 1024;

/**
 * Swarm views are polled a few times per piece transfer time (a quarter of
 * it, measured as a moving average of this fetch's peer requests), within
 * these bounds. Every downloader polls every member, so the polls grow with
 * the square of the swarm: at 16 peers on 10 Mbit/s lines (a piece takes
 * ~7 s there) a fixed 250 ms was 1,000 requests a second across the
 * swarm and kept the benchmark's CPU saturated 75 % of the seconds, against
 * 19 % at 1 s; a relay or a new holder is then noticed within a small part
 * of a piece time either way.
 */
const MIN_SWARM_POLL_MS = 250;
const MAX_SWARM_POLL_MS = 1000;
const SWARM_POLLS_PER_PIECE_TIME = 4;
const PIECE_TIME_WEIGHT = 0.2;

/** In a swarm, pieces whose providers are looked up ahead (ready pieces are what rarest first chooses from). */
const SWARM_LOOKAHEAD = 1024;
const SWARM_LOOKUP_CONCURRENCY = 64;

/**
 * Receives each verified sealed chunk once; the chunk's window slot is freed
 * when it resolves. `signal` aborts when the run is ending (failed or
 * aborted): a sink that waits (the ordered emitter's reorder buffer) must
 * then give up, or the run could not finish.
 */
export type PieceSink = (piece: number, sealed: Uint8Array, source: ChunkSource, signal: AbortSignal) => Promise<void>;

export interface FetchReport {
  fromPeers: number;
  fromCold: number;
  fromLocal: number;
  sources: SourceStats[];
  penalised: string[];
}

export class ChunkUnavailableError extends PeercloudError {
  constructor(cid: string, reason: string) {
    super("chunk_unavailable", `chunk ${cid} unavailable: ${reason}`, 503, { cid });
    this.name = "ChunkUnavailableError";
  }
}

const CANCELLED = Symbol("cancelled");
/** Shortest wait after an "ask later" before asking again, whatever the source said: no busy loop of refusals. */
const MIN_DEFERRAL_MS = 100;

interface PieceLog {
  providersSeen: number;
  lastError?: string;
  /** Why the latest provider lookup failed (e.g. the edge is unreachable); cleared by a lookup that answers. */
  lookupError?: string;
  coldAbsent: boolean;
}

export class ChunkFetcher {
  readonly scheduler: ChunkScheduler;
  private readonly sources = new Map<string, ChunkSource>();
  private readonly digests: Uint8Array[];
  private readonly logs: PieceLog[];
  private readonly controllers = new Map<string, AbortController>();
  private readonly pending = new Set<Promise<void>>();
  private readonly requestTimeoutMs: number;
  private fatal: unknown = null;
  /** Aborted when the run ends, for sinks still waiting. */
  private readonly ending = new AbortController();
  private wakeUp: (() => void) | null = null;
  private dirty = false;
  private readonly counts = { fromPeers: 0, fromCold: 0, fromLocal: 0 };
  /** Cache writes in progress, by CID. */
  private readonly caching = new Map<string, Promise<void>>();
  /** Cached chunks not yet flushed (so not yet announced), and their bytes. */
  private unflushed: string[] = [];
  private unflushedBytes = 0;
  /** The latest cache flush (they run one after another). */
  private flushing: Promise<void> = Promise.resolve();
  /** This fetch's progress as other swarm members see it (null outside a swarm). */
  private readonly swarm: SwarmProgress | null = null;
  /** Seeds' referrals to the swarm (super-seed.ts) and busy sources' pauses, each ending at its timer. */
  private readonly deferralTimers = new Set<NodeJS.Timeout>();
  /** Moving average of how long a successful peer request took, ms (0 until one succeeded): paces swarm polls. */
  private pieceMs = 0;

  constructor(
    private readonly pieces: readonly FetchPiece[],
    private readonly deps: FetchDeps,
    private readonly options: FetcherOptions = {},
  ) {
    const swarming = options.swarm !== undefined && deps.swarmBoard !== undefined && deps.providers !== undefined && pieces.length > 1;
    this.scheduler = new ChunkScheduler(pieces.length, {
      ...(swarming ? { lookaheadPieces: Math.min(pieces.length, SWARM_LOOKAHEAD), lookupConcurrency: SWARM_LOOKUP_CONCURRENCY, tieBreakSeed: (Math.random() * 2 ** 32) >>> 0 } : {}),
      ...options,
      hasCold: deps.cold !== undefined,
    });
    if (swarming) this.swarm = deps.swarmBoard!.open(options.swarm!.key, pieces.length);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    // Every sink still waiting listens on it (the ordered emitter: up to a window of pieces), more than
    // Node's default of 10 before it prints a MaxListenersExceededWarning on stderr.
    setMaxListeners(0, this.ending.signal);
    this.digests = pieces.map((p) => parseCid(p.cid).digest);
    this.logs = pieces.map(() => ({ providersSeen: 0, coldAbsent: false }));
    this.register({ id: SELF_SOURCE_ID, kind: "local", fetch: (cid) => this.readSelf(cid) });
    if (deps.cold) this.register(coldSource(deps.cold, COLD_SOURCE_ID));
  }

  /** Pieces already complete (resumed): never fetched. Call before run(). */
  markDone(piece: number): void {
    this.scheduler.markDone(piece);
  }

  /** Fetches every piece not marked done into `sink`. Rejects with ChunkUnavailableError, a sink's error, or the abort reason. */
  async run(sink: PieceSink): Promise<FetchReport> {
    const signal = this.options.signal;
    const onAbort = () => this.fail(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const watcher = this.swarm ? this.watchSwarm() : null;
    try {
      signal?.throwIfAborted();
      while (!this.scheduler.isSettled() && this.fatal === null) {
        for (const piece of this.scheduler.nextLookups()) this.track(this.lookup(piece));
        for (const a of this.scheduler.nextRequests()) this.track(this.request(a.piece, a.sourceId, sink));
        // Exhausted pieces may have been queued for a re-lookup just now.
        for (const piece of this.scheduler.nextLookups()) this.track(this.lookup(piece));
        // A stream cannot go past a missing chunk: stop once everything before it is out. Otherwise
        // fetch all the rest first, so the part file holds all that is obtainable and a re-run needs
        // only what was missing.
        const failed = this.scheduler.failedPieces();
        if (this.options.ordered && failed.length > 0 && this.scheduler.headPiece() >= Math.min(...failed)) break;
        if (this.scheduler.isSettled()) break;
        // Waiting only for deferred pieces is progress: another downloader delivers them and its view wakes the
        // loop, or a referral's or busy pause's timer does.
        if (this.pending.size === 0 && !this.scheduler.hasDeferred()) throw new Error("ChunkFetcher: stalled with nothing in flight (scheduler bug)");
        await this.nextEvent();
      }
      const failed = [...this.scheduler.failedPieces()].sort((a, b) => a - b);
      if (this.fatal === null && failed.length > 0) this.fatal = this.unavailable(failed[0], failed.length - 1);
      if (this.fatal !== null) throw this.fatal;
      return this.report();
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.ending.abort(this.fatal ?? CANCELLED);
      for (const timer of this.deferralTimers) clearTimeout(timer);
      for (const controller of this.controllers.values()) controller.abort(CANCELLED);
      while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
      this.reportRegionQuality();
      await this.flushCache();
      await watcher;
      if (this.swarm) this.deps.swarmBoard!.release(this.swarm);
    }
  }

  /** Polls the other members of the swarm until the run ends, feeding their views to the scheduler. */
  private watchSwarm(): Promise<void> {
    const { key, rootCid } = this.options.swarm!;
    return new SwarmWatcher({
      key,
      rootCid,
      pieces: this.pieces.length,
      providers: this.deps.providers!,
      signal: this.ending.signal,
      pollMs: this.options.swarmPollMs ?? (() => Math.min(MAX_SWARM_POLL_MS, Math.max(MIN_SWARM_POLL_MS, this.pieceMs / SWARM_POLLS_PER_PIECE_TIME))),
      onView: (source, held, inFlight, complete, relaying) => {
        this.register(source);
        for (const piece of held) this.scheduler.addCandidate(piece, source.id);
        // A piece a member relays is as good as held: its bytes flow on as they reach it (arriving-chunks.ts).
        for (const piece of relaying) this.scheduler.addCandidate(piece, source.id);
        this.scheduler.setRemoteInFlight(source.id, inFlight);
        this.scheduler.setLeecher(source.id, !complete);
        this.wake();
      },
      onGone: (sourceId) => {
        this.scheduler.setRemoteInFlight(sourceId, []);
        this.scheduler.setLeecher(sourceId, false);
        this.wake();
      },
    }).run();
  }

  /**
   * The sealed bytes of a chunk this run delivered, read back from the local
   * store (waiting for its cache write), verified; null if the store did not
   * keep it (full).
   */
  async readCached(cid: string): Promise<Uint8Array | null> {
    await this.caching.get(cid);
    return this.deps.store.get(cid, { verify: true });
  }

  report(): FetchReport {
    return { ...this.counts, sources: this.scheduler.sourceStats(), penalised: this.scheduler.penalisedSources() };
  }

  private register(source: ChunkSource): void {
    if (this.sources.has(source.id)) return;
    this.sources.set(source.id, source);
    this.scheduler.addSource(source.id, source.kind);
  }

  private async lookup(piece: number): Promise<void> {
    const cid = this.pieces[piece].cid;
    const ids: string[] = [];
    try {
      if (this.deps.store.has(cid)) {
        ids.push(SELF_SOURCE_ID);
      } else if (this.deps.providers) {
        const controller = new AbortController();
        this.controllers.set(`lookup/${piece}`, controller);
        const timer = setTimeout(() => controller.abort(new PeercloudError("lookup_timeout", `provider lookup for ${cid} took over ${this.requestTimeoutMs} ms`, 504)), this.requestTimeoutMs);
        try {
          for (const source of await abortable(this.deps.providers.providers(cid, controller.signal), controller.signal)) {
            if (source.id === SELF_SOURCE_ID || source.id === COLD_SOURCE_ID) continue;
            this.register(source);
            if (!ids.includes(source.id)) ids.push(source.id);
          }
        } finally {
          clearTimeout(timer);
          this.controllers.delete(`lookup/${piece}`);
        }
        this.logs[piece].providersSeen += ids.length;
        this.logs[piece].lookupError = undefined;
      }
    } catch (error) {
      this.logs[piece].lastError = this.logs[piece].lookupError = `provider lookup failed: ${messageOf(error)}`;
    }
    this.scheduler.lookupResult(piece, ids);
  }

  private async request(piece: number, sourceId: string, sink: PieceSink): Promise<void> {
    const { cid, sealedSizeBytes } = this.pieces[piece];
    const source = this.sources.get(sourceId)!;
    const key = `${piece}/${sourceId}`;
    const controller = new AbortController();
    this.controllers.set(key, controller);
    const timer = setTimeout(() => controller.abort(new PeercloudError("chunk_timeout", `no answer from ${sourceId} for ${cid} within ${this.requestTimeoutMs} ms`, 504)), this.requestTimeoutMs);
    // Shown to the swarm as in flight until this peer holds the chunk or gives up on this request: a gap
    // between the two would tell the other downloaders that nobody has it, and send them to the publisher.
    const swarm = source.kind === "local" ? null : this.swarm;
    swarm?.started(piece);
    let bytes: Uint8Array;
    const startMs = performance.now();
    let firstByteMs: number | undefined;
    const deferToSwarm = swarm !== null && source.kind === "peer" && this.scheduler.asksSeedInSwarm(sourceId);
    // Offered to the swarm as the bytes arrive (arriving-chunks.ts), shown in the view while it is.
    const relay =
      swarm !== null && source.kind === "peer" && this.deps.arrivals ? this.deps.arrivals.tap(cid, { offered: () => swarm.relayStarted(piece), withdrawn: () => swarm.relayEnded(piece) }) : null;
    try {
      bytes = await abortable(
        source.fetch(cid, controller.signal, () => (firstByteMs = performance.now() - startMs), { deferToSwarm, onBody: relay?.onBody }),
        controller.signal,
      );
    } catch (error) {
      relay?.withdraw(error instanceof Error ? error : new Error(messageOf(error)));
      swarm?.ended(piece);
      if (error instanceof AskLaterError && !controller.signal.aborted) {
        // No fault: the piece (or, for a busy source, the source) waits, and a timer lets it be asked again.
        const chunkOnly = error.scope === "chunk";
        this.scheduler.requestFailed(piece, sourceId, chunkOnly ? "deferred" : "busy", performance.now());
        const timer = setTimeout(
          () => {
            this.deferralTimers.delete(timer);
            if (chunkOnly) this.scheduler.deferralEnded(piece, sourceId);
            else this.scheduler.sourceResumed(sourceId);
            this.wake();
          },
          Math.max(MIN_DEFERRAL_MS, error.retryAfterMs),
        );
        this.deferralTimers.add(timer);
        return;
      }
      const cancelled = controller.signal.aborted && controller.signal.reason === CANCELLED;
      this.scheduler.requestFailed(piece, sourceId, cancelled ? "cancelled" : isNotFound(error) ? "absent" : "error", performance.now());
      if (!cancelled) this.noteError(piece, source, error);
      return;
    } finally {
      clearTimeout(timer);
      this.controllers.delete(key);
    }
    // The local store re-hashed its copy already (readSelf); everything else is hashed here.
    const wrongSize = sealedSizeBytes !== undefined && bytes.length !== sealedSizeBytes;
    if (wrongSize || (sourceId !== SELF_SOURCE_ID && !createHash("sha256").update(bytes).digest().equals(this.digests[piece]))) {
      relay?.withdraw(new PeercloudError("corrupt_chunk", `${sourceId} sent bytes that do not match ${cid}`, 502));
      swarm?.ended(piece);
      this.scheduler.requestFailed(piece, sourceId, "corrupt", performance.now());
      this.logs[piece].lastError = `${sourceId} sent bytes that do not match the CID`;
      this.options.onWarning?.(`source ${sourceId} (${source.kind}) sent corrupt data for chunk ${cid}; penalised`);
      return;
    }
    // Relayed streams may send their last byte now; new requests go to the store once the cache write is done.
    relay?.verified();
    const endMs = performance.now();
    if (source.kind === "peer") this.pieceMs = this.pieceMs === 0 ? endMs - startMs : this.pieceMs + PIECE_TIME_WEIGHT * (endMs - startMs - this.pieceMs);
    const { accepted, cancel } = this.scheduler.requestSucceeded(piece, sourceId, bytes.length, { atMs: endMs, elapsedMs: endMs - startMs, firstByteMs });
    for (const loser of cancel) this.controllers.get(`${piece}/${loser}`)?.abort(CANCELLED);
    // The scheduler's state changed now, not when the sink finishes: a sink may wait long (an ordered
    // stream's reorder buffer behind a hung head piece), and the loop must see the full window to start
    // the head-of-line duplicate that unblocks it.
    this.wake();
    if (!accepted) {
      relay?.withdraw();
      swarm?.ended(piece);
      return;
    }
    if (source.kind === "peer") this.counts.fromPeers++;
    else if (source.kind === "r2") this.counts.fromCold++;
    else this.counts.fromLocal++;
    const caching = this.cache(piece, bytes, sourceId).finally(() => {
      relay?.withdraw();
      swarm?.ended(piece);
    });
    this.caching.set(cid, caching);
    try {
      await sink(piece, bytes, source, this.ending.signal);
    } finally {
      // Even when the sink failed: the run must not end (and its caller remove the store) while a cache write runs.
      await caching;
      this.caching.delete(cid);
    }
    this.scheduler.consumed(piece);
  }

  /**
   * Keeps a fetched chunk as an unpinned cache entry, and tells the swarm
   * this peer now serves it (the store serves an unsynced chunk at once);
   * best effort (a full store is not an error). Announcing waits for the
   * flush: the directory must not send others to a copy a crash would lose.
   */
  private async cache(piece: number, sealed: Uint8Array, sourceId: string): Promise<void> {
    const cid = this.pieces[piece].cid;
    if (sourceId === SELF_SOURCE_ID) return this.swarm?.holds(piece);
    try {
      // Trusted: request() hashed these bytes against the CID already (the store would hash them again).
      const { added } = await this.deps.store.putTrusted(cid, sealed, { sync: false });
      this.swarm?.holds(piece);
      if (!added) return;
      this.unflushed.push(cid);
      this.unflushedBytes += sealed.length;
      if (this.unflushedBytes >= CACHE_FLUSH_BYTES) void this.flushCache();
    } catch {
      // StoreFullError, a closed store: the download itself does not need the cache.
    }
  }

  /** One sample per measured peer source to the region-quality meter (the daemon reports them to the directory). */
  private reportRegionQuality(): void {
    const meter = this.deps.regionQuality;
    if (!meter) return;
    for (const stat of this.scheduler.sourceStats()) {
      const region = this.sources.get(stat.id)?.region;
      if (region === undefined || stat.kind !== "peer") continue;
      meter.record({ region, rttMs: stat.rttMs, rateBytesPerSecond: stat.rateBytesPerSecond });
    }
  }

  /** Makes the cache writes so far durable, then announces them (the daemon announces on the store's own "added" events instead). */
  private flushCache(): Promise<void> {
    const batch = this.unflushed;
    this.unflushed = [];
    this.unflushedBytes = 0;
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.deps.store.flush();
      } catch {
        // A chunk that could not be made durable is dropped by the store; only durable ones are announced.
      }
      const durable = batch.filter((cid) => this.deps.store.isDurable(cid));
      if (durable.length > 0) this.deps.announcer?.announce(durable);
    });
    return this.flushing;
  }

  private async readSelf(cid: string): Promise<Uint8Array> {
    // verify: a rotten local copy is removed by the store and the chunk is fetched elsewhere.
    const bytes = await this.deps.store.get(cid, { verify: true });
    if (!bytes) throw new PeercloudError("chunk_not_found", `chunk ${cid} is no longer in the local store`, 404);
    return bytes;
  }

  private noteError(piece: number, source: ChunkSource, error: unknown): void {
    const log = this.logs[piece];
    if (source.id === COLD_SOURCE_ID && isNotFound(error)) {
      log.coldAbsent = true;
      return;
    }
    log.lastError = `${source.id}: ${messageOf(error)}`;
    if (source.kind !== "local") this.options.onWarning?.(`source ${source.id} (${source.kind}) failed for chunk ${this.pieces[piece].cid}: ${messageOf(error)}`);
  }

  private unavailable(piece: number, more: number): ChunkUnavailableError {
    const log = this.logs[piece];
    const cold = this.deps.cold ? (log.coldAbsent ? "not in cold storage" : "cold storage failed") : "no cold storage configured";
    const peers = log.providersSeen === 0 ? (log.lookupError ?? "no provider") : `every provider failed (last: ${log.lastError ?? "unknown"})`;
    return new ChunkUnavailableError(this.pieces[piece].cid, `${peers} and ${cold}${more > 0 ? ` (and ${more} more chunk(s) unavailable)` : ""}`);
  }

  private fail(error: unknown): void {
    if (this.fatal === null) this.fatal = error ?? new Error("aborted");
    this.ending.abort(this.fatal);
    this.wake();
  }

  private track(operation: Promise<void>): void {
    const tracked = operation
      .catch((error) => this.fail(error))
      .finally(() => {
        this.pending.delete(tracked);
        this.wake();
      });
    this.pending.add(tracked);
  }

  private wake(): void {
    this.dirty = true;
    const wakeUp = this.wakeUp;
    this.wakeUp = null;
    wakeUp?.();
  }

  private nextEvent(): Promise<void> {
    if (this.dirty) {
      this.dirty = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.wakeUp = () => {
        this.dirty = false;
        resolve();
      };
    });
  }
}

/** The source does not hold the chunk (HTTP 404 / code chunk_not_found): not misbehaviour. */
function isNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; status?: unknown } | null;
  return typeof e === "object" && e !== null && (e.code === "chunk_not_found" || e.status === 404);
}

function messageOf(error: unknown): string {
  if (error === CANCELLED) return "cancelled";
  return error instanceof Error ? error.message : String(error);
}
