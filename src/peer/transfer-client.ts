/**
 * The peer's chunk client: fetches and pushes sealed chunks over HTTP/1.1
 * keep-alive to other peers' TransferServers (transfer-server.ts).
 *
 * Per remote peer it keeps one `http.Agent` (a few warm sockets, so parallel
 * chunk requests to one peer do not pay a TCP handshake each) and one
 * session token, opened lazily with a signed `POST /v1/session` and reopened
 * when it nears expiry or the peer answers 401 (it restarted). A chunk body
 * is read straight into one buffer of its Content-Length — no list of pieces,
 * no concatenation — because this path is benchmarked against a plain
 * static-file server read by the same client.
 *
 * Failures are typed so the download scheduler can penalise and retry
 * elsewhere: `peer_unreachable` (no connection), `chunk_not_found` (404),
 * `session_refused` (the peer rejected our certificate), `transfer_failed`
 * (anything else, with the cause and the peer's error code). A seed's
 * referral to the swarm (super-seed.ts) and a full send queue are an
 * AskLaterError (sources.ts): no fault, ask again later. The CID is not
 * verified here: the scheduler does it so it knows which source to blame.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { parseCid } from "../core/cid.js";
import { PeercloudError } from "../core/errors.js";
import { DEFAULT_PARAMS } from "../core/params.js";
import { signRequest } from "../core/signed-request.js";
import { SWARM_PATH_PREFIX } from "./swarm.js";
import { DEFER_HEADER, DEFER_TO_SWARM, SENT_TO_SWARM } from "./super-seed.js";
import { AskLaterError, type BodyProgress } from "./sources.js";
import { abortable } from "../core/abort.js";

export type TransferErrorCode = "peer_unreachable" | "chunk_not_found" | "session_refused" | "transfer_failed";

export class TransferError extends PeercloudError {
  override readonly code: TransferErrorCode;
  /** The remote peer's own error code, when it answered with one. */
  readonly remoteCode: string | null;
  readonly peer: string;

  constructor(code: TransferErrorCode, peer: string, message: string, options: { status?: number; remoteCode?: string | null; cause?: unknown } = {}) {
    super(code, `${peer}: ${message}`, options.status ?? (code === "chunk_not_found" ? 404 : 502), { peer, remoteCode: options.remoteCode ?? null });
    this.name = "TransferError";
    this.code = code;
    this.peer = peer;
    this.remoteCode = options.remoteCode ?? null;
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

export interface TransferClientOptions {
  /** Ed25519 secret key of this peer (signs session requests). */
  secretKey: Uint8Array;
  /** This peer's certificate; a function so a renewed certificate is used without a new client. */
  certificate: string | (() => string);
  /** Parallel connections to one remote peer. Default 8. */
  maxSocketsPerPeer?: number;
  /** Largest chunk accepted. Default DEFAULT_PARAMS.maxChunkBytes. */
  maxChunkBytes?: number;
  /** A request with no bytes moving for this long fails (connecting: peer_unreachable). Default 30 s. */
  idleTimeoutMs?: number;
  /** Reopen a session this long before it expires. Default 30 s. */
  sessionRenewBeforeMs?: number;
  /** Remote peers with an agent kept; the least recently used beyond it are forgotten. Default 256. */
  maxPeers?: number;
  now?: () => number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Called when the answer's status line arrives (the downloader's round-trip measurement). */
  onResponse?: () => void;
}

interface Session {
  token: string;
  expiresAtMs: number;
}

interface Peer {
  origin: string;
  url: URL;
  agent: HttpAgent;
  session: Promise<Session> | null;
}

interface Reply {
  status: number;
  body: Buffer;
  contentLength: number | null;
}

const SESSION_PATH = "/v1/session";
/** A bitmap of a million pieces plus a window of in-flight pieces, as JSON. */
const MAX_SWARM_REPLY_BYTES = 1 << 20;
const MAX_JSON_REPLY_BYTES = 64 * 1024;
const SESSION_ERROR_CODES = new Set(["session_required", "bad_session", "session_expired"]);
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EADDRNOTAVAIL", "ECONNABORTED", "ETIMEDOUT"]);

