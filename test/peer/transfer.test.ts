/**
 * Peer-to-peer transfer over real sockets: a TransferServer on 127.0.0.1:0
 * backed by a real ChunkStore in a temp directory, and a real TransferClient,
 * with certificates issued in-test by a throwaway network key. Covers the
 * happy paths, every refusal a hostile or confused client can meet, and
 * that nothing a client does (garbage, aborts, slow headers) brings the
 * server down.
 */
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateIdentity, type Identity } from "../../src/core/identity.js";
import type { Role } from "../../src/core/roles.js";
import { signRequest } from "../../src/core/signed-request.js";
import { ChunkStore } from "../../src/peer/chunk-store.js";
import { TransferClient, TransferError } from "../../src/peer/transfer-client.js";
import { TransferServer, type TransferServerOptions } from "../../src/peer/transfer-server.js";
import { parseSwarmView, SwarmBoard } from "../../src/peer/swarm.js";
import { UploadLimiter } from "../../src/peer/upload-limiter.js";
import { AskLaterError } from "../../src/peer/sources.js";
import { LoadReporter } from "../../src/peer/load-report.js";
import { cidOf, makeChunk } from "./store-contract.js";
import { certify, makeTestNetwork as makeNetwork, type TestNetwork as Network } from "./test-network.js";

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function raw(url: string, method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    // Host/port/path given separately so that paths like "../x" reach the server unnormalised.
    const { hostname, port } = new URL(url);
    const req = request({ host: hostname, port, path, method, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (p: Buffer) => parts.push(p));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function errorCode(reply: RawReply): string | undefined {
  return JSON.parse(reply.body.toString("utf8")).error?.code;
}

async function rejection(promise: Promise<unknown>): Promise<TransferError> {
  try {
    await promise;
  } catch (err) {
    return err as TransferError;
  }
  throw new Error("expected a rejection");
}

let dir: string;
let network: Network;
let store: ChunkStore;
let server: TransferServer;
let url: string;
let publisher: { identity: Identity; certificate: string };
let client: TransferClient;
const cleanups: (() => unknown)[] = [];

async function startServer(options: Partial<TransferServerOptions> = {}): Promise<void> {
  server = new TransferServer({ store, networkPublicKey: network.publicKey, host: "127.0.0.1", port: 0, ...options });
  url = (await server.listen()).url;
}

async function clientFor(roles: Role[], net = network): Promise<{ identity: Identity; certificate: string; client: TransferClient }> {
  const identity = await generateIdentity();
  const certificate = await certify(net, identity, roles);
  const c = new TransferClient({ secretKey: identity.secretKey, certificate });
  cleanups.push(() => c.close());
  return { identity, certificate, client: c };
}

async function sessionToken(): Promise<string> {
  const headers = await signRequest({ method: "POST", pathWithQuery: "/v1/session", certificate: publisher.certificate, secretKey: publisher.identity.secretKey });
  const reply = await raw(url, "POST", "/v1/session", headers);
  expect(reply.status).toBe(200);
  return JSON.parse(reply.body.toString("utf8")).token;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "peercloud-transfer-"));
  network = await makeNetwork();
  store = await ChunkStore.open(join(dir, "store"));
  await startServer();
  const p = await clientFor(["publisher", "service"]);
  publisher = p;
  client = p.client;
});

