/**
 * The HTTP client of the edge API (docs/api.md) for the daemon and the CLI.
 *
 * Every route that needs it is sent as a signed request
 * (src/core/signed-request.ts) with a fresh timestamp and nonce per attempt,
 * so a retry is never a replay. Calls that are safe to repeat (lookups,
 * absolute pin targets, create-once chunk uploads, reads) are retried with
 * jittered exponential backoff on network errors, timeouts and 5xx answers;
 * bootstrap and renewal are not, since their effect may have happened.
 * Failures come out as PeercloudErrors: the edge's own `{ error: { code,
 * message } }` with its status, or `edge_unreachable` (503) naming the cause
 * (connection refused, DNS, timeout) when the edge could not be reached.
 */
import type { RegionSummary } from "../../durable-objects/region-directory-contract.js";
import { createHash } from "node:crypto";
import { signBootstrapRequest, type BootstrapRequest, type BootstrapResponse, type RenewResponse, type UnsignedBootstrapRequest } from "../core/bootstrap.js";
import { bufferSource, utf8 } from "../core/bytes.js";
import { parseCid } from "../core/cid.js";
import { PeercloudError } from "../core/errors.js";
import type { PeerInfo, ProviderInfo } from "../core/messages.js";
import { DEFAULT_PARAMS, type NetworkParams } from "../core/params.js";
import { signRequest } from "../core/signed-request.js";
import { sleep } from "../core/abort.js";

/** `GET /v1/network`. */
export interface EdgeNetworkInfo {
  id: string;
  publicKey: string;
  params: NetworkParams;
  regions: string[];
}

