/**
 * The peer's chunk server: HTTP/1.1 with keep-alive on node:http, the wire
 * every bulk byte between peers travels (docs/architecture.md, "Peer-to-peer
 * transfer").
 *
 *   POST /v1/session       signed request (src/core/signed-request.ts) → { token, expiresAtMs }
 *   GET  /v1/chunks/:cid   Bearer session → the sealed chunk, streamed from the store (or, while a swarm
 *                          download is receiving it, relayed as it arrives: arriving-chunks.ts)
 *                          (409 sent_to_swarm: see super-seed.ts; 503 busy: see serveChunk)
 *   HEAD /v1/chunks/:cid   Bearer session → existence and Content-Length
 *   PUT  /v1/chunks/:cid   Bearer session with role publisher or service → store a pinned replica
 *   GET  /v1/swarm/:key    Bearer session → this peer's progress on a file it downloads (swarm.ts)
 *
 * Why this shape: the expensive proof (certificate + Ed25519 signature, nonce
 * claimed so a captured request cannot be replayed) happens once per
 * session; a chunk request then costs one HMAC check, one file open and one
 * streamed write, which is what keeps loopback throughput near a plain static
 * file server. Received chunks are hashed while they arrive and stored only
 * when they match their CID. Everything a remote peer sends is hostile until
 * checked: sizes are capped before reading, slow senders meet the header,
 * request and idle timeouts, and no request can throw past the handler.
 */
import { EventEmitter } from "node:events";
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { pipeline } from "node:stream/promises";
import { parseCid } from "../core/cid.js";
import { AuthError, isPeercloudError, NotFoundError, PeercloudError, ValidationError } from "../core/errors.js";
import { DEFAULT_PARAMS } from "../core/params.js";
import type { Role } from "../core/roles.js";
import { verifySignedRequest } from "../core/signed-request.js";
import type { ArrivingChunks } from "./arriving-chunks.js";
import type { ChunkStore } from "./chunk-store.js";
import { FairServeQueue } from "./fair-serve.js";
import { NonceCache } from "./nonce-cache.js";
import type { UploadLimiter } from "./upload-limiter.js";
import { checkSwarmKey, SWARM_PATH_PREFIX, type SwarmBoard } from "./swarm.js";
import { SessionTokens, type SessionClaims } from "./session-token.js";
import { DEFAULT_SUPER_SEED_WINDOW_MS, DEFER_HEADER, DEFER_TO_SWARM, RecentSends, SENT_TO_SWARM } from "./super-seed.js";
import { TransferCounters, type TransferStats } from "./transfer-counters.js";
import { declaredLength, headerValue, HttpMethodError, JSON_TYPE, readSmallBody, safeDeclaredLength, sendJson } from "./transfer-http.js";

export type { TransferStats } from "./transfer-counters.js";

