/**
 * Authentication of certificate holders on the edge's HTTP routes.
 *
 * A peer's request carries its certificate and a signature over method,
 * path with query, timestamp, nonce and body digest (src/core/signed-request.ts).
 * Here the edge checks all of it against the network key and its clock, then
 * — for state-changing requests only — claims the nonce in the ReplayGuard
 * until the timestamp itself would be stale, so a captured request cannot be
 * played again. Read-only lookups skip the claim: replaying a lookup tells
 * the replayer nothing the original did not, and saves a Durable Object hop.
 */
import { AuthError } from "../src/core/errors.js";
import { verifyCertificate, type VerifiedCertificate } from "../src/core/certificate.js";
import { HEADER_CERTIFICATE, verifySignedRequest, type VerifiedRequest } from "../src/core/signed-request.js";
import type { Role } from "../src/core/roles.js";
import { claimNonce, networkKey, networkParams, type AppContext } from "./context.js";
import { ForbiddenError } from "./errors.js";

export interface PeerAuthOptions {
  /** Hex SHA-256 of the exact body bytes received (omit for an empty body). */
  bodySha256Hex?: string;
  /** Claim the nonce (every state-changing route). */
  replayGuard: boolean;
  /** A role the certificate must carry, else 403 `role_required`. */
  role?: Role;
  nowMs?: number;
}

/** Path plus query exactly as the client sent them: that is what it signed. */
export function signedPath(req: Request): string {
  const url = new URL(req.url);
  return url.pathname + url.search;
}

export async function authenticatePeer(c: AppContext, options: PeerAuthOptions): Promise<VerifiedRequest> {
  const key = await networkKey(c.env);
  const { signatureMaxSkewMs } = networkParams(c.env);
  const verified = await verifySignedRequest({
    method: c.req.method,
    pathWithQuery: signedPath(c.req.raw),
    header: (name) => c.req.header(name),
    bodySha256Hex: options.bodySha256Hex,
    networkPublicKey: key.publicKey,
    nowMs: options.nowMs ?? Date.now(),
    maxSkewMs: signatureMaxSkewMs,
  });
  if (options.role) requireRole(verified.certificate, options.role);
  if (options.replayGuard) await claimOnce(c, verified.certificate.nodeId, verified.nonce, verified.timestampMs);
  return verified;
}

/**
 * Certificate only, before the body is read: routes with large bodies (chunk
 * upload) refuse strangers and wrong roles without buffering megabytes.
 * The full signature check still follows once the body digest is known.
 */
export async function precheckCertificate(c: AppContext, role?: Role): Promise<VerifiedCertificate> {
  const key = await networkKey(c.env);
  const certificate = await verifyCertificate(c.req.header(HEADER_CERTIFICATE), {
    networkPublicKey: key.publicKey,
    nowMs: Date.now(),
    maxSkewMs: networkParams(c.env).signatureMaxSkewMs,
  });
  if (role) requireRole(certificate, role);
  return certificate;
}

export function requireRole(certificate: VerifiedCertificate, role: Role): void {
  if (!certificate.roles.includes(role)) {
    throw new ForbiddenError("role_required", `this request needs a certificate with the ${role} role; this one has ${certificate.roles.join(", ")}`);
  }
}

/** Remembers `nodeId:nonce` until the signed timestamp leaves the accepted window; a second use is 401 `replayed_nonce`. */
export async function claimOnce(c: AppContext, nodeId: string, nonce: string, timestampMs: number): Promise<void> {
  const expiresAtMs = timestampMs + networkParams(c.env).signatureMaxSkewMs;
  if (!(await claimNonce(c.env, nodeId, nonce, expiresAtMs))) {
    throw new AuthError("replayed_nonce", "this nonce was already used; sign every request with a fresh nonce");
  }
}
