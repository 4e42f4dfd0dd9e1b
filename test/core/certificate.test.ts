import { describe, expect, it } from "vitest";
import { toBase64Url } from "../../src/core/bytes.js";
import { decodeCertificateUnverified, issueCertificate, verifyCertificate, type CertificateBody } from "../../src/core/certificate.js";
import { generateIdentity } from "../../src/core/identity.js";
import { nodeIdFromPublicKey } from "../../src/core/node-id.js";

async function setup(overrides: Partial<CertificateBody> = {}) {
  const network = await generateIdentity();
  const peer = await generateIdentity();
  const body: CertificateBody = {
    v: 1,
    network: await nodeIdFromPublicKey(network.publicKey),
    nodeId: peer.nodeId,
    publicKey: toBase64Url(peer.publicKey),
    region: "eu",
    roles: ["service"],
    issuedAtMs: 1_000_000,
    expiresAtMs: 2_000_000,
    serial: "s1",
    ...overrides,
  };
  return { network, peer, body, cert: await issueCertificate(network.secretKey, body) };
}

describe("peer certificates", () => {
  it("verify offline with the network public key and expose the body", async () => {
    const { network, body, cert } = await setup();
    const v = await verifyCertificate(cert, { networkPublicKey: network.publicKey, nowMs: 1_500_000 });
    expect(v.nodeId).toBe(body.nodeId);
    expect(v.roles).toEqual(["service"]);
    expect(decodeCertificateUnverified(cert).expiresAtMs).toBe(2_000_000);
  });

  it("reject another network's key", async () => {
    const { cert } = await setup();
    const other = await generateIdentity();
    await expect(verifyCertificate(cert, { networkPublicKey: other.publicKey, nowMs: 1_500_000 })).rejects.toMatchObject({ code: "certificate_bad_signature" });
  });

  it("reject expired and not-yet-valid certificates, honouring skew and grace", async () => {
    const { network, cert } = await setup();
    const opts = { networkPublicKey: network.publicKey };
    await expect(verifyCertificate(cert, { ...opts, nowMs: 2_000_000 })).rejects.toMatchObject({ code: "certificate_expired" });
    await expect(verifyCertificate(cert, { ...opts, nowMs: 999_000 })).rejects.toMatchObject({ code: "certificate_not_yet_valid" });
    await expect(verifyCertificate(cert, { ...opts, nowMs: 999_000, maxSkewMs: 5_000 })).resolves.toBeTruthy();
    await expect(verifyCertificate(cert, { ...opts, nowMs: 2_000_500, expiredGraceMs: 1_000 })).resolves.toBeTruthy();
  });

  it("reject a body whose node ID is not the hash of its key, even when signed", async () => {
    const other = await generateIdentity();
    const { network, cert } = await setup({ nodeId: other.nodeId });
    await expect(verifyCertificate(cert, { networkPublicKey: network.publicKey, nowMs: 1_500_000 })).rejects.toMatchObject({ code: "certificate_invalid" });
  });

  it("reject a certificate signed by the right key for another network ID", async () => {
    const { network, cert } = await setup({ network: "00".repeat(32) });
    await expect(verifyCertificate(cert, { networkPublicKey: network.publicKey, nowMs: 1_500_000 })).rejects.toMatchObject({ code: "certificate_wrong_network" });
  });

  it("reject tampering and malformed encodings with precise codes", async () => {
    const { network, cert } = await setup();
    const opts = { networkPublicKey: network.publicKey, nowMs: 1_500_000 };
    const [p, body, sig] = cert.split(".");
    const tampered = `${p}.${body.slice(0, -2)}${body.slice(-2) === "AA" ? "AB" : "AA"}.${sig}`;
    await expect(verifyCertificate(tampered, opts)).rejects.toMatchObject({ status: 401 });
    await expect(verifyCertificate(undefined, opts)).rejects.toMatchObject({ code: "certificate_missing" });
    await expect(verifyCertificate("pc2.a.b", opts)).rejects.toMatchObject({ code: "certificate_invalid" });
    await expect(verifyCertificate("pc1.!!!.b", opts)).rejects.toMatchObject({ code: "certificate_invalid" });
    await expect(verifyCertificate("x".repeat(5000), opts)).rejects.toMatchObject({ code: "certificate_invalid" });
  });

  it("reject a signed body with a malformed field", async () => {
    const { network, cert } = await setup({ roles: ["root" as never] });
    await expect(verifyCertificate(cert, { networkPublicKey: network.publicKey, nowMs: 1_500_000 })).rejects.toMatchObject({ code: "certificate_invalid" });
  });
});