export interface TransferServerOptions {
  store: ChunkStore;
  /** The network's public key (from GET /v1/network): only its certificates open sessions. */
  networkPublicKey: Uint8Array;
  /** Interface to listen on. Default "0.0.0.0". */
  host?: string;
  /** Port; 0 picks a free one (see `listen()`'s result). Default 0. */
  port?: number;
  /** Largest chunk accepted by PUT. Default: the store's maxChunkBytes. */
  maxChunkBytes?: number;
  /** Accepted clock difference of signed session requests, and how long their nonces are remembered. Default DEFAULT_PARAMS.signatureMaxSkewMs. */
  signatureMaxSkewMs?: number;
  /** Session lifetime (never beyond the client certificate's expiry). Default 15 min. */
  sessionTtlMs?: number;
  /** Time allowed for a request's headers (slowloris). Default 10 s. */
  headersTimeoutMs?: number;
  /** Time allowed for a whole request including its body. Default 120 s (an 8 MiB chunk at ≥ 70 kB/s). */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open. Default 30 s. */
  keepAliveTimeoutMs?: number;
  /** A socket with no traffic either way for this long is destroyed (a reader that stopped reading). Default 60 s. */
  idleSocketTimeoutMs?: number;
  /** Concurrent connections beyond this are refused by the OS listener. Default 1024. */
  maxConnections?: number;
  /** Remembered session-request nonces beyond this make new sessions wait (503). Default 100,000. */
  maxRememberedNonces?: number;
  sessions?: SessionTokens;
  /** Caps the bytes per second chunk responses send (all together). Absent: unlimited. */
  uploadLimiter?: UploadLimiter;
  /** Chunk responses streaming at once; more wait and are served round-robin by requester (fair-serve.ts). Default 8; 0: no limit. */
  maxConcurrentSends?: number;
  /** This peer's downloads, shown to the other members of their swarms. Absent: GET /v1/swarm answers 404. */
  swarm?: SwarmBoard;
  /** Chunks this peer's swarm downloads are receiving now: served as they arrive when the store does not hold them yet. */
  arrivals?: ArrivingChunks;
  /** While a chunk goes to a swarm member, and this long after, other members asking for it are sent to the swarm (super-seed.ts). Default 4 s; 0: never. */
  superSeedWindowMs?: number;
  now?: () => number;
}

export interface ServedEvent {
  cid: string;
  bytes: number;
  nodeId: string;
}

export interface TransferServerEvents {
  /** A GET streamed a whole chunk. */
  served: [event: ServedEvent];
  /** A PUT stored (or re-confirmed) a chunk. */
  received: [event: ServedEvent & { added: boolean }];
  session: [event: { nodeId: string; roles: Role[] }];
  /** A remote peer misbehaved or a request failed; never fatal. */
  warning: [event: { code: string; message: string; status: number }];
}

const CHUNK_PREFIX = "/v1/chunks/";
/** Enough streams to fill a fast uplink (each one is a TCP flow), few enough that round-robin among requesters decides who gets it. */
const DEFAULT_CONCURRENT_SENDS = 8;
const MAX_SESSION_BODY_BYTES = 4096;
/** Bounds of the "ask again in" of a busy answer, and the weight of each send in the average it comes from. */
const MIN_BUSY_RETRY_MS = 200;
const MAX_BUSY_RETRY_MS = 10_000;
const SEND_TIME_WEIGHT = 0.1;
const WRITE_ROLES: readonly Role[] = ["publisher", "service"];
/**
 * Refusals that are answers, not faults, so no warning: 404 "not here" (no
 * such chunk; not downloading that file — every downloader of a file asks
 * its seeds for their swarm view several times a second), 409 "get it from
 * the swarm" and 503 "busy, ask later" (both with details.retryAfterMs).
 */
const ANSWER_STATUSES: ReadonlySet<number> = new Set([404, 409, 503]);

export class TransferServer extends EventEmitter<TransferServerEvents> {
  private readonly server: Server;
  private readonly sessions: SessionTokens;
  private readonly nonces: NonceCache;
  private readonly counters = new TransferCounters();
  private readonly now: () => number;
  private readonly maxChunkBytes: number;
  private readonly maxSkewMs: number;
  private readonly sessionTtlMs: number;
  private boundPort: number | null = null;
  private readonly sendQueue: FairServeQueue | null;
  private readonly recentSends: RecentSends | null;
  /** Moving average of how long a chunk response streams, ms: when a "busy" requester should come back. */
  private sendMs = 1000;
  /**
   * The send slot each connection's chunk response holds. The slot is freed
   * when the response's pipeline settles, but the client may have the last
   * byte (and send its next request on the same keep-alive connection)
   * before this process gets to that: a request on a connection whose
   * response still holds a slot frees it first, or a client that keeps
   * every connection busy would meet a queue that looks one round too
   * deep and be told "busy" for nothing. (A pipelined request has no socket
   * of its own until the response before it has ended, so it frees
   * nothing early.)
   */
  private readonly slotByConnection = new WeakMap<Socket, () => void>();

