/**
 * `peercloud peer drain`, the peer's half (issue 6 item 4): tells this
 * home's region directory, through the edge and signed with the home's own
 * identity, that the peer is leaving (`POST /v1/regions/:r/drain`), then
 * polls its progress (`GET …/drain`) until nothing would be lost by
 * shutting it down — every pinned chunk it holds has at least its target of
 * live replicas on other, non-draining peers. The directory does the work:
 * the peer's replicas stop counting, the repair loop copies them elsewhere
 * with this peer as a source, and nothing new is placed on it. So the daemon
 * must keep running (it is the source) while this waits; the command runs
 * beside it, like `peer stop`, and needs no control-socket route.
 *
 * Ctrl-C stops waiting only: the peer stays draining (`--cancel` undoes).
 */
import { createHash } from "node:crypto";
import { sleep } from "../core/abort.js";
import { utf8 } from "../core/bytes.js";
import { PeercloudError } from "../core/errors.js";
import type { DrainProgress } from "../core/messages.js";
import { signRequest } from "../core/signed-request.js";

export interface DrainClientOptions {
  edgeUrl: string;
  region: string;
  secretKey: Uint8Array;
  certificate: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

export class DrainClient {
  private readonly fetchFn: typeof fetch;

  constructor(private readonly options: DrainClientOptions) {
    this.fetchFn = options.fetch ?? fetch;
  }

  /** Starts (true) or cancels (false) the drain; returns the progress at once. */
  set(draining: boolean, signal?: AbortSignal): Promise<DrainProgress> {
    return this.call("POST", utf8(JSON.stringify({ draining })), signal);
  }

  progress(signal?: AbortSignal): Promise<DrainProgress> {
    return this.call("GET", undefined, signal);
  }

  private async call(method: "GET" | "POST", body: Uint8Array | undefined, signal?: AbortSignal): Promise<DrainProgress> {
    const base = this.options.edgeUrl.replace(/\/+$/, "");
    const url = new URL(`${base}/v1/regions/${encodeURIComponent(this.options.region)}/drain`);
    const bodySha256Hex = body ? createHash("sha256").update(body).digest("hex") : undefined;
    const headers: Record<string, string> = await signRequest({ method, pathWithQuery: url.pathname, bodySha256Hex, certificate: this.options.certificate, secretKey: this.options.secretKey });
    if (body) headers["content-type"] = "application/json";
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 15_000);
    let res: Response;
    try {
      res = await this.fetchFn(url, { method, headers, body: body ? Buffer.from(body) : undefined, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
      const reason = timeout.aborted ? "no answer in time" : (cause?.code ?? cause?.message ?? (err as Error).message);
      throw new PeercloudError("edge_unreachable", `cannot reach the edge (and so the region directory) at ${base}: ${reason}`, 503);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new PeercloudError("edge_error", `the edge answered HTTP ${res.status}: ${text.slice(0, 200).trim()}`, res.status >= 400 ? res.status : 502);
    }
    if (!res.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } }).error;
      throw new PeercloudError(error?.code ?? "edge_error", error?.message ?? `the edge answered HTTP ${res.status}`, res.status);
    }
    return parsed as DrainProgress;
  }
}

export interface DrainWaitOptions {
  /** Time between two progress polls. Default 1 s. */
  pollMs?: number;
  signal?: AbortSignal;
  onProgress?: (progress: DrainProgress) => void;
}

/** Starts the drain and polls until it is done; resolves with the last progress. */
export async function drainUntilDone(client: DrainClient, options: DrainWaitOptions = {}): Promise<DrainProgress> {
  let progress = await client.set(true, options.signal);
  options.onProgress?.(progress);
  while (!progress.done) {
    await sleep(options.pollMs ?? 1000, options.signal);
    try {
      progress = await client.progress(options.signal);
    } catch (error) {
      // A blip of the edge does not end a drain: keep polling (Ctrl-C ends the wait).
      if (options.signal?.aborted || !(error instanceof PeercloudError) || error.code !== "edge_unreachable") throw error;
      continue;
    }
    options.onProgress?.(progress);
  }
  return progress;
}
