/**
 * Join tokens: admin-issued secrets a peer presents once, at bootstrap.
 *
 * A token is "pcj_" + base64url(32 random bytes). Only its SHA-256 is stored
 * (KV key `join-token:<hex>`), so a leak of the store does not leak tokens;
 * the hex digest doubles as the token's public ID in the admin API.
 */
import { randomBytes, toBase64Url, toHex, utf8 } from "./bytes.js";
import { sha256 } from "./cid.js";
import type { Role } from "./roles.js";

export const JOIN_TOKEN_PREFIX = "pcj_";
const JOIN_TOKEN_RE = /^pcj_[A-Za-z0-9_-]{43}$/;

export interface JoinTokenRecord {
  id: string;
  label: string;
  createdAtMs: number;
  /** null: never expires. */
  expiresAtMs: number | null;
  revokedAtMs: number | null;
  /** Roles a peer joining with this token may claim. */
  roles: Role[];
  /** Regions a peer joining with this token may choose explicitly; empty: any. */
  regions: string[];
}

export function generateJoinToken(): string {
  return JOIN_TOKEN_PREFIX + toBase64Url(randomBytes(32));
}

export function isJoinTokenShape(value: unknown): value is string {
  return typeof value === "string" && JOIN_TOKEN_RE.test(value);
}

export async function joinTokenId(token: string): Promise<string> {
  return toHex(await sha256(utf8(token)));
}

export type JoinTokenStatus = "valid" | "expired" | "revoked";

export function joinTokenStatus(record: JoinTokenRecord, nowMs: number): JoinTokenStatus {
  if (record.revokedAtMs !== null) return "revoked";
  if (record.expiresAtMs !== null && record.expiresAtMs <= nowMs) return "expired";
  return "valid";
}
