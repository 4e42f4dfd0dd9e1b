/**
 * Peer certificates: the edge's signed statement "this public key is a
 * member of network N, in region R, with roles X, until time T".
 *
 * Any peer verifies another's certificate offline with the network public key
 * from `GET /v1/network`; nothing is looked up per connection. The encoding
 * is `pc1.<base64url(canonical JSON body)>.<base64url(Ed25519 signature)>`
 * and the signature covers the ASCII string "peercloud/v1/cert\n" followed by
 * the base64url body, so a certificate can never be confused with any other
 * signed object.
 */
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from "./bytes.js";
import { canonicalJson } from "./canonical-json.js";
import { AuthError } from "./errors.js";
import { sign, verify, PUBLIC_KEY_BYTES } from "./identity.js";
import { isNodeId, nodeIdFromPublicKey, type NodeId } from "./node-id.js";
import { isRole, type Role } from "./roles.js";

export interface CertificateBody {
  v: 1;
  /** Network ID: the node ID form (SHA-256, hex) of the network public key. */
  network: string;
  nodeId: NodeId;
  /** Ed25519 public key of the peer, base64url. */
  publicKey: string;
  region: string;
  roles: Role[];
  issuedAtMs: number;
  expiresAtMs: number;
  /** Random serial, so two certificates issued in one millisecond still differ. */
  serial: string;
}

export interface VerifiedCertificate extends CertificateBody {
  publicKeyBytes: Uint8Array;
  encoded: string;
}

const PREFIX = "pc1";
const DOMAIN = "peercloud/v1/cert\n";
export const MAX_CERTIFICATE_CHARS = 2048;

export async function issueCertificate(networkSecretKey: Uint8Array, body: CertificateBody): Promise<string> {
  const payload = toBase64Url(utf8(canonicalJson(body)));
  const signature = await sign(networkSecretKey, utf8(DOMAIN + payload));
  return `${PREFIX}.${payload}.${toBase64Url(signature)}`;
}

export interface VerifyCertificateOptions {
  networkPublicKey: Uint8Array;
  nowMs: number;
  /** Tolerated clock skew when checking issue and expiry times. */
  maxSkewMs?: number;
  /** Accept a certificate that expired less than this long ago (renewal grace); default 0. */
  expiredGraceMs?: number;
}

/**
 * Verifies signature, structure, binding of node ID to key, network and
 * validity window. Every failure is an AuthError with its own code.
 */
export async function verifyCertificate(encoded: unknown, options: VerifyCertificateOptions): Promise<VerifiedCertificate> {
  if (typeof encoded !== "string" || encoded.length === 0) throw new AuthError("certificate_missing", "a peer certificate is required");
  if (encoded.length > MAX_CERTIFICATE_CHARS) throw new AuthError("certificate_invalid", "certificate is too long");
  const parts = encoded.split(".");
  if (parts.length !== 3 || parts[0] !== PREFIX) throw new AuthError("certificate_invalid", "certificate is not in pc1.<body>.<signature> form");
  let body: CertificateBody;
  let signature: Uint8Array;
  try {
    body = JSON.parse(fromUtf8(fromBase64Url(parts[1])));
    signature = fromBase64Url(parts[2]);
  } catch {
    throw new AuthError("certificate_invalid", "certificate is not valid base64url JSON");
  }
  if (!(await verify(options.networkPublicKey, utf8(DOMAIN + parts[1]), signature))) {
    throw new AuthError("certificate_bad_signature", "certificate signature does not verify against this network's key");
  }
  const publicKeyBytes = checkBody(body);
  if (body.network !== (await nodeIdFromPublicKey(options.networkPublicKey))) {
    throw new AuthError("certificate_wrong_network", "certificate was issued for another network");
  }
  if ((await nodeIdFromPublicKey(publicKeyBytes)) !== body.nodeId) {
    throw new AuthError("certificate_invalid", "certificate node ID does not match its public key");
  }
  const skew = options.maxSkewMs ?? 0;
  if (body.issuedAtMs > options.nowMs + skew) throw new AuthError("certificate_not_yet_valid", "certificate is not valid yet (check the clock)");
  if (body.expiresAtMs + (options.expiredGraceMs ?? 0) + skew <= options.nowMs) {
    throw new AuthError("certificate_expired", `certificate expired at ${new Date(body.expiresAtMs).toISOString()}`);
  }
  return { ...body, publicKeyBytes, encoded };
}

/** Reads a certificate body without verifying it (for display and renewal scheduling only). */
export function decodeCertificateUnverified(encoded: string): CertificateBody {
  const parts = encoded.split(".");
  if (parts.length !== 3 || parts[0] !== PREFIX) throw new AuthError("certificate_invalid", "certificate is not in pc1.<body>.<signature> form");
  return JSON.parse(fromUtf8(fromBase64Url(parts[1])));
}

function checkBody(body: CertificateBody): Uint8Array {
  const bad = (what: string): never => {
    throw new AuthError("certificate_invalid", `certificate field ${what} is missing or malformed`);
  };
  if (typeof body !== "object" || body === null || body.v !== 1) bad("v");
  if (typeof body.network !== "string") bad("network");
  if (!isNodeId(body.nodeId)) bad("nodeId");
  if (typeof body.region !== "string" || body.region.length === 0 || body.region.length > 32) bad("region");
  if (!Array.isArray(body.roles) || !body.roles.every(isRole)) bad("roles");
  if (!Number.isSafeInteger(body.issuedAtMs)) bad("issuedAtMs");
  if (!Number.isSafeInteger(body.expiresAtMs) || body.expiresAtMs <= body.issuedAtMs) bad("expiresAtMs");
  if (typeof body.serial !== "string") bad("serial");
  let key: Uint8Array | undefined;
  try {
    key = fromBase64Url(body.publicKey);
  } catch {
    bad("publicKey");
  }
  if (!key || key.length !== PUBLIC_KEY_BYTES) bad("publicKey");
  return key!;
}
