/**
 * The peer's one WebSocket to its region directory
 * (`<edge>/v1/regions/<region>/connect`, docs/api.md), kept open for as long
 * as the daemon runs.
 *
 * - The upgrade request is a signed request (fresh nonce per attempt: the
 *   edge claims it). Refused upgrades (an expired certificate, an unknown
 *   peer) are reported as `rejected` events so the daemon can renew or
 *   re-bootstrap, and retried.
 * - Reconnects use exponential backoff with jitter (0.5 s doubling to 30 s),
 *   forever, until `close()`. Backoff resets once a connection is welcomed.
 * - Liveness: the text "ping" every heartbeat interval (auto-answered "pong"
 *   by the runtime without waking the Durable Object); a socket that answers
 *   nothing for two intervals is presumed dead and replaced. A `status`
 *   report (load, free bytes) follows every connect and every status interval.
 * - Requests (find_node, find_providers, pin, place, signal) carry ids and
 *   time out; made while disconnected they wait for the next connection, and
 *   lookups in flight when a socket drops are sent again on the next one.
 * - Inventory: changes are debounced, coalesced and batched (announce-queue.ts)
 *   and acknowledged by id; unacknowledged batches are re-sent after a
 *   reconnect, and every connect sends the full inventory from a callback as
 *   a sync (`announce` batches sharing a fresh `sync.epoch`, the last with
 *   `done: true`), after which the directory forgets whatever this peer no
 *   longer lists — chunks deleted while offline included. Changes made while
 *   the inventory is being listed are held back until the sync is sent, so
 *   its sweep never drops a chunk added meanwhile.
 * - Repair jobs (`repair`) are emitted as events for the daemon's repair
 *   worker; their results go back with `reportRepair`.
 * - Every incoming frame is validated (directory-inbound.ts); garbage is a
 *   `warning`, never a crash.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import WebSocket from "ws";
import { PeercloudError } from "../core/errors.js";
import {
  CLOSE_LEAVING,
  CLOSE_REPLACED,
  PING,
  type RegionQualityReport,
  type Capacity,
  type DirectoryToPeer,
  type Load,
  type PeerInfo,
  type PeerToDirectory,
  type ProviderInfo,
} from "../core/messages.js";
import { DEFAULT_PARAMS } from "../core/params.js";
import { signRequest } from "../core/signed-request.js";
import { AnnounceQueue, type AnnounceBatch } from "./announce-queue.js";
import { MAX_INBOUND_MESSAGE_BYTES, parseInbound } from "./directory-inbound.js";
import { DirectoryRequests, type ReplyType, type RequestBody, type Timers } from "./directory-requests.js";

export type { Timers } from "./directory-requests.js";

export type DirectoryState = "connecting" | "open" | "closed";
export type Welcome = Extract<DirectoryToPeer, { type: "welcome" }>;
export type SignalEvent = Omit<Extract<DirectoryToPeer, { type: "signal" }>, "type">;
export type RepairJob = Extract<DirectoryToPeer, { type: "repair" }>;
export type RepairResult = Extract<PeerToDirectory, { type: "repair_result" }>;
export type AuditRequest = Extract<DirectoryToPeer, { type: "audit" }>;
export type AuditAnswer = Extract<PeerToDirectory, { type: "audit_result" }>;

export interface StatusReport {
  load: Load;
  freeBytes: number;
  capacity?: Capacity;
  addresses?: string[];
  regionQuality?: RegionQualityReport;
}

export interface DirectoryConnectionOptions {
  edgeUrl: string;
  region: string;
  secretKey: Uint8Array;
  /** This peer's certificate, or a getter so a renewed one is used on the next connect. */
  certificate: string | (() => string);
  /** Load and free space for status reports. Without it no status is sent. */
  getStatus?: () => StatusReport | Promise<StatusReport>;
  /** Every CID this peer serves, announced in full on every connect. */
  getInventory?: () => Iterable<string> | Promise<Iterable<string>>;
  /** Ping interval; default: the directory's (from `welcome`), until then DEFAULT_PARAMS. */
  heartbeatIntervalMs?: number;
  statusIntervalMs?: number;
  /** How long a request may wait for its answer, including for a connection. Default 15 s. */
  requestTimeoutMs?: number;
  /** Announce debounce. Default 100 ms. */
  announceDebounceMs?: number;
  maxAnnounceBatch?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Upgrade handshake limit. Default 15 s. */
  handshakeTimeoutMs?: number;
  timers?: Timers;
  now?: () => number;
  random?: () => number;
}

