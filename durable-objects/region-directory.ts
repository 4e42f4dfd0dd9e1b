/**
 * RegionDirectory: one Durable Object per region — the always-on part of the
 * Kademlia DHT (k-buckets, FIND_NODE, FIND_PROVIDERS), the heartbeat and
 * replica registry, and the signaling relay (DESIGN "Routing", "Fault
 * tolerance", "NAT traversal"). This file is the adapter only: it wires the
 * model (./region-directory/directory.ts) and the message handlers
 * (./region-directory/handlers/) to hibernatable WebSockets, alarms, RPC and
 * KV. Pure rules live in src/core/ (liveness.ts, placement.ts,
 * k-bucket-tree.ts).
 *
 * Trust boundary: only the edge Worker reaches this object. It verifies the
 * peer's certificate and request signature before forwarding `GET /connect`
 * and sets `x-peercloud-node-id` / `x-peercloud-region` itself (dropping any
 * client-supplied copies); the object trusts those headers and the RPC
 * callers' identity, but validates the shape of everything it receives.
 *
 * Where sharding starts: a Durable Object is single-threaded, so one region
 * object is bounded by (a) messages/s — Cloudflare documents a soft limit
 * of ~1,000 requests/s per object; bench:edge measured this object at
 * ~1,600 msgs/s of its real message mix in local workerd, against ~22,000
 * for a bare echo object) — and (b) its SQLite size (10 GB at the measured
 * 320 B per replica row: ~31M replica rows). Heartbeats cost nothing here
 * (pings are auto-answered), so (a) is status reports plus inventory churn
 * plus lookups: ~17 messages per peer-hour, which keeps one object under
 * half of 1,000/s up to ~100k peers (docs/operations.md, "Capacity and
 * cost"). Past that, or
 * past (b), the region splits into objects named `<region>/<hex prefix>`:
 * peers connect to the shard of their node-ID prefix (FIND_NODE asks the
 * target's shard, then its neighbours until k are found) and the replica
 * registry moves to shards by CID prefix (announce batches split by
 * prefix); placement and summaries fan out. The names and routing would be
 * the Worker's; this object only has to scope its queries to its prefix.
 */
import { DurableObject } from "cloudflare:workers";
import { Router, error, type IRequest } from "itty-router";
import * as v from "valibot";
import { NotFoundError, PeercloudError, ValidationError } from "../src/core/errors.js";
import { suspectAfterMs } from "../src/core/liveness.js";
import { CLOSE_LEAVING, CLOSE_REPLACED, MAX_MESSAGE_CHARS, PING, PONG, peerToDirectory, type DrainProgress, type PeerInfo, type PeerState, type ProviderInfo } from "../src/core/messages.js";
import type { NetworkParams } from "../src/core/params.js";
import { paramsFromEnv } from "../src/core/params-env.js";
import { parseJsonText, parseWith } from "../src/core/validate.js";
import type { Env } from "../workers/env.js";
import type { RegionDirectoryRpc, RegionSummary, RegisterPeerInput, SignalResult } from "./region-directory-contract.js";
import { attachmentOf, closeQuietly, connectedPeers, sendMessage, sendToPeer, socketSightingMs, socketSightings, type SocketAttachment } from "./region-directory/connections.js";
import { Directory } from "./region-directory/directory.js";
import { dispatch, type HandlerContext } from "./region-directory/handlers/index.js";
import type { RepairJob } from "./region-directory/repair-jobs.js";
import { RepairScheduler } from "./region-directory/repair-scheduler.js";
import { R2_EGRESS_BYTES, type QueuedChunk } from "./region-directory/replica-store.js";
import { errorFrame, errorResponse, requestIdOf } from "./region-directory/replies.js";
import * as input from "./region-directory/rpc-input.js";
import { migrate, readMeta, writeMeta } from "./region-directory/schema.js";
import { forwardSignal } from "./region-directory/signal-forwarder.js";
import { buildSummary, writeSnapshotIfChanged } from "./region-directory/snapshot.js";
import { Trimmer } from "./region-directory/trimmer.js";
import { Rebalancer } from "./region-directory/rebalancer.js";
import { Releaser } from "./region-directory/releaser.js";
import { Auditor, type AuditRecord } from "./region-directory/auditor.js";
import { ColdTier } from "./region-directory/cold-tier.js";
import type { RegionQuality } from "./region-directory/region-quality.js";