afterEach(async () => {
  for (const fn of cleanups.splice(0)) await fn();
  await server.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe("TransferServer + TransferClient", () => {
  it("puts, heads and gets a chunk through one session", async () => {
    const chunk = makeChunk("hello", 300_000);
    expect(await client.headChunk(url, chunk.cid)).toBeNull();
    expect(await client.putChunk(url, chunk.cid, chunk.bytes)).toEqual({ added: true });
    expect(store.isPinned(chunk.cid)).toBe(true);
    expect(await client.putChunk(url, chunk.cid, chunk.bytes)).toEqual({ added: false });
    expect(await client.headChunk(url, chunk.cid)).toBe(300_000);
    // The client may hold every byte a moment before the server's stream reports it finished.
    const served = once(server, "served");
    expect(Buffer.from(await client.getChunk(url, chunk.cid)).equals(chunk.bytes)).toBe(true);
    await served;
    const stats = server.stats();
    expect(stats.sessionsOpened).toBe(1);
    expect(stats.chunksServed).toBe(1);
    expect(stats.bytesServed).toBe(300_000);
    expect(stats.chunksReceived).toBe(2);
    expect(stats.servedBytesByPeer[publisher.identity.nodeId]).toBe(300_000);
  });

  it("emits served and received events", async () => {
    const chunk = makeChunk("events", 1000);
    const received = once(server, "received");
    await client.putChunk(url, chunk.cid, chunk.bytes);
    expect((await received)[0]).toMatchObject({ cid: chunk.cid, bytes: 1000, nodeId: publisher.identity.nodeId, added: true });
    const served = once(server, "served");
    await client.getChunk(url, chunk.cid);
    expect((await served)[0]).toMatchObject({ cid: chunk.cid, bytes: 1000, nodeId: publisher.identity.nodeId });
  });

  it("serves empty and maximum-size chunks", async () => {
    const empty = new Uint8Array(0);
    const big = new Uint8Array(randomBytes(8 * 1024 * 1024));
    for (const bytes of [empty, big]) {
      const cid = cidOf(bytes);
      await store.put(cid, bytes);
      expect(Buffer.from(await client.getChunk(url, cid)).equals(bytes)).toBe(true);
    }
  });

  it("answers chunk_not_found for a missing chunk", async () => {
    const err = await rejection(client.getChunk(url, makeChunk("absent", 10).cid));
    expect(err).toBeInstanceOf(TransferError);
    expect(err.code).toBe("chunk_not_found");
  });

  it("refuses a body that does not hash to its CID and stores nothing", async () => {
    const chunk = makeChunk("real", 5000);
    const other = makeChunk("other", 5000);
    const err = await rejection(client.putChunk(url, chunk.cid, other.bytes));
    expect(err.code).toBe("transfer_failed");
    expect(err.remoteCode).toBe("hash_mismatch");
    expect(err.status).toBe(422);
    expect(store.has(chunk.cid)).toBe(false);
    expect(store.isPinned(chunk.cid)).toBe(false);
  });

  it("answers 507 store_full when pinned data leaves no room", async () => {
    await server.close();
    await store.close();
    store = await ChunkStore.open(join(dir, "small"), { limitBytes: 10_000 });
    await startServer();
    const first = makeChunk("first", 8000);
    await client.putChunk(url, first.cid, first.bytes);
    const second = makeChunk("second", 8000);
    const err = await rejection(client.putChunk(url, second.cid, second.bytes));
    expect(err.status).toBe(507);
    expect(err.remoteCode).toBe("store_full");
    expect(store.has(second.cid)).toBe(false);
  });

  it("lets only publisher and service roles store chunks", async () => {
    const reader = await clientFor(["client"]);
    const chunk = makeChunk("client", 100);
    const err = await rejection(reader.client.putChunk(url, chunk.cid, chunk.bytes));
    expect(err.status).toBe(403);
    expect(err.remoteCode).toBe("role_required");
    await store.put(chunk.cid, chunk.bytes);
    expect(Buffer.from(await reader.client.getChunk(url, chunk.cid)).equals(chunk.bytes)).toBe(true);
  });

  it("requires a session for chunk routes", async () => {
    const cid = makeChunk("x", 10).cid;
    const none = await raw(url, "GET", `/v1/chunks/${cid}`);
    expect(none.status).toBe(401);
    expect(errorCode(none)).toBe("session_required");
    for (const authorization of ["Bearer nonsense", "Bearer " + "A".repeat(20) + "." + "B".repeat(43), "Basic abc", "Bearer " + "x".repeat(5000)]) {
      const bad = await raw(url, "GET", `/v1/chunks/${cid}`, { authorization });
      expect(bad.status).toBe(401);
      expect(errorCode(bad)).toBe("bad_session");
    }
  });

  it("refuses sessions for an expired certificate", async () => {
    const identity = await generateIdentity();
    const certificate = await certify(network, identity, ["service"], { issuedAtMs: Date.now() - 7200_000, expiresAtMs: Date.now() - 3600_000 });
    const c = new TransferClient({ secretKey: identity.secretKey, certificate });
    cleanups.push(() => c.close());
    const err = await rejection(c.getChunk(url, makeChunk("x", 10).cid));
    expect(err.code).toBe("session_refused");
    expect(err.remoteCode).toBe("certificate_expired");
    expect(err.status).toBe(401);
  });

  it("refuses sessions for a certificate of another network", async () => {
    const stranger = await clientFor(["service"], await makeNetwork());
    const err = await rejection(stranger.client.getChunk(url, makeChunk("x", 10).cid));
    expect(err.code).toBe("session_refused");
    expect(err.remoteCode).toBe("certificate_bad_signature");
  });

  it("refuses a session request signed by a key other than the certified one", async () => {
    const impostor = await generateIdentity();
    const headers = await signRequest({ method: "POST", pathWithQuery: "/v1/session", certificate: publisher.certificate, secretKey: impostor.secretKey });
    const reply = await raw(url, "POST", "/v1/session", headers);
    expect(reply.status).toBe(401);
    expect(errorCode(reply)).toBe("bad_signature");
  });

  it("refuses a replayed session request", async () => {
    const headers = await signRequest({ method: "POST", pathWithQuery: "/v1/session", certificate: publisher.certificate, secretKey: publisher.identity.secretKey });
    expect((await raw(url, "POST", "/v1/session", headers)).status).toBe(200);
    const replay = await raw(url, "POST", "/v1/session", headers);
    expect(replay.status).toBe(401);
    expect(errorCode(replay)).toBe("replayed_nonce");
  });

  it("reopens the session when the server says it expired", async () => {
    await server.close();
    let nowMs = Date.now();
    await startServer({ now: () => nowMs, sessionTtlMs: 60_000 });
    const chunk = makeChunk("renew", 100);
    await store.put(chunk.cid, chunk.bytes);
    await client.getChunk(url, chunk.cid);
    nowMs += 61_000;
    expect(Buffer.from(await client.getChunk(url, chunk.cid)).equals(chunk.bytes)).toBe(true);
    expect(server.stats().sessionsOpened).toBe(2);
    expect(server.stats().errors.session_expired).toBe(1);
  });

  it("answers 400 invalid_cid for a malformed CID", async () => {
    const token = await sessionToken();
    for (const bad of ["nope", "../../etc/passwd", "%2e%2e", makeChunk("x", 1).cid.toUpperCase()]) {
      const reply = await raw(url, "GET", `/v1/chunks/${bad}`, { authorization: `Bearer ${token}` });
      expect(reply.status).toBe(400);
      expect(errorCode(reply)).toBe("invalid_cid");
    }
  });

  it("refuses an oversize or unframed PUT before reading it", async () => {
    const token = await sessionToken();
    const cid = makeChunk("big", 10).cid;
    const oversize = await raw(url, "PUT", `/v1/chunks/${cid}`, { authorization: `Bearer ${token}`, "content-length": String(8 * 1024 * 1024 + 1) });
    expect(oversize.status).toBe(413);
    expect(errorCode(oversize)).toBe("chunk_too_large");
    const chunked = await raw(url, "PUT", `/v1/chunks/${cid}`, { authorization: `Bearer ${token}`, "transfer-encoding": "chunked" }, new Uint8Array(10));
    expect(chunked.status).toBe(411);
    expect(await client.headChunk(url, cid)).toBeNull();
  });

  it("serves many concurrent gets correctly", async () => {
    const chunks = Array.from({ length: 8 }, (_, i) => makeChunk(`c${i}`, 200_000 + i * 1000));
    for (const c of chunks) await store.put(c.cid, c.bytes);
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => client.getChunk(url, chunks[i % 8].cid)));
    results.forEach((bytes, i) => expect(Buffer.from(bytes).equals(chunks[i % 8].bytes)).toBe(true));
    expect(server.stats().sessionsOpened).toBe(1);
  });

  it("survives a client that aborts mid-transfer", async () => {
    const bytes = new Uint8Array(randomBytes(8 * 1024 * 1024));
    const cid = cidOf(bytes);
    await store.put(cid, bytes);
    const token = await sessionToken();
    const warning = once(server, "warning");
    await new Promise<void>((resolve, reject) => {
      const req = request(`${url}/v1/chunks/${cid}`, { headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
    expect((await warning)[0].code).toBe("aborted");
    expect(Buffer.from(await client.getChunk(url, cid)).equals(bytes)).toBe(true);
  });

  it("lets the caller abort a get with a signal", async () => {
    const controller = new AbortController();
    controller.abort(new Error("stop"));
    await expect(client.getChunk(url, makeChunk("x", 10).cid, { signal: controller.signal })).rejects.toThrow("stop");
  });

  it("enforces maxBytes on the client", async () => {
    const chunk = makeChunk("max", 50_000);
    await store.put(chunk.cid, chunk.bytes);
    const err = await rejection(client.getChunk(url, chunk.cid, { maxBytes: 1000 }));
    expect(err.code).toBe("transfer_failed");
  });

  it("reports peer_unreachable for a closed port", async () => {
    const closed = new TransferServer({ store, networkPublicKey: network.publicKey, host: "127.0.0.1", port: 0 });
    const deadUrl = (await closed.listen()).url;
    await closed.close();
    const err = await rejection(client.getChunk(deadUrl, makeChunk("x", 10).cid));
    expect(err.code).toBe("peer_unreachable");
  });

  it("answers garbage on the wire with 400 and keeps serving", async () => {
    const socket = connect(server.port!, "127.0.0.1");
    socket.write("THIS IS NOT HTTP\r\n\r\n");
    const data: Buffer[] = [];
    socket.on("data", (d: Buffer) => data.push(d));
    await once(socket, "close");
    expect(Buffer.concat(data).toString("latin1")).toMatch(/^HTTP\/1\.1 400/);
    const chunk = makeChunk("after-garbage", 100);
    await store.put(chunk.cid, chunk.bytes);
    expect((await client.getChunk(url, chunk.cid)).length).toBe(100);
  });

  it("drops a connection whose headers never finish (slowloris)", async () => {
    await server.close();
    await startServer({ headersTimeoutMs: 300 });
    const socket = connect(server.port!, "127.0.0.1");
    socket.on("error", () => {});
    // Flowing, so that the server's FIN is seen and "close" follows.
    socket.resume();
    socket.write("GET /v1/chunks/x HTTP/1.1\r\nHost: a\r\nX-Slow: ");
    await once(socket, "close");
    const chunk = makeChunk("after-slow", 100);
    await store.put(chunk.cid, chunk.bytes);
    expect((await client.getChunk(url, chunk.cid)).length).toBe(100);
  });

  it("answers unknown routes and methods with JSON errors", async () => {
    const token = await sessionToken();
    const unknown = await raw(url, "GET", "/v2/anything");
    expect(unknown.status).toBe(404);
    expect(errorCode(unknown)).toBe("not_found");
    const del = await raw(url, "DELETE", `/v1/chunks/${makeChunk("x", 1).cid}`, { authorization: `Bearer ${token}` });
    expect(del.status).toBe(405);
    expect(del.headers.allow).toBe("GET, HEAD, PUT");
    const getSession = await raw(url, "GET", "/v1/session");
    expect(getSession.status).toBe(405);
  });
});

describe("swarm views (GET /v1/swarm/:key)", () => {
  it("answers a member's progress, and refuses no session, bad keys and bad cursors with clear errors", async () => {
    const board = new SwarmBoard();
    await server.close();
    await startServer({ swarm: board });
    const progress = board.open("bafkfile/a b.txt", 3);
    progress.holds(1);
    progress.started(2);
    const token = await sessionToken();
    const auth = { authorization: `Bearer ${token}` };
    const view = await client.swarmView(url, "bafkfile/a b.txt", 0);
    expect(parseSwarmView(view, 3)).toMatchObject({ pieces: 3, seq: 1, inFlight: [2], complete: false });
    expect(await client.swarmView(url, "another file", 0)).toBeNull();

    const none = await raw(url, "GET", "/v1/swarm/x");
    expect([none.status, errorCode(none)]).toEqual([401, "session_required"]);
    for (const [path, code] of [
      ["/v1/swarm/x?since=-1", "bad_since"],
      ["/v1/swarm/x?since=1e3", "bad_since"],
      ["/v1/swarm/%E0%A4%A", "bad_swarm_key"],
      ["/v1/swarm/a%01b", "bad_swarm_key"],
      [`/v1/swarm/${"k".repeat(601)}`, "bad_swarm_key"],
    ]) {
      const reply = await raw(url, "GET", path, auth);
      expect([reply.status, errorCode(reply)], path).toEqual([400, code]);
    }
    const unknown = await raw(url, "GET", "/v1/swarm/nothing-here", auth);
    expect([unknown.status, errorCode(unknown)]).toEqual([404, "no_swarm"]);
    const put = await raw(url, "PUT", "/v1/swarm/x", auth);
    expect(put.status).toBe(405);
  });

  it("answers 404 no_swarm on a server without a board (a one-shot process); 404 answers are not warnings, faults are", async () => {
    const token = await sessionToken();
    const warnings: string[] = [];
    server.on("warning", (w) => warnings.push(w.code));
    const reply = await raw(url, "GET", "/v1/swarm/x", { authorization: `Bearer ${token}` });
    expect([reply.status, errorCode(reply)]).toEqual([404, "no_swarm"]);
    const missing = await raw(url, "GET", `/v1/chunks/${cidOf(randomBytes(10))}`, { authorization: `Bearer ${token}` });
    expect([missing.status, errorCode(missing)]).toEqual([404, "chunk_not_found"]);
    // A fault on the same server still warns.
    await raw(url, "GET", "/v1/swarm/x?since=-1", { authorization: `Bearer ${token}` });
    expect(warnings).toEqual(["bad_since"]);
  });
});

describe("super-seeding (a seed sends each chunk to one swarm member at a time)", () => {
  it("refers a second member to the swarm for the window after a send, then serves; never refuses the recipient, a non-member, or after a cut-off send", async () => {
    // The server's clock runs ahead of the real one by `skewMs` (certificates and sessions stay valid: hours and minutes).
    let skewMs = 0;
    await server.close();
    await startServer({ superSeedWindowMs: 5_000, now: () => Date.now() + skewMs });
    const chunk = makeChunk("super-seed", 200_000);
    await client.putChunk(url, chunk.cid, chunk.bytes);
    const [a, b] = [await clientFor(["service"]), await clientFor(["service"])];
    const warnings: string[] = [];
    server.on("warning", (w) => warnings.push(w.code));

    // The client may hold every byte a moment before the server's stream reports the send ended (the window's start).
    const served = once(server, "served");
    expect(Buffer.from(await a.client.getChunk(url, chunk.cid, { deferToSwarm: true })).equals(chunk.bytes)).toBe(true);
    await served;
    skewMs += 2_000;
    const refused = await rejection(b.client.getChunk(url, chunk.cid, { deferToSwarm: true }));
    expect(refused).toBeInstanceOf(AskLaterError);
    expect((refused as unknown as AskLaterError).scope).toBe("chunk");
    expect([refused.code, refused.status]).toEqual(["sent_to_swarm", 409]);
    // 3 s left of the window, less the real time the test took between the two requests.
    expect((refused as unknown as AskLaterError).retryAfterMs).toBeGreaterThan(2_000);
    expect((refused as unknown as AskLaterError).retryAfterMs).toBeLessThanOrEqual(3_000);
    expect(refused.message).toContain(a.identity.nodeId);
    // The recipient itself (a retry), and anyone who cannot wait for the swarm, are served.
    expect((await a.client.getChunk(url, chunk.cid, { deferToSwarm: true })).length).toBe(200_000);
    expect((await b.client.getChunk(url, chunk.cid)).length).toBe(200_000);
    // After the window the chunk goes to whoever asks.
    skewMs += 5_001;
    expect((await b.client.getChunk(url, chunk.cid, { deferToSwarm: true })).length).toBe(200_000);
    expect(server.stats().errors).toEqual({ sent_to_swarm: 1 });
    expect(warnings).toEqual([]); // a referral is an answer, not a fault
    server.removeAllListeners("warning");

    // A send the reader cut off frees the chunk for the next member at once.
    const bytes = new Uint8Array(randomBytes(8 * 1024 * 1024));
    const big = cidOf(bytes);
    await store.put(big, bytes);
    const aborted = once(server, "warning");
    const controller = new AbortController();
    const cut = b.client.getChunk(url, big, { deferToSwarm: true, signal: controller.signal, onResponse: () => controller.abort(new Error("enough")) });
    await expect(cut).rejects.toThrow("enough");
    expect((await aborted)[0].code).toBe("aborted");
    expect(Buffer.from(await a.client.getChunk(url, big, { deferToSwarm: true })).equals(bytes)).toBe(true);
  });

  it("is off with superSeedWindowMs 0", async () => {
    await server.close();
    await startServer({ superSeedWindowMs: 0 });
    const chunk = makeChunk("no-super-seed", 1000);
    await client.putChunk(url, chunk.cid, chunk.bytes);
    const [a, b] = [await clientFor(["service"]), await clientFor(["service"])];
    await a.client.getChunk(url, chunk.cid, { deferToSwarm: true });
    expect((await b.client.getChunk(url, chunk.cid, { deferToSwarm: true })).length).toBe(1000);
  });
});

/** Resolves once `condition` holds (checked every few ms), or fails after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("busy answers (a send queue is not allowed to grow rounds deep)", () => {
  it("queues one request per requester while all slots stream, answers the next 503 busy with when to come back, and serves it later", async () => {
    await server.close();
    // One slot, and a slow uplink so that a 1 MiB send holds it for about a second.
    await startServer({ maxConcurrentSends: 1, uploadLimiter: new UploadLimiter({ bytesPerSecond: 1 << 20 }) });
    const chunks = [makeChunk("busy-a", 1 << 20), makeChunk("busy-b", 1000), makeChunk("busy-c", 1000)];
    for (const chunk of chunks) await client.putChunk(url, chunk.cid, chunk.bytes);
    const warnings: string[] = [];
    server.on("warning", (w) => warnings.push(w.code));
    const other = await clientFor(["service"]);
    let streaming = false;
    const first = client.getChunk(url, chunks[0].cid, { onResponse: () => (streaming = true) });
    await until(() => streaming);
    const requestsBefore = server.stats().requests;
    const second = client.getChunk(url, chunks[1].cid); // waits for the slot: this requester's only waiting request
    await until(() => server.stats().requests === requestsBefore + 1);
    const third = await rejection(client.getChunk(url, chunks[2].cid));
    expect(third).toBeInstanceOf(AskLaterError);
    expect((third as unknown as AskLaterError).scope).toBe("source");
    expect([third.code, third.status]).toEqual(["peer_busy", 503]);
    const retryAfterMs = (third as unknown as AskLaterError).retryAfterMs;
    expect(retryAfterMs).toBeGreaterThanOrEqual(200);
    expect(retryAfterMs).toBeLessThanOrEqual(10_000);
    // Another requester meets a full round of waiting requests (one slot, one waiting): busy too.
    expect(await rejection(other.client.getChunk(url, chunks[2].cid))).toBeInstanceOf(AskLaterError);
    expect(Buffer.from(await first).equals(chunks[0].bytes)).toBe(true);
    expect(Buffer.from(await second).equals(chunks[1].bytes)).toBe(true);
    // With the queue drained, the refused request is served.
    expect(Buffer.from(await client.getChunk(url, chunks[2].cid)).equals(chunks[2].bytes)).toBe(true);
    expect(server.stats().errors).toEqual({ busy: 2 });
    expect(warnings).toEqual([]);
  });
});

describe("upload limit", () => {
  it("caps what chunk responses send, all together, and delivers every byte", async () => {
    const bytesPerSecond = 4 * 1024 * 1024;
    await server.close();
    await startServer({ uploadLimiter: new UploadLimiter({ bytesPerSecond }) });
    const chunks = [makeChunk("limited-a", 1 << 20), makeChunk("limited-b", 1 << 20), makeChunk("limited-c", 1 << 20)];
    for (const chunk of chunks) await client.putChunk(url, chunk.cid, chunk.bytes);
    const started = performance.now();
    const got = await Promise.all(chunks.map((chunk) => client.getChunk(url, chunk.cid)));
    const seconds = (performance.now() - started) / 1000;
    got.forEach((bytes, i) => expect(Buffer.compare(Buffer.from(bytes), Buffer.from(chunks[i].bytes))).toBe(0));
    // 3 MiB at 4 MiB/s, less the bucket's initial burst (its default: 50 ms of the rate). A lower bound only,
    // so a slow machine cannot fail it; an unlimited server sends this in milliseconds on loopback.
    const burstBytes = bytesPerSecond / 20;
    expect(seconds).toBeGreaterThanOrEqual((3 * (1 << 20) - burstBytes) / bytesPerSecond - 0.02);
  });

  it("refuses a rate that is not a positive number", () => {
    for (const bytesPerSecond of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => new UploadLimiter({ bytesPerSecond })).toThrow(RangeError);
  });
});

describe("load report (the load and capacity a daemon's status reports carry)", () => {
  it("turns the bytes a transfer moved into capacity, and counts the client's chunk requests and repair jobs as queued", async () => {
    // One reporter over this server and the client that talks to it: each side counts its own bytes once.
    const reporter = new LoadReporter({ server, client, repairJobs: () => 2, cpu: () => 0.25 });
    expect(reporter.capacity()).toEqual({ uploadBps: 0, downloadBps: 0 });
    expect(reporter.load()).toEqual({ activeTransfers: 0, queueLength: 2, cpu: 0.25 });
    reporter.sample(0);
    const chunk = makeChunk("load-report", 300_000);
    const pushing = client.putChunk(url, chunk.cid, chunk.bytes);
    expect(reporter.load().queueLength).toBe(3);
    await pushing;
    const served = once(server, "served");
    const getting = client.getChunk(url, chunk.cid);
    expect(reporter.load().queueLength).toBe(3);
    await getting;
    await served;
    expect(reporter.load()).toEqual({ activeTransfers: 0, queueLength: 2, cpu: 0.25 });
    reporter.sample(1000);
    const capacity = reporter.capacity();
    // Over that one second: 300 kB served; 300 kB received by the PUT plus 300 kB read by the GET, and the
    // small JSON answers (session, PUT) the client read too.
    expect(capacity.uploadBps).toBe(300_000);
    expect(capacity.downloadBps).toBeGreaterThanOrEqual(600_000);
    expect(capacity.downloadBps).toBeLessThan(601_000);
  });

  it("reports the upload cap as the upload capacity, and the writes it holds back as queued", async () => {
    const limiter = new UploadLimiter({ bytesPerSecond: 1 << 20, burstBytes: 64 * 1024 });
    const reporter = new LoadReporter({ server, client, uploadLimiter: limiter, repairJobs: () => 0, cpu: () => 0 });
    expect(reporter.capacity()).toEqual({ uploadBps: 1 << 20, downloadBps: 0 });
    // The bucket starts full: the first write goes at once, the second waits ~60 ms for tokens.
    const first = limiter.take(64 * 1024);
    const second = limiter.take(64 * 1024);
    expect(reporter.load().queueLength).toBe(2);
    await first;
    expect(reporter.load().queueLength).toBe(1);
    await second;
    expect(reporter.load().queueLength).toBe(0);
  });
});
