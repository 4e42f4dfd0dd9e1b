/**
 * Simulated peers joining the local edge the way real ones do
 * (docs/architecture.md "Identity, trust and signatures"): each has its own
 * Ed25519 identity, presents an admin-issued join token to
 * `POST /v1/bootstrap` with a self-signed request, receives a certificate,
 * then opens its region directory's WebSocket with a signed upgrade request.
 */
import { signBootstrapRequest, type BootstrapResponse } from "../../src/core/bootstrap.js";
import { toBase64Url } from "../../src/core/bytes.js";
import { generateIdentity, type Identity } from "../../src/core/identity.js";
import { signRequest } from "../../src/core/signed-request.js";
import { mapBounded, PeerSocket, type SocketTotals } from "./socket.js";

export interface JoinedPeer {
  identity: Identity;
  certificate: string;
  directoryPath: string;
}

async function expectJson<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** A join token from the admin API, good for the whole run. */
export async function createJoinToken(edgeUrl: URL, adminSecret: string, region: string): Promise<string> {
  const res = await fetch(new URL("/v1/admin/join-tokens", edgeUrl), {
    method: "POST",
    headers: { authorization: `Bearer ${adminSecret}`, "content-type": "application/json" },
    body: JSON.stringify({ label: "bench-edge", ttlSeconds: 24 * 3600, roles: ["service", "client"], regions: [region] }),
  });
  const body = await expectJson<{ token: string }>(res, "POST /v1/admin/join-tokens");
  return body.token;
}

export interface NetworkInfo {
  params: Record<string, number>;
}

export async function fetchNetwork(edgeUrl: URL): Promise<NetworkInfo> {
  return expectJson<NetworkInfo>(await fetch(new URL("/v1/network", edgeUrl)), "GET /v1/network");
}

/** The cause of a transport failure ("fetch failed" alone says nothing). */
export function describeError(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  return e.cause ? `${e.message}: ${e.cause.code ?? e.cause.message ?? String(e.cause)}` : e.message;
}

class HttpFailure extends Error {}

async function bootstrapOne(edgeUrl: URL, joinToken: string, region: string, index: number, retries: { count: number }): Promise<JoinedPeer> {
  // A real peer retries a bootstrap that failed in transport; an HTTP refusal is final.
  for (let attempt = 1; ; attempt++) {
    try {
      return await bootstrapAttempt(edgeUrl, joinToken, region, index);
    } catch (err) {
      if (err instanceof HttpFailure || attempt >= 3) throw new Error(describeError(err));
      retries.count++;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

async function bootstrapAttempt(edgeUrl: URL, joinToken: string, region: string, index: number): Promise<JoinedPeer> {
  const identity = await generateIdentity();
  const request = await signBootstrapRequest(identity.secretKey, {
    publicKey: toBase64Url(identity.publicKey),
    // Documentation-range addresses: the directory stores them, nobody dials them.
    addresses: [`http://198.51.${(index >> 8) & 255}.${index & 255}:7070`],
    roles: ["service"],
    capacity: { storageBytes: 1_000_000_000_000, uploadBps: 100_000_000, downloadBps: 100_000_000 },
    region,
    joinToken,
  });
  const res = await fetch(new URL("/v1/bootstrap", edgeUrl), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  if (!res.ok) throw new HttpFailure(`POST /v1/bootstrap: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
  const body = await expectJson<BootstrapResponse>(res, "POST /v1/bootstrap");
  return { identity, certificate: body.certificate, directoryPath: body.directoryPath };
}

export interface BootstrapResult {
  peers: JoinedPeer[];
  failures: Map<string, number>;
  /** Transport failures retried (and then succeeded or counted in failures). */
  retries: number;
  elapsedMs: number;
}

/** Bootstraps `count` peers, `concurrency` at a time; failures are counted by their first line, not thrown. */
export async function bootstrapPeers(edgeUrl: URL, joinToken: string, region: string, count: number, concurrency: number, progress: (done: number) => void): Promise<BootstrapResult> {
  const t0 = performance.now();
  let done = 0;
  const retries = { count: 0 };
  const results = await mapBounded(
    Array.from({ length: count }, (_, i) => i),
    concurrency,
    async (i) => {
      const peer = await bootstrapOne(edgeUrl, joinToken, region, i, retries);
      if (++done % 1000 === 0) progress(done);
      return peer;
    },
  );
  return { ...collect(results, t0), retries: retries.count };
}

export interface ConnectResult {
  sockets: PeerSocket[];
  failures: Map<string, number>;
  elapsedMs: number;
}

function collect<T>(results: (T | Error)[], t0: number): { peers: T[]; failures: Map<string, number>; elapsedMs: number } {
  const peers: T[] = [];
  const failures = new Map<string, number>();
  for (const r of results) {
    if (r instanceof Error) {
      const key = r.message.split("\n")[0].slice(0, 160);
      failures.set(key, (failures.get(key) ?? 0) + 1);
    } else peers.push(r);
  }
  return { peers, failures, elapsedMs: performance.now() - t0 };
}

/** Opens each peer's signed WebSocket to its region directory. */
export async function connectPeers(edgeUrl: URL, peers: readonly JoinedPeer[], totals: SocketTotals, concurrency: number, progress: (done: number) => void): Promise<ConnectResult> {
  const t0 = performance.now();
  let done = 0;
  const wsOrigin = edgeUrl.origin.replace(/^http/, "ws");
  const results = await mapBounded(peers, concurrency, async (peer) => {
    const headers = await signRequest({ method: "GET", pathWithQuery: peer.directoryPath, certificate: peer.certificate, secretKey: peer.identity.secretKey });
    const socket = await PeerSocket.open(wsOrigin + peer.directoryPath, headers, totals, 30_000).catch((err: unknown) => {
      throw new Error(describeError(err));
    });
    if (++done % 1000 === 0) progress(done);
    return socket;
  });
  const { peers: sockets, failures, elapsedMs } = collect(results, t0);
  return { sockets, failures, elapsedMs };
}

/** Opens `count` unauthenticated sockets to the echo baseline. */
export async function connectEcho(echoUrl: URL, count: number, totals: SocketTotals, concurrency: number): Promise<ConnectResult> {
  const t0 = performance.now();
  const wsOrigin = echoUrl.origin.replace(/^http/, "ws");
  const results = await mapBounded(
    Array.from({ length: count }, (_, i) => i),
    concurrency,
    () => PeerSocket.open(`${wsOrigin}/connect`, {}, totals, 30_000),
  );
  const { peers: sockets, failures, elapsedMs } = collect(results, t0);
  return { sockets, failures, elapsedMs };
}
