/**
 * POST /v1/bootstrap and POST /v1/certificates/renew against the real Worker:
 * success (the certificate verifies offline with the key GET /v1/network
 * publishes), every rejection with its own code, and renewal's rules.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { toBase64Url } from "../../src/core/bytes.js";
import { verifyCertificate } from "../../src/core/certificate.js";
import { generateIdentity } from "../../src/core/identity.js";
import { generateJoinToken, joinTokenId, type JoinTokenRecord } from "../../src/core/join-token.js";
import { DEFAULT_PARAMS } from "../../src/core/params.js";
import {
  adminFetch,
  bootstrapRequest,
  createJoinToken,
  edgeFetch,
  expectError,
  forgeCertificate,
  joinPeer,
  json,
  networkPublicKey,
  postBootstrap,
  randomIp,
  signedFetch,
  signedHeaders,
} from "./helpers.js";

describe("GET /v1/network", () => {
  it("publishes the network key, its ID, every parameter and the regions", async () => {
    const res = await edgeFetch("/v1/network");
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.id).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(body.params).sort()).toEqual(Object.keys(DEFAULT_PARAMS).sort());
    expect(body.regions).toEqual(["eu", "us", "ap"]);
  });
});

describe("POST /v1/bootstrap", () => {
  it("registers the peer and returns a certificate that verifies offline, and a peer list", async () => {
    const first = await joinPeer({ region: "eu" });
    const identity = await generateIdentity();
    const second = await joinPeer({ identity, region: "eu", roles: ["service"] });
    const r = second.response;
    expect(r.nodeId).toBe(identity.nodeId);
    expect(r.region).toBe("eu");
    expect(r.directoryPath).toBe("/v1/regions/eu/connect");
    expect(r.heartbeatIntervalMs).toBe(DEFAULT_PARAMS.heartbeatIntervalMs);
    expect(r.statusIntervalMs).toBe(DEFAULT_PARAMS.statusIntervalMs);
    expect(r.peers.map((p) => p.nodeId)).toContain(first.identity.nodeId);

    const key = await networkPublicKey();
    expect(r.network.publicKey).toBe(toBase64Url(key));
    const cert = await verifyCertificate(r.certificate, { networkPublicKey: key, nowMs: Date.now() });
    expect(cert.nodeId).toBe(identity.nodeId);
    expect(cert.region).toBe("eu");
    expect(cert.roles).toEqual(["service"]);
    expect(cert.network).toBe(r.network.id);
    expect(cert.expiresAtMs - cert.issuedAtMs).toBe(DEFAULT_PARAMS.certificateTtlMs);
    expect(r.certificateExpiresAtMs).toBe(cert.expiresAtMs);
  });

  it("places a peer without an explicit choice by request.cf country, then continent, then the default", async () => {
    const byCountry = await joinPeer({ cf: { country: "RU", continent: "AS" } });
    expect(byCountry.response.region).toBe("eu");
    const byContinent = await joinPeer({ cf: { country: "JP", continent: "AS" } });
    expect(byContinent.response.region).toBe("ap");
    const byDefault = await joinPeer();
    expect(byDefault.response.region).toBe("eu");
  });

  it("refuses a bad signature", async () => {
    const identity = await generateIdentity();
    const { token } = await createJoinToken();
    const signed = await bootstrapRequest({ identity, token });
    await expectError(await postBootstrap({ ...signed, addresses: ["http://198.51.100.1:7070"] }), 401, "bad_signature");
    const other = await generateIdentity();
    await expectError(await postBootstrap({ ...signed, publicKey: toBase64Url(other.publicKey) }), 401, "bad_signature");
  });

  it("refuses a stale timestamp, past or future", async () => {
    const identity = await generateIdentity();
    const { token } = await createJoinToken();
    const skew = DEFAULT_PARAMS.signatureMaxSkewMs;
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token, nowMs: Date.now() - skew - 60_000 })), 401, "stale_timestamp");
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token, nowMs: Date.now() + skew + 60_000 })), 401, "stale_timestamp");
  });

  it("refuses a replayed nonce", async () => {
    const identity = await generateIdentity();
    const { token } = await createJoinToken();
    const signed = await bootstrapRequest({ identity, token });
    expect((await postBootstrap(signed)).status).toBe(200);
    await expectError(await postBootstrap(signed), 401, "replayed_nonce");
  });

  it("refuses unknown, malformed, expired and revoked join tokens", async () => {
    const identity = await generateIdentity();
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token: generateJoinToken() })), 403, "unknown_join_token");
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token: "not-a-token" })), 403, "unknown_join_token");

    // An expired record, seeded straight into the real KV (the admin API only mints future expiries).
    const expired = generateJoinToken();
    const record: JoinTokenRecord = {
      id: await joinTokenId(expired),
      label: "expired",
      createdAtMs: Date.now() - 7200_000,
      expiresAtMs: Date.now() - 3600_000,
      revokedAtMs: null,
      roles: ["service"],
      regions: [],
    };
    await env.DASHBOARD.put(`join-token:${record.id}`, JSON.stringify(record));
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token: expired })), 403, "expired_join_token");

    const revoked = await createJoinToken();
    expect((await adminFetch(`/v1/admin/join-tokens/${revoked.id}`, { method: "DELETE" })).status).toBe(200);
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token: revoked.token })), 403, "revoked_join_token");
  });

  it("refuses roles the token does not allow", async () => {
    const identity = await generateIdentity();
    const { token } = await createJoinToken({ roles: ["client"] });
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token, roles: ["client", "publisher"] })), 403, "role_not_allowed");
    expect((await postBootstrap(await bootstrapRequest({ identity, token, roles: ["client"] }))).status).toBe(200);
  });

  it("refuses unknown regions and regions the token does not allow, and keeps a restricted token's peers in its regions", async () => {
    const identity = await generateIdentity();
    const open = await createJoinToken();
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token: open.token, region: "mars" })), 400, "unknown_region");
    const usOnly = await createJoinToken({ regions: ["us"] });
    await expectError(await postBootstrap(await bootstrapRequest({ identity, token: usOnly.token, region: "eu" })), 400, "region_not_allowed");
    const placed = await joinPeer({ token: usOnly.token, cf: { country: "DE", continent: "EU" } });
    expect(placed.response.region).toBe("us");
  });

  it("answers malformed, oversized and non-JSON bodies with 4xx JSON errors", async () => {
    const identity = await generateIdentity();
    const { token } = await createJoinToken();
    const valid = await bootstrapRequest({ identity, token });
    await expectError(await postBootstrap("{not json"), 400, "invalid_request");
    await expectError(await postBootstrap(""), 400, "invalid_request");
    await expectError(await postBootstrap("[]"), 400, "invalid_request");
    await expectError(await postBootstrap("null"), 400, "invalid_request");
    await expectError(await postBootstrap({ ...valid, roles: ["root"] }), 400, "invalid_request");
    await expectError(await postBootstrap({ ...valid, extra: 1 }), 400, "invalid_request");
    await expectError(await postBootstrap({ ...valid, timestampMs: "now" }), 400, "invalid_request");
    await expectError(await postBootstrap({ ...valid, publicKey: "AAAA" }), 400, "invalid_request");
    await expectError(await postBootstrap({ ...valid, addresses: ["ftp://x:1"] }), 400, "invalid_request");
    await expectError(await postBootstrap({ ...valid, joinToken: "x".repeat(9000) }), 413, "too_large");
    const invalidUtf8 = await edgeFetch("/v1/bootstrap", { method: "POST", headers: { "cf-connecting-ip": randomIp() }, body: new Uint8Array([0x7b, 0xff, 0x7d]) });
    await expectError(invalidUtf8, 400, "invalid_request");
  });

  it("rate-limits bootstrap attempts per client IP", async () => {
    const ip = randomIp();
    let limited: Response | undefined;
    // The local limiter is the real one from wrangler.toml (30 per 60 s); malformed bodies are counted too.
    for (let i = 0; i < 100 && !limited; i++) {
      const res = await postBootstrap("{}", { ip });
      if (res.status === 429) limited = res;
      else await res.body?.cancel();
    }
    expect(limited, "no 429 within 100 attempts").toBeDefined();
    await expectError(limited!, 429, "rate_limited");
    // Another address is unaffected.
    await expectError(await postBootstrap("{}", { ip: randomIp() }), 400, "invalid_request");
  });
});

describe("POST /v1/certificates/renew", () => {
  it("refuses a fresh certificate as too early, and renews one near expiry", async () => {
    const peer = await joinPeer({ region: "us", roles: ["service", "client"] });
    await expectError(await signedFetch(peer, "POST", "/v1/certificates/renew"), 409, "too_early_to_renew");

    const nearExpiry = await forgeCertificate(peer.identity, { region: "us", roles: ["service", "client"], expiresAtMs: Date.now() + 60_000 });
    const res = await signedFetch({ ...peer, certificate: nearExpiry }, "POST", "/v1/certificates/renew");
    const body = await json(res);
    expect(res.status, JSON.stringify(body)).toBe(200);
    const cert = await verifyCertificate(body.certificate, { networkPublicKey: await networkPublicKey(), nowMs: Date.now() });
    expect(cert.nodeId).toBe(peer.identity.nodeId);
    expect(cert.region).toBe("us");
    expect(cert.roles).toEqual(["service", "client"]);
    expect(body.certificateExpiresAtMs).toBe(cert.expiresAtMs);
    expect(cert.expiresAtMs).toBeGreaterThan(Date.now() + DEFAULT_PARAMS.certificateRenewBeforeMs);
  });

  it("refuses an expired certificate (the peer must bootstrap again)", async () => {
    const peer = await joinPeer();
    const expired = await forgeCertificate(peer.identity, { issuedAtMs: Date.now() - 7200_000, expiresAtMs: Date.now() - 3600_000 });
    await expectError(await signedFetch({ ...peer, certificate: expired }, "POST", "/v1/certificates/renew"), 401, "certificate_expired");
  });

  it("refuses a peer its region does not know", async () => {
    const stranger = await generateIdentity();
    const certificate = await forgeCertificate(stranger, { region: "ap", expiresAtMs: Date.now() + 60_000 });
    await expectError(await signedFetch({ identity: stranger, certificate }, "POST", "/v1/certificates/renew"), 403, "peer_not_registered");
  });

  it("refuses unsigned, badly signed and replayed renewals", async () => {
    const peer = await joinPeer();
    await expectError(await edgeFetch("/v1/certificates/renew", { method: "POST" }), 401, "certificate_missing");
    const other = await generateIdentity();
    await expectError(await signedFetch({ identity: other, certificate: peer.certificate }, "POST", "/v1/certificates/renew"), 401, "bad_signature");

    const nearExpiry = { ...peer, certificate: await forgeCertificate(peer.identity, { expiresAtMs: Date.now() + 60_000 }) };
    const headers = await signedHeaders(nearExpiry, "POST", "/v1/certificates/renew");
    expect((await edgeFetch("/v1/certificates/renew", { method: "POST", headers })).status).toBe(200);
    await expectError(await edgeFetch("/v1/certificates/renew", { method: "POST", headers }), 401, "replayed_nonce");
  });
});

describe("renewal and the region directory", () => {
  it("records the renewed certificate's expiry in the region directory", async () => {
    const peer = await joinPeer({ region: "ap", roles: ["service"] });
    const stub = env.REGION_DIRECTORY.get(env.REGION_DIRECTORY.idFromName("ap"));
    const expiryInDirectory = () =>
      runInDurableObject(stub, (_obj, state) => state.storage.sql.exec<{ e: number }>(`SELECT cert_expires_ms AS e FROM peers WHERE node_id = ?`, peer.identity.nodeId).one().e);
    expect(await expiryInDirectory()).toBe(peer.response.certificateExpiresAtMs);

    const nearExpiry = await forgeCertificate(peer.identity, { region: "ap", expiresAtMs: Date.now() + 60_000 });
    const res = await signedFetch({ ...peer, certificate: nearExpiry }, "POST", "/v1/certificates/renew");
    const body = await json(res);
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(await expiryInDirectory()).toBe(body.certificateExpiresAtMs);
    // The RPC itself: never moves an expiry earlier, and says whether it knew the peer.
    expect(await stub.renewed(peer.identity.nodeId, 1)).toBe(true);
    expect(await expiryInDirectory()).toBe(body.certificateExpiresAtMs);
    expect(await stub.renewed((await generateIdentity()).nodeId, Date.now())).toBe(false);
  });
});