export class TransferClient {
  private readonly peers = new Map<string, Peer>();
  private readonly maxChunkBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly renewBeforeMs: number;
  private readonly now: () => number;
  private chunkRequests = 0;
  private receivedBytes = 0;

  constructor(private readonly options: TransferClientOptions) {
    this.maxChunkBytes = options.maxChunkBytes ?? DEFAULT_PARAMS.maxChunkBytes;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.renewBeforeMs = options.sessionRenewBeforeMs ?? 30_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * The sealed chunk `cid` from the peer at `peerAddress` (e.g. "http://10.0.0.2:7070").
   * `deferToSwarm`: this download can get the chunk from its swarm instead, so a seed that just sent it to
   * another member may refuse (rejects with an AskLaterError of scope "chunk"; super-seed.ts).
   * `onBody` watches the chunk arrive (arriving-chunks.ts relays it onward before it is complete).
   */
  async getChunk(peerAddress: string, cid: string, options: RequestOptions & { maxBytes?: number; deferToSwarm?: boolean; onBody?: BodyProgress } = {}): Promise<Uint8Array> {
    const path = chunkPath(cid);
    const maxBytes = Math.min(options.maxBytes ?? this.maxChunkBytes, this.maxChunkBytes);
    const reply = await this.counted(() =>
      this.withSession(peerAddress, options.signal, (peer, token) => {
        const headers: Record<string, string> = { authorization: `Bearer ${token}` };
        if (options.deferToSwarm) headers[DEFER_HEADER] = DEFER_TO_SWARM;
        return this.send(peer, "GET", path, headers, undefined, options.signal, maxBytes, options.onResponse, options.onBody);
      }),
    );
    const body = reply.body;
    return new Uint8Array(body.buffer, body.byteOffset, body.length);
  }

  /** The chunk's size in bytes if the peer holds it, else null. */
  async headChunk(peerAddress: string, cid: string, options: RequestOptions = {}): Promise<number | null> {
    const path = chunkPath(cid);
    try {
      const reply = await this.withSession(peerAddress, options.signal, (peer, token) => this.send(peer, "HEAD", path, { authorization: `Bearer ${token}` }, undefined, options.signal, 0));
      return reply.contentLength;
    } catch (err) {
      if (err instanceof TransferError && err.code === "chunk_not_found") return null;
      throw err;
    }
  }

  /** Stores `sealed` under `cid` on the peer (pinned there). Needs the publisher or service role. */
  async putChunk(peerAddress: string, cid: string, sealed: Uint8Array, options: RequestOptions = {}): Promise<{ added: boolean }> {
    const path = chunkPath(cid);
    if (sealed.length > this.maxChunkBytes) throw new RangeError(`putChunk: ${sealed.length} bytes exceed the ${this.maxChunkBytes}-byte chunk maximum`);
    const reply = await this.counted(() =>
      this.withSession(peerAddress, options.signal, (peer, token) =>
        this.send(
          peer,
          "PUT",
          path,
          { authorization: `Bearer ${token}`, "content-type": "application/octet-stream", "content-length": String(sealed.length) },
          sealed,
          options.signal,
          MAX_JSON_REPLY_BYTES,
        ),
      ),
    );
    const parsed = parseJson(reply.body) as { added?: unknown } | null;
    return { added: parsed?.added === true };
  }

  /**
   * The peer's swarm view of one file (swarm.ts), parsed JSON but unchecked
   * (the caller validates it against what it expects); null when the peer
   * has no download of that key.
   */
  async swarmView(peerAddress: string, key: string, since: number, options: RequestOptions = {}): Promise<unknown> {
    const path = `${SWARM_PATH_PREFIX}${encodeURIComponent(key)}?since=${since}`;
    try {
      const reply = await this.withSession(peerAddress, options.signal, (peer, token) =>
        this.send(peer, "GET", path, { authorization: `Bearer ${token}` }, undefined, options.signal, MAX_SWARM_REPLY_BYTES),
      );
      return parseJson(reply.body);
    } catch (err) {
      if (err instanceof TransferError && err.status === 404) return null;
      throw err;
    }
  }

  /** Drops the agent and session of a peer that went away. */
  forget(peerAddress: string): void {
    const origin = originOf(peerAddress);
    const peer = this.peers.get(origin);
    if (!peer) return;
    peer.agent.destroy();
    this.peers.delete(origin);
  }

  /**
   * Chunk GETs and PUTs in progress (downloads, replica pushes, repair
   * copies), including those waiting for a socket or a session: part of the
   * queue length this peer reports to its directory.
   */
  get activeTransfers(): number {
    return this.chunkRequests;
  }

  /** Response body bytes read so far, counted as they arrive: the download side of the capacity meter. */
  get bytesReceived(): number {
    return this.receivedBytes;
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const peer of this.peers.values()) peer.agent.destroy();
    this.peers.clear();
  }

