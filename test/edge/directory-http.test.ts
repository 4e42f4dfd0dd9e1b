/**
 * The directory's HTTP face against the real region Durable Objects: the
 * WebSocket entry (signed, region-checked, replay-guarded, identity set by
 * the edge only), FIND_NODE / FIND_PROVIDERS (one region or all), pins,
 * placement, and signaling with its "not connected" error.
 */
import { afterEach, describe, expect, it } from "vitest";
import { cidOfBytes } from "../../src/core/cid.js";
import { edgeFetch, expectError, joinPeer, json, randomBytesOf, signedFetch, signedHeaders, signedJson, type Peer } from "./helpers.js";

interface Connection {
  ws: WebSocket;
  /** The next message the directory sent (JSON), in order. */
  next(): Promise<any>;
  /** Skips messages until one matches. */
  until(predicate: (m: any) => boolean): Promise<any>;
}

const open: WebSocket[] = [];
afterEach(() => {
  for (const ws of open.splice(0)) ws.close(1000, "test done");
});

async function connect(peer: Peer, region = peer.response.region, extraHeaders: Record<string, string> = {}): Promise<Connection> {
  const path = `/v1/regions/${region}/connect`;
  const res = await edgeFetch(path, { headers: { ...(await signedHeaders(peer, "GET", path)), upgrade: "websocket", ...extraHeaders } });
  if (res.status !== 101) throw new Error(`expected 101, got ${res.status}: ${await res.text()}`);
  const ws = res.webSocket!;
  const queue: any[] = [];
  const waiters: ((m: any) => void)[] = [];
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data as string);
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  ws.accept();
  open.push(ws);
  const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise<any>((resolve) => waiters.push(resolve)));
  return {
    ws,
    next,
    async until(predicate) {
      for (;;) {
        const m = await next();
        if (predicate(m)) return m;
      }
    },
  };
}

describe("GET /v1/regions/:region/connect", () => {
  it("opens the directory WebSocket for a signed request; the directory learns the verified node ID", async () => {
    const peer = await joinPeer({ region: "eu" });
    const other = await joinPeer({ region: "eu" });
    // A client-sent identity header must not survive: the edge sets it from the certificate.
    const conn = await connect(peer, "eu", { "x-peercloud-node-id": other.identity.nodeId, "x-peercloud-region": "us" });
    const welcome = await conn.next();
    expect(welcome).toMatchObject({ type: "welcome", nodeId: peer.identity.nodeId, region: "eu" });
  });

  it("refuses a certificate of another region", async () => {
    const peer = await joinPeer({ region: "us" });
    const path = "/v1/regions/eu/connect";
    const res = await edgeFetch(path, { headers: { ...(await signedHeaders(peer, "GET", path)), upgrade: "websocket" } });
    await expectError(res, 403, "wrong_region");
  });

  it("refuses a replayed connect, an unsigned one, a plain GET and an unknown region", async () => {
    const peer = await joinPeer({ region: "eu" });
    const path = "/v1/regions/eu/connect";
    const headers = { ...(await signedHeaders(peer, "GET", path)), upgrade: "websocket" };
    const first = await edgeFetch(path, { headers });
    expect(first.status).toBe(101);
    first.webSocket!.accept();
    open.push(first.webSocket!);
    await expectError(await edgeFetch(path, { headers }), 401, "replayed_nonce");
    await expectError(await edgeFetch(path, { headers: { upgrade: "websocket" } }), 401, "certificate_missing");
    const plain = await edgeFetch(path, { headers: await signedHeaders(peer, "GET", path) });
    await expectError(plain, 426, "upgrade_required");
    await expectError(await edgeFetch("/v1/regions/mars/connect", { headers }), 404, "unknown_region");
  });
});

