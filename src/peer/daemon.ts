/**
 * The peer daemon (`peercloud peer start`): one process per home that stores
 * and serves chunks and keeps this peer present in its region directory.
 *
 * It wires long-lived parts together, it decides little itself:
 *  - the home's lock (peer.pid) for its lifetime, then the chunk store
 *    (storage limit) and the TransferServer on the configured port;
 *  - the DirectoryConnection (reconnects, pings, status reports with load,
 *    free bytes and capacity from load-report.ts, full inventory on every
 *    connect); the store's
 *    added/removed events are its announcements — every chunk that appears
 *    (put, get, a replica pushed by another peer) and every eviction — for
 *    peers with the service role (the directory takes no others');
 *  - certificate renewal before expiry (certificate-renewal.ts; config.json
 *    rewritten atomically, the clients read the certificate through getters);
 *  - a periodic scrub that re-hashes the store (its removals are announced);
 *  - for service peers, the repair worker (repair-worker.ts) that runs the
 *    directory's repair jobs, at most params.repairJobsPerPeer at once, and
 *    the directory's `trim` requests (surplus replicas are deleted, and the
 *    store's removal events announce it), and its `audit` challenges
 *    (audit-responder.ts: a proof over a random range of a held chunk);
 *  - the control socket (control-server.ts) running put/get/status/ls/unpin
 *    for the CLI, with put/get wired to the network through
 *    network-adapters.ts (the socket while open, HTTP otherwise).
 * `stop()` (SIGINT/SIGTERM) closes everything in reverse and removes
 * peer.pid, daemon.json and the socket. After a crash or SIGKILL those
 * files stay, but the next start treats a pid file without its process as
 * stale and removes a leftover socket before listening: nothing blocks a
 * restart.
 */
import { statfs } from "node:fs/promises";
import { networkInterfaces } from "node:os";
import { fromBase64Url } from "../core/bytes.js";
import { isPeercloudError, PeercloudError } from "../core/errors.js";
import { DEFAULT_PARAMS, type NetworkParams } from "../core/params.js";
import { storesChunks } from "../core/roles.js";
import { CertificateRenewer } from "./certificate-renewal.js";
import { ChunkStore } from "./chunk-store.js";
import { ControlServer, controlSocketPathFor } from "./control-server.js";
import { DirectoryConnection, type StatusReport as DirectoryStatus } from "./directory-connection.js";
import { EdgeClient } from "./edge-client.js";
import type { PeerConfig, PeerHome } from "./home.js";
import { Library } from "./library.js";
import { LoadReporter } from "./load-report.js";
import { httpDirectory, networkDeps, otherRegionsFetcher, socketDirectory } from "./network-adapters.js";
import { LocalOperations, type DaemonState } from "./operations.js";
import { answerAudit } from "./audit-responder.js";
import { RepairWorker } from "./repair-worker.js";
import { TransferClient } from "./transfer-client.js";
import { TransferServer } from "./transfer-server.js";
import { SwarmBoard } from "./swarm.js";
import { ArrivingChunks } from "./arriving-chunks.js";
import { RegionQualityMeter } from "./region-quality.js";
import { UploadLimiter } from "./upload-limiter.js";

export interface PeerDaemonOptions {
  home: PeerHome;
  /** Override config.json's port / host / advertised URL / storage limit for this run. */
  port?: number;
  host?: string;
  advertiseUrl?: string;
  storageLimitBytes?: number;
  /** Most bytes per second the transfer server sends, all peers together. Default: unlimited. */
  maxUploadBytesPerSecond?: number;
  /** Time between scrubs of the whole store. Default config.scrubIntervalMs, else 6 h. */
  scrubIntervalMs?: number;
  /** Notable events (connection changes, renewals, scrubs, warnings), for logs. */
  onEvent?: (event: DaemonEvent) => void;
}

export interface DaemonEvent {
  event: string;
  message?: string;
  [field: string]: unknown;
}

export interface DaemonInfoView {
  nodeId: string;
  region: string;
  transferUrl: string;
  controlSocket: string;
  storageLimitBytes: number | null;
}

export const DEFAULT_SCRUB_INTERVAL_MS = 6 * 3600_000;
const DEFAULT_HOST = "0.0.0.0";