  private async counted<T>(request: () => Promise<T>): Promise<T> {
    this.chunkRequests++;
    try {
      return await request();
    } finally {
      this.chunkRequests--;
    }
  }

  // ---- sessions ----

  /** Runs `call` with a valid session, reopening it once if the peer says it is gone or expired. */
  private async withSession(peerAddress: string, signal: AbortSignal | undefined, call: (peer: Peer, token: string) => Promise<Reply>): Promise<Reply> {
    const peer = this.peer(peerAddress);
    for (let attempt = 0; ; attempt++) {
      const session = await this.session(peer, signal);
      const reply = await this.retryStaleSocket(() => call(peer, session.token));
      if (reply.status >= 200 && reply.status < 300) return reply;
      const remote = remoteError(reply);
      // HEAD answers carry no body, so a bare 401 there is taken as a lost session too.
      if (reply.status === 401 && (remote.code === null || SESSION_ERROR_CODES.has(remote.code)) && attempt === 0) {
        peer.session = null;
        continue;
      }
      if (reply.status === 404 && remote.code !== "not_found") throw new TransferError("chunk_not_found", peer.origin, remote.message ?? "chunk not found", { status: 404, remoteCode: remote.code });
      if (reply.status === 409 && remote.code === SENT_TO_SWARM)
        throw new AskLaterError(SENT_TO_SWARM, "chunk", remote.retryAfterMs ?? 0, `${peer.origin}: ${remote.message ?? "sent to another swarm member"}`, { peer: peer.origin });
      if (reply.status === 503 && remote.code === "busy" && remote.retryAfterMs !== null)
        throw new AskLaterError("peer_busy", "source", remote.retryAfterMs, `${peer.origin}: ${remote.message ?? "busy"}`, { peer: peer.origin });
      throw new TransferError("transfer_failed", peer.origin, `HTTP ${reply.status}${remote.code ? ` ${remote.code}` : ""}: ${remote.message ?? "request failed"}`, {
        status: reply.status,
        remoteCode: remote.code,
      });
    }
  }

  /** A valid session for `peer`: the cached one while it is fresh, else one opening (shared by concurrent callers). */
  private async session(peer: Peer, signal: AbortSignal | undefined): Promise<Session> {
    const current = peer.session;
    if (current) {
      const session = await abortable(current, signal);
      if (session.expiresAtMs - this.renewBeforeMs > this.now()) return session;
      if (peer.session === current) peer.session = null;
    }
    // A freshly opened session is used even if short-lived (a certificate near its end gives short sessions).
    return abortable(peer.session ?? this.openSession(peer), signal);
  }