describe("lookups over HTTP", () => {
  it("FIND_NODE returns the target itself first when it is registered", async () => {
    const target = await joinPeer({ region: "eu" });
    const asker = await joinPeer({ region: "us" });
    const res = await signedFetch(asker, "GET", `/v1/regions/eu/nodes?target=${target.identity.nodeId}&count=5`);
    const body = await json(res);
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.nodes.length).toBeGreaterThan(0);
    expect(body.nodes.length).toBeLessThanOrEqual(5);
    expect(body.nodes[0].nodeId).toBe(target.identity.nodeId);
  });

  it("FIND_PROVIDERS finds an announced holder in its region, and from other regions with scope=all", async () => {
    const holder = await joinPeer({ region: "eu", roles: ["service"] });
    const asker = await joinPeer({ region: "us" });
    const cid = await cidOfBytes(randomBytesOf(64));
    const conn = await connect(holder);
    await conn.until((m) => m.type === "welcome");
    conn.ws.send(JSON.stringify({ type: "announce", id: "a1", added: [cid], removed: [] }));
    expect(await conn.until((m) => m.id === "a1")).toMatchObject({ type: "ack", id: "a1" });

    const inEu = await json(await signedFetch(asker, "GET", `/v1/regions/eu/providers/${cid}`));
    expect(inEu.providers.map((p: { nodeId: string }) => p.nodeId)).toEqual([holder.identity.nodeId]);
    const usOnly = await json(await signedFetch(asker, "GET", `/v1/regions/us/providers/${cid}?scope=region`));
    expect(usOnly.providers).toEqual([]);
    const everywhere = await json(await signedFetch(asker, "GET", `/v1/regions/us/providers/${cid}?scope=all&count=3`));
    expect(everywhere.providers.map((p: { nodeId: string }) => p.nodeId)).toEqual([holder.identity.nodeId]);
  });

  it("validates targets, CIDs, counts and scopes, and requires a signature", async () => {
    const asker = await joinPeer({ region: "eu" });
    const cid = await cidOfBytes(randomBytesOf(8));
    await expectError(await signedFetch(asker, "GET", "/v1/regions/eu/nodes"), 400, "invalid_request");
    await expectError(await signedFetch(asker, "GET", "/v1/regions/eu/nodes?target=xyz"), 400, "invalid_request");
    await expectError(await signedFetch(asker, "GET", `/v1/regions/eu/nodes?target=${asker.identity.nodeId}&count=0`), 400, "invalid_request");
    await expectError(await signedFetch(asker, "GET", `/v1/regions/eu/nodes?target=${asker.identity.nodeId}&count=101`), 400, "invalid_request");
    await expectError(await signedFetch(asker, "GET", "/v1/regions/eu/providers/not-a-cid"), 400, "invalid_cid");
    await expectError(await signedFetch(asker, "GET", `/v1/regions/eu/providers/${cid}?scope=planet`), 400, "invalid_request");
    await expectError(await signedFetch(asker, "GET", `/v1/regions/mars/providers/${cid}`), 404, "unknown_region");
    await expectError(await edgeFetch(`/v1/regions/eu/providers/${cid}`), 401, "certificate_missing");
    // The signature covers the query: changing it after signing fails.
    const headers = await signedHeaders(asker, "GET", `/v1/regions/eu/nodes?target=${asker.identity.nodeId}&count=1`);
    await expectError(await edgeFetch(`/v1/regions/eu/nodes?target=${asker.identity.nodeId}&count=2`, { headers }), 401, "bad_signature");
  });
});

