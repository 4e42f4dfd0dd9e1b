/**
 * Bounded reading of request bodies. Nothing reads a body without a cap:
 * a declared Content-Length over the cap is refused before any byte is read,
 * and a body without one (chunked) is counted while it streams and abandoned
 * the moment it passes the cap, so a client cannot make the edge buffer more
 * than the route allows.
 */
import * as v from "valibot";
import { concatBytes, fromUtf8 } from "../src/core/bytes.js";
import { ValidationError } from "../src/core/errors.js";
import { parseJsonText, parseWith } from "../src/core/validate.js";
import { PayloadTooLargeError } from "./errors.js";

/** The declared Content-Length: null when absent, 400 when not a plain decimal. */
export function declaredLength(req: Request): number | null {
  const raw = req.headers.get("content-length");
  if (raw === null) return null;
  if (!/^\d{1,15}$/.test(raw.trim())) throw new ValidationError("Content-Length must be a decimal number of bytes", "invalid_request");
  return Number(raw.trim());
}

export async function readBodyBytes(req: Request, maxBytes: number, what = "request body"): Promise<Uint8Array> {
  const declared = declaredLength(req);
  if (declared !== null && declared > maxBytes) throw new PayloadTooLargeError("too_large", `${what} is ${declared} bytes; the limit is ${maxBytes}`);
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let totalBytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const part = value instanceof Uint8Array ? value : new Uint8Array(value as ArrayBuffer);
    totalBytes += part.length;
    if (totalBytes > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError("too_large", `${what} exceeds the limit of ${maxBytes} bytes`);
    }
    parts.push(part);
  }
  return parts.length === 1 ? parts[0] : concatBytes(...parts);
}

/** UTF-8 JSON from bytes already read (signed routes need the exact bytes for their digest). */
export function parseJsonBytes(bytes: Uint8Array, maxBytes: number, what: string): unknown {
  if (bytes.length === 0) throw new ValidationError(`${what} is empty; a JSON object is required`);
  let text: string;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw new ValidationError(`${what} is not valid UTF-8`);
  }
  return parseJsonText(text, maxBytes, what);
}

/** Reads, parses and validates a JSON body in one step (unsigned routes). */
export async function readJson<S extends v.GenericSchema>(req: Request, schema: S, maxBytes: number, what = "body"): Promise<v.InferOutput<S>> {
  const bytes = await readBodyBytes(req, maxBytes, what);
  return parseWith(schema, parseJsonBytes(bytes, maxBytes, what), what);
}