/** The URL other peers reach this one at: the listen address, or for a wildcard the first external IPv4. */
export function advertisedUrl(host: string, port: number): string {
  let address = host;
  if (host === "0.0.0.0" || host === "::") {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === "IPv4" && !i.internal);
    address = external?.address ?? "127.0.0.1";
  }
  return `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
}

export class PeerDaemon {
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;
  private stopping: Promise<void> | null = null;
  private scrubTimer: NodeJS.Timeout | null = null;
  private readonly scrubAbort = new AbortController();
  private readonly startedAtMs = Date.now();
  private renewer: CertificateRenewer | null = null;
  private conn: DirectoryConnection | null = null;
  private repair: RepairWorker | null = null;
  private control: ControlServer | null = null;
  private transferServer: TransferServer | null = null;
  private transferClient: TransferClient | null = null;
  private store: ChunkStore | null = null;
  private loadReporter: LoadReporter | null = null;
  /** What this daemon's downloads measured of each region's sources, sent with the status reports. */
  private readonly regionQuality = new RegionQualityMeter();
  private transferUrl = "";

  private constructor(
    private readonly options: PeerDaemonOptions,
    private config: PeerConfig,
  ) {
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
  }

  /** Loads the home, claims it, starts every part; on any failure undoes what was started. */
  static async start(options: PeerDaemonOptions): Promise<PeerDaemon> {
    const { config, identity } = await options.home.load();
    await options.home.acquirePidFile();
    const daemon = new PeerDaemon(options, config);
    try {
      await daemon.boot(identity.secretKey);
      return daemon;
    } catch (error) {
      await daemon.stop();
      throw error;
    }
  }

  info(): DaemonInfoView {
    return {
      nodeId: this.config.nodeId,
      region: this.config.region,
      transferUrl: this.transferUrl,
      controlSocket: this.control?.socketPath ?? "",
      storageLimitBytes: Number.isFinite(this.store?.limitBytes ?? Infinity) ? this.store!.limitBytes : null,
    };
  }

  /** Graceful stop; idempotent. Resolves once every file the daemon owns is released. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private emit(event: DaemonEvent): void {
    this.options.onEvent?.(event);
  }

  private async boot(secretKey: Uint8Array): Promise<void> {
    const { home } = this.options;
    const certificate = () => this.config.certificate;
    const edge = new EdgeClient({ edgeUrl: this.config.edgeUrl, identity: { secretKey }, certificate });
    const params = await this.networkParams(edge);
    if (this.config.certificateExpiresAtMs <= Date.now()) {
      throw new PeercloudError("certificate_expired", "this peer's certificate has expired; re-join with `peercloud init --rejoin --edge URL --join-token TOKEN`", 401);
    }

    const limitBytes = this.options.storageLimitBytes ?? this.config.storageLimitBytes;
    this.store = await ChunkStore.open(home.storeDir, { limitBytes, maxChunkBytes: params.maxChunkBytes });
    const store = this.store;

    const host = this.options.host ?? this.config.host ?? DEFAULT_HOST;
    const port = this.options.port ?? this.config.port;
    // Downloads run in this process, so other downloaders of the same file can see their progress here.
    const swarmBoard = new SwarmBoard();
    // ... and chunks they are receiving are served to those others before they are complete.
    const arrivals = new ArrivingChunks();
    const uploadRate = this.options.maxUploadBytesPerSecond;
    const uploadLimiter = uploadRate ? new UploadLimiter({ bytesPerSecond: uploadRate }) : undefined;
    this.transferServer = new TransferServer({
      store,
      networkPublicKey: fromBase64Url(this.config.network.publicKey),
      host,
      port,
      maxChunkBytes: params.maxChunkBytes,
      signatureMaxSkewMs: params.signatureMaxSkewMs,
      swarm: swarmBoard,
      arrivals,
      ...(uploadLimiter ? { uploadLimiter } : {}),
    });
    this.transferServer.on("warning", (w) => this.emit({ event: "transfer_warning", code: w.code, message: w.message, status: w.status }));
    const bound = await this.transferServer.listen().catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") throw new PeercloudError("port_in_use", `port ${port} on ${host} is already in use; choose another with --port`, 409);
      if (error.code === "EADDRNOTAVAIL") throw new PeercloudError("bad_host", `cannot listen on ${host}: no such local address`, 400);
      throw error;
    });
    this.transferUrl = this.options.advertiseUrl ?? this.config.advertiseUrl ?? advertisedUrl(host, bound.port);

    this.transferClient = new TransferClient({ secretKey, certificate, maxChunkBytes: params.maxChunkBytes });
    this.loadReporter = new LoadReporter({ server: this.transferServer, client: this.transferClient, uploadLimiter, repairJobs: () => this.repair?.active ?? 0 });
    this.loadReporter.start();
    // Only service peers provide chunks to others; the directory refuses announcements from the rest.
    const provides = storesChunks(this.config.roles);
    const conn = new DirectoryConnection({
      edgeUrl: this.config.edgeUrl,
      region: this.config.region,
      secretKey,
      certificate,
      getStatus: () => this.directoryStatus(),
      getInventory: provides ? () => Array.from(store.list(), (c) => c.cid) : undefined,
    });
    this.conn = conn;
    conn.on("welcome", () => this.emit({ event: "directory_connected", message: `region ${this.config.region}` }));
    conn.on("disconnected", (d) => this.emit({ event: "directory_disconnected", message: `${d.reason || `code ${d.code}`}; retrying in ${Math.round(d.retryInMs / 100) / 10} s`, ...d }));
    conn.on("rejected", (r) => this.emit({ event: "directory_rejected", message: `${r.message} (${r.code})`, status: r.status, code: r.code }));
    conn.on("warning", (w) => this.emit({ event: "directory_warning", ...w }));
    if (provides) {
      store.on("added", (cid) => conn.announce([cid]));
      store.on("removed", (cid) => conn.announce([], [cid]));
      // Only storage peers receive repair jobs: they copy a replica here from a holder or R2.
      const transfer = this.transferClient;
      this.repair = new RepairWorker({
        store,
        fetchFromPeer: (address, cid, signal) => transfer.getChunk(address, cid, { signal }),
        fetchFromR2: (cid, signal) => edge.getChunkFromR2(cid, { signal }),
        fetchFromOtherRegions: otherRegionsFetcher(edge, transfer, this.config.region, this.config.nodeId),
        announce: (cid) => {
          conn.announce([cid]);
          return conn.whenAnnounced();
        },
        report: (result) => void conn.reportRepair(result),
        concurrency: params.repairJobsPerPeer,
        onEvent: (e) => this.emit({ ...e, message: e.event === "repair_done" ? `${e.cid} from ${e.source.slice(0, 16)} in ${e.durationMs} ms` : `${e.cid}: ${e.code}: ${e.message}` }),
      });
      const repair = this.repair;
      conn.on("repair", (job) => repair.handle(job));
      // Trim: the directory found these replicas surplus (others hold enough); deleting them announces the removal.
      conn.on("trim", (cids) => {
        void (async () => {
          let deleted = 0;
          for (const cid of cids) if (await store.delete(cid).catch(() => false)) deleted++;
          this.emit({ event: "trimmed", message: `deleted ${deleted} surplus replica(s) the directory asked for`, cids: cids.length, deleted });
        })();
      });
      // Release: nobody pins these any more; they stay as evictable cache (served while they last).
      conn.on("release", (cids) => {
        void (async () => {
          let released = 0;
          for (const cid of cids) if (await store.unpin(cid).catch(() => false)) released++;
          this.emit({ event: "released", message: `unpinned ${released} chunk(s) nobody pins any more`, cids: cids.length, released });
        })();
      });
      // Audits: prove possession of a chunk (audit-responder.ts); a corrupt copy is removed and reported as such.
      conn.on("audit", (audit) => {
        void answerAudit(store, audit).then((answer) => {
          conn.reportAudit(answer);
          if (!answer.ok) this.emit({ event: "audit_failed", message: `${answer.cid}: ${answer.code}: ${answer.message}`, cid: answer.cid, code: answer.code });
        });
      });
    }
    conn.start();

    const network = {
      ...networkDeps({ directory: socketDirectory(conn, httpDirectory(edge, this.config.region)), transfer: this.transferClient, edge, selfNodeId: this.config.nodeId }),
      // Only a peer that serves chunks can trade them.
      ...(provides ? { swarmBoard, arrivals } : {}),
      regionQuality: this.regionQuality,
    };
    const ops = new LocalOperations({ home, config: () => this.config, store, library: new Library(home.dir), network, daemon: () => this.state() });
    this.control = new ControlServer(ops, controlSocketPathFor(home.dir, home.controlSocketPath), (error) =>
      this.emit({ event: "control_error", message: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
    await this.control.listen();

    this.renewer = new CertificateRenewer({
      expiresAtMs: () => this.config.certificateExpiresAtMs,
      renewBeforeMs: params.certificateRenewBeforeMs,
      renew: () => edge.renew(),
      install: async (renewed) => {
        const next = { ...this.config, certificate: renewed.certificate, certificateExpiresAtMs: renewed.certificateExpiresAtMs };
        await home.writeConfig(next);
        this.config = next;
      },
      onEvent: (e) => this.emit({ ...e }),
    });
    this.renewer.start();
    this.scheduleScrub(this.options.scrubIntervalMs ?? this.config.scrubIntervalMs ?? DEFAULT_SCRUB_INTERVAL_MS);

    await home.writeDaemonInfo({ pid: process.pid, controlSocket: this.control.socketPath, transferUrl: this.transferUrl, nodeId: this.config.nodeId, startedAtMs: this.startedAtMs });
  }

  /** The edge's parameters; a peer keeps working on the defaults when the edge is briefly unreachable. */
  private async networkParams(edge: EdgeClient): Promise<NetworkParams> {
    try {
      return { ...DEFAULT_PARAMS, ...(await edge.network()).params };
    } catch (error) {
      this.emit({ event: "edge_unreachable", message: `${(error as Error).message}; using default network parameters` });
      return DEFAULT_PARAMS;
    }
  }

  private state(): DaemonState {
    return {
      pid: process.pid,
      startedAtMs: this.startedAtMs,
      transferUrl: this.transferUrl,
      directory: this.conn?.state ?? "closed",
      transfer: this.transferServer!.stats(),
    };
  }

  private async directoryStatus(): Promise<DirectoryStatus> {
    const stats = this.store!.stats();
    let diskFreeBytes = Number.MAX_SAFE_INTEGER;
    try {
      const fs = await statfs(this.store!.rootDir);
      diskFreeBytes = fs.bavail * fs.bsize;
    } catch {
      // keep the store's own figure
    }
    const freeBytes = Math.max(0, Math.min(diskFreeBytes, stats.freeBytes, Number.MAX_SAFE_INTEGER));
    const regionQuality = this.regionQuality.report();
    const reporter = this.loadReporter!;
    return {
      load: reporter.load(),
      freeBytes,
      capacity: { storageBytes: Math.min(Number.MAX_SAFE_INTEGER, stats.usedBytes + freeBytes), ...reporter.capacity() },
      addresses: [this.transferUrl],
      ...(regionQuality ? { regionQuality } : {}),
    };
  }

  private scheduleScrub(intervalMs: number): void {
    this.scrubTimer = setTimeout(async () => {
      try {
        const result = await this.store!.scrub({ signal: this.scrubAbort.signal });
        this.emit({ event: "scrub", message: `checked ${result.checked} chunk(s), removed ${result.corrupt.length} corrupt`, checked: result.checked, corrupt: result.corrupt });
      } catch (error) {
        if (!this.scrubAbort.signal.aborted) this.emit({ event: "scrub_failed", message: (error as Error).message });
      }
      if (!this.scrubAbort.signal.aborted) this.scheduleScrub(intervalMs);
    }, intervalMs);
    this.scrubTimer.unref();
  }

  private async shutdown(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    };
    this.renewer?.stop();
    this.loadReporter?.stop();
    this.repair?.close();
    this.scrubAbort.abort();
    if (this.scrubTimer) clearTimeout(this.scrubTimer);
    await step(() => this.control?.close());
    await step(() => this.conn?.close());
    await step(() => this.transferServer?.close());
    await step(() => this.transferClient?.close());
    await step(() => this.store?.close());
    await step(() => this.options.home.removeRuntimeFiles());
    this.resolveStopped();
    for (const error of errors) if (!isPeercloudError(error)) this.emit({ event: "stop_error", message: (error as Error).message });
  }
}
