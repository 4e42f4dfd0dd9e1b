/**
 * EdgeClient against the real edge (the Worker and its Durable Objects in
 * workerd through Miniflare, test/helpers/local-edge.ts): every route it
 * wraps, the edge's own error codes coming through as PeercloudErrors, and
 * the client's transport rules — retries only where repeatable, a clear
 * `edge_unreachable` when the edge is down or silent, caller aborts.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBase64Url } from "../../src/core/bytes.js";
import { verifyCertificate } from "../../src/core/certificate.js";
import { cidOfBytes } from "../../src/core/cid.js";
import { PeercloudError } from "../../src/core/errors.js";
import { generateIdentity, type Identity } from "../../src/core/identity.js";
import type { Role } from "../../src/core/roles.js";
import { EdgeClient } from "../../src/peer/edge-client.js";
import { startLocalEdge, type LocalEdge } from "../helpers/local-edge.js";

let edge: LocalEdge;

beforeAll(async () => {
  // Renewal allowed at any time (renew-before > TTL), so the success path is testable without waiting.
  edge = await startLocalEdge({ vars: { CERTIFICATE_TTL_MS: "3600000", CERTIFICATE_RENEW_BEFORE_MS: "7200000" } });
});

afterAll(async () => {
  await edge?.stop();
});

interface Joined {
  identity: Identity;
  client: EdgeClient;
  region: string;
  certificate: string;
}

async function join(roles: Role[], port: number): Promise<Joined> {
  const identity = await generateIdentity();
  const client = new EdgeClient({ edgeUrl: edge.url, identity });
  const answer = await client.bootstrap({
    publicKey: Buffer.from(identity.publicKey).toString("base64url"),
    addresses: [`http://127.0.0.1:${port}`],
    roles,
    capacity: { storageBytes: 1e9, uploadBps: 1e8, downloadBps: 1e8 },
    region: "eu",
    joinToken: await edge.createJoinToken(),
  });
  return { identity, client, region: answer.region, certificate: answer.certificate };
}

async function failure(promise: Promise<unknown>): Promise<PeercloudError> {
  try {
    await promise;
  } catch (err) {
    return err as PeercloudError;
  }
  throw new Error("expected a rejection");
}

describe("EdgeClient", () => {
  it("reads the network's key, parameters and regions", async () => {
    const info = await new EdgeClient({ edgeUrl: edge.url }).network();
    expect(fromBase64Url(info.publicKey)).toEqual(edge.networkPublicKey);
    expect(info.params.k).toBeGreaterThan(0);
    expect(info.params.certificateTtlMs).toBe(3600000);
    expect(info.regions).toContain("eu");
  });

  it("bootstraps (signing the request itself) and gets a valid certificate", async () => {
    const peer = await join(["service", "publisher"], 7001);
    const cert = await verifyCertificate(peer.certificate, { networkPublicKey: edge.networkPublicKey, nowMs: Date.now(), maxSkewMs: 60_000 });
    expect(cert.nodeId).toBe(peer.identity.nodeId);
    expect(cert.roles).toEqual(["service", "publisher"]);
    expect(peer.region).toBe("eu");
  });

  it("passes the edge's error code through (unknown join token)", async () => {
    const identity = await generateIdentity();
    const client = new EdgeClient({ edgeUrl: edge.url, identity });
    const err = await failure(
      client.bootstrap({
        publicKey: Buffer.from(identity.publicKey).toString("base64url"),
        addresses: [],
        roles: ["client"],
        capacity: { storageBytes: 0, uploadBps: 0, downloadBps: 0 },
        joinToken: "pcj_" + "A".repeat(43),
      }),
    );
    expect(err).toBeInstanceOf(PeercloudError);
    expect(err.code).toBe("unknown_join_token");
    expect(err.status).toBe(403);
  });

  it("renews the certificate and uses the new one from then on", async () => {
    const peer = await join(["service"], 7002);
    const renewed = await peer.client.renew();
    expect(renewed.certificate).not.toBe(peer.certificate);
    await verifyCertificate(renewed.certificate, { networkPublicKey: edge.networkPublicKey, nowMs: Date.now() });
    // Signed with the renewed certificate.
    expect(Array.isArray(await peer.client.findNodes(peer.region, peer.identity.nodeId, 5))).toBe(true);
  });

  it("finds nodes closest to a target and places replicas on service peers", async () => {
    const a = await join(["service"], 7003);
    const b = await join(["service"], 7004);
    const asker = await join(["client"], 7005);
    const nodes = await asker.client.findNodes("eu", a.identity.nodeId, 100);
    expect(nodes[0].nodeId).toBe(a.identity.nodeId);
    expect(nodes.map((n) => n.nodeId)).toContain(b.identity.nodeId);
    const placed = await asker.client.place("eu", 16, [a.identity.nodeId]);
    const placedIds = placed.map((n) => n.nodeId);
    expect(placedIds).toContain(b.identity.nodeId);
    expect(placedIds).not.toContain(a.identity.nodeId);
    expect(placedIds).not.toContain(asker.identity.nodeId);
  });

  it("pins as a publisher, refuses pins without the role, and finds no providers for unannounced chunks", async () => {
    const publisher = await join(["client", "publisher"], 7006);
    const plain = await join(["client"], 7007);
    const cid = await cidOfBytes(randomBytes(100));
    expect(await publisher.client.pin("eu", [cid], 2, [100])).toMatchObject({ pinned: 1, replicas: 2 });
    const refused = await failure(plain.client.pin("eu", [cid], 2));
    expect(refused.code).toBe("role_required");
    expect(refused.status).toBe(403);
    expect(await publisher.client.findProviders("eu", cid, { count: 5, scope: "all" })).toEqual([]);
    // The batched lookup: every CID is a key; a malformed one is the edge's invalid_cid.
    const other = await cidOfBytes(randomBytes(100));
    expect(await publisher.client.findProvidersBatch("eu", [cid, other], { count: 5, scope: "all" })).toEqual({ [cid]: [], [other]: [] });
    expect((await failure(publisher.client.findProvidersBatch("eu", [cid, "bafy-not-a-cid"]))).code).toBe("invalid_cid");
  });

  it("stores, heads and reads chunks in R2; 404 is null", async () => {
    const publisher = await join(["publisher"], 7008);
    const sealed = new Uint8Array(randomBytes(300_000));
    const cid = await cidOfBytes(sealed);
    const reader = new EdgeClient({ edgeUrl: edge.url });
    expect(await reader.headChunkInR2(cid)).toBeNull();
    expect(await reader.getChunkFromR2(cid)).toBeNull();
    expect(await publisher.client.putChunkToR2(cid, sealed)).toMatchObject({ cid, sizeBytes: 300_000, created: true });
    expect(await publisher.client.putChunkToR2(cid, sealed)).toMatchObject({ created: false });
    expect(await reader.headChunkInR2(cid)).toBe(300_000);
    expect(Buffer.from((await reader.getChunkFromR2(cid))!).equals(sealed)).toBe(true);
  });

  it("refuses R2 uploads that do not match the CID or come from non-publishers", async () => {
    const publisher = await join(["publisher"], 7009);
    const service = await join(["service"], 7010);
    const sealed = new Uint8Array(randomBytes(1000));
    const cid = await cidOfBytes(sealed);
    const mismatch = await failure(publisher.client.putChunkToR2(cid, new Uint8Array(randomBytes(1000))));
    expect(mismatch.code).toBe("hash_mismatch");
    expect(mismatch.status).toBe(422);
    const role = await failure(service.client.putChunkToR2(cid, sealed));
    expect(role.code).toBe("role_required");
  });

  it("reports unknown regions and malformed CIDs with their codes", async () => {
    const peer = await join(["client"], 7011);
    const unknown = await failure(peer.client.findNodes("mars", peer.identity.nodeId));
    expect(unknown.code).toBe("unknown_region");
    expect(unknown.status).toBe(404);
    expect((await failure(peer.client.getChunkFromR2("not-a-cid"))).code).toBe("invalid_cid");
  });

  it("needs a certificate for signed routes", async () => {
    const client = new EdgeClient({ edgeUrl: edge.url, identity: await generateIdentity() });
    const err = await failure(client.findNodes("eu", "a".repeat(64)));
    expect(err.code).toBe("not_joined");
  });
});

describe("EdgeClient transport", () => {
  let silent: Server;
  let silentUrl: string;

  beforeAll(async () => {
    // Accepts connections and never answers.
    silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  });

  it("says edge_unreachable with the cause when nothing listens", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const err = await failure(new EdgeClient({ edgeUrl: url, attempts: 2, retryBaseDelayMs: 1 }).network());
    expect(err.code).toBe("edge_unreachable");
    expect(err.status).toBe(503);
    expect(err.message).toContain("ECONNREFUSED");
  });

  it("says edge_unreachable when the edge does not answer in time", async () => {
    const err = await failure(new EdgeClient({ edgeUrl: silentUrl, attempts: 1, timeoutMs: 200 }).network());
    expect(err.code).toBe("edge_unreachable");
    expect(err.message).toContain("no answer within 200 ms");
  });

  it("retries repeatable calls on 5xx, and only those", async () => {
    let calls = 0;
    const flaky: typeof fetch = async (input, init) => {
      calls++;
      if (calls <= 2) return new Response(JSON.stringify({ error: { code: "internal_error", message: "boom" } }), { status: 503 });
      return fetch(input, init);
    };
    const client = new EdgeClient({ edgeUrl: edge.url, fetch: flaky, attempts: 3, retryBaseDelayMs: 1 });
    expect((await client.network()).regions).toContain("eu");
    expect(calls).toBe(3);

    calls = 0;
    const identity = await generateIdentity();
    const once = new EdgeClient({ edgeUrl: edge.url, identity, fetch: flaky, attempts: 3, retryBaseDelayMs: 1 });
    const err = await failure(
      once.bootstrap({
        publicKey: Buffer.from(identity.publicKey).toString("base64url"),
        addresses: [],
        roles: ["client"],
        capacity: { storageBytes: 0, uploadBps: 0, downloadBps: 0 },
        joinToken: "pcj_x",
      }),
    );
    expect(err.code).toBe("internal_error");
    expect(calls).toBe(1);
  });

  it("does not retry 4xx answers", async () => {
    let calls = 0;
    const counting: typeof fetch = (input, init) => {
      calls++;
      return fetch(input, init);
    };
    const err = await failure(new EdgeClient({ edgeUrl: edge.url, fetch: counting, retryBaseDelayMs: 1 }).headChunkInR2("bad"));
    expect(err.code).toBe("invalid_cid");
    expect(calls).toBe(0);
    const notFound = await new EdgeClient({ edgeUrl: edge.url, fetch: counting }).getChunkFromR2(await cidOfBytes(new Uint8Array([1])));
    expect(notFound).toBeNull();
    expect(calls).toBe(1);
  });

  it("stops at once when the caller aborts", async () => {
    const controller = new AbortController();
    const pending = new EdgeClient({ edgeUrl: silentUrl, timeoutMs: 60_000 }).network({ signal: controller.signal });
    controller.abort(new Error("caller gave up"));
    await expect(pending).rejects.toThrow("caller gave up");
  });
});