export interface EdgeClientOptions {
  /** Base URL of the edge, e.g. "https://peercloud.example.workers.dev". */
  edgeUrl: string;
  /** This peer's key; needed for signed routes and to sign an unsigned bootstrap request. */
  identity?: { secretKey: Uint8Array };
  /** This peer's certificate, or a getter so renewals elsewhere take effect. `renew()` updates a plain string. */
  certificate?: string | (() => string | undefined);
  fetch?: typeof fetch;
  /** Per attempt, including reading the body. Default 15 s (chunk transfers: 60 s). */
  timeoutMs?: number;
  chunkTimeoutMs?: number;
  /** Attempts of a repeatable call. Default 3. */
  attempts?: number;
  /** First backoff delay; doubles per attempt with full jitter, capped at 5 s. Default 250 ms. */
  retryBaseDelayMs?: number;
  /** Largest chunk accepted from R2. Default DEFAULT_PARAMS.maxChunkBytes. */
  maxChunkBytes?: number;
  random?: () => number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

interface CallSpec<T> {
  method: "GET" | "HEAD" | "POST" | "PUT";
  path: string;
  body?: Uint8Array;
  contentType?: string;
  signed: boolean;
  /** Safe to send again after a network error, timeout or 5xx. */
  repeatable: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** 404 answers go to `read` instead of becoming an error. */
  allow404?: boolean;
  read: (res: Response) => Promise<T>;
}

const MAX_BACKOFF_MS = 5000;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export class EdgeClient {
  readonly edgeUrl: string;
  private certificate: string | (() => string | undefined) | undefined;
  private readonly fetchFn: typeof fetch;
  private readonly timeoutMs: number;
  private readonly chunkTimeoutMs: number;
  private readonly attempts: number;
  private readonly retryBaseDelayMs: number;
  private readonly maxChunkBytes: number;
  private readonly random: () => number;

  constructor(private readonly options: EdgeClientOptions) {
    let url: URL;
    try {
      url = new URL(options.edgeUrl);
    } catch {
      throw new TypeError(`EdgeClient: not a URL: ${String(options.edgeUrl).slice(0, 200)}`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new TypeError(`EdgeClient: the edge URL must be http(s), got ${url.protocol}`);
    this.edgeUrl = url.origin + url.pathname.replace(/\/+$/, "");
    this.certificate = options.certificate;
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.chunkTimeoutMs = options.chunkTimeoutMs ?? 60_000;
    this.attempts = Math.max(1, options.attempts ?? 3);
    this.retryBaseDelayMs = options.retryBaseDelayMs ?? 250;
    this.maxChunkBytes = options.maxChunkBytes ?? DEFAULT_PARAMS.maxChunkBytes;
    this.random = options.random ?? Math.random;
  }

  async network(options: CallOptions = {}): Promise<EdgeNetworkInfo> {
    return this.call<EdgeNetworkInfo>({ method: "GET", path: "/v1/network", signed: false, repeatable: true, signal: options.signal, read: json });
  }

  /** Joins the network. An unsigned request is signed with `identity` here (fresh timestamp and nonce). */
  async bootstrap(req: BootstrapRequest | UnsignedBootstrapRequest, options: CallOptions = {}): Promise<BootstrapResponse> {
    const signed = "signature" in req ? req : await signBootstrapRequest(this.secretKey(), req);
    const answer = await this.call<BootstrapResponse>({
      method: "POST",
      path: "/v1/bootstrap",
      body: utf8(JSON.stringify(signed)),
      contentType: "application/json",
      signed: false,
      repeatable: false,
      signal: options.signal,
      read: json,
    });
    if (typeof this.certificate !== "function") this.certificate = answer.certificate;
    return answer;
  }

  /** Renews this peer's certificate (allowed in its last `certificateRenewBeforeMs`); a plain-string certificate is replaced. */
  async renew(options: CallOptions = {}): Promise<RenewResponse> {
    const answer = await this.call<RenewResponse>({ method: "POST", path: "/v1/certificates/renew", signed: true, repeatable: false, signal: options.signal, read: json });
    if (typeof this.certificate !== "function") this.certificate = answer.certificate;
    return answer;
  }

  /** A region directory's summary (peers, replicas, repair, audits, region-quality estimates). */
  async regionSummary(region: string, options: CallOptions = {}): Promise<RegionSummary> {
    return this.call<RegionSummary>({ method: "GET", path: `/v1/regions/${seg(region)}/summary`, signed: true, repeatable: true, signal: options.signal, read: json });
  }

  /** The `count` peers of `region` closest to `target` (FIND_NODE), closest first. */
  async findNodes(region: string, target: string, count?: number, options: CallOptions = {}): Promise<PeerInfo[]> {
    const query = new URLSearchParams({ target });
    if (count !== undefined) query.set("count", String(count));
    const answer = await this.call<{ nodes: PeerInfo[] }>({ method: "GET", path: `/v1/regions/${seg(region)}/nodes?${query}`, signed: true, repeatable: true, signal: options.signal, read: json });
    return answer.nodes;
  }

  /** Live holders of `cid`: in `region` only, or (scope "all") topped up from the other regions. */
  async findProviders(region: string, cid: string, options: CallOptions & { count?: number; scope?: "region" | "all" } = {}): Promise<ProviderInfo[]> {
    const query = new URLSearchParams();
    if (options.count !== undefined) query.set("count", String(options.count));
    if (options.scope) query.set("scope", options.scope);
    const qs = query.size ? `?${query}` : "";
    const answer = await this.call<{ providers: ProviderInfo[] }>({
      method: "GET",
      path: `/v1/regions/${seg(region)}/providers/${parseCid(cid).cid}${qs}`,
      signed: true,
      repeatable: true,
      signal: options.signal,
      read: json,
    });
    return answer.providers;
  }

  /**
   * Live holders of each of `cids` (at most 256) in one request (POST
   * …/providers), keyed by CID; scope "all" tops up from the other regions
   * the CIDs this region answers short. An edge without the route answers
   * 404 `not_found`: callers fall back to findProviders.
   */
  async findProvidersBatch(region: string, cids: string[], options: CallOptions & { count?: number; scope?: "region" | "all" } = {}): Promise<Record<string, ProviderInfo[]>> {
    const body = utf8(JSON.stringify({ cids, ...(options.count !== undefined ? { count: options.count } : {}), ...(options.scope ? { scope: options.scope } : {}) }));
    const answer = await this.call<{ providers: Record<string, ProviderInfo[]> }>({
      method: "POST",
      path: `/v1/regions/${seg(region)}/providers`,
      body,
      contentType: "application/json",
      signed: true,
      repeatable: true,
      signal: options.signal,
      read: json,
    });
    return answer.providers;
  }

  /** Sets this peer's target replication factor for `cids` (0 withdraws its own pin). Needs the publisher role. */
  async pin(region: string, cids: string[], replicas: number, sizeBytes?: number[], options: CallOptions = {}): Promise<{ pinned: number; replicas: number }> {
    const body = utf8(JSON.stringify({ cids, replicas, ...(sizeBytes ? { sizeBytes } : {}) }));
    return this.call<{ pinned: number; replicas: number }>({
      method: "POST",
      path: `/v1/regions/${seg(region)}/pins`,
      body,
      contentType: "application/json",
      signed: true,
      repeatable: true,
      signal: options.signal,
      read: json,
    });
  }

  /** Live service peers on distinct hosts for `count` new replicas, best first. */
  async place(region: string, count: number, exclude: string[] = [], sizeBytes?: number, options: CallOptions = {}): Promise<PeerInfo[]> {
    const body = utf8(JSON.stringify({ count, ...(exclude.length ? { exclude } : {}), ...(sizeBytes !== undefined ? { sizeBytes } : {}) }));
    const answer = await this.call<{ nodes: PeerInfo[] }>({
      method: "POST",
      path: `/v1/regions/${seg(region)}/place`,
      body,
      contentType: "application/json",
      signed: true,
      repeatable: true,
      signal: options.signal,
      read: json,
    });
    return answer.nodes;
  }

  /** Delivers a small JSON payload to a connected peer over its directory socket (404 `peer_not_connected` otherwise). */
  async signal(to: string, payload: unknown, region?: string, options: CallOptions = {}): Promise<{ delivered: true; region: string; to: string }> {
    const body = utf8(JSON.stringify({ to, payload, ...(region ? { region } : {}) }));
    return this.call<{ delivered: true; region: string; to: string }>({
      method: "POST",
      path: "/v1/signal",
      body,
      contentType: "application/json",
      signed: true,
      repeatable: false,
      signal: options.signal,
      read: json,
    });
  }

  /** Uploads a sealed chunk to the R2 cold tier (create-once). Needs the publisher role. */
  async putChunkToR2(cid: string, sealed: Uint8Array, options: CallOptions = {}): Promise<{ cid: string; sizeBytes: number; created: boolean }> {
    const path = `/v1/chunks/${parseCid(cid).cid}`;
    return this.call<{ cid: string; sizeBytes: number; created: boolean }>({
      method: "PUT",
      path,
      body: sealed,
      contentType: "application/octet-stream",
      signed: true,
      repeatable: true,
      signal: options.signal,
      timeoutMs: this.chunkTimeoutMs,
      read: json,
    });
  }

  /** The sealed chunk from R2, or null when R2 does not have it. Not verified here: the caller checks it against the CID. */
  async getChunkFromR2(cid: string, options: CallOptions = {}): Promise<Uint8Array | null> {
    const path = `/v1/chunks/${parseCid(cid).cid}`;
    return this.call({
      method: "GET",
      path,
      signed: false,
      repeatable: true,
      allow404: true,
      signal: options.signal,
      timeoutMs: this.chunkTimeoutMs,
      read: async (res) => {
        if (res.status === 404) return drain(res, null);
        const declared = Number(res.headers.get("content-length") ?? NaN);
        if (declared > this.maxChunkBytes) {
          await res.body?.cancel();
          throw new PeercloudError("chunk_too_large", `the edge offered ${declared} bytes for ${cid}; chunks are at most ${this.maxChunkBytes}`, 502);
        }
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.length > this.maxChunkBytes) throw new PeercloudError("chunk_too_large", `the edge sent ${bytes.length} bytes for ${cid}`, 502);
        return bytes;
      },
    });
  }

  /** The chunk's size in R2, or null when absent. */
  async headChunkInR2(cid: string, options: CallOptions = {}): Promise<number | null> {
    const path = `/v1/chunks/${parseCid(cid).cid}`;
    return this.call({
      method: "HEAD",
      path,
      signed: false,
      repeatable: true,
      allow404: true,
      signal: options.signal,
      read: async (res) => (res.status === 404 ? null : Number(res.headers.get("content-length") ?? 0)),
    });
  }

  // ---- transport ----

  private secretKey(): Uint8Array {
    if (!this.options.identity) throw new PeercloudError("not_joined", "this call must be signed, but the EdgeClient has no identity", 400);
    return this.options.identity.secretKey;
  }

  private currentCertificate(): string {
    const certificate = typeof this.certificate === "function" ? this.certificate() : this.certificate;
    if (!certificate) throw new PeercloudError("not_joined", "this call needs a peer certificate: join the network first (peercloud init)", 400);
    return certificate;
  }

  private async call<T>(spec: CallSpec<T>): Promise<T> {
    const url = new URL(this.edgeUrl + spec.path);
    const bodySha256Hex = spec.signed && spec.body?.length ? createHash("sha256").update(spec.body).digest("hex") : undefined;
    const timeoutMs = spec.timeoutMs ?? this.timeoutMs;
    for (let attempt = 1; ; attempt++) {
      spec.signal?.throwIfAborted();
      const headers: Record<string, string> = {};
      if (spec.contentType) headers["content-type"] = spec.contentType;
      if (spec.signed) {
        Object.assign(
          headers,
          await signRequest({ method: spec.method, pathWithQuery: url.pathname + url.search, bodySha256Hex, certificate: this.currentCertificate(), secretKey: this.secretKey() }),
        );
      }
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = spec.signal ? AbortSignal.any([spec.signal, timeout]) : timeout;
      let failure: PeercloudError;
      try {
        const res = await this.fetchFn(url, { method: spec.method, headers, body: spec.body ? bufferSource(spec.body) : undefined, signal });
        if (res.ok || (spec.allow404 && res.status === 404)) return await spec.read(res);
        failure = await errorFrom(res);
        if (res.status < 500 || !spec.repeatable || attempt >= this.attempts) throw failure;
      } catch (err) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        if (err instanceof PeercloudError) throw err;
        failure = unreachable(this.edgeUrl, err, timeout.aborted ? timeoutMs : null);
        if (!spec.repeatable || attempt >= this.attempts) throw failure;
      }
      await sleep(this.random() * Math.min(MAX_BACKOFF_MS, this.retryBaseDelayMs * 2 ** (attempt - 1)), spec.signal);
    }
  }
}

function seg(region: string): string {
  return encodeURIComponent(region);
}

async function json<T>(res: Response): Promise<T> {
  try {
    return (await res.json()) as T;
  } catch (err) {
    if (err instanceof SyntaxError) throw new PeercloudError("bad_edge_response", `the edge answered ${res.status} with a body that is not JSON`, 502);
    throw err;
  }
}

async function drain<T>(res: Response, value: T): Promise<T> {
  await res.body?.cancel().catch(() => {});
  return value;
}

async function errorFrom(res: Response): Promise<PeercloudError> {
  let text = "";
  try {
    const declared = Number(res.headers.get("content-length") ?? 0);
    if (declared <= MAX_ERROR_BODY_BYTES) text = await res.text();
    else await res.body?.cancel();
  } catch {
    // The body broke off; the status still says enough.
  }
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === "string") {
      const message = typeof parsed.error.message === "string" ? parsed.error.message : parsed.error.code;
      return new PeercloudError(parsed.error.code.slice(0, 64), message.slice(0, 500), res.status);
    }
  } catch {
    // Not our JSON: a proxy or a gateway page.
  }
  return new PeercloudError("edge_error", `the edge answered HTTP ${res.status}${text ? `: ${text.slice(0, 200).trim()}` : ""}`, res.status);
}

function unreachable(edgeUrl: string, err: unknown, timedOutAfterMs: number | null): PeercloudError {
  let reason: string;
  if (timedOutAfterMs !== null) reason = `no answer within ${timedOutAfterMs} ms`;
  else {
    const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
    reason = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  }
  const error = new PeercloudError("edge_unreachable", `cannot reach the edge at ${edgeUrl}: ${reason}`, 503);
  error.cause = err;
  return error;
}