describe("pins and placement", () => {
  it("pins for publishers only, and places replicas on live service peers", async () => {
    const publisher = await joinPeer({ region: "ap", roles: ["publisher", "client"] });
    const service = await joinPeer({ region: "ap", roles: ["service"] });
    const cid = await cidOfBytes(randomBytesOf(32));
    await expectError(await signedJson(service, "POST", "/v1/regions/ap/pins", { cids: [cid], replicas: 2 }), 403, "role_required");
    const pinned = await signedJson(publisher, "POST", "/v1/regions/ap/pins", { cids: [cid], replicas: 2, sizeBytes: [32] });
    expect(pinned.status).toBe(200);
    expect(await json(pinned)).toEqual({ region: "ap", pinned: 1, replicas: 2 });
    await expectError(await signedJson(publisher, "POST", "/v1/regions/ap/pins", { cids: [cid], replicas: 2, sizeBytes: [1, 2] }), 400, "invalid_request");
    await expectError(await signedJson(publisher, "POST", "/v1/regions/ap/pins", { cids: ["bafy"], replicas: 2 }), 400, "invalid_request");

    const placed = await signedJson(publisher, "POST", "/v1/regions/ap/place", { count: 2, exclude: [publisher.identity.nodeId] });
    const body = await json(placed);
    expect(placed.status, JSON.stringify(body)).toBe(200);
    expect(body.nodes.map((n: { nodeId: string }) => n.nodeId)).toContain(service.identity.nodeId);
    expect(body.nodes.map((n: { nodeId: string }) => n.nodeId)).not.toContain(publisher.identity.nodeId);
    await expectError(await signedJson(publisher, "POST", "/v1/regions/ap/place", { count: 0 }), 400, "invalid_request");
  });
});

describe("POST /v1/signal", () => {
  it("delivers to a connected peer, in its own region or another", async () => {
    const receiver = await joinPeer({ region: "eu" });
    const sameRegion = await joinPeer({ region: "eu" });
    const otherRegion = await joinPeer({ region: "us" });
    const conn = await connect(receiver);
    await conn.until((m) => m.type === "welcome");

    const res = await signedJson(sameRegion, "POST", "/v1/signal", { to: receiver.identity.nodeId, payload: { kind: "connect-back", port: 7070 } });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ delivered: true, region: "eu", to: receiver.identity.nodeId });
    expect(await conn.until((m) => m.type === "signal")).toEqual({
      type: "signal",
      from: sameRegion.identity.nodeId,
      fromRegion: "eu",
      payload: { kind: "connect-back", port: 7070 },
    });

    const cross = await signedJson(otherRegion, "POST", "/v1/signal", { to: receiver.identity.nodeId, region: "eu", payload: "hello" });
    expect(cross.status).toBe(200);
    expect(await conn.until((m) => m.type === "signal")).toMatchObject({ from: otherRegion.identity.nodeId, fromRegion: "us", payload: "hello" });
  });

  it("answers 404 peer_not_connected for a peer without a socket, and validates the body", async () => {
    const sender = await joinPeer({ region: "eu" });
    const absent = await joinPeer({ region: "eu" });
    await expectError(await signedJson(sender, "POST", "/v1/signal", { to: absent.identity.nodeId, payload: {} }), 404, "peer_not_connected");
    await expectError(await signedJson(sender, "POST", "/v1/signal", { to: absent.identity.nodeId, region: "mars", payload: {} }), 404, "unknown_region");
    await expectError(await signedJson(sender, "POST", "/v1/signal", { to: "nobody", payload: {} }), 400, "invalid_request");
    await expectError(await signedJson(sender, "POST", "/v1/signal", { to: absent.identity.nodeId }), 400, "invalid_request");
    await expectError(await signedJson(sender, "POST", "/v1/signal", { to: absent.identity.nodeId, payload: "x".repeat(5000) }), 400, "invalid_request");
  });
});

