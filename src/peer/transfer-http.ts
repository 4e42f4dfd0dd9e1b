/**
 * The transfer server's small node:http vocabulary: JSON answers, header
 * access, declared lengths and bounded bodies. Nothing here reads an
 * unbounded amount from a remote peer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { PeercloudError } from "../core/errors.js";

export const JSON_TYPE = "application/json; charset=utf-8";

export class HttpMethodError extends PeercloudError {
  constructor(readonly allow: string) {
    super("method_not_allowed", `method not allowed here; use ${allow}`, 405);
  }
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...headers, "content-type": JSON_TYPE, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function declaredLength(req: IncomingMessage): number | null {
  const raw = req.headers["content-length"];
  if (raw === undefined) return null;
  if (!/^\d{1,15}$/.test(raw)) throw new PeercloudError("bad_length", "Content-Length must be a decimal number of bytes", 400);
  return Number(raw);
}

export function safeDeclaredLength(req: IncomingMessage): number | null {
  try {
    return declaredLength(req);
  } catch {
    return null;
  }
}

export async function readSmallBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = declaredLength(req);
  if (declared !== null && declared > maxBytes) throw new PeercloudError("too_large", `body of ${declared} bytes exceeds ${maxBytes}`, 413);
  const parts: Buffer[] = [];
  let total = 0;
  for await (const piece of req as AsyncIterable<Buffer>) {
    total += piece.length;
    if (total > maxBytes) throw new PeercloudError("too_large", `body exceeds ${maxBytes} bytes`, 413);
    parts.push(piece);
  }
  return Buffer.concat(parts);
}