  constructor(private readonly options: TransferServerOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.sessions = options.sessions ?? new SessionTokens({ now: this.now });
    this.maxChunkBytes = options.maxChunkBytes ?? options.store.maxChunkBytes ?? DEFAULT_PARAMS.maxChunkBytes;
    this.maxSkewMs = options.signatureMaxSkewMs ?? DEFAULT_PARAMS.signatureMaxSkewMs;
    this.sessionTtlMs = options.sessionTtlMs ?? 15 * 60_000;
    this.nonces = new NonceCache(options.maxRememberedNonces ?? 100_000);
    const sends = options.maxConcurrentSends ?? DEFAULT_CONCURRENT_SENDS;
    this.sendQueue = sends > 0 ? new FairServeQueue(sends) : null;
    const superSeedWindowMs = options.superSeedWindowMs ?? DEFAULT_SUPER_SEED_WINDOW_MS;
    this.recentSends = superSeedWindowMs > 0 ? new RecentSends(superSeedWindowMs) : null;
    const headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
    this.server = createServer(
      {
        keepAlive: true,
        noDelay: true,
        headersTimeout: headersTimeoutMs,
        requestTimeout: Math.max(options.requestTimeoutMs ?? 120_000, headersTimeoutMs),
        keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
        // How often Node enforces the two timeouts above; its 30 s default would let a slowloris linger.
        connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
      },
      (req, res) => void this.handle(req, res),
    );
    this.server.maxConnections = options.maxConnections ?? 1024;
    this.server.timeout = options.idleSocketTimeoutMs ?? 60_000;
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
      // Garbage on the wire, an oversized header block, a timed-out request: answer if we still can, then drop it.
      const [status, reason, code] =
        err.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? [408, "Request Timeout", "request_timeout"]
          : err.code === "HPE_HEADER_OVERFLOW"
            ? [431, "Request Header Fields Too Large", "headers_too_large"]
            : [400, "Bad Request", "bad_http"];
      this.counters.error(code);
      if (socket.writable && !socket.destroyed && err.code !== "ECONNRESET") {
        const body = JSON.stringify({ error: { code, message: `${reason.toLowerCase()}` } });
        socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      }
      socket.destroy();
    });
  }

  /** Starts listening; resolves with the bound address (the real port when 0 was asked). */
  async listen(): Promise<{ host: string; port: number; url: string }> {
    const host = this.options.host ?? "0.0.0.0";
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port ?? 0, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as AddressInfo).port;
    const urlHost = host.includes(":") ? `[${host}]` : host;
    return { host, port: this.boundPort, url: `http://${urlHost}:${this.boundPort}` };
  }

  get port(): number | null {
    return this.boundPort;
  }

  /** Stops accepting, ends idle connections, and cuts transfers still running. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.server.closeAllConnections();
    await closed;
  }

  stats(): TransferStats {
    return this.counters.snapshot();
  }

  /** The live figures the daemon's load report reads every second, without copying the per-peer map. */
  traffic(): Pick<TransferStats, "activeTransfers" | "bytesSent" | "bytesReceived"> {
    const { activeTransfers, bytesSent, bytesReceived } = this.counters;
    return { activeTransfers, bytesSent, bytesReceived };
  }

  // ---- routing ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counters.requests++;
    try {
      const url = req.url ?? "/";
      const queryAt = url.indexOf("?");
      const path = queryAt < 0 ? url : url.slice(0, queryAt);
      if (path === "/v1/session") {
        if (req.method !== "POST") throw new HttpMethodError("POST");
        return await this.openSession(req, res, url);
      }
      if (path.startsWith(SWARM_PATH_PREFIX)) {
        if (req.method !== "GET") throw new HttpMethodError("GET");
        this.authenticate(req);
        return this.serveSwarmView(res, path.slice(SWARM_PATH_PREFIX.length), queryAt < 0 ? "" : url.slice(queryAt + 1));
      }
      if (!path.startsWith(CHUNK_PREFIX)) throw new NotFoundError("not_found", `no route for ${req.method} ${path.slice(0, 100)}`);
      const claims = this.authenticate(req);
      const { cid } = parseCid(path.slice(CHUNK_PREFIX.length));
      if (req.method === "GET") return await this.serveChunk(res, cid, claims, this.recentSends !== null && headerValue(req, DEFER_HEADER) === DEFER_TO_SWARM);
      if (req.method === "HEAD") return this.headChunk(res, cid);
      if (req.method === "PUT") return await this.receiveChunk(req, res, cid, claims);
      throw new HttpMethodError("GET, HEAD, PUT");
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private authenticate(req: IncomingMessage): SessionClaims {
    const header = req.headers.authorization;
    if (!header) throw new AuthError("session_required", "open a session (POST /v1/session) and send Authorization: Bearer <token>");
    if (!header.startsWith("Bearer ")) throw new AuthError("bad_session", "Authorization must be a Bearer session token");
    return this.sessions.verify(header.slice(7).trim(), this.now());
  }

  // ---- handlers ----

  private async openSession(req: IncomingMessage, res: ServerResponse, pathWithQuery: string): Promise<void> {
    const body = await readSmallBody(req, MAX_SESSION_BODY_BYTES);
    const nowMs = this.now();
    const verified = await verifySignedRequest({
      method: "POST",
      pathWithQuery,
      header: (name) => headerValue(req, name),
      bodySha256Hex: body.length ? createHash("sha256").update(body).digest("hex") : undefined,
      networkPublicKey: this.options.networkPublicKey,
      nowMs,
      maxSkewMs: this.maxSkewMs,
    });
    const { nodeId, roles, expiresAtMs: certificateExpiresAtMs } = verified.certificate;
    const claim = this.nonces.claim(`${nodeId}:${verified.nonce}`, verified.timestampMs + this.maxSkewMs, nowMs);
    if (claim === "replayed") throw new AuthError("replayed_nonce", "this nonce was already used; sign every session request with a fresh nonce");
    if (claim === "full") throw new PeercloudError("busy", "too many recent session requests; retry shortly", 503);
    const ttlMs = Math.max(1, Math.min(this.sessionTtlMs, certificateExpiresAtMs - nowMs));
    const token = this.sessions.issue(nodeId, roles, ttlMs, nowMs);
    this.counters.sessionsOpened++;
    this.emit("session", { nodeId, roles });
    sendJson(res, 200, { token, expiresAtMs: nowMs + ttlMs });
  }

  private async serveChunk(res: ServerResponse, cid: string, claims: SessionClaims, swarmMember: boolean): Promise<void> {
    // Asked before queueing and again once a slot is free: the queue wait is when another member's copy usually starts.
    if (swarmMember) this.checkNotSentToSwarm(cid, claims.nodeId);
    const socket = res.socket;
    if (socket) this.slotByConnection.get(socket)?.();
    if (this.sendQueue) this.checkNotTooBusy(claims.nodeId);
    // The slot first, then the file: a waiting request holds no descriptor. A reader that leaves while waiting frees its place.
    let release: (() => void) | null = null;
    if (this.sendQueue) {
      const gone = new AbortController();
      const onClose = () => gone.abort(new PeercloudError("cancelled", "the reader went away", 499));
      res.once("close", onClose);
      try {
        release = await this.sendQueue.acquire(claims.nodeId, gone.signal);
      } catch {
        return;
      } finally {
        res.off("close", onClose);
      }
      if (socket) this.slotByConnection.set(socket, release);
    }
    try {
      if (swarmMember) this.checkNotSentToSwarm(cid, claims.nodeId);
      await this.streamChunk(res, cid, claims, swarmMember);
    } finally {
      release?.();
      if (socket && this.slotByConnection.get(socket) === release) this.slotByConnection.delete(socket);
    }
  }

  /**
   * Refuses with 503 busy (and when to ask again) instead of queueing a request
   * that would wait long: when every slot streams and this requester already
   * has a request waiting, or a full round of others does. A queue of
   * requests several rounds of sends deep is no use to anyone — on a thin
   * uplink shared by many downloaders (16 at 10 Mbit/s in the swarm
   * benchmark) the last of them waited past the clients' 30 s idle timeout
   * and failed — while a requester told to come back keeps its other
   * sources busy meanwhile (chunk-scheduler.ts pauses this one).
   */
  private checkNotTooBusy(nodeId: string): void {
    const queue = this.sendQueue!;
    if (!queue.full || (queue.waitingFor(nodeId) === 0 && queue.queued < queue.slots)) return;
    const retryAfterMs = Math.round(Math.min(MAX_BUSY_RETRY_MS, Math.max(MIN_BUSY_RETRY_MS, this.sendMs)));
    throw new PeercloudError("busy", `every send slot is taken and requests are waiting; ask again in ${retryAfterMs} ms`, 503, { retryAfterMs });
  }

  /** Refuses with 409 sent_to_swarm when another swarm member is getting, or just got, `cid` from here (super-seed.ts). */
  private checkNotSentToSwarm(cid: string, nodeId: string): void {
    const refusal = this.recentSends!.refusal(cid, nodeId, this.now());
    if (!refusal) return;
    throw new PeercloudError(SENT_TO_SWARM, `${cid} is going, or just went, to swarm member ${refusal.sentTo}; get it from there, or from here after ${refusal.retryAfterMs} ms`, 409, {
      sentTo: refusal.sentTo,
      retryAfterMs: refusal.retryAfterMs,
    });
  }

  private async streamChunk(res: ServerResponse, cid: string, claims: SessionClaims, swarmMember: boolean): Promise<void> {
    const stored = await this.options.store.openRead(cid);
    const read = stored ?? this.options.arrivals?.open(cid);
    if (!read) throw new NotFoundError("chunk_not_found", `this peer does not hold ${cid}`);
    if (swarmMember) this.recentSends!.started(cid, claims.nodeId, this.now());
    const bytes = read.end - read.start;
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes });
    const startedMs = performance.now();
    this.counters.activeTransfers++;
    const sending = this.options.uploadLimiter ? pipeline(read.stream, this.options.uploadLimiter.throttle(), res) : pipeline(read.stream, res);
    // Counted as the file is read (the pipe reads only as fast as the socket drains), so rates show mid-chunk.
    // Listening after the pipe is attached changes nothing in how the stream flows.
    read.stream.on("data", (piece: Buffer) => (this.counters.bytesSent += piece.length));
    try {
      await sending;
    } catch {
      // The reader went away mid-chunk: pipeline already closed the file and the socket.
      if (swarmMember) this.recentSends!.forget(cid, claims.nodeId);
      this.counters.error("aborted");
      this.emit("warning", { code: "aborted", message: `${claims.nodeId} stopped reading ${cid} mid-transfer`, status: 499 });
      return;
    } finally {
      this.counters.activeTransfers--;
    }
    if (swarmMember) this.recentSends!.ended(cid, claims.nodeId, this.now());
    const tookMs = performance.now() - startedMs;
    this.sendMs += SEND_TIME_WEIGHT * (tookMs - this.sendMs);
    this.counters.served(claims.nodeId, bytes);
    if (!stored) this.counters.chunksRelayed++;
    this.emit("served", { cid, bytes, nodeId: claims.nodeId });
  }

  private serveSwarmView(res: ServerResponse, encodedKey: string, query: string): void {
    let key: string;
    try {
      key = checkSwarmKey(decodeURIComponent(encodedKey));
    } catch (error) {
      if (error instanceof URIError) throw new ValidationError("swarm key is not valid percent-encoding", "bad_swarm_key");
      throw error;
    }
    const sinceText = new URLSearchParams(query).get("since") ?? "0";
    if (!/^\d{1,9}$/.test(sinceText)) throw new ValidationError("since must be a non-negative integer", "bad_since");
    const view = this.options.swarm?.view(key, Number(sinceText));
    if (!view) throw new NotFoundError("no_swarm", "this peer is not downloading that file");
    sendJson(res, 200, view);
  }

  private headChunk(res: ServerResponse, cid: string): void {
    const sizeBytes = this.options.store.sizeBytes(cid);
    if (sizeBytes === null) throw new NotFoundError("chunk_not_found", `this peer does not hold ${cid}`);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": sizeBytes });
    res.end();
  }

  private async receiveChunk(req: IncomingMessage, res: ServerResponse, cid: string, claims: SessionClaims): Promise<void> {
    if (!claims.roles.some((role) => WRITE_ROLES.includes(role))) {
      throw new PeercloudError("role_required", `storing chunks needs the publisher or service role; this session has ${claims.roles.join(", ")}`, 403);
    }
    const lengthBytes = declaredLength(req);
    if (lengthBytes === null) throw new PeercloudError("length_required", "PUT needs a Content-Length (chunked bodies are not accepted)", 411);
    if (lengthBytes > this.maxChunkBytes) {
      throw new PeercloudError("chunk_too_large", `chunk of ${lengthBytes} bytes exceeds the ${this.maxChunkBytes}-byte maximum`, 413);
    }
    const { digest } = parseCid(cid);
    const body = Buffer.allocUnsafe(lengthBytes);
    const hash = createHash("sha256");
    let receivedBytes = 0;
    this.counters.activeTransfers++;
    try {
      for await (const piece of req as AsyncIterable<Buffer>) {
        // Node's parser enforces Content-Length framing; this guard only protects the buffer.
        if (receivedBytes + piece.length > lengthBytes) throw new PeercloudError("bad_length", "body longer than its Content-Length", 400);
        body.set(piece, receivedBytes);
        hash.update(piece);
        receivedBytes += piece.length;
        this.counters.bytesReceived += piece.length;
      }
    } finally {
      this.counters.activeTransfers--;
    }
    if (receivedBytes !== lengthBytes) throw new PeercloudError("incomplete_body", `received ${receivedBytes} of ${lengthBytes} bytes`, 400);
    if (!hash.digest().equals(digest)) throw new PeercloudError("hash_mismatch", `the body does not hash to ${cid}; nothing was stored`, 422);
    // Trusted: hashed against the CID above, while it arrived.
    const { added } = await this.options.store.putTrusted(cid, new Uint8Array(body.buffer, body.byteOffset, lengthBytes), { pin: true });
    this.counters.chunksReceived++;
    this.emit("received", { cid, bytes: lengthBytes, nodeId: claims.nodeId, added });
    sendJson(res, added ? 201 : 200, { cid, sizeBytes: lengthBytes, added });
  }

  // ---- helpers ----

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const known = isPeercloudError(err);
    const status = known && err.status >= 400 && err.status <= 599 ? err.status : 500;
    const code = known ? err.code : "internal_error";
    const message = known ? err.message : "the peer hit an unexpected error";
    this.counters.error(code);
    if (!ANSWER_STATUSES.has(status)) this.emit("warning", { code, message: known ? message : `${message}: ${err instanceof Error ? err.message : String(err)}`, status });
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = {};
    if (err instanceof HttpMethodError) headers.allow = err.allow;
    // A body we will not read: small ones are drained so the connection survives (a 401 must reach a client
    // mid-PUT), large or unframed ones end the connection instead of being read.
    const length = safeDeclaredLength(req);
    if (!req.complete && (length === null || length > this.maxChunkBytes)) headers.connection = "close";
    const details = known ? err.details : undefined;
    sendJson(res, status, { error: { code, message, ...(details ? { details } : {}) } }, headers);
  }
}
