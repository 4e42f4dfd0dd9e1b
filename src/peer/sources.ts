/**
 * The small interfaces put (ingest.ts) and get (download.ts, chunk-fetcher.ts)
 * need from the network, declared here so that they depend on no concrete
 * client: the daemon wires them to the edge client, the transfer client and
 * the directory connection; tests wire them to real ChunkStores in temp
 * dirs. (The hono pattern: the core declares the type, adapters implement it.)
 *
 * Contracts:
 * - Bytes from a ChunkSource or a ColdStore are *untrusted*: the caller
 *   verifies them against the CID (SHA-256) before any use, and penalises
 *   the source that sent wrong bytes. Implementations need not verify.
 * - `fetch`/`get` must honour the AbortSignal promptly (reject with the
 *   signal's reason): the scheduler cancels the losing request of an
 *   endgame duplicate and requests that time out.
 * - A chunk the source does not have is an error (reject; a NotFoundError
 *   reads best), except ColdStore.get, which resolves null for "absent".
 */
import type { ChunkStore } from "./chunk-store.js";
import { NotFoundError, PeercloudError } from "../core/errors.js";
import type { SourceKind } from "./source-scores.js";

export type { SourceKind } from "./source-scores.js";

/**
 * A source declined for now, without fault, and said when to ask again:
 * for this chunk (`scope` "chunk": a seed sent it to another swarm member,
 * super-seed.ts) or for anything (`scope` "source": its send queue is full).
 * The fetcher then asks others meanwhile; the source is not penalised.
 */
export class AskLaterError extends PeercloudError {
  constructor(
    code: string,
    readonly scope: "chunk" | "source",
    readonly retryAfterMs: number,
    message: string,
    details: Record<string, unknown> = {},
  ) {
    super(code, message, scope === "chunk" ? 409 : 503, { ...details, retryAfterMs });
    this.name = "AskLaterError";
  }
}

/** Sees a chunk's sealed bytes arrive: the buffer they fill (the chunk's full size, the one resolved in the end) and how many arrived. */
export type BodyProgress = (body: Uint8Array, receivedBytes: number) => void;

export interface FetchOptions {
  deferToSwarm?: boolean;
  onBody?: BodyProgress;
}

/** One place a sealed chunk can be fetched from: a peer, R2, or a local store. */
export interface ChunkSource {
  /** Stable for the download (a peer's node ID; "cold" for R2). Equal ids are one source. */
  readonly id: string;
  readonly kind: SourceKind;
  /** The region the directory placed this peer in, when known (for the region-quality estimates). */
  readonly region?: string;
  /**
   * The sealed bytes, unverified. `onFirstByte`, when the source is remote, marks the answer's arrival (round-trip
   * measurement). `deferToSwarm`: the download can get the chunk from its swarm instead, and a seed that just sent
   * it to another member may refuse with an AskLaterError (super-seed.ts); sources that cannot refuse ignore it.
   * `onBody`: called as the sealed bytes arrive, with the buffer they fill (the chunk's full size, the one
   * resolved in the end) and how many arrived, so the swarm can be served them early (arriving-chunks.ts);
   * sources that deliver all at once never call it.
   */
  fetch(cid: string, signal: AbortSignal, onFirstByte?: () => void, options?: FetchOptions): Promise<Uint8Array>;
  /** The source's swarm view of a file (swarm.ts), unverified; null when it has none. Peers only. */
  swarmView?(key: string, since: number, signal: AbortSignal): Promise<unknown>;
}

/** Who holds a chunk: the region directory's FIND_PROVIDERS, resolved to transfer clients. */
export interface ProviderDirectory {
  /** Live providers ranked best first (may be empty), never including this peer itself. */
  providers(cid: string, signal: AbortSignal): Promise<ChunkSource[]>;
}

/** A peer chosen to hold a replica. */
export interface ReplicaTarget {
  readonly id: string;
  /** The region whose directory placed it, when it is not the home region (minimum-regions policies). */
  readonly region?: string;
  /** Stores a sealed chunk there (PUT /v1/chunks/:cid; the receiver verifies and pins it). */
  push(cid: string, sealed: Uint8Array): Promise<void>;
  /** Whether it already holds the chunk (HEAD /v1/chunks/:cid), so a re-put can skip sending it. Optional. */
  has?(cid: string): Promise<boolean>;
}

/** The directory's replica placement and pin registry. */
export interface ReplicaTargets {
  /**
   * Up to `count` live service peers on distinct hosts (and not on this
   * peer's host), none of them in `exclude`, best first. Fewer (or none)
   * when the network has fewer.
   */
  place(count: number, exclude: string[], sizeBytes: number): Promise<ReplicaTarget[]>;
  /** Records the target replication factor of these chunks (at most 1000 per call; put batches). */
  pin(cids: string[], replicas: number, sizes: number[]): Promise<void>;
  /**
   * The network's other regions, nearest first (the home directory's
   * estimates of the quality between regions, src/core/region-rank.ts).
   * Absent where only the home region is reachable.
   */
  otherRegions?(signal?: AbortSignal): Promise<string[]>;
  /** The same placement and pins in another region's directory (its targets carry `region`). */
  inRegion?(region: string): ReplicaTargets;
  /** Node IDs holding each of `cids` in this directory's region (up to 16 each); absent where the directory cannot say. */
  holders?(cids: readonly string[], signal?: AbortSignal): Promise<Record<string, string[]>>;
}

/** R2 through the edge: the cold fallback. */
export interface ColdStore {
  put(cid: string, sealed: Uint8Array): Promise<void>;
  /** The sealed bytes (unverified), or null when R2 does not hold the chunk. */
  get(cid: string, signal: AbortSignal): Promise<Uint8Array | null>;
  /** Whether R2 holds the chunk (HEAD), so `--cold` re-puts skip uploads. Optional. */
  has?(cid: string): Promise<boolean>;
}

/**
 * Tells the directory this peer now provides chunks. The daemon batches;
 * wire either this or the ChunkStore "added" event to announcements, not
 * both (put and get call it for the chunks they add).
 */
export interface Announcer {
  announce(added: string[]): void;
}

/** A ChunkSource over a ChunkStore: this peer's own store, or (in tests) another one in-process. */
export function storeSource(id: string, store: ChunkStore, kind: SourceKind = "local"): ChunkSource {
  return {
    id,
    kind,
    async fetch(cid, signal) {
      signal.throwIfAborted();
      const bytes = await store.get(cid);
      signal.throwIfAborted();
      if (!bytes) throw new NotFoundError("chunk_not_found", `chunk ${cid} not found in ${id}`);
      return bytes;
    },
  };
}

/** A ColdStore as a ChunkSource for the scheduler (absent = NotFoundError). */
export function coldSource(cold: ColdStore, id = "cold"): ChunkSource {
  return {
    id,
    kind: "r2",
    async fetch(cid, signal) {
      const bytes = await cold.get(cid, signal);
      if (!bytes) throw new NotFoundError("chunk_not_found", `chunk ${cid} is not in cold storage`);
      return bytes;
    },
  };
}
