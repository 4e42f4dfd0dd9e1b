/**
 * A throwaway network for tests of peer-to-peer transfer: its key pair, and
 * certificates it issues to peers, as the edge would (the transfer server
 * trusts exactly the certificates of its network's key).
 */
import { randomBytes } from "node:crypto";
import { toBase64Url } from "../../src/core/bytes.js";
import { issueCertificate } from "../../src/core/certificate.js";
import { generateIdentity, type Identity } from "../../src/core/identity.js";
import { nodeIdFromPublicKey } from "../../src/core/node-id.js";
import type { Role } from "../../src/core/roles.js";

export interface TestNetwork {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  id: string;
}

export async function makeTestNetwork(): Promise<TestNetwork> {
  const identity = await generateIdentity();
  return { secretKey: identity.secretKey, publicKey: identity.publicKey, id: identity.nodeId };
}

/** A certificate of `network` for `identity` in region "eu", valid for an hour from a second ago unless told otherwise. */
export async function certify(network: TestNetwork, identity: Identity, roles: Role[], validity: { issuedAtMs?: number; expiresAtMs?: number } = {}): Promise<string> {
  const issuedAtMs = validity.issuedAtMs ?? Date.now() - 1000;
  return issueCertificate(network.secretKey, {
    v: 1,
    network: await nodeIdFromPublicKey(network.publicKey),
    nodeId: identity.nodeId,
    publicKey: toBase64Url(identity.publicKey),
    region: "eu",
    roles,
    issuedAtMs,
    expiresAtMs: validity.expiresAtMs ?? issuedAtMs + 3600_000,
    serial: toBase64Url(randomBytes(9)),
  });
}
