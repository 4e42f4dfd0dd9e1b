/**
 * The six things a user asks of a peer home — put, get, status, ls, pin, unpin —
 * as one interface with two implementations: `LocalOperations` (here) runs
 * them in this process over a chunk store and the network adapters it is
 * given (the daemon's long-lived ones, or a one-shot client session's), and
 * `ControlClient` (control-client.ts) forwards them to a running daemon. The
 * CLI and the library API (src/index.ts) only see `PeerOperations`, so a
 * command behaves the same whether or not a daemon runs.
 */
import type { Writable } from "node:stream";
import { basename, resolve } from "node:path";
import { PeercloudError } from "../core/errors.js";
import { formatLink, parseLink } from "../core/link.js";
import type { ChunkStore, ChunkStoreStats } from "./chunk-store.js";
import { collectTreeCids } from "./content-tree.js";
import { getLink, type GetResult } from "./download.js";
import type { PeerConfig, PeerHome } from "./home.js";
import { putPath, type PutResult } from "./ingest.js";
import type { Library, LibraryEntry } from "./library.js";
import type { ProgressCallback } from "./progress.js";
import type { Announcer, ColdStore, ProviderDirectory, ReplicaTargets } from "./sources.js";
import type { TransferStats } from "./transfer-counters.js";
import type { RegionQualityMeter } from "./region-quality.js";
import type { SwarmBoard } from "./swarm.js";
import type { ArrivingChunks } from "./arriving-chunks.js";
import { fromBase64Url } from "../core/bytes.js";
import { DEFAULT_PARAMS } from "../core/params.js";
import { applyPolicy, type PolicyResult } from "./policy.js";
import { neededElsewhere, pinInRegion, sharedNeeds, type SharedNeeds } from "./pin-ledger.js";
import { otherRegionsOnce, validatePolicy, type OtherRegions } from "./region-spread.js";

export type { PutResult } from "./ingest.js";
export type { GetResult } from "./download.js";

export interface PutRequest {
  /** Absolute path (the CLI resolves it against its own working directory). */
  path: string;
  replicas?: number;
  /** Regions the replicas must span (default 1). */
  minRegions?: number;
  cold?: boolean;
  private?: boolean;
}

/** A new replica policy for content this home put (`peercloud pin`); absent fields keep the recorded policy. */
export interface PinRequest {
  link: string;
  replicas?: number;
  minRegions?: number;
}

export interface PinResult extends PolicyResult {
  cid: string;
  name: string;
  /** Objects (manifests and chunks) re-pinned. */
  cids: number;
}

export interface GetRequest {
  link: string;
  /** Absolute output path (an existing directory receives `<output>/<name>`); absent = the content's name in the working directory of the process that runs the get. */
  output?: string;
  /** Write the file to the sink in order instead of to `output`. */
  stream?: boolean;
}

export interface OperationHooks {
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  onWarning?: (message: string) => void;
}

export interface DaemonState {
  pid: number;
  startedAtMs: number;
  transferUrl: string;
  /** The region directory WebSocket's state (e.g. "open", "connecting"). */
  directory: string;
  transfer: TransferStats;
}

export interface StatusReport {
  home: string;
  nodeId: string;
  region: string;
  roles: string[];
  hostId: string | null;
  edgeUrl: string;
  networkId: string;
  certificateExpiresAtMs: number;
  /** null when no daemon runs (the command ran in-process). */
  daemon: DaemonState | null;
  /** limitBytes/freeBytes are null when unlimited (JSON has no Infinity). */
  store: Omit<ChunkStoreStats, "limitBytes" | "freeBytes"> & { limitBytes: number | null; freeBytes: number | null };
}

export interface UnpinResult {
  cid: string;
  name: string;
  /** CIDs released (manifests and chunks). */
  cids: number;
  /** Whether the directory was told (replication factor 0). */
  directoryUnpinned: boolean;
}