  /** Opens a session; not tied to one caller's signal, since concurrent callers share it (its own bound is the idle timeout). */
  private openSession(peer: Peer): Promise<Session> {
    const opening = (async () => {
      const certificate = typeof this.options.certificate === "function" ? this.options.certificate() : this.options.certificate;
      const signed = await signRequest({ method: "POST", pathWithQuery: SESSION_PATH, certificate, secretKey: this.options.secretKey, nowMs: this.now() });
      const reply = await this.retryStaleSocket(() => this.send(peer, "POST", SESSION_PATH, { ...signed, "content-length": "0" }, undefined, undefined, MAX_JSON_REPLY_BYTES));
      const body = parseJson(reply.body) as Partial<Session> | null;
      if (reply.status !== 200 || typeof body?.token !== "string" || typeof body.expiresAtMs !== "number") {
        const remote = remoteError(reply);
        throw new TransferError("session_refused", peer.origin, `session refused (HTTP ${reply.status}${remote.code ? ` ${remote.code}` : ""}): ${remote.message ?? "no token"}`, {
          status: reply.status === 200 ? 502 : reply.status,
          remoteCode: remote.code,
        });
      }
      return { token: body.token, expiresAtMs: body.expiresAtMs };
    })();
    peer.session = opening;
    // A failed opening is not cached: the next request tries again.
    opening.catch(() => {
      if (peer.session === opening) peer.session = null;
    });
    return opening;
  }

  // ---- wire ----

  private peer(peerAddress: string): Peer {
    const origin = originOf(peerAddress);
    let peer = this.peers.get(origin);
    if (peer) {
      // Most recently used last, so the first entry is the one to forget.
      this.peers.delete(origin);
      this.peers.set(origin, peer);
      return peer;
    }
    const url = new URL(origin);
    const agentOptions = { keepAlive: true, maxSockets: this.options.maxSocketsPerPeer ?? 8, maxFreeSockets: this.options.maxSocketsPerPeer ?? 8, scheduling: "lifo" as const };
    peer = { origin, url, agent: url.protocol === "https:" ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions), session: null };
    this.peers.set(origin, peer);
    if (this.peers.size > (this.options.maxPeers ?? 256)) this.forget(this.peers.keys().next().value as string);
    return peer;
  }

  /** A keep-alive socket the peer closed while idle fails on first use; that one failure is retried on a fresh socket. */
  private async retryStaleSocket(call: () => Promise<Reply>): Promise<Reply> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof StaleSocketError) return call();
      throw err;
    }
  }

  /**
   * One HTTP exchange. A 200 body is read into a buffer of its Content-Length
   * (at most `maxBodyBytes`); other bodies (JSON errors) are read up to 64 KiB.
   */
  private send(
    peer: Peer,
    method: string,
    path: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    signal: AbortSignal | undefined,
    maxBodyBytes: number,
    onResponse?: () => void,
    onBody?: BodyProgress,
  ): Promise<Reply> {
    signal?.throwIfAborted();
    return new Promise<Reply>((resolve, reject) => {
      const request = peer.url.protocol === "https:" ? httpsRequest : httpRequest;
      const req = request({ agent: peer.agent, host: peer.url.hostname.replace(/^\[|\]$/g, ""), port: peer.url.port, method, path, headers });
      let settled = false;
      let responded = false;
      const finish = (err: unknown, reply?: Reply) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (err === undefined) resolve(reply!);
        else reject(err);
      };
      const onAbort = () => {
        finish(signal!.reason);
        req.destroy();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      req.setTimeout(this.idleTimeoutMs, () => {
        const connecting = !req.socket || req.socket.connecting;
        finish(new TransferError(connecting ? "peer_unreachable" : "transfer_failed", peer.origin, `${connecting ? "connect" : method} timed out after ${this.idleTimeoutMs} ms without progress`));
        req.destroy();
      });
      req.on("error", (err: NodeJS.ErrnoException) => {
        if (req.reusedSocket && !responded && (err.code === "ECONNRESET" || err.code === "EPIPE")) finish(new StaleSocketError());
        else finish(classifyNetworkError(peer.origin, err));
      });
      req.on("response", (res) => {
        responded = true;
        onResponse?.();
        this.readReply(peer, method, res, maxBodyBytes, finish, onBody);
      });
      req.end(body);
    });
  }

  private readReply(peer: Peer, method: string, res: IncomingMessage, maxBodyBytes: number, finish: (err: unknown, reply?: Reply) => void, onBody?: BodyProgress): void {
    const status = res.statusCode ?? 0;
    const lengthHeader = res.headers["content-length"];
    const contentLength = lengthHeader !== undefined && /^\d{1,15}$/.test(lengthHeader) ? Number(lengthHeader) : null;
    const fail = (message: string, cause?: unknown) => {
      finish(new TransferError("transfer_failed", peer.origin, message, { status, cause }));
      res.destroy();
    };
    if (method === "HEAD") {
      res.resume();
      return finish(undefined, { status, body: Buffer.alloc(0), contentLength });
    }
    const ok = status >= 200 && status < 300;
    const cap = ok ? maxBodyBytes : MAX_JSON_REPLY_BYTES;
    if (ok && contentLength === null) return fail("response has no Content-Length");
    if (contentLength !== null && contentLength > cap) return fail(`response of ${contentLength} bytes exceeds the ${cap}-byte limit`);
    let body = Buffer.allocUnsafe(contentLength ?? cap);
    let receivedBytes = 0;
    const progress = ok ? onBody : undefined;
    res.on("data", (piece: Buffer) => {
      if (receivedBytes + piece.length > body.length) return fail(`response body exceeds ${body.length} bytes`);
      piece.copy(body, receivedBytes);
      receivedBytes += piece.length;
      this.receivedBytes += piece.length;
      progress?.(body, receivedBytes);
    });
    res.on("end", () => {
      if (contentLength !== null && receivedBytes !== contentLength) return fail(`response ended after ${receivedBytes} of ${contentLength} bytes`);
      body = body.subarray(0, receivedBytes);
      finish(undefined, { status, body, contentLength });
    });
    res.on("error", (err) => fail(`connection lost after ${receivedBytes} bytes of the response`, err));
    res.on("close", () => {
      if (!res.complete) fail(`connection closed after ${receivedBytes} bytes of the response`);
    });
  }
}