/** Invalid frames in a row after which a peer's socket is closed with 1008 (policy violation). */
export const MAX_INVALID_MESSAGES = 5;
/** Shortest time between two sweeps: expiries closer than this are handled together, and no re-arm can spin. */
export const MIN_SWEEP_GAP_MS = 1000;
/** Delay of the repair pass after a job ended: ends within it are handled by one pass, and the next jobs go out at once. */
export const REPAIR_WAKE_DELAY_MS = 200;
export const NODE_ID_HEADER = "x-peercloud-node-id";
export const REGION_HEADER = "x-peercloud-region";

export class RegionDirectory extends DurableObject<Env> implements RegionDirectoryRpc {
  /** Wall-clock time in ms. Tests replace it through runInDurableObject to move time without waiting. */
  clock: () => number = () => Date.now();
  /** Randomness of bootstrap answers; replaceable for reproducible tests. */
  random: () => number = Math.random;
  readonly params: NetworkParams;
  private directory!: Directory;
  private repair!: RepairScheduler;
  private trimmer!: Trimmer;
  private rebalancer!: Rebalancer;
  private releaser!: Releaser;
  private auditor!: Auditor;
  private coldTier!: ColdTier;
  private region: string | null = null;
  /** The alarm time (real clock) as last set: cached, since reading it back would cost a storage call per message. */
  private alarmAtMs: number | null = null;
  private lastSnapshotCheckMs = -Infinity;
  private readonly router = Router({ catch: (err) => errorResponse(err) })
    .get("/connect", (request: IRequest) => this.acceptPeer(request))
    .all("*", () => error(404, { error: { code: "not_found", message: "no such route on a region directory" } }));

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.params = paramsFromEnv(env);
    // Heartbeats: the runtime answers "ping" with "pong" itself, so idle peers never wake (or bill) the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
    void ctx.blockConcurrencyWhile(async () => {
      migrate(ctx.storage.sql);
      this.region = readMeta(ctx.storage.sql, "region") ?? ctx.id.name ?? null;
      this.directory = new Directory({
        sql: ctx.storage.sql,
        params: this.params,
        now: () => this.clock(),
        random: () => this.random(),
        region: () => this.region ?? "",
      });
      this.repair = new RepairScheduler({ directory: this.directory, params: this.params, send: (nodeId, message) => sendToPeer(ctx, nodeId, message) });
      this.trimmer = new Trimmer({ directory: this.directory, sql: ctx.storage.sql, params: this.params, send: (nodeId, message) => sendToPeer(ctx, nodeId, message) });
      this.rebalancer = new Rebalancer({ directory: this.directory, sql: ctx.storage.sql, params: this.params, send: (nodeId, message) => sendToPeer(ctx, nodeId, message) });
      this.releaser = new Releaser({ directory: this.directory, sql: ctx.storage.sql, send: (nodeId, message) => sendToPeer(ctx, nodeId, message) });
      this.auditor = new Auditor({
        directory: this.directory,
        sql: ctx.storage.sql,
        params: this.params,
        random: () => this.random(),
        send: (nodeId, message) => sendToPeer(ctx, nodeId, message),
      });
      this.coldTier = new ColdTier({ directory: this.directory, params: this.params, inR2: async (cid) => (await env.CHUNKS.head(cid)) !== null });
      // The runtime keeps the alarm across restarts, and alarm() always re-arms for a running job's deadline or a
      // failed job's retry: a restarted object finds its jobs in SQL and its next repair pass already scheduled.
      this.alarmAtMs = await ctx.storage.getAlarm();
    });
  }

  // ---- WebSocket entrance ----------------------------------------------------

  override fetch(request: Request): Promise<Response> {
    return this.router.fetch(request);
  }

  private acceptPeer(request: IRequest): Response {
    if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
      throw new PeercloudError("upgrade_required", "GET /connect expects a WebSocket upgrade", 426);
    }
    const nodeId = parseWith(input.nodeIdInput, request.headers.get(NODE_ID_HEADER), NODE_ID_HEADER);
    this.bindRegion(parseWith(input.regionInput, request.headers.get(REGION_HEADER), REGION_HEADER));
    const now = this.clock();
    if (!this.directory.sighted(nodeId, now, true)) {
      throw new NotFoundError("peer_not_registered", "this peer is not registered in this region; bootstrap again");
    }
    // A reconnect replaces the old socket: one live connection per peer, and signals go to the newest.
    for (const old of this.ctx.getWebSockets(nodeId)) closeQuietly(old, CLOSE_REPLACED, "replaced by a newer connection");
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, [nodeId]);
    server.serializeAttachment({ nodeId, connectedAtMs: now, lastMessageMs: now, invalidMessages: 0 } satisfies SocketAttachment);
    sendMessage(server, {
      type: "welcome",
      nodeId,
      region: this.region!,
      heartbeatIntervalMs: this.params.heartbeatIntervalMs,
      statusIntervalMs: this.params.statusIntervalMs,
      serverTimeMs: now,
    });
    this.armAlarm(now + suspectAfterMs(this.params));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    const att = attachmentOf(ws);
    if (!att) return closeQuietly(ws, 1011, "unknown connection");
    const now = this.clock();
    let id: string | undefined;
    try {
      att.lastMessageMs = now;
      if (typeof message !== "string") throw new ValidationError("binary frames are not part of the protocol", "unsupported_frame");
      if (message === PING) return ws.send(PONG); // reached only if auto-response were off
      const raw = parseJsonText(message, MAX_MESSAGE_CHARS, "message");
      id = requestIdOf(raw);
      const parsed = parseWith(peerToDirectory, raw, "message");
      att.invalidMessages = 0;
      const sender = this.directory.sighted(att.nodeId, now);
      if (!sender) throw new NotFoundError("peer_not_registered", "this peer is no longer registered here; bootstrap again");
      // The sender's own expiry, or sooner when the message changes what the KV snapshot shows.
      const changesSummary = parsed.type === "announce" || parsed.type === "pin";
      this.armAlarm(now + (changesSummary ? Math.min(this.params.snapshotIntervalMs, suspectAfterMs(this.params)) : suspectAfterMs(this.params)));
      const reply = await dispatch(parsed, this.handlerContext(sender));
      if (reply) sendMessage(ws, reply);
    } catch (err) {
      if (err instanceof ValidationError) att.invalidMessages++;
      sendMessage(ws, errorFrame(err, id));
      if (att.invalidMessages >= MAX_INVALID_MESSAGES) closeQuietly(ws, 1008, "too many invalid messages");
    } finally {
      try {
        ws.serializeAttachment(att);
      } catch {
        // closed meanwhile
      }
    }
  }

  override webSocketClose(ws: WebSocket, code: number, reason: string): void {
    const att = attachmentOf(ws);
    // A goodbye counts only if this was the peer's current socket (a quick restart may have connected anew already).
    const current = att !== null && !this.ctx.getWebSockets(att.nodeId).some((other) => other !== ws && other.readyState === WebSocket.OPEN);
    if (code === CLOSE_LEAVING && current) {
      const deadAtMs = this.directory.leaving(att.nodeId, this.clock());
      if (deadAtMs !== null) this.armAlarm(deadAtMs);
    } else {
      this.recordDisconnect(ws);
    }
    closeQuietly(ws, code, reason);
  }

  override webSocketError(ws: WebSocket): void {
    this.recordDisconnect(ws);
  }

  /** Keeps the last sighting, but does not mark the peer dead: deploys drop every socket and peers reconnect with backoff. */
  private recordDisconnect(ws: WebSocket): void {
    const att = attachmentOf(ws);
    if (att) this.directory.sighted(att.nodeId, socketSightingMs(this.ctx, ws, att), true);
  }

  private handlerContext(sender: HandlerContext["sender"]): HandlerContext {
    const region = this.region!;
    return {
      directory: this.directory,
      sender,
      region,
      deliverLocal: (to, message) => sendToPeer(this.ctx, to, message),
      forwardSignal: (toRegion, to, payload) => forwardSignal(this.env, sender.nodeId, region, toRegion, to, payload),
      repair: { onResult: (from, result) => this.repair.onResult(from, result, this.clock()) },
      audit: { onResult: (from, result) => this.auditor.onResult(from, result) },
      wakeRepair: () => this.armAlarm(this.clock() + REPAIR_WAKE_DELAY_MS),
    };
  }

  // ---- Alarm: liveness sweep, repair pass and KV snapshot ---------------------

  override async alarm(): Promise<void> {
    this.alarmAtMs = null;
    const now = this.clock();
    const nextChangeMs = this.directory.sweep(socketSightings(this.ctx), now);
    // After the sweep, so that a peer it just found dead has its chunks queued and its jobs failed in this pass.
    const repairDueMs = this.repair.run(now);
    // Cold tier before trim: a chunk it makes cold has target 0, and the trimmer evicts its replicas after the grace.
    const coldDueMs = (await this.coldTier.run(now)).nextDueMs;
    // After repair: a chunk with a job is never trimmed, and what repair just confirmed may be surplus now.
    const trimDueMs = this.trimmer.run(now).nextDueMs;
    // After repair (moves only take the repair slots it left free) and trim (a move's source copy, trimmed, is
    // settled here). Its due time is the deadline of the moves it started; a move's end wakes the alarm like a
    // repair job's, and an imbalance with no free slot now is looked at again with the next sweep.
    const rebalanceDueMs = this.rebalancer.run(now).nextDueMs;
    // After trim: a failed audit removes a replica, which the next repair pass (armed below, or woken by the
    // result's handler) plans for; rounds are judged here when overdue, or at once on their last answer.
    const auditDueMs = this.auditor.run(now).nextDueMs;
    // Holders of chunks nobody pins any more unpin them (releaser.ts); independent of the passes above.
    const releaseDueMs = this.releaser.run(now).nextDueMs;
    let snapshotPendingMs: number | null = null;
    if (now >= this.lastSnapshotCheckMs + this.params.snapshotIntervalMs) {
      try {
        if (this.region) await writeSnapshotIfChanged(this.env.DASHBOARD, this.ctx.storage.sql, this.summaryAt(now));
        this.lastSnapshotCheckMs = now;
      } catch (err) {
        console.error("region directory: KV snapshot failed", err);
        snapshotPendingMs = now + this.params.snapshotIntervalMs;
      }
    } else {
      snapshotPendingMs = this.lastSnapshotCheckMs + this.params.snapshotIntervalMs;
    }
    // Re-arm to the earliest expiry (liveness, snapshot, a repair job's deadline or backoff), never in a tight
    // loop. Changes after this (register, announce, pin, egress, a repair result) arm the alarm themselves; with
    // no live peer left and nothing pending, the object sleeps. Idempotent: a pass that finds nothing due changes nothing.
    const nextMs = Math.min(
      nextChangeMs ?? Infinity,
      snapshotPendingMs ?? Infinity,
      repairDueMs ?? Infinity,
      trimDueMs ?? Infinity,
      rebalanceDueMs ?? Infinity,
      auditDueMs ?? Infinity,
      coldDueMs ?? Infinity,
      releaseDueMs ?? Infinity,
    );
    if (Number.isFinite(nextMs)) this.armAlarm(Math.max(nextMs, now + MIN_SWEEP_GAP_MS));
  }

  /**
   * Makes sure the alarm fires no later than `atMs` (on this.clock()); one
   * storage call only when that moves it earlier. The runtime schedules on
   * the real clock, so the delay is carried over rather than the timestamp
   * (they are the same outside tests, which move this.clock()).
   */
  private armAlarm(atMs: number): void {
    const realAtMs = Date.now() + Math.max(1, atMs - this.clock());
    if (this.alarmAtMs !== null && this.alarmAtMs <= realAtMs) return;
    this.alarmAtMs = realAtMs;
    void this.ctx.storage.setAlarm(realAtMs);
  }

  /** A downloader's lookup (cold-tier.ts): cold chunks among `cids` come back, through a repair pass soon. */
  private wanted(cids: readonly string[]): void {
    if (this.directory.wanted(cids).length > 0) this.armAlarm(this.clock() + REPAIR_WAKE_DELAY_MS);
  }

  /** One cold-tier pass now (tests and operators); returns the CIDs it made cold. */
  async coldNow(): Promise<string[]> {
    return (await this.coldTier.run(this.clock(), true)).cold;
  }

  private summaryAt(nowMs: number): RegionSummary {
    return buildSummary(this.directory, this.region ?? "", connectedPeers(this.ctx), nowMs, this.auditor.summary());
  }

  private bindRegion(region: string): void {
    if (this.region === null) {
      this.region = region;
      writeMeta(this.ctx.storage.sql, "region", region);
    } else if (this.region !== region) {
      throw new ValidationError(`this directory serves region ${this.region}, not ${region}`, "region_mismatch");
    }
  }

  // ---- RPC (called by the edge Worker) ----------------------------------------

  async register(region: string, peer: RegisterPeerInput): Promise<{ peers: PeerInfo[] }> {
    this.bindRegion(parseWith(input.regionInput, region, "region"));
    const valid = parseWith(input.registerInput, peer, "peer");
    const peers = this.directory.register(valid);
    const now = this.clock();
    this.armAlarm(Math.min(now + suspectAfterMs(this.params), now + this.params.snapshotIntervalMs));
    return { peers };
  }

  async peerState(nodeId: string): Promise<PeerState | null> {
    return this.directory.stateOf(parseWith(input.nodeIdInput, nodeId, "nodeId"));
  }

  async findNode(target: string, count?: number): Promise<PeerInfo[]> {
    const valid = parseWith(input.findNodeInput, { target, count }, "findNode");
    return this.directory.findNode(valid.target, valid.count);
  }

  async findProviders(cid: string, count?: number): Promise<ProviderInfo[]> {
    const valid = parseWith(input.findProvidersInput, { cid, count }, "findProviders");
    this.wanted([valid.cid]);
    return this.directory.findProviders(valid.cid, valid.count);
  }

  async findProvidersBatch(cids: string[], count?: number): Promise<Record<string, ProviderInfo[]>> {
    const valid = parseWith(input.findProvidersBatchInput, { cids, count }, "findProvidersBatch");
    this.wanted(valid.cids);
    return this.directory.findProvidersBatch(valid.cids, valid.count);
  }

  async pin(nodeId: string, cids: string[], replicas: number, sizeBytes?: number[]): Promise<void> {
    const valid = parseWith(input.pinInput, { nodeId, cids, replicas, sizeBytes }, "pin");
    if (valid.sizeBytes && valid.sizeBytes.length !== valid.cids.length) throw new ValidationError("pin.sizeBytes: must have one entry per CID");
    const released = this.directory.pin(valid.nodeId, valid.cids, valid.replicas, valid.sizeBytes);
    this.armAlarm(this.clock() + (released > 0 ? REPAIR_WAKE_DELAY_MS : this.params.snapshotIntervalMs));
  }

  async place(count: number, exclude: string[] = [], sizeBytes?: number): Promise<PeerInfo[]> {
    const valid = parseWith(input.placeInput, { count, exclude, sizeBytes }, "place");
    return this.directory.place(valid.count, valid.exclude, valid.sizeBytes);
  }

  async deliverSignal(from: string, fromRegion: string, to: string, payload: unknown): Promise<SignalResult> {
    const valid = parseWith(input.signalInput, { from, fromRegion, to, payload }, "signal");
    if (!sendToPeer(this.ctx, valid.to, { type: "signal", from: valid.from, fromRegion: valid.fromRegion, payload: valid.payload })) {
      throw new NotFoundError("peer_not_connected", `peer_not_connected: ${valid.to.slice(0, 16)}… is not connected to region ${this.region ?? "?"}`);
    }
    return { delivered: true };
  }

  async renewed(nodeId: string, certificateExpiresAtMs: number): Promise<boolean> {
    const valid = parseWith(input.renewedInput, { nodeId, certificateExpiresAtMs }, "renewed");
    return this.directory.renewed(valid.nodeId, valid.certificateExpiresAtMs);
  }

  async addEgress(bytes: number): Promise<void> {
    this.directory.replicaStore.addCounter(R2_EGRESS_BYTES, parseWith(input.egressInput, bytes, "bytes"));
    this.armAlarm(this.clock() + this.params.snapshotIntervalMs);
  }

  async summary(): Promise<RegionSummary> {
    return this.summaryAt(this.clock());
  }

  // One small SQL read: the Worker asks on every cross-region provider lookup to order the other regions.
  async regionQuality(): Promise<RegionQuality[]> {
    return this.directory.regionQuality.list();
  }

  async drain(nodeId: string, draining: boolean): Promise<DrainProgress> {
    const valid = parseWith(input.drainInput, { nodeId, draining }, "drain");
    const progress = withCodeInMessage(() => this.directory.setDraining(valid.nodeId, valid.draining));
    this.armAlarm(this.clock() + REPAIR_WAKE_DELAY_MS);
    return progress;
  }

  async drainProgress(nodeId: string): Promise<DrainProgress> {
    const valid = parseWith(input.nodeIdInput, nodeId, "nodeId");
    return withCodeInMessage(() => this.directory.drainProgress(valid));
  }

  /** One trim pass now (tests and operators; the alarm runs them on its own). Returns node ID → chunks asked to delete. */
  async trimNow(): Promise<Record<string, string[]>> {
    return Object.fromEntries(this.trimmer.run(this.clock(), true).sent);
  }

  /** One audit pass now, whatever the interval (tests and operators; the alarm runs them on its own). Returns node ID → audit ids sent. */
  async auditNow(): Promise<Record<string, string[]>> {
    const pass = this.auditor.run(this.clock(), true);
    if (pass.nextDueMs !== null) this.armAlarm(pass.nextDueMs);
    return Object.fromEntries(pass.sent);
  }

  /** Outstanding audits, oldest first (for tests and operators). */
  async audits(limit = 100): Promise<AuditRecord[]> {
    return this.auditor.outstanding(v.parse(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), limit));
  }

  /** The repair queue, most missing replicas first (what the repair scheduler plans from; for tests and operators). */
  async underReplicated(limit = 100): Promise<QueuedChunk[]> {
    return this.directory.replicaStore.underReplicated(v.parse(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), limit));
  }

  /** Repair jobs in every state, most endangered first (for tests and operators). */
  async repairJobs(limit = 100): Promise<RepairJob[]> {
    const n = v.parse(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10_000)), limit);
    const jobs = this.directory.repairJobs;
    return [...jobs.list("running", n), ...jobs.list("queued", n), ...jobs.list("failed", n)].slice(0, n);
  }
}

/** RPC errors reach the Worker as plain Errors: the code goes into the message, where fromRemote() finds it. */
function withCodeInMessage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PeercloudError && !err.message.startsWith(`${err.code}:`)) throw new PeercloudError(err.code, `${err.code}: ${err.message}`, err.status);
    throw err;
  }
}