export interface PeerOperations {
  put(request: PutRequest, hooks?: OperationHooks): Promise<PutResult>;
  /** With `request.stream`, the bytes go to `sink` in order. */
  get(request: GetRequest, hooks?: OperationHooks, sink?: Writable): Promise<GetResult>;
  status(): Promise<StatusReport>;
  ls(): Promise<LibraryEntry[]>;
  unpin(link: string, hooks?: OperationHooks): Promise<UnpinResult>;
  /** Changes the replica policy (replicas, regions) of content this home put. */
  pin(request: PinRequest, hooks?: OperationHooks): Promise<PinResult>;
  close(): Promise<void>;
}

/** The network as put/get see it; any part may be missing (then that step is skipped). */
export interface NetworkDeps {
  providers?: ProviderDirectory;
  targets?: ReplicaTargets;
  cold?: ColdStore;
  announcer?: Announcer;
  /** The daemon's downloads as shown to other peers (swarm.ts); one-shot sessions have none. */
  swarmBoard?: SwarmBoard;
  /** Chunks the daemon's downloads are receiving, relayed to their swarms (arriving-chunks.ts). */
  arrivals?: ArrivingChunks;
  /** Where downloads leave their measurements of each region's sources (the daemon reports them to the directory). */
  regionQuality?: RegionQualityMeter;
}

export interface LocalOperationsContext {
  home: PeerHome;
  /** A function: the daemon rewrites the config when it renews its certificate. */
  config: () => PeerConfig;
  store: ChunkStore;
  library: Library;
  network: NetworkDeps;
  daemon?: () => DaemonState;
}

export class LocalOperations implements PeerOperations {
  constructor(private readonly ctx: LocalOperationsContext) {}

  async put(request: PutRequest, hooks: OperationHooks = {}): Promise<PutResult> {
    const config = this.ctx.config();
    const path = resolve(request.path);
    const result = await putPath(
      path,
      { replicas: request.replicas, minRegions: request.minRegions, cold: request.cold, private: request.private, signal: hooks.signal, onProgress: hooks.onProgress, onWarning: hooks.onWarning },
      {
        store: this.ctx.store,
        convergenceSecret: fromBase64Url(config.convergenceSecret),
        ...this.ctx.network,
        pinNeeds: async (cids, rootCid, otherRegions) => this.needsOf(await this.ctx.library.list(), rootCid, cids, otherRegions),
      },
    );
    await this.ctx.library.record({
      cid: result.cid,
      link: result.link,
      name: basename(path),
      bytes: result.bytes,
      op: "put",
      replicas: request.replicas ?? result.replicasAchieved,
      ...(request.minRegions !== undefined && request.minRegions > 1 ? { minRegions: request.minRegions } : {}),
      cold: request.cold === true,
      private: request.private === true,
      path,
      atMs: Date.now(),
    });
    return result;
  }

  async get(request: GetRequest, hooks: OperationHooks = {}, sink?: Writable): Promise<GetResult> {
    const link = parseLink(request.link);
    if (request.stream && !sink) throw new PeercloudError("usage", "a streamed get needs a sink to write to", 400);
    const result = await getLink(
      request.link,
      {
        output: request.stream ? "-" : request.output,
        stream: request.stream === true,
        writable: request.stream ? sink : undefined,
        signal: hooks.signal,
        onProgress: hooks.onProgress,
        onWarning: hooks.onWarning,
      },
      { store: this.ctx.store, ...this.ctx.network },
    );
    await this.ctx.library.record({
      cid: link.cid,
      link: formatLink(link),
      name: result.path === "-" ? link.cid : basename(result.path),
      bytes: result.bytes,
      op: "get",
      ...(result.path === "-" ? {} : { path: result.path }),
      atMs: Date.now(),
    });
    return result;
  }

  async status(): Promise<StatusReport> {
    const config = this.ctx.config();
    const stats = this.ctx.store.stats();
    const finite = (n: number) => (Number.isFinite(n) ? n : null);
    return {
      home: this.ctx.home.dir,
      nodeId: config.nodeId,
      region: config.region,
      roles: config.roles,
      hostId: config.hostId ?? null,
      edgeUrl: config.edgeUrl,
      networkId: config.network.id,
      certificateExpiresAtMs: config.certificateExpiresAtMs,
      daemon: this.ctx.daemon?.() ?? null,
      store: { ...stats, limitBytes: finite(stats.limitBytes), freeBytes: finite(stats.limitBytes) === null ? null : stats.freeBytes },
    };
  }