describe("POST /v1/regions/:region/providers (batched FIND_PROVIDERS)", () => {
  it("answers per CID like the GET route, fans out with scope=all only for the CIDs short of providers", async () => {
    const euHolder = await joinPeer({ region: "eu", roles: ["service"] });
    const usHolder = await joinPeer({ region: "us", roles: ["service"] });
    const asker = await joinPeer({ region: "us" });
    const [inEu, inBoth, nowhere] = await Promise.all([1, 2, 3].map(() => cidOfBytes(randomBytesOf(64))));
    for (const [peer, cids] of [
      [euHolder, [inEu, inBoth]],
      [usHolder, [inBoth]],
    ] as const) {
      const conn = await connect(peer);
      await conn.until((m) => m.type === "welcome");
      conn.ws.send(JSON.stringify({ type: "announce", id: "a", added: cids, removed: [] }));
      expect(await conn.until((m) => m.id === "a")).toMatchObject({ type: "ack" });
    }
    const ids = (list: { nodeId: string }[]) => list.map((p) => p.nodeId);

    const local = await signedJson(asker, "POST", "/v1/regions/us/providers", { cids: [inEu, inBoth, nowhere, inBoth] });
    const localBody = await json(local);
    expect(local.status, JSON.stringify(localBody)).toBe(200);
    expect(localBody).toMatchObject({ region: "us", scope: "region" });
    expect(Object.keys(localBody.providers).sort()).toEqual([inEu, inBoth, nowhere].sort());
    for (const cid of [inEu, inBoth, nowhere]) {
      const single = await json(await signedFetch(asker, "GET", `/v1/regions/us/providers/${cid}`));
      expect(localBody.providers[cid]).toEqual(single.providers);
    }

    // scope=all with count 1: inBoth already has its one local holder, so only inEu (and nowhere) are asked elsewhere.
    const all = await json(await signedJson(asker, "POST", "/v1/regions/us/providers", { cids: [inEu, inBoth, nowhere], count: 1, scope: "all" }));
    expect(all.scope).toBe("all");
    expect(ids(all.providers[inEu])).toEqual([euHolder.identity.nodeId]);
    expect(ids(all.providers[inBoth])).toEqual([usHolder.identity.nodeId]);
    expect(all.providers[nowhere]).toEqual([]);
    const allWide = await json(await signedJson(asker, "POST", "/v1/regions/us/providers", { cids: [inBoth], scope: "all" }));
    expect(ids(allWide.providers[inBoth])).toEqual([usHolder.identity.nodeId, euHolder.identity.nodeId]);
  });

  it("requires a signature and validates the body: too many CIDs, invalid CIDs, counts, scopes, sizes", async () => {
    const asker = await joinPeer({ region: "eu" });
    const cid = await cidOfBytes(randomBytesOf(8));
    const path = "/v1/regions/eu/providers";
    await expectError(await edgeFetch(path, { method: "POST", body: JSON.stringify({ cids: [cid] }) }), 401, "certificate_missing");
    const other = await joinPeer({ region: "eu" });
    const body = JSON.stringify({ cids: [cid] });
    const headers = await signedHeaders(other, "POST", path, body);
    await expectError(await edgeFetch(path, { method: "POST", headers, body: JSON.stringify({ cids: [cid, cid] }) }), 401, "bad_signature");

    await expectError(await signedJson(asker, "POST", path, { cids: Array.from({ length: 257 }, () => cid) }), 400, "invalid_request");
    await expectError(await signedJson(asker, "POST", path, { cids: [] }), 400, "invalid_request");
    await expectError(await signedJson(asker, "POST", path, { cids: [cid, "not-a-cid"] }), 400, "invalid_cid");
    await expectError(await signedJson(asker, "POST", path, { cids: [cid.toUpperCase()] }), 400, "invalid_cid");
    await expectError(await signedJson(asker, "POST", path, { cids: [cid], count: 0 }), 400, "invalid_request");
    await expectError(await signedJson(asker, "POST", path, { cids: [cid], scope: "planet" }), 400, "invalid_request");
    await expectError(await signedJson(asker, "POST", path, { cids: [cid], extra: 1 }), 400, "invalid_request");
    await expectError(await signedFetch(asker, "POST", path, { body: "{" }), 400, "invalid_request");
    await expectError(await signedFetch(asker, "POST", path, { body: JSON.stringify({ cids: ["x".repeat(40_000)] }) }), 413, "too_large");
    await expectError(await signedJson(asker, "POST", "/v1/regions/mars/providers", { cids: [cid] }), 404, "unknown_region");
    const ok = await signedJson(asker, "POST", path, { cids: Array.from({ length: 256 }, () => cid) });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toEqual({ region: "eu", scope: "region", providers: { [cid]: [] } });
  });
});
