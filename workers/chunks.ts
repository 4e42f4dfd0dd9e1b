/**
 * R2 cold fallback: `PUT|GET|HEAD /v1/chunks/:cid`.
 *
 * Chunks are ciphertext addressed by their SHA-256 (src/core/cid.ts), so
 * reads are public and immutable, and a write is accepted only from a
 * publisher whose signed body hashes to the CID. The body digest is part of
 * the signed string: the edge computes it from the bytes it received, so a
 * body altered in transit fails the signature (401 `bad_signature`), and a
 * correctly signed body that is not the CID's content is 422 `hash_mismatch`.
 * Nothing is stored unless every check passed. Writes are create-once: the
 * same CID always names the same bytes, so a second upload is answered 200
 * `created: false` without rewriting (and a race between two is harmless).
 *
 * Bytes served are counted per region — the caller's certificate region when
 * it presents a valid certificate, else the region its location maps to —
 * in the region directory, after the response (waitUntil), off the hot path.
 */
import { Hono } from "hono";
import { bytesEqual, toHex } from "../src/core/bytes.js";
import { verifyCertificate } from "../src/core/certificate.js";
import { parseCid, sha256 } from "../src/core/cid.js";
import { NotFoundError, RateLimitError, ValidationError } from "../src/core/errors.js";
import { chooseRegion } from "../src/core/region-map.js";
import { HEADER_CERTIFICATE } from "../src/core/signed-request.js";
import { declaredLength, readBodyBytes } from "./body.js";
import { background, callerGeo, networkKey, networkParams, regionConfig, regionStub, type AppContext, type AppEnv } from "./context.js";
import { HttpError, jsonError, PayloadTooLargeError } from "./errors.js";
import { authenticatePeer, claimOnce, precheckCertificate } from "./peer-auth.js";
import { contentRange, decideRange } from "./range.js";

const IMMUTABLE = "public, max-age=31536000, immutable";

export const chunks = new Hono<AppEnv>();

/**
 * Headers of every chunk answer. The ETag is the CID itself: content-addressed,
 * hence a strong validator. Chunks are uploader-controlled bytes served from
 * the edge's origin, so they are never to be rendered: octet-stream, nosniff
 * and a sandboxing CSP keep an uploaded HTML page inert. Any origin may read
 * them (CORS `*`): they are public ciphertext, and browser apps decrypt them.
 */
function chunkHeaders(cid: string): Headers {
  return new Headers({
    "access-control-allow-origin": "*",
    "access-control-expose-headers": "content-length, content-range, etag, accept-ranges",
    etag: `"${cid}"`,
    "cache-control": IMMUTABLE,
    "accept-ranges": "bytes",
    "content-type": "application/octet-stream",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'none'; sandbox",
  });
}

function notFound(cid: string): never {
  throw new NotFoundError("chunk_not_found", `no chunk ${cid} in the cold store`);
}

chunks.put("/chunks/:cid", async (c) => {
  const { cid, digest } = parseCid(c.req.param("cid"));
  const { maxChunkBytes } = networkParams(c.env);
  const declaredBytes = declaredLength(c.req.raw);
  if (declaredBytes === null) throw new HttpError(411, "length_required", "a chunk upload needs a Content-Length header");
  if (declaredBytes > maxChunkBytes) throw new PayloadTooLargeError("chunk_too_large", `chunk is ${declaredBytes} bytes; the limit is ${maxChunkBytes}`);

  // Certificate and role before reading up to maxChunkBytes of body.
  const holder = await precheckCertificate(c, "publisher");
  const limit = await c.env.UPLOAD_LIMITER.limit({ key: `upload:${holder.nodeId}` });
  if (!limit.success) throw new RateLimitError("too many chunk uploads from this peer; retry in a minute");

  const body = await readBodyBytes(c.req.raw, maxChunkBytes, "chunk");
  if (body.length !== declaredBytes) throw new ValidationError(`received ${body.length} bytes but Content-Length said ${declaredBytes}`, "length_mismatch");
  const bodyDigest = await sha256(body);
  const { certificate, nonce, timestampMs } = await authenticatePeer(c, { bodySha256Hex: toHex(bodyDigest), replayGuard: false, role: "publisher" });
  if (!bytesEqual(bodyDigest, digest)) {
    throw new HttpError(422, "hash_mismatch", `the body's SHA-256 is ${toHex(bodyDigest)}, but ${cid} names ${toHex(digest)}; nothing was stored`);
  }
  await claimOnce(c, certificate.nodeId, nonce, timestampMs);

  const stored = await c.env.CHUNKS.put(cid, body, {
    onlyIf: { etagDoesNotMatch: "*" },
    sha256: toHex(bodyDigest), // R2 re-checks the bytes it stores
    httpMetadata: { contentType: "application/octet-stream", cacheControl: IMMUTABLE },
    customMetadata: { publisher: certificate.nodeId },
  });
  const created = stored !== null;
  return c.json({ cid, sizeBytes: body.length, created }, created ? 201 : 200);
});