  async ls(): Promise<LibraryEntry[]> {
    return this.ctx.library.list();
  }

  /**
   * Releases everything a link stands for: unpinned locally (the store may
   * evict it when it needs room) and replication factor 0 at the directory.
   * The manifests must be in this home's store (the publisher's home).
   */
  async unpin(linkText: string, hooks: OperationHooks = {}): Promise<UnpinResult> {
    const link = parseLink(linkText);
    const store = this.ctx.store;
    const tree = await this.localTree(link, "unpin", hooks.signal);
    const targets = this.ctx.network.targets;
    const otherRegions = otherRegionsOnce(targets, hooks.signal);
    // Chunks other content of this home still keeps stay pinned, here and (at that content's shares) in the directories.
    const needs = await this.needsOf(await this.ctx.library.list(), link.cid, new Set(tree.cids), otherRegions);
    for (const cid of tree.cids) if (!neededElsewhere(needs, cid)) await store.unpin(cid);
    let directoryUnpinned = false;
    if (targets) {
      await pinInRegion(targets, null, tree.cids, tree.sealedSizes, 0, needs);
      // A multi-region policy pinned shares elsewhere too; withdrawing where there was none is a no-op.
      const others = targets.inRegion ? await otherRegions() : [];
      for (const region of others) await pinInRegion(targets.inRegion!(region), region, tree.cids, tree.sealedSizes, 0, needs);
      directoryUnpinned = true;
    }
    await this.ctx.library.markUnpinned(link.cid);
    return { cid: link.cid, name: tree.name, cids: tree.cids.length, directoryUnpinned };
  }

  async pin(request: PinRequest, hooks: OperationHooks = {}): Promise<PinResult> {
    const link = parseLink(request.link);
    const entries = await this.ctx.library.list();
    const entry = entries.find((e) => e.cid === link.cid && e.op === "put");
    const recorded = entry?.replicas !== undefined && entry.replicas > 0 ? entry.replicas : undefined;
    const policy = validatePolicy(request.replicas ?? recorded ?? DEFAULT_PARAMS.defaultReplicationFactor, request.minRegions ?? entry?.minRegions ?? 1);
    const targets = this.ctx.network.targets;
    if (!targets) throw new PeercloudError("directory_unavailable", "changing a replica policy needs the region directory, which this home cannot reach", 503);
    const tree = await this.localTree(link, "change the policy of it", hooks.signal);
    const otherRegions = otherRegionsOnce(targets, hooks.signal);
    const needs = await this.needsOf(entries, link.cid, new Set(tree.cids), otherRegions);
    const result = await applyPolicy(tree, policy, { store: this.ctx.store, targets }, needs, otherRegions, hooks);
    await this.ctx.library.setPolicy(link.cid, policy.replicas, policy.minRegions);
    return { cid: link.cid, name: tree.name, cids: tree.cids.length, ...result };
  }

  /** What the other content this home keeps pinned (library `entries`) needs of `cids` (pin-ledger.ts). */
  private async needsOf(entries: readonly LibraryEntry[], exceptCid: string, cids: ReadonlySet<string>, otherRegions: OtherRegions): Promise<SharedNeeds> {
    if (!entries.some((e) => e.op === "put" && e.cid !== exceptCid && (e.replicas ?? 0) > 0)) return new Map();
    const others = entries.some((e) => (e.minRegions ?? 1) > 1) ? await otherRegions() : [];
    return sharedNeeds(entries, exceptCid, cids, this.ctx.store, others);
  }

  /** Every object of the content, from the manifests in this home's store (the publisher's home has them all). */
  private localTree(link: { cid: string; key: Uint8Array }, what: string, signal?: AbortSignal) {
    return collectTreeCids(link.cid, link.key, async (cid) => {
      signal?.throwIfAborted();
      const sealed = await this.ctx.store.get(cid);
      if (!sealed) throw new PeercloudError("manifest_not_local", `manifest ${cid} is not in this home's store; ${what} from the home that put the content`, 404);
      return sealed;
    });
  }

  async close(): Promise<void> {}
}
