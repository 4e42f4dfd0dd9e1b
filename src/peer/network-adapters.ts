/**
 * Adapters from the network clients to the small interfaces put and get
 * depend on (sources.ts): provider lookups and replica placement through the
 * region directory, chunk transfers through the TransferClient, the cold
 * store through the edge's R2 routes.
 *
 * The directory is reached two ways. The daemon has its WebSocket
 * (DirectoryConnection) and uses it while it is open; when it is not (still
 * connecting, or reconnecting after a drop) or a request over it fails, the
 * same question goes to the edge's HTTP routes (EdgeClient), so a put or get
 * never waits for a reconnect. A one-shot CLI command has only HTTP. Lookups
 * over the socket see this region; an empty answer is asked again over HTTP
 * across all regions before the download falls back to R2.
 *
 * Provider lookups are coalesced (ProviderLookupBatcher): a get asks one
 * question per chunk, ~1,000 for a 1 GiB file, so concurrent lookups are
 * collected for a few milliseconds (or until 64 CIDs wait) and sent as one
 * batched request; each caller still gets its own answer, error and abort.
 * If the batched form fails (an older edge, a dropped request), each
 * caller falls back to the single-CID lookup.
 */
import { PeercloudError } from "../core/errors.js";
import { MAX_PROVIDER_BATCH_CIDS, type PeerInfo, type ProviderInfo } from "../core/messages.js";
import type { DirectoryConnection } from "./directory-connection.js";
import type { EdgeClient } from "./edge-client.js";
import type { NetworkDeps } from "./operations.js";
import type { ChunkSource, ColdStore, ProviderDirectory, ReplicaTarget, ReplicaTargets } from "./sources.js";
import type { TransferClient } from "./transfer-client.js";
import { abortable } from "../core/abort.js";
import { rankRegions } from "../core/region-rank.js";
import { MAX_REPLICAS } from "./region-spread.js";

/** The directory questions put, get and unpin ask. */
export interface DirectoryApi {
  /** The region whose directory answers. */
  readonly region: string;
  findProviders(cid: string, signal: AbortSignal): Promise<ProviderInfo[]>;
  /** The same for up to MAX_PROVIDER_BATCH_CIDS CIDs at once, keyed by CID; without it lookups go one by one. */
  findProvidersBatch?(cids: string[], signal: AbortSignal): Promise<Record<string, ProviderInfo[]>>;
  place(count: number, exclude: string[], sizeBytes: number): Promise<PeerInfo[]>;
  pin(cids: string[], replicas: number, sizeBytes: number[]): Promise<void>;
}

/** The edge's HTTP routes for this peer's region. */
export function httpDirectory(edge: EdgeClient, region: string): DirectoryApi {
  return {
    region,
    findProviders: (cid, signal) => edge.findProviders(region, cid, { signal, scope: "all" }),
    findProvidersBatch: (cids, signal) => edge.findProvidersBatch(region, cids, { signal, scope: "all" }),
    place: (count, exclude, sizeBytes) => edge.place(region, count, exclude, sizeBytes),
    pin: async (cids, replicas, sizeBytes) => {
      await edge.pin(region, cids, replicas, sizeBytes);
    },
  };
}

/** The WebSocket while it is open, else (or when it fails) HTTP. */
export function socketDirectory(conn: DirectoryConnection, http: DirectoryApi): DirectoryApi {
  const viaSocket = async <T>(ask: () => Promise<T>, fallback: () => Promise<T>): Promise<T> => {
    if (conn.state !== "open") return fallback();
    try {
      return await ask();
    } catch {
      return fallback();
    }
  };
  return {
    region: http.region,
    findProviders: async (cid, signal) => {
      const local = await viaSocket(
        () => abortable(conn.findProviders(cid), signal),
        () => http.findProviders(cid, signal),
      );
      return local.length > 0 ? local : http.findProviders(cid, signal).catch(() => local);
    },
    findProvidersBatch: async (cids, signal) => {
      const httpBatch = (list: string[]) => (http.findProvidersBatch ? http.findProvidersBatch(list, signal) : Promise.reject(new PeercloudError("unsupported", "no batched lookups over HTTP", 501)));
      const local = await viaSocket(
        () => abortable(conn.findProvidersBatch(cids), signal),
        () => httpBatch(cids),
      );
      // As for one CID: those nobody in this region holds are asked again over HTTP, across all regions.
      const empty = cids.filter((cid) => !local[cid]?.length);
      if (empty.length === 0) return local;
      const wider = await httpBatch(empty).catch(() => ({}) as Record<string, ProviderInfo[]>);
      const out = { ...local };
      for (const cid of empty) out[cid] = wider[cid]?.length ? wider[cid] : (local[cid] ?? []);
      return out;
    },
    place: (count, exclude, sizeBytes) =>
      viaSocket(
        () => conn.place(count, exclude, sizeBytes),
        () => http.place(count, exclude, sizeBytes),
      ),
    pin: (cids, replicas, sizeBytes) =>
      viaSocket(
        () => conn.pin(cids, replicas, sizeBytes),
        () => http.pin(cids, replicas, sizeBytes),
      ),
  };
}

