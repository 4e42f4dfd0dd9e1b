/**
 * The bootstrap exchange (`POST /v1/bootstrap`): a peer's first contact.
 *
 * The peer proves possession of its key by signing its whole request — key,
 * addresses, roles, capacity, join token, a fresh timestamp and a random
 * nonce — as canonical JSON under the domain string "peercloud/v1/bootstrap\n".
 * The edge answers with a region, a short-lived certificate and an initial
 * peer list; see docs/api.md.
 */
import * as v from "valibot";
import { fromBase64Url, randomBytes, toBase64Url, utf8 } from "./bytes.js";
import { canonicalJson } from "./canonical-json.js";
import { AuthError } from "./errors.js";
import { sign, verify, PUBLIC_KEY_BYTES } from "./identity.js";
import { addressListSchema, hostIdSchema, capacitySchema, regionSchema, roleListSchema, type PeerInfo } from "./messages.js";
import type { Role } from "./roles.js";

const DOMAIN = "peercloud/v1/bootstrap\n";
export const MAX_BOOTSTRAP_BODY_CHARS = 8192;

const b64url = (bytes: number) =>
  v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9_-]+$/, "must be base64url"),
    v.check((s) => Math.floor((s.length * 3) / 4) === bytes, `must encode ${bytes} bytes`),
    // fromBase64Url refuses non-canonical trailing bits; refuse them here so they are a 400, not a throw later.
    v.check((s) => canonicalBase64Url(s), "must be canonical base64url"),
  );

function canonicalBase64Url(s: string): boolean {
  try {
    fromBase64Url(s);
    return true;
  } catch {
    return false;
  }
}

export const bootstrapRequestSchema = v.strictObject({
  publicKey: b64url(PUBLIC_KEY_BYTES),
  addresses: addressListSchema,
  roles: roleListSchema,
  capacity: capacitySchema,
  region: v.optional(regionSchema),
  /** Failure-domain label; defaults to the node ID (every peer its own host). */
  hostId: v.optional(hostIdSchema),
  joinToken: v.pipe(v.string(), v.maxLength(128)),
  timestampMs: v.pipe(v.number(), v.integer(), v.minValue(0)),
  nonce: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{16,64}$/, "must be 16–64 base64url characters")),
  signature: b64url(64),
});
export type BootstrapRequest = v.InferOutput<typeof bootstrapRequestSchema>;
export type UnsignedBootstrapRequest = Omit<BootstrapRequest, "signature" | "timestampMs" | "nonce">;

export interface BootstrapResponse {
  nodeId: string;
  region: string;
  certificate: string;
  certificateExpiresAtMs: number;
  heartbeatIntervalMs: number;
  statusIntervalMs: number;
  /** Path of the region directory's WebSocket endpoint on this edge. */
  directoryPath: string;
  network: { id: string; publicKey: string };
  /** The k peers closest to the new peer's ID, then a few random ones. */
  peers: PeerInfo[];
}

export interface RenewResponse {
  certificate: string;
  certificateExpiresAtMs: number;
}

function signingBytes(req: Omit<BootstrapRequest, "signature">): Uint8Array {
  return utf8(DOMAIN + canonicalJson(req));
}

export async function signBootstrapRequest(secretKey: Uint8Array, req: UnsignedBootstrapRequest, nowMs = Date.now()): Promise<BootstrapRequest> {
  const unsigned = { ...req, timestampMs: nowMs, nonce: toBase64Url(randomBytes(18)) };
  const signature = await sign(secretKey, signingBytes(unsigned));
  return { ...unsigned, signature: toBase64Url(signature) };
}

/** Checks the self-signature; the timestamp window, nonce replay and token are the edge's next checks. */
export async function verifyBootstrapSignature(req: BootstrapRequest): Promise<Uint8Array> {
  const { signature, ...unsigned } = req;
  const publicKey = fromBase64Url(req.publicKey);
  if (!(await verify(publicKey, signingBytes(unsigned), fromBase64Url(signature)))) {
    throw new AuthError("bad_signature", "bootstrap signature does not verify with the given public key");
  }
  return publicKey;
}

export type { Role };
