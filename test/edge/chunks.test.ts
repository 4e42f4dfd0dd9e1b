/**
 * The R2 cold fallback: uploads only from publishers and only when the body
 * hashes to the CID, create-once; public reads with single ranges, HEAD,
 * immutable caching; egress counted per region in the region directory.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { cidOfBytes } from "../../src/core/cid.js";
import { DEFAULT_PARAMS } from "../../src/core/params.js";
import worker from "../../workers/index.js";
import { edgeFetch, expectError, joinPeer, json, ORIGIN, randomBytesOf, signedFetch, signedHeaders, type Peer } from "./helpers.js";

let publisher: Peer;
let service: Peer;

beforeAll(async () => {
  publisher = await joinPeer({ roles: ["service", "publisher"], region: "eu" });
  service = await joinPeer({ roles: ["service"], region: "eu" });
});

async function upload(peer: Peer, bytes: Uint8Array, cid?: string): Promise<Response> {
  return signedFetch(peer, "PUT", `/v1/chunks/${cid ?? (await cidOfBytes(bytes))}`, { body: bytes });
}

describe("PUT /v1/chunks/:cid", () => {
  it("stores a chunk once: 201 created, then 200 not created", async () => {
    const bytes = randomBytesOf(4096);
    const cid = await cidOfBytes(bytes);
    const first = await upload(publisher, bytes);
    expect(first.status).toBe(201);
    expect(await json(first)).toEqual({ cid, sizeBytes: 4096, created: true });
    const again = await upload(publisher, bytes);
    expect(again.status).toBe(200);
    expect(await json(again)).toEqual({ cid, sizeBytes: 4096, created: false });
    const stored = await env.CHUNKS.get(cid);
    expect(new Uint8Array(await stored!.arrayBuffer())).toEqual(bytes);
    expect(stored!.customMetadata?.publisher).toBe(publisher.identity.nodeId);
  });

  it("refuses a body that does not hash to the CID, and stores nothing", async () => {
    const bytes = randomBytesOf(1000);
    const otherCid = await cidOfBytes(randomBytesOf(1000));
    await expectError(await upload(publisher, bytes, otherCid), 422, "hash_mismatch");
    expect(await env.CHUNKS.head(otherCid)).toBeNull();
    expect((await edgeFetch(`/v1/chunks/${otherCid}`)).status).toBe(404);
  });

  it("refuses a body altered after signing", async () => {
    const bytes = randomBytesOf(1000);
    const altered = bytes.slice();
    altered[0] ^= 1;
    const cid = await cidOfBytes(altered);
    const headers = await signedHeaders(publisher, "PUT", `/v1/chunks/${cid}`, bytes);
    await expectError(await edgeFetch(`/v1/chunks/${cid}`, { method: "PUT", headers, body: altered }), 401, "bad_signature");
    expect(await env.CHUNKS.head(cid)).toBeNull();
  });

  it("requires a publisher certificate", async () => {
    const bytes = randomBytesOf(100);
    const cid = await cidOfBytes(bytes);
    await expectError(await upload(service, bytes), 403, "role_required");
    await expectError(await edgeFetch(`/v1/chunks/${cid}`, { method: "PUT", body: bytes }), 401, "certificate_missing");
    expect(await env.CHUNKS.head(cid)).toBeNull();
  });

  it("refuses a replayed upload", async () => {
    const bytes = randomBytesOf(100);
    const cid = await cidOfBytes(bytes);
    const headers = await signedHeaders(publisher, "PUT", `/v1/chunks/${cid}`, bytes);
    expect((await edgeFetch(`/v1/chunks/${cid}`, { method: "PUT", headers, body: bytes })).status).toBe(201);
    await expectError(await edgeFetch(`/v1/chunks/${cid}`, { method: "PUT", headers, body: bytes }), 401, "replayed_nonce");
  });

  it("needs a Content-Length, and refuses chunks over maxChunkBytes", async () => {
    const bytes = randomBytesOf(64);
    const cid = await cidOfBytes(bytes);
    const headers = await signedHeaders(publisher, "PUT", `/v1/chunks/${cid}`, bytes);
    const streamed = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    // In-process (no network pipe between test and Worker): a body stream the edge refuses to read is then simply dropped.
    const request = new Request(`${ORIGIN}/v1/chunks/${cid}`, { method: "PUT", headers, body: streamed, duplex: "half" } as RequestInit);
    expect(request.headers.get("content-length")).toBeNull();
    await expectError(await worker.fetch(request, env, createExecutionContext()), 411, "length_required");

    const big = new Uint8Array(DEFAULT_PARAMS.maxChunkBytes + 1);
    await expectError(await upload(publisher, big), 413, "chunk_too_large");
  });

  it("rate-limits uploads per peer", async () => {
    const busy = await joinPeer({ roles: ["publisher"], region: "eu" });
    const bytes = randomBytesOf(8);
    const cid = await cidOfBytes(bytes);
    // The real local limiter (600 per 60 s per node ID) counts every attempt past the certificate
    // check, so certified but unsigned attempts drive it cheaply (each then fails its signature check).
    // In-process calls: SELF.fetch slows down with every request within one test in this pool version.
    const attempt = async () => {
      const headers = { "x-peercloud-certificate": busy.certificate, "content-length": String(bytes.length) }; // set by the wire, not by new Request()
      const request = new Request(`${ORIGIN}/v1/chunks/${cid}`, { method: "PUT", headers, body: bytes });
      const res = await worker.fetch(request, env, createExecutionContext());
      return { status: res.status, body: await json(res) };
    };
    const answers: { status: number; body: any }[] = [];
    while (answers.length < 700 && !answers.some((a) => a.status === 429)) answers.push(await attempt());
    const limited = answers.find((a) => a.status === 429);
    expect(limited, `no 429 within ${answers.length} attempts`).toBeDefined();
    expect(limited!.body.error.code).toBe("rate_limited");
    expect(answers.filter((a) => a.status !== 429).every((a) => a.body.error.code === "bad_timestamp")).toBe(true);
    // Other peers keep their own budget.
    expect((await upload(publisher, randomBytesOf(8))).status).toBe(201);
  });

  it("rejects an invalid CID", async () => {
    await expectError(await signedFetch(publisher, "PUT", "/v1/chunks/not-a-cid", { body: new Uint8Array(1) }), 400, "invalid_cid");
  });
});

describe("GET and HEAD /v1/chunks/:cid", () => {
  const bytes = randomBytesOf(1000);
  let cid: string;

  beforeAll(async () => {
    cid = await cidOfBytes(bytes);
    expect((await upload(publisher, bytes)).status).toBe(201);
  });

  it("serves the whole chunk publicly with immutable caching headers", async () => {
    const res = await edgeFetch(`/v1/chunks/${cid}`);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    expect(res.headers.get("etag")).toBe(`"${cid}"`);
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("accept-ranges")).toBe("bytes");
    expect(res.headers.get("content-length")).toBe("1000");
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it.each([
    ["bytes=2-5", 2, 5],
    ["bytes=990-", 990, 999],
    ["bytes=995-5000", 995, 999],
    ["bytes=-10", 990, 999],
    ["bytes=-5000", 0, 999],
    ["BYTES = 0-0", 0, 0],
  ])("serves the single range %s with 206", async (range, first, last) => {
    const res = await edgeFetch(`/v1/chunks/${cid}`, { headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes ${first}-${last}/1000`);
    expect(res.headers.get("content-length")).toBe(String(last - first + 1));
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes.slice(first, last + 1));
  });

  it.each(["bytes=1000-", "bytes=5000-6000", "bytes=-0"])("answers the unsatisfiable range %s with 416", async (range) => {
    const res = await edgeFetch(`/v1/chunks/${cid}`, { headers: { range } });
    expect(res.headers.get("content-range")).toBe("bytes */1000");
    await expectError(res, 416, "range_not_satisfiable");
  });

  it.each(["bytes=5-2", "bytes=abc", "items=0-5", "bytes=0-1,5-6", "bytes="])("ignores the invalid or multi-range header %s (200, whole chunk)", async (range) => {
    const res = await edgeFetch(`/v1/chunks/${cid}`, { headers: { range } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(1000);
  });

  it("honours If-Range only when it names this chunk, and answers If-None-Match with 304", async () => {
    const matching = await edgeFetch(`/v1/chunks/${cid}`, { headers: { range: "bytes=0-1", "if-range": `"${cid}"` } });
    expect(matching.status).toBe(206);
    await matching.arrayBuffer();
    const other = await edgeFetch(`/v1/chunks/${cid}`, { headers: { range: "bytes=0-1", "if-range": '"something-else"' } });
    expect(other.status).toBe(200);
    await other.arrayBuffer();
    const cached = await edgeFetch(`/v1/chunks/${cid}`, { headers: { "if-none-match": `"${cid}"` } });
    expect(cached.status).toBe(304);
    expect(cached.headers.get("etag")).toBe(`"${cid}"`);
  });

  it("answers HEAD with existence and size but no body", async () => {
    const res = await edgeFetch(`/v1/chunks/${cid}`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("1000");
    expect(res.headers.get("etag")).toBe(`"${cid}"`);
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    const missing = await edgeFetch(`/v1/chunks/${await cidOfBytes(randomBytesOf(8))}`, { method: "HEAD" });
    expect(missing.status).toBe(404);
  });

  it("answers 404 for a missing chunk and 400 for an invalid CID", async () => {
    await expectError(await edgeFetch(`/v1/chunks/${await cidOfBytes(randomBytesOf(8))}`), 404, "chunk_not_found");
    await expectError(await edgeFetch("/v1/chunks/bafkreigh2akiscaildc"), 400, "invalid_cid");
    // A CIDv0 (sha2-256, dag-pb) names a different shape: refused, not looked up.
    await expectError(await edgeFetch("/v1/chunks/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"), 400, "invalid_cid");
  });
});

describe("R2 egress accounting", () => {
  async function egressOf(region: string): Promise<number> {
    const stub = env.REGION_DIRECTORY.get(env.REGION_DIRECTORY.idFromName(region)) as unknown as { summary(): Promise<{ r2EgressBytes: number }> };
    return (await stub.summary()).r2EgressBytes;
  }

  /** Calls the Worker's own fetch with an execution context we can wait on, so the waitUntil'd count has landed. */
  async function fetchAndSettle(request: Request): Promise<Response> {
    const ctx = createExecutionContext();
    const res = await worker.fetch(request, env, ctx);
    await res.arrayBuffer();
    await waitOnExecutionContext(ctx);
    return res;
  }

  it("counts bytes served to the region the caller maps to, or to its certificate's region", async () => {
    const bytes = randomBytesOf(3000);
    const cid = await cidOfBytes(bytes);
    expect((await upload(publisher, bytes)).status).toBe(201);
    const url = `${ORIGIN}/v1/chunks/${cid}`;

    const apBefore = await egressOf("ap");
    expect((await fetchAndSettle(new Request(url, { cf: { country: "JP", continent: "AS" } } as RequestInit))).status).toBe(200);
    expect((await fetchAndSettle(new Request(url, { headers: { range: "bytes=0-99" }, cf: { continent: "OC" } } as RequestInit))).status).toBe(206);
    expect((await fetchAndSettle(new Request(url, { method: "HEAD", cf: { continent: "AS" } } as RequestInit))).status).toBe(200);
    expect(await egressOf("ap")).toBe(apBefore + 3000 + 100);

    // A certificate from region "us" attributes the bytes to "us", wherever the caller is.
    const usPeer = await joinPeer({ region: "us" });
    const usBefore = await egressOf("us");
    const withCert = new Request(url, { headers: { "x-peercloud-certificate": usPeer.certificate }, cf: { continent: "AS" } } as RequestInit);
    expect((await fetchAndSettle(withCert)).status).toBe(200);
    expect(await egressOf("us")).toBe(usBefore + 3000);
  });
});
