/**
 * How the directory answers what went wrong: PeercloudErrors become
 * `{ type: "error", id, code, message }` frames on the socket, or
 * `{ error: { code, message } }` JSON with their status on HTTP; anything
 * else is our bug, logged and reported as "internal_error" without details.
 * A misbehaving peer gets an answer, never a crashed object.
 */
import { isPeercloudError } from "../../src/core/errors.js";
import type { DirectoryToPeer } from "../../src/core/messages.js";

/** The request id of a parsed-but-not-yet-validated message, so that even a rejected request gets a matched reply. */
export function requestIdOf(raw: unknown): string | undefined {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === "string" && id.length > 0 && id.length <= 64 ? id : undefined;
}

export function errorFrame(err: unknown, id: string | undefined): DirectoryToPeer {
  if (isPeercloudError(err)) return { type: "error", ...(id ? { id } : {}), code: err.code, message: err.message };
  console.error("region directory: handler failed", err);
  return { type: "error", ...(id ? { id } : {}), code: "internal_error", message: "the directory could not handle this message" };
}

export function errorResponse(err: unknown): Response {
  if (isPeercloudError(err)) return Response.json(err.toJSON(), { status: err.status });
  console.error("region directory: request failed", err);
  return Response.json({ error: { code: "internal_error", message: "internal error" } }, { status: 500 });
}