// Hono answers HEAD through the GET route and drops the body; the handler
// still branches on HEAD so that it asks R2 for metadata only.
chunks.get("/chunks/:cid", async (c) => {
  const { cid } = parseCid(c.req.param("cid"));
  const bucket = c.env.CHUNKS;
  const headers = chunkHeaders(cid);

  if (c.req.raw.method === "HEAD") {
    const head = (await bucket.head(cid)) ?? notFound(cid);
    headers.set("content-length", String(head.size));
    return new Response(null, { status: 200, headers });
  }
  if (matchesEtag(c.req.header("if-none-match"), cid)) {
    if (!(await bucket.head(cid))) notFound(cid);
    headers.delete("content-type");
    return new Response(null, { status: 304, headers });
  }

  const range = rangeToHonor(c, cid);
  if (range) {
    const head = (await bucket.head(cid)) ?? notFound(cid);
    const decision = decideRange(range, head.size);
    if (decision.kind === "unsatisfiable") {
      return jsonError(416, "range_not_satisfiable", `the chunk has ${head.size} bytes; the requested range is outside it`, {
        "content-range": `bytes */${head.size}`,
        "cache-control": "no-store",
      });
    }
    if (decision.kind === "partial") {
      const part = (await bucket.get(cid, { range: { offset: decision.offset, length: decision.length } })) ?? notFound(cid);
      headers.set("content-range", contentRange(decision.offset, decision.length, head.size));
      headers.set("content-length", String(decision.length));
      await countEgress(c, decision.length);
      return new Response(part.body, { status: 206, headers });
    }
  }
  const object = (await bucket.get(cid)) ?? notFound(cid);
  headers.set("content-length", String(object.size));
  await countEgress(c, object.size);
  return new Response(object.body, { status: 200, headers });
});

/** `If-None-Match` lists our ETag (weakly compared, RFC 9110 §13.1.2) or is `*`. */
function matchesEtag(header: string | undefined, cid: string): boolean {
  if (!header) return false;
  return header.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || t === `"${cid}"` || t === `W/"${cid}"`;
  });
}

/** The Range header, unless an `If-Range` validator names another representation (RFC 9110 §13.1.5). */
function rangeToHonor(c: AppContext, cid: string): string | undefined {
  const range = c.req.header("range");
  const ifRange = c.req.header("if-range");
  if (range && ifRange !== undefined && ifRange.trim() !== `"${cid}"`) return undefined;
  return range;
}

/**
 * Adds `bytes` to the egress counter of the caller's region. The region is
 * settled before the response (at most one certificate verification);
 * the counter update runs after it. Bytes are counted as sent, even if the
 * client disconnects mid-body.
 */
async function countEgress(c: AppContext, bytes: number): Promise<void> {
  if (bytes <= 0) return;
  const region = await egressRegion(c);
  background(c, regionStub(c.env, region).addEgress(bytes));
}

async function egressRegion(c: AppContext): Promise<string> {
  const config = regionConfig(c.env);
  const presented = c.req.header(HEADER_CERTIFICATE);
  if (presented) {
    try {
      const key = await networkKey(c.env);
      const certificate = await verifyCertificate(presented, { networkPublicKey: key.publicKey, nowMs: Date.now(), maxSkewMs: networkParams(c.env).signatureMaxSkewMs });
      if (Object.hasOwn(config.regions, certificate.region)) return certificate.region;
    } catch {
      // A public read never fails over a bad certificate; it is just not attributed by it.
    }
  }
  return chooseRegion(config, callerGeo(c));
}