export interface DirectoryConnectionEvents {
  state: [state: DirectoryState];
  welcome: [welcome: Welcome];
  signal: [signal: SignalEvent];
  /** A repair job from the directory for this peer (repair-worker.ts). */
  repair: [job: RepairJob];
  /** The directory challenges this peer to prove it holds a chunk (audit-responder.ts). */
  audit: [audit: AuditRequest];
  /** The directory asks this peer to delete surplus replicas (trim, see durable-objects/region-directory/trimmer.ts). */
  trim: [cids: string[]];
  /** Nobody pins these chunks any more: unpin them (durable-objects/region-directory/releaser.ts). */
  release: [cids: string[]];
  /** The edge refused the upgrade (e.g. 401 certificate_expired, 404 peer_not_registered); a retry follows. */
  rejected: [rejection: { status: number; code: string; message: string }];
  disconnected: [info: { code: number; reason: string; retryInMs: number }];
  /** Something odd from the directory or the socket; the connection carries on. */
  warning: [warning: { code: string; message: string }];
}

const REAL_TIMERS: Timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

export class DirectoryConnection extends EventEmitter<DirectoryConnectionEvents> {
  private stateValue: DirectoryState = "closed";
  private ws: WebSocket | null = null;
  private started = false;
  private closedForGood = false;
  private failures = 0;
  private lastSeenMs = 0;
  private welcome: Welcome | null = null;
  private readonly timers: Timers;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly announcements: AnnounceQueue;
  private readonly requests: DirectoryRequests;
  private readonly handles = { reconnect: null as unknown, heartbeat: null as unknown, status: null as unknown, announce: null as unknown };
  private settleWaiters: (() => void)[] = [];
  private announceSeq = 0;
  /** The socket whose inventory sync is being listed and sent; change batches wait while it is the current one. */
  private syncingWs: WebSocket | null = null;

  constructor(private readonly options: DirectoryConnectionOptions) {
    super();
    this.timers = options.timers ?? REAL_TIMERS;
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    this.announcements = new AnnounceQueue(options.maxAnnounceBatch ?? DEFAULT_PARAMS.maxAnnounceBatch);
    this.requests = new DirectoryRequests(this.timers, options.requestTimeoutMs ?? 15_000, (text) => this.sendText(text));
  }

  get state(): DirectoryState {
    return this.stateValue;
  }

  /** The directory's last welcome (node ID, region, intervals, its clock), or null before the first. */
  get lastWelcome(): Welcome | null {
    return this.welcome;
  }

  /** Starts connecting (and reconnecting) until `close()`. */
  start(): void {
    if (this.started || this.closedForGood) return;
    this.started = true;
    void this.connect();
  }

