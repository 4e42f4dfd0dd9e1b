/**
 * Short-lived peer-to-peer session tokens.
 *
 * A client proves who it is once per session with a signed request (an
 * Ed25519 verification plus a certificate check, ~0.2 ms); the transfer
 * server then answers with one of these tokens, and every chunk request
 * carries it as `Authorization: Bearer …`, checked with one HMAC-SHA256
 * (RFC 2104) in microseconds. The key is random per process, so tokens die
 * with the process that issued them and no key ever needs storing or
 * rotating; a client that gets 401 simply opens a new session.
 *
 * Format: base64url("v1|<nodeId>|<role,role>|<expiresAtMs>") "." base64url(HMAC).
 * The payload is not secret, only unforgeable.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AuthError } from "../core/errors.js";
import { isNodeId, type NodeId } from "../core/node-id.js";
import { isRole, type Role } from "../core/roles.js";

/** Longest token `verify` looks at; anything longer is garbage (real ones are ~170 characters). */
export const MAX_SESSION_TOKEN_CHARS = 512;
const VERSION = "v1";
const MAC_BYTES = 32;
const TOKEN_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/;

export interface SessionClaims {
  nodeId: NodeId;
  roles: Role[];
  expiresAtMs: number;
}

export interface SessionTokensOptions {
  /** HMAC key; default: 32 random bytes for this process. Tests pass one to share tokens across instances. */
  secret?: Uint8Array;
  /** Clock used by `issue` when no time is given; default Date.now. */
  now?: () => number;
}

export class SessionTokens {
  private readonly secret: Buffer;
  private readonly now: () => number;

  constructor(options: SessionTokensOptions = {}) {
    const secret = options.secret ?? randomBytes(32);
    if (secret.length < 16) throw new RangeError("SessionTokens: the secret must be at least 16 bytes");
    this.secret = Buffer.from(secret);
    this.now = options.now ?? Date.now;
  }

  /** A token for `nodeId` with `roles`, valid for `ttlMs` from `nowMs`. */
  issue(nodeId: NodeId, roles: readonly Role[], ttlMs: number, nowMs = this.now()): string {
    if (!isNodeId(nodeId)) throw new TypeError(`SessionTokens.issue: not a node ID: ${String(nodeId).slice(0, 80)}`);
    if (!roles.every(isRole)) throw new TypeError(`SessionTokens.issue: unknown role in ${JSON.stringify(roles)}`);
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`SessionTokens.issue: ttlMs must be a positive integer, got ${ttlMs}`);
    const payload = Buffer.from(`${VERSION}|${nodeId}|${roles.join(",")}|${nowMs + ttlMs}`, "utf8").toString("base64url");
    return `${payload}.${this.mac(payload).toString("base64url")}`;
  }

  /**
   * The claims of a token this process issued, or an AuthError: `bad_session`
   * for anything malformed or forged, `session_expired` once `nowMs` reaches
   * its expiry (the client then opens a new session).
   */
  verify(token: unknown, nowMs = this.now()): SessionClaims {
    if (typeof token !== "string" || token.length > MAX_SESSION_TOKEN_CHARS || !TOKEN_RE.test(token)) {
      throw new AuthError("bad_session", "session token is missing or malformed");
    }
    const dot = token.indexOf(".");
    const payload = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), "base64url");
    if (given.length !== MAC_BYTES || !timingSafeEqual(given, this.mac(payload))) {
      throw new AuthError("bad_session", "session token was not issued by this peer (or it restarted since)");
    }
    const [version, nodeId, roleList, expiry, ...rest] = Buffer.from(payload, "base64url").toString("utf8").split("|");
    const roles = roleList === "" ? [] : (roleList ?? "").split(",");
    const expiresAtMs = Number(expiry);
    // The MAC makes these checks redundant, but they keep a bug in `issue` from becoming an authorization bug.
    if (version !== VERSION || rest.length > 0 || !isNodeId(nodeId) || !roles.every(isRole) || !Number.isSafeInteger(expiresAtMs)) {
      throw new AuthError("bad_session", "session token payload is malformed");
    }
    if (nowMs >= expiresAtMs) throw new AuthError("session_expired", "session token expired; open a new session");
    return { nodeId, roles: roles as Role[], expiresAtMs };
  }

  private mac(payload: string): Buffer {
    return createHmac("sha256", this.secret).update(payload).digest();
  }
}
