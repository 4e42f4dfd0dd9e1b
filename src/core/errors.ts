/**
 * Errors of the portable core. Every error a remote party can cause carries a
 * stable machine-readable `code` and the HTTP status the edge answers with;
 * the edge's single error handler and the CLI's single reporter turn these
 * into `{ "error": { "code", "message" } }` and one readable line.
 */

export class PeercloudError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, status = 400, details?: Record<string, unknown>) {
    super(message);
    this.name = "PeercloudError";
    this.code = code;
    this.status = status;
    this.details = details;
  }

  toJSON(): { error: { code: string; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

/** Input that fails its schema: a 400 naming the offending field. */
export class ValidationError extends PeercloudError {
  constructor(message: string, code = "invalid_request", details?: Record<string, unknown>) {
    super(code, message, 400, details);
    this.name = "ValidationError";
  }
}

/** Authentication failures: bad signature, stale timestamp, replay, bad certificate or token. */
export class AuthError extends PeercloudError {
  constructor(code: string, message: string, status = 401) {
    super(code, message, status);
    this.name = "AuthError";
  }
}

export class NotFoundError extends PeercloudError {
  constructor(code: string, message: string) {
    super(code, message, 404);
    this.name = "NotFoundError";
  }
}

export class ConflictError extends PeercloudError {
  constructor(code: string, message: string) {
    super(code, message, 409);
    this.name = "ConflictError";
  }
}

export class RateLimitError extends PeercloudError {
  constructor(message: string) {
    super("rate_limited", message, 429);
    this.name = "RateLimitError";
  }
}

export function isPeercloudError(e: unknown): e is PeercloudError {
  return e instanceof PeercloudError || (typeof e === "object" && e !== null && typeof (e as PeercloudError).code === "string" && typeof (e as PeercloudError).status === "number");
}