/** Internal: a reused keep-alive socket turned out to be closed by the peer. */
class StaleSocketError extends Error {}

function chunkPath(cid: string): string {
  return `/v1/chunks/${parseCid(cid).cid}`;
}

function originOf(peerAddress: string): string {
  let url: URL;
  try {
    url = new URL(peerAddress);
  } catch {
    throw new TypeError(`not a peer address (expected http://host:port): ${String(peerAddress).slice(0, 100)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`unsupported peer address scheme ${url.protocol} (only http and https carry chunks)`);
  return url.origin;
}

function classifyNetworkError(origin: string, err: NodeJS.ErrnoException): TransferError {
  if (err.code && UNREACHABLE_CODES.has(err.code)) return new TransferError("peer_unreachable", origin, `cannot connect (${err.code})`, { cause: err });
  return new TransferError("transfer_failed", origin, `request failed: ${err.code ?? err.message}`, { cause: err });
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return null;
  }
}

/** Longest "ask again in" a remote peer is taken at its word for (a referral to the swarm, a busy answer): it must not park a piece or a source for long. */
const MAX_RETRY_AFTER_MS = 30_000;

function remoteError(reply: Reply): { code: string | null; message: string | null; retryAfterMs: number | null } {
  const parsed = parseJson(reply.body) as { error?: { code?: unknown; message?: unknown; details?: { retryAfterMs?: unknown } } } | null;
  const code = typeof parsed?.error?.code === "string" ? parsed.error.code.slice(0, 64) : null;
  const message = typeof parsed?.error?.message === "string" ? parsed.error.message.slice(0, 300) : null;
  const retry = parsed?.error?.details?.retryAfterMs;
  const retryAfterMs = typeof retry === "number" && Number.isFinite(retry) ? Math.min(Math.max(0, Math.ceil(retry)), MAX_RETRY_AFTER_MS) : null;
  return { code, message, retryAfterMs };
}
