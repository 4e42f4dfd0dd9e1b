import { describe, expect, it } from "vitest";
import { toBase64Url, utf8 } from "../../src/core/bytes.js";
import { issueCertificate } from "../../src/core/certificate.js";
import { generateIdentity } from "../../src/core/identity.js";
import { nodeIdFromPublicKey } from "../../src/core/node-id.js";
import { bodyDigestHex, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP, signRequest, verifySignedRequest } from "../../src/core/signed-request.js";

async function setup() {
  const network = await generateIdentity();
  const peer = await generateIdentity();
  const now = Date.now();
  const certificate = await issueCertificate(network.secretKey, {
    v: 1,
    network: await nodeIdFromPublicKey(network.publicKey),
    nodeId: peer.nodeId,
    publicKey: toBase64Url(peer.publicKey),
    region: "eu",
    roles: ["publisher"],
    issuedAtMs: now - 200_000,
    expiresAtMs: now + 3600_000,
    serial: "x",
  });
  return { network, peer, certificate, now };
}

function lookup(headers: Record<string, string>) {
  return (name: string) => headers[name.toLowerCase()] ?? null;
}

describe("signed requests", () => {
  it("round-trip: the verifier recovers the certificate, nonce and timestamp", async () => {
    const { network, peer, certificate, now } = await setup();
    const body = utf8("chunk bytes");
    const bodySha256Hex = await bodyDigestHex(body);
    const headers = await signRequest({ method: "PUT", pathWithQuery: "/v1/chunks/x?y=1", bodySha256Hex, certificate, secretKey: peer.secretKey, nowMs: now });
    const v = await verifySignedRequest({
      method: "PUT",
      pathWithQuery: "/v1/chunks/x?y=1",
      header: lookup(headers),
      bodySha256Hex,
      networkPublicKey: network.publicKey,
      nowMs: now + 10,
      maxSkewMs: 60_000,
    });
    expect(v.certificate.nodeId).toBe(peer.nodeId);
    expect(v.timestampMs).toBe(now);
    expect(v.nonce).toBe(headers[HEADER_NONCE]);
  });

  it("fail when any signed part differs", async () => {
    const { network, peer, certificate, now } = await setup();
    const headers = await signRequest({ method: "PUT", pathWithQuery: "/a", bodySha256Hex: await bodyDigestHex(utf8("x")), certificate, secretKey: peer.secretKey, nowMs: now });
    const base = { method: "PUT", pathWithQuery: "/a", header: lookup(headers), bodySha256Hex: await bodyDigestHex(utf8("x")), networkPublicKey: network.publicKey, nowMs: now, maxSkewMs: 60_000 };
    await expect(verifySignedRequest({ ...base, method: "POST" })).rejects.toMatchObject({ code: "bad_signature" });
    await expect(verifySignedRequest({ ...base, pathWithQuery: "/b" })).rejects.toMatchObject({ code: "bad_signature" });
    await expect(verifySignedRequest({ ...base, bodySha256Hex: await bodyDigestHex(utf8("y")) })).rejects.toMatchObject({ code: "bad_signature" });
    await expect(verifySignedRequest({ ...base, header: lookup({ ...headers, [HEADER_NONCE]: "A".repeat(24) }) })).rejects.toMatchObject({ code: "bad_signature" });
    await expect(verifySignedRequest({ ...base, header: lookup({ ...headers, [HEADER_SIGNATURE]: "%%%" }) })).rejects.toMatchObject({ code: "bad_signature" });
  });

  it("a signature by another key over the same certificate fails", async () => {
    const { network, certificate, now } = await setup();
    const thief = await generateIdentity();
    const headers = await signRequest({ method: "GET", pathWithQuery: "/a", certificate, secretKey: thief.secretKey, nowMs: now });
    await expect(verifySignedRequest({ method: "GET", pathWithQuery: "/a", header: lookup(headers), networkPublicKey: network.publicKey, nowMs: now, maxSkewMs: 60_000 })).rejects.toMatchObject({
      code: "bad_signature",
    });
  });

  it("stale, future and malformed timestamps and nonces are refused with their own codes", async () => {
    const { network, peer, certificate, now } = await setup();
    const headers = await signRequest({ method: "GET", pathWithQuery: "/a", certificate, secretKey: peer.secretKey, nowMs: now - 120_000 });
    const base = { method: "GET", pathWithQuery: "/a", networkPublicKey: network.publicKey, nowMs: now, maxSkewMs: 60_000 };
    await expect(verifySignedRequest({ ...base, header: lookup(headers) })).rejects.toMatchObject({ code: "stale_timestamp" });
    const future = await signRequest({ method: "GET", pathWithQuery: "/a", certificate, secretKey: peer.secretKey, nowMs: now + 120_000 });
    await expect(verifySignedRequest({ ...base, header: lookup(future) })).rejects.toMatchObject({ code: "stale_timestamp" });
    await expect(verifySignedRequest({ ...base, header: lookup({ ...headers, [HEADER_TIMESTAMP]: "soon" }) })).rejects.toMatchObject({ code: "bad_timestamp" });
    await expect(verifySignedRequest({ ...base, nowMs: now - 119_000, header: lookup({ ...headers, [HEADER_NONCE]: "short" }) })).rejects.toMatchObject({ code: "bad_nonce" });
    await expect(verifySignedRequest({ ...base, header: () => null })).rejects.toMatchObject({ code: "certificate_missing" });
  });
});
