/**
 * The edge's error vocabulary and its single translation into HTTP.
 *
 * Every failure a caller can cause is a PeercloudError (src/core/errors.ts)
 * carrying a stable `code` and a status; handlers throw, and `errorResponse`
 * — used by the one `onError` in app.ts — turns the error into
 * `{ "error": { "code", "message" } }`. Anything else is a bug on our side:
 * it is logged and answered 500 `internal_error` without internals, so a
 * stack trace or a binding's message never reaches a client.
 */
import { isPeercloudError, PeercloudError } from "../src/core/errors.js";

/** The caller is authenticated but not allowed to do this (roles, region, token rules). */
export class ForbiddenError extends PeercloudError {
  constructor(code: string, message: string) {
    super(code, message, 403);
    this.name = "ForbiddenError";
  }
}

/** A body, or a declared Content-Length, over the route's cap. */
export class PayloadTooLargeError extends PeercloudError {
  constructor(code: string, message: string) {
    super(code, message, 413);
    this.name = "PayloadTooLargeError";
  }
}

/**
 * The deployment lacks or garbles a secret or variable. This is the one 500
 * with a code of its own: it is the operator's to fix, and saying which
 * variable is wrong (never its value) saves them a debugging session.
 */
export class EdgeMisconfiguredError extends PeercloudError {
  constructor(message: string) {
    super("edge_misconfigured", message, 500);
    this.name = "EdgeMisconfiguredError";
  }
}

/** Any other HTTP status with its own code (411, 416, 422, 426 …). */
export class HttpError extends PeercloudError {
  constructor(status: number, code: string, message: string) {
    super(code, message, status);
    this.name = "HttpError";
  }
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

export function jsonError(status: number, code: string, message: string, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error: { code, message } }), { status, headers: { ...JSON_HEADERS, ...extraHeaders } });
}

/**
 * Errors thrown inside a Durable Object reach the Worker through RPC as plain
 * Errors: without the (still experimental) `enhanced_error_serialization`
 * compatibility flag, workerd keeps the message — prefixed with a custom
 * error's name — but drops our `code` and `status`. `fromRemote` restores the
 * error the object meant when it is one the caller expects, recognised by a
 * preserved `code` or by the code written into the message
 * ("peer_not_connected: …"). Anything else stays unexpected (500, logged).
 */
export function fromRemote(err: unknown, expected: Record<string, number>): unknown {
  const message = err instanceof Error ? err.message : String(err);
  const preserved = isPeercloudError(err) ? err.code : null;
  for (const [code, status] of Object.entries(expected)) {
    if (preserved === code || (preserved === null && new RegExp(`\\b${code}\\b`).test(message))) {
      const clean = message.replace(/^[A-Za-z]*Error: /, "").replace(new RegExp(`^${code}:\\s*`), "");
      return new PeercloudError(code, clean || code, status);
    }
  }
  return err;
}

export function errorResponse(err: unknown): Response {
  if (isPeercloudError(err)) {
    if (err.status >= 500 && !(err instanceof EdgeMisconfiguredError)) console.error("peercloud edge error", err);
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status <= 599 ? err.status : 500;
    return jsonError(status, err.code, err.message);
  }
  console.error("peercloud edge: unexpected error", err);
  return jsonError(500, "internal_error", "the edge hit an unexpected error; it has been logged");
}