export interface NetworkDepsInput {
  directory: DirectoryApi;
  transfer: TransferClient;
  edge: EdgeClient;
  /** Never offered as a provider or a replica target of itself. */
  selfNodeId: string;
  /** Coalescing of provider lookups (defaults below). */
  batching?: ProviderBatchingOptions;
}

/** ProviderDirectory, ReplicaTargets and ColdStore over the clients (no Announcer: see the daemon). */
export function networkDeps({ directory, transfer, edge, selfNodeId, batching }: NetworkDepsInput): NetworkDeps {
  const lookups = new ProviderLookupBatcher(directory, batching);
  const providers: ProviderDirectory = {
    async providers(cid, signal) {
      const found = (await lookups.find(cid, signal)).filter((info) => info.nodeId !== selfNodeId && info.state !== "dead");
      // Suspect holders (silent, or gone with a goodbye) only when no live one has the chunk: each costs a failed connection otherwise.
      const anyAlive = found.some((info) => info.state === "alive");
      const sources: ChunkSource[] = [];
      for (const info of found) {
        const address = transferAddress(info);
        if ((anyAlive && info.state !== "alive") || !address) continue;
        sources.push({
          id: info.nodeId,
          kind: "peer",
          region: info.region,
          fetch: (c, s, onFirstByte, options) => transfer.getChunk(address, c, { signal: s, onResponse: onFirstByte, deferToSwarm: options?.deferToSwarm, onBody: options?.onBody }),
          swarmView: (key, since, s) => transfer.swarmView(address, key, since, { signal: s }),
        });
      }
      return sources;
    },
  };
  const targets: ReplicaTargets = {
    ...replicaTargets(directory, transfer, selfNodeId),
    // Other regions nearest first by the home directory's estimates; its summary is only a hint, so a failure leaves the configured order.
    otherRegions: async (signal) => {
      const [network, summary] = await Promise.all([edge.network({ signal }), edge.regionSummary(directory.region, { signal }).catch(() => null)]);
      return rankRegions(directory.region, network.regions, summary?.regionQuality ?? []);
    },
    inRegion: (region) => ({
      ...replicaTargets(httpDirectory(edge, region), transfer, selfNodeId, region),
      holders: async (cids, signal) => {
        const out: Record<string, string[]> = {};
        for (let i = 0; i < cids.length; i += HOLDER_LOOKUP_BATCH) {
          const answer = await edge.findProvidersBatch(region, cids.slice(i, i + HOLDER_LOOKUP_BATCH), { signal, scope: "region", count: MAX_REPLICAS });
          // Alive only: a suspect holder may be gone, and seeding one copy too many is the safe mistake (trim takes it back).
          for (const [cid, list] of Object.entries(answer)) out[cid] = list.filter((p) => p.state === "alive").map((p) => p.nodeId);
        }
        return out;
      },
    }),
  };
  const cold: ColdStore = {
    async put(cid, sealed) {
      await edge.putChunkToR2(cid, sealed);
    },
    get: (cid, signal) => edge.getChunkFromR2(cid, { signal }),
    has: async (cid) => (await edge.headChunkInR2(cid)) !== null,
  };
  return { providers, targets, cold };
}

/** CIDs per holder lookup: small enough that the edge answers every one with up to MAX_REPLICAS holders (batchProviderCount). */
const HOLDER_LOOKUP_BATCH = 64;

/** Placement and pins at one region's directory; `region` is set on targets outside the home region. */
function replicaTargets(directory: DirectoryApi, transfer: TransferClient, selfNodeId: string, region?: string): Pick<ReplicaTargets, "place" | "pin"> {
  return {
    async place(count, exclude, sizeBytes) {
      const nodes = await directory.place(count, [...new Set([...exclude, selfNodeId])], sizeBytes);
      const chosen: ReplicaTarget[] = [];
      for (const info of nodes) {
        const address = transferAddress(info);
        if (info.nodeId === selfNodeId || !address) continue;
        chosen.push({
          id: info.nodeId,
          ...(region === undefined ? {} : { region }),
          push: async (cid, sealed) => {
            await transfer.putChunk(address, cid, sealed);
          },
          has: async (cid) => (await transfer.headChunk(address, cid)) !== null,
        });
      }
      return chosen;
    },
    pin: (cids, replicas, sizes) => directory.pin(cids, replicas, sizes),
  };
}

export interface ProviderBatchingOptions {
  /** How long a lookup waits for others to share its request. Default 2 ms: far below a chunk transfer. */
  windowMs?: number;
  /** Distinct CIDs per request; a batch this full goes at once. Default 64 (at most MAX_PROVIDER_BATCH_CIDS). */
  maxBatch?: number;
}

interface Waiter {
  signal: AbortSignal;
  done: boolean;
  resolve(providers: ProviderInfo[]): void;
  reject(error: unknown): void;
  /** Set while the waiter's batch is in flight: tells the batch one caller fewer waits. */
  leftBatch?: () => void;
}