  /** Closes for good: no reconnect; waiting requests fail with `directory_closed`. */
  close(): void {
    this.started = false;
    this.closedForGood = true;
    for (const key of Object.keys(this.handles) as (keyof typeof this.handles)[]) this.clear(key);
    this.requests.failAll(new PeercloudError("directory_closed", "the directory connection was closed", 503));
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.removeAllListeners();
      ws.on("error", () => {});
      ws.close(CLOSE_LEAVING, "peer leaving");
    }
    this.setState("closed");
  }

  /** The `count` peers of this region closest to `target` (FIND_NODE). */
  async findNode(target: string, count?: number): Promise<PeerInfo[]> {
    return (await this.ask<{ nodes: PeerInfo[] }>({ type: "find_node", target, ...(count ? { count } : {}) }, "nodes", true)).nodes;
  }

  /** Live holders of `cid` in this region. */
  async findProviders(cid: string, count?: number): Promise<ProviderInfo[]> {
    return (await this.ask<{ providers: ProviderInfo[] }>({ type: "find_providers", cid, ...(count ? { count } : {}) }, "providers", true)).providers;
  }

  /** Live holders of each of `cids` (at most MAX_PROVIDER_BATCH_CIDS) in this region, keyed by CID. */
  async findProvidersBatch(cids: string[], count?: number): Promise<Record<string, ProviderInfo[]>> {
    return (await this.ask<{ providers: Record<string, ProviderInfo[]> }>({ type: "find_providers", cids, ...(count ? { count } : {}) }, "providers_batch", true)).providers;
  }

  /** Sets this peer's target replication factor for `cids` (0 withdraws its own pin); needs the publisher role. */
  async pin(cids: string[], replicas: number, sizeBytes?: number[]): Promise<void> {
    await this.ask({ type: "pin", cids, replicas, ...(sizeBytes ? { sizeBytes } : {}) }, "ack", true);
  }

  /** Live service peers on distinct hosts for `count` new replicas, best first. */
  async place(count: number, exclude: string[] = [], sizeBytes?: number): Promise<PeerInfo[]> {
    const body: RequestBody = { type: "place", count, ...(exclude.length ? { exclude } : {}), ...(sizeBytes !== undefined ? { sizeBytes } : {}) };
    return (await this.ask<{ nodes: PeerInfo[] }>(body, "nodes", true)).nodes;
  }

  /** Sends a payload to a peer connected to the directory (not re-sent after a disconnect: it may have arrived). */
  async signal(to: string, payload: unknown, region?: string): Promise<void> {
    await this.ask({ type: "signal", to, payload, ...(region ? { region } : {}) }, "ack", false);
  }

  /**
   * Reports a repair job's outcome; false when disconnected (not queued: a
   * stale result is worthless, and the announcement confirms a success).
   */
  reportRepair(result: RepairResult): boolean {
    return this.send(result satisfies PeerToDirectory);
  }

  /** Answers an audit; false when disconnected (not queued: past its deadline the answer is worthless). */
  reportAudit(answer: AuditAnswer): boolean {
    return this.send(answer satisfies PeerToDirectory);
  }

  /** Queues inventory changes; they go out batched after a short debounce. */
  announce(added: Iterable<string>, removed: Iterable<string> = []): void {
    this.announcements.add(added, removed);
    if (this.announcements.pendingCount > 0 && this.handles.announce === null) {
      this.handles.announce = this.timers.setTimeout(() => {
        this.handles.announce = null;
        this.flushAnnouncements();
      }, this.options.announceDebounceMs ?? 100);
    }
  }

  /** Resolves once every change announced so far has been acknowledged by the directory. */
  whenAnnounced(): Promise<void> {
    if (this.announcements.settled) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private ask<T extends object>(body: RequestBody, expect: ReplyType, resendable: boolean): Promise<T> {
    if (this.closedForGood) return Promise.reject(new PeercloudError("directory_closed", "the directory connection was closed", 503));
    return this.requests.send<T>(body, expect, resendable);
  }

  // ---- connection lifecycle ----

  private async connect(): Promise<void> {
    if (!this.started) return;
    this.setState("connecting");
    const base = new URL(this.options.edgeUrl);
    const path = `${base.pathname.replace(/\/+$/, "")}/v1/regions/${encodeURIComponent(this.options.region)}/connect`;
    let ws: WebSocket;
    try {
      const certificate = typeof this.options.certificate === "function" ? this.options.certificate() : this.options.certificate;
      const headers = await signRequest({ method: "GET", pathWithQuery: path, certificate, secretKey: this.options.secretKey });
      if (!this.started) return;
      const url = `${base.protocol === "https:" ? "wss:" : "ws:"}//${base.host}${path}`;
      ws = new WebSocket(url, { headers, handshakeTimeout: this.options.handshakeTimeoutMs ?? 15_000, maxPayload: MAX_INBOUND_MESSAGE_BYTES, perMessageDeflate: false });
    } catch (err) {
      this.emit("warning", { code: "connect_failed", message: `cannot start a directory connection: ${(err as Error).message}` });
      return this.scheduleReconnect(1006, "connect failed");
    }
    this.ws = ws;
    ws.on("open", () => this.onOpen(ws));
    ws.on("message", (data, isBinary) => this.onMessage(ws, data, isBinary));
    ws.on("pong", () => (this.lastSeenMs = this.now()));
    ws.on("unexpected-response", (_req, res) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on("data", (piece: Buffer) => {
        size += piece.length;
        if (size <= 16 * 1024) parts.push(piece);
      });
      res.on("end", () => {
        const { code, message } = errorBody(Buffer.concat(parts).toString("utf8"), res.statusCode ?? 0);
        this.emit("rejected", { status: res.statusCode ?? 0, code, message });
        ws.terminate();
      });
      res.on("error", () => ws.terminate());
    });
    ws.on("error", (err) => this.emit("warning", { code: "socket_error", message: err.message }));
    ws.on("close", (code, reason) => this.onClose(ws, code, reason.toString("utf8")));
  }

  private onOpen(ws: WebSocket): void {
    if (ws !== this.ws) return;
    this.lastSeenMs = this.now();
    this.setState("open");
    this.scheduleHeartbeat();
    void this.sendStatus();
    for (const batch of this.announcements.takeForResend()) this.sendBatch(batch);
    void this.announceInventory(ws);
    this.flushAnnouncements();
    this.requests.connected();
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clear("heartbeat");
    this.clear("status");
    this.requests.disconnected();
    if (!this.started) return this.setState("closed");
    this.scheduleReconnect(code, reason);
  }

  private scheduleReconnect(code: number, reason: string): void {
    this.setState("connecting");
    const initialMs = this.options.initialBackoffMs ?? 500;
    const maxMs = this.options.maxBackoffMs ?? 30_000;
    // Two processes sharing one identity would replace each other forever: slow that down to the cap.
    const ceilingMs = code === CLOSE_REPLACED ? maxMs : Math.min(maxMs, initialMs * 2 ** this.failures);
    this.failures++;
    // "Equal jitter": at least half the ceiling, so a crowd of peers spreads out but none hammers.
    const retryInMs = Math.round(ceilingMs / 2 + (this.random() * ceilingMs) / 2);
    this.emit("disconnected", { code, reason, retryInMs });
    this.clear("reconnect");
    this.handles.reconnect = this.timers.setTimeout(() => {
      this.handles.reconnect = null;
      void this.connect();
    }, retryInMs);
  }

  // ---- inbound ----

  private onMessage(ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (ws !== this.ws) return;
    this.lastSeenMs = this.now();
    if (isBinary) return void this.emit("warning", { code: "bad_message", message: "binary frame from the directory ignored" });
    const frame = parseInbound(data.toString());
    if (frame.kind === "pong") return;
    if (frame.kind === "invalid") return void this.emit("warning", { code: "bad_message", message: frame.reason });
    const message = frame.message;
    switch (message.type) {
      case "welcome":
        this.welcome = message;
        this.failures = 0;
        this.scheduleHeartbeat();
        this.scheduleStatus();
        this.emit("welcome", message);
        return;
      case "signal":
        return void this.emit("signal", { from: message.from, fromRegion: message.fromRegion, payload: message.payload });
      case "repair":
        return void this.emit("repair", message);
      case "trim":
        return void this.emit("trim", message.cids);
      case "release":
        return void this.emit("release", message.cids);
      case "audit":
        return void this.emit("audit", message);
      case "error":
        if (message.id && this.settleAnnounce(message.id)) {
          return void this.emit("warning", { code: message.code, message: `announcement refused: ${message.message}` });
        }
        if (!message.id || !this.requests.answer(message.id, message)) this.emit("warning", { code: message.code, message: message.message });
        return;
      default:
        if (message.type === "ack" && this.settleAnnounce(message.id)) return;
        if (!this.requests.answer(message.id, message)) this.emit("warning", { code: "unexpected_reply", message: `no request waits for ${message.type} ${message.id}` });
    }
  }

  // ---- outbound ----

  private sendText(text: string): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    return true;
  }

  private send(message: PeerToDirectory): boolean {
    return this.sendText(JSON.stringify(message));
  }

  private flushAnnouncements(): void {
    if (this.stateValue !== "open") return;
    if (this.syncingWs !== null && this.syncingWs === this.ws) return; // sent once the sync is out (announceInventory)
    for (let batch = this.announcements.takeBatch(); batch; batch = this.announcements.takeBatch()) this.sendBatch(batch);
  }

  private sendBatch(batch: AnnounceBatch, sync?: { epoch: string; done: boolean }): void {
    const id = `a${++this.announceSeq}`;
    this.announcements.sent(id, batch);
    this.send({ type: "announce", id, added: batch.added, removed: batch.removed, ...(sync ? { sync } : {}) } satisfies PeerToDirectory);
  }

  private settleAnnounce(id: string): boolean {
    if (!this.announcements.settle(id)) return false;
    if (this.announcements.settled) for (const wake of this.settleWaiters.splice(0)) wake();
    return true;
  }

  /**
   * Sends the full inventory as one sync: batches under a fresh epoch, the
   * last marked done (an empty inventory is one empty done batch, so the
   * directory forgets everything). Runs synchronously up to its first await,
   * so change batches are held from the moment the listing starts.
   */
  private async announceInventory(ws: WebSocket): Promise<void> {
    if (!this.options.getInventory) return;
    this.syncingWs = ws;
    try {
      const inventory = await this.options.getInventory();
      if (ws !== this.ws) return;
      const epoch = randomBytes(12).toString("base64url");
      let previous: AnnounceBatch | null = null;
      for (const batch of this.announcements.inventoryBatches(inventory)) {
        if (previous) this.sendBatch(previous, { epoch, done: false });
        previous = batch;
      }
      this.sendBatch(previous ?? { added: [], removed: [], kind: "inventory" }, { epoch, done: true });
    } catch (err) {
      this.emit("warning", { code: "inventory_failed", message: `could not list the inventory: ${(err as Error).message}` });
    } finally {
      if (this.syncingWs === ws) this.syncingWs = null;
      if (ws === this.ws) this.flushAnnouncements();
    }
  }

  private async sendStatus(): Promise<void> {
    if (!this.options.getStatus) return;
    try {
      const report = await this.options.getStatus();
      this.send({ type: "status", ...report } satisfies PeerToDirectory);
    } catch (err) {
      this.emit("warning", { code: "status_failed", message: `could not compute the status report: ${(err as Error).message}` });
    }
  }

  private scheduleHeartbeat(): void {
    this.clear("heartbeat");
    const intervalMs = this.options.heartbeatIntervalMs ?? this.welcome?.heartbeatIntervalMs ?? DEFAULT_PARAMS.heartbeatIntervalMs;
    const tick = () => {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      if (this.now() - this.lastSeenMs > 2 * intervalMs) {
        this.emit("warning", { code: "heartbeat_lost", message: `no answer from the directory for ${Math.round((this.now() - this.lastSeenMs) / 1000)} s; reconnecting` });
        return void ws.terminate();
      }
      ws.send(PING);
      this.handles.heartbeat = this.timers.setTimeout(tick, intervalMs);
    };
    this.handles.heartbeat = this.timers.setTimeout(tick, intervalMs);
  }

  private scheduleStatus(): void {
    this.clear("status");
    const intervalMs = this.options.statusIntervalMs ?? this.welcome?.statusIntervalMs ?? DEFAULT_PARAMS.statusIntervalMs;
    const tick = () => {
      void this.sendStatus();
      this.handles.status = this.timers.setTimeout(tick, intervalMs);
    };
    this.handles.status = this.timers.setTimeout(tick, intervalMs);
  }

  private clear(key: keyof typeof this.handles): void {
    if (this.handles[key] !== null) this.timers.clearTimeout(this.handles[key]);
    this.handles[key] = null;
  }

  private setState(state: DirectoryState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit("state", state);
  }
}

function errorBody(text: string, status: number): { code: string; message: string } {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === "string") return { code: parsed.error.code.slice(0, 64), message: String(parsed.error.message ?? "").slice(0, 500) };
  } catch {
    // not JSON
  }
  return { code: `http_${status}`, message: text.slice(0, 200) || `the edge refused the WebSocket upgrade with HTTP ${status}` };
}
