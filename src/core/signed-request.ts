/**
 * Signed, replay-safe requests from certificate holders (peer → edge and
 * peer → peer).
 *
 * The signer covers method, path with query, a millisecond timestamp, a
 * random nonce and the SHA-256 of the body, prefixed by a domain string.
 * The verifier checks the certificate, the signature with the certified key
 * and the timestamp window; the caller then records the nonce (for as long
 * as the timestamp window) to refuse replays of state-changing requests —
 * at the edge that store is the ReplayGuard Durable Object.
 */
import { fromBase64Url, randomBytes, toBase64Url, toHex, utf8 } from "./bytes.js";
import { sha256 } from "./cid.js";
import { verifyCertificate, type VerifiedCertificate } from "./certificate.js";
import { AuthError } from "./errors.js";
import { sign, verify } from "./identity.js";

export const HEADER_CERTIFICATE = "x-peercloud-certificate";
export const HEADER_TIMESTAMP = "x-peercloud-timestamp";
export const HEADER_NONCE = "x-peercloud-nonce";
export const HEADER_SIGNATURE = "x-peercloud-signature";

const DOMAIN = "peercloud/v1/request\n";
const NONCE_RE = /^[A-Za-z0-9_-]{16,64}$/;
const EMPTY_SHA256_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export interface SignedRequestParts {
  method: string;
  /** Path plus query string exactly as sent, e.g. "/v1/chunks/bafk…?x=1". */
  pathWithQuery: string;
  timestampMs: number;
  nonce: string;
  bodySha256Hex: string;
}

export function requestSigningString(p: SignedRequestParts): string {
  return `${DOMAIN}${p.method.toUpperCase()}\n${p.pathWithQuery}\n${p.timestampMs}\n${p.nonce}\n${p.bodySha256Hex}`;
}

export async function bodyDigestHex(body: Uint8Array | undefined): Promise<string> {
  return body && body.length ? toHex(await sha256(body)) : EMPTY_SHA256_HEX;
}

export interface SignRequestInput {
  method: string;
  pathWithQuery: string;
  /** The SHA-256 of the body in hex; omit for an empty body. */
  bodySha256Hex?: string;
  certificate: string;
  secretKey: Uint8Array;
  nowMs?: number;
}

/** Headers to add to a request so that the edge or a peer accepts it as coming from the certificate's holder. */
export async function signRequest(input: SignRequestInput): Promise<Record<string, string>> {
  const timestampMs = input.nowMs ?? Date.now();
  const nonce = toBase64Url(randomBytes(18));
  const parts: SignedRequestParts = {
    method: input.method,
    pathWithQuery: input.pathWithQuery,
    timestampMs,
    nonce,
    bodySha256Hex: input.bodySha256Hex ?? EMPTY_SHA256_HEX,
  };
  const signature = await sign(input.secretKey, utf8(requestSigningString(parts)));
  return {
    [HEADER_CERTIFICATE]: input.certificate,
    [HEADER_TIMESTAMP]: String(timestampMs),
    [HEADER_NONCE]: nonce,
    [HEADER_SIGNATURE]: toBase64Url(signature),
  };
}

export interface VerifyRequestInput {
  method: string;
  pathWithQuery: string;
  header: (name: string) => string | null | undefined;
  bodySha256Hex?: string;
  networkPublicKey: Uint8Array;
  nowMs: number;
  maxSkewMs: number;
}

export interface VerifiedRequest {
  certificate: VerifiedCertificate;
  nonce: string;
  timestampMs: number;
}

export async function verifySignedRequest(input: VerifyRequestInput): Promise<VerifiedRequest> {
  const certificate = await verifyCertificate(input.header(HEADER_CERTIFICATE) ?? undefined, {
    networkPublicKey: input.networkPublicKey,
    nowMs: input.nowMs,
    maxSkewMs: input.maxSkewMs,
  });
  const timestampMs = checkTimestamp(input.header(HEADER_TIMESTAMP), input.nowMs, input.maxSkewMs);
  const nonce = checkNonce(input.header(HEADER_NONCE));
  const signatureText = input.header(HEADER_SIGNATURE);
  let signature: Uint8Array;
  try {
    signature = fromBase64Url(signatureText ?? "");
  } catch {
    throw new AuthError("bad_signature", "request signature is not base64url");
  }
  const message = requestSigningString({
    method: input.method,
    pathWithQuery: input.pathWithQuery,
    timestampMs,
    nonce,
    bodySha256Hex: input.bodySha256Hex ?? EMPTY_SHA256_HEX,
  });
  if (!(await verify(certificate.publicKeyBytes, utf8(message), signature))) {
    throw new AuthError("bad_signature", "request signature does not verify with the certified key");
  }
  return { certificate, nonce, timestampMs };
}

export function checkTimestamp(raw: unknown, nowMs: number, maxSkewMs: number): number {
  const value = typeof raw === "number" ? raw : typeof raw === "string" && /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value)) throw new AuthError("bad_timestamp", "signed timestamp is missing or not an integer of milliseconds");
  if (Math.abs(value - nowMs) > maxSkewMs) {
    throw new AuthError("stale_timestamp", `signed timestamp is ${Math.round((nowMs - value) / 1000)} s away from the edge clock (limit ${maxSkewMs / 1000} s)`);
  }
  return value;
}

export function checkNonce(raw: unknown): string {
  if (typeof raw !== "string" || !NONCE_RE.test(raw)) throw new AuthError("bad_nonce", "nonce must be 16–64 base64url characters");
  return raw;
}