/**
 * Coalesces concurrent `find(cid)` calls into batched lookups
 * (DirectoryApi.findProvidersBatch): calls wait up to `windowMs` for company,
 * or until `maxBatch` distinct CIDs wait; one request then answers them all.
 * A caller's abort rejects that caller only (and drops it from a batch not
 * yet sent); a batch whose callers have all gone is aborted. A failed batch
 * sends each remaining caller down the single-CID path, with its own signal.
 */
export class ProviderLookupBatcher {
  private queue = new Map<string, Waiter[]>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly windowMs: number;
  private readonly maxBatch: number;

  constructor(
    private readonly directory: DirectoryApi,
    options: ProviderBatchingOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 2;
    this.maxBatch = options.maxBatch ?? 64;
    if (!Number.isSafeInteger(this.maxBatch) || this.maxBatch < 1 || this.maxBatch > MAX_PROVIDER_BATCH_CIDS) {
      throw new RangeError(`ProviderLookupBatcher: maxBatch must be an integer from 1 to ${MAX_PROVIDER_BATCH_CIDS}, got ${options.maxBatch}`);
    }
    if (!(this.windowMs >= 0)) throw new RangeError(`ProviderLookupBatcher: windowMs must be ≥ 0, got ${options.windowMs}`);
  }

  find(cid: string, signal: AbortSignal): Promise<ProviderInfo[]> {
    if (!this.directory.findProvidersBatch) return this.directory.findProviders(cid, signal);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<ProviderInfo[]>((resolve, reject) => {
      const finish = (): boolean => {
        if (waiter.done) return false;
        waiter.done = true;
        signal.removeEventListener("abort", onAbort);
        waiter.leftBatch?.();
        return true;
      };
      const waiter: Waiter = {
        signal,
        done: false,
        resolve: (providers) => finish() && resolve(providers),
        reject: (error) => finish() && reject(error),
      };
      const onAbort = () => {
        this.unqueue(cid, waiter);
        waiter.reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const waiting = this.queue.get(cid);
      if (waiting) waiting.push(waiter);
      else this.queue.set(cid, [waiter]);
      if (this.queue.size >= this.maxBatch) this.flush();
      else if (this.timer === null) {
        this.timer = setTimeout(() => this.flush(), this.windowMs);
        this.timer.unref?.();
      }
    });
  }

  /** Sends everything waiting as one batch now. */
  flush(): void {
    this.clearTimer();
    if (this.queue.size === 0) return;
    const batch = this.queue;
    this.queue = new Map();
    void this.run(batch);
  }

  private async run(batch: Map<string, Waiter[]>): Promise<void> {
    const controller = new AbortController();
    let waiting = 0;
    for (const waiters of batch.values()) {
      for (const waiter of waiters) {
        waiting++;
        waiter.leftBatch = () => {
          if (--waiting === 0) controller.abort(new PeercloudError("lookup_abandoned", "every caller of this batched lookup has gone", 499));
        };
      }
    }
    let answer: Record<string, ProviderInfo[]>;
    try {
      answer = await this.directory.findProvidersBatch!([...batch.keys()], controller.signal);
    } catch {
      if (controller.signal.aborted) return; // nobody is left to answer
      for (const [cid, waiters] of batch) {
        for (const waiter of waiters) {
          if (waiter.done) continue;
          waiter.leftBatch = undefined;
          this.directory.findProviders(cid, waiter.signal).then(waiter.resolve, waiter.reject);
        }
      }
      return;
    }
    for (const [cid, waiters] of batch) for (const waiter of waiters) waiter.resolve(answer[cid] ?? []);
  }

  /** Drops an aborted caller from the batch being collected (a sent batch just loses a listener). */
  private unqueue(cid: string, waiter: Waiter): void {
    const waiters = this.queue.get(cid);
    if (!waiters?.includes(waiter)) return;
    waiters.splice(waiters.indexOf(waiter), 1);
    if (waiters.length === 0) this.queue.delete(cid);
    if (this.queue.size === 0) this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * Repair's last resort (repair-worker.ts): the sealed chunk from a live
 * holder in another region, tried in the edge's order (nearest first);
 * null when no other region lists one. Unverified, like every source.
 */
export function otherRegionsFetcher(edge: EdgeClient, transfer: TransferClient, homeRegion: string, selfNodeId: string): (cid: string, signal: AbortSignal) => Promise<Uint8Array | null> {
  return async (cid, signal) => {
    const holders = (await edge.findProviders(homeRegion, cid, { signal, scope: "all" })).filter((p) => p.region !== homeRegion && p.state === "alive" && p.nodeId !== selfNodeId);
    let last: unknown = null;
    for (const holder of holders) {
      const address = transferAddress(holder);
      if (!address) continue;
      try {
        return await transfer.getChunk(address, cid, { signal });
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        last = error;
      }
    }
    if (last !== null) throw last;
    return null;
  };
}

/** The first address the TransferClient speaks (http/https). */
export function transferAddress(info: Pick<PeerInfo, "addresses">): string | null {
  return info.addresses.find((a) => a.startsWith("http://") || a.startsWith("https://")) ?? null;
}
