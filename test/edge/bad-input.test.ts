/**
 * Malformed input against every route: nothing may answer 5xx, every answer
 * is a JSON `{ error: { code, message } }` with a 4xx status, and the edge
 * still works afterwards (no input corrupted its state).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { cidOfBytes } from "../../src/core/cid.js";
import { adminFetch, bootstrapRequest, createJoinToken, edgeFetch, joinPeer, json, randomBytesOf, randomIp, signedFetch, signedHeaders, type Peer } from "./helpers.js";

let peer: Peer;
let publisher: Peer;
/** A chunk that exists, so that range cases reach the range logic. */
let stored: string;

beforeAll(async () => {
  peer = await joinPeer({ region: "eu", roles: ["service"] });
  publisher = await joinPeer({ region: "eu", roles: ["publisher"] });
  await expect(cidOfBytes(new Uint8Array(0))).resolves.toBe(cid);
  const bytes = randomBytesOf(100);
  stored = await cidOfBytes(bytes);
  expect((await signedFetch(publisher, "PUT", `/v1/chunks/${stored}`, { body: bytes })).status).toBe(201);
});

/** The CID of the empty byte string (a well-known value): valid, and never the hash of a 16-byte body. */
const cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";

const deepJson = "[".repeat(3000) + "]".repeat(3000);
const garbageHeaders = {
  "x-peercloud-certificate": "pc1.e30.AAAA",
  "x-peercloud-timestamp": "yesterday",
  "x-peercloud-nonce": "!!",
  "x-peercloud-signature": "***",
};
const nodeId = "ab".repeat(32);

type Case = [name: string, make: () => Promise<Response>];

const unsigned =
  (method: string, path: string, init: RequestInit = {}): (() => Promise<Response>) =>
  () =>
    edgeFetch(path, { method, ...init });

const CASES: Case[] = [
  ["unknown route", unsigned("GET", "/nope")],
  ["root", unsigned("GET", "/")],
  ["wrong method on network", unsigned("POST", "/v1/network")],
  ["GET on bootstrap", unsigned("GET", "/v1/bootstrap")],
  ["bootstrap without body", unsigned("POST", "/v1/bootstrap", { headers: { "cf-connecting-ip": randomIp() } })],
  ...["null", "1", '"s"', "{", "[]", "{}", deepJson, '{"__proto__":{"admin":true}}', "\u0000\u0001"].map((body): Case => [
    `bootstrap body ${JSON.stringify(body.slice(0, 20))}`,
    unsigned("POST", "/v1/bootstrap", { body, headers: { "cf-connecting-ip": randomIp() } }),
  ]),
  ["bootstrap binary body", unsigned("POST", "/v1/bootstrap", { body: randomBytesOf(2000), headers: { "cf-connecting-ip": randomIp() } })],
  ["bootstrap oversized body", unsigned("POST", "/v1/bootstrap", { body: "x".repeat(100_000), headers: { "cf-connecting-ip": randomIp() } })],
  [
    "bootstrap with numbers out of range",
    unsigned("POST", "/v1/bootstrap", {
      headers: { "cf-connecting-ip": randomIp() },
      body: JSON.stringify({
        publicKey: "A".repeat(43),
        addresses: [],
        roles: ["service"],
        capacity: { storageBytes: 1e300, uploadBps: -1, downloadBps: 0 },
        joinToken: "x",
        timestampMs: 1e300,
        nonce: "a".repeat(16),
        signature: "A".repeat(86),
      }),
    }),
  ],
  ...[
    ["a non-canonical public key", { publicKey: "A".repeat(42) + "B" }],
    ["a non-canonical signature", { signature: "A".repeat(85) + "B" }],
  ].map(([what, patch]): Case => [
    `bootstrap with ${what}`,
    async () => {
      const { token } = await createJoinToken();
      const body = { ...(await bootstrapRequest({ identity: peer.identity, token })), ...(patch as object) };
      return edgeFetch("/v1/bootstrap", { method: "POST", body: JSON.stringify(body), headers: { "cf-connecting-ip": randomIp() } });
    },
  ]),
  ["renew without headers", unsigned("POST", "/v1/certificates/renew")],
  ["renew with garbage headers", unsigned("POST", "/v1/certificates/renew", { headers: garbageHeaders })],
  ["renew with a huge certificate", unsigned("POST", "/v1/certificates/renew", { headers: { "x-peercloud-certificate": "pc1." + "A".repeat(10_000) + ".x" } })],
  ["renew with a non-JSON certificate body", unsigned("POST", "/v1/certificates/renew", { headers: { "x-peercloud-certificate": "pc1.____.AAAA" } })],
  ["renew with an oversized body", () => signedFetch(peer, "POST", "/v1/certificates/renew", { body: "x".repeat(5000) })],
  [
    "renew with a bad timestamp",
    async () => edgeFetch("/v1/certificates/renew", { method: "POST", headers: { ...(await signedHeaders(peer, "POST", "/v1/certificates/renew")), "x-peercloud-timestamp": "99999999999999999999" } }),
  ],
  ["connect with garbage headers", unsigned("GET", "/v1/regions/eu/connect", { headers: { ...garbageHeaders, upgrade: "websocket" } })],
  ["connect to __proto__", unsigned("GET", "/v1/regions/__proto__/connect", { headers: { upgrade: "websocket" } })],
  ["connect to constructor", unsigned("GET", "/v1/regions/constructor/connect", { headers: { upgrade: "websocket" } })],
  ["connect to an encoded NUL region", unsigned("GET", "/v1/regions/%00/connect", { headers: { upgrade: "websocket" } })],
  ["connect to a long region", unsigned("GET", `/v1/regions/${"e".repeat(5000)}/connect`, { headers: { upgrade: "websocket" } })],
  ["connect to EU", unsigned("GET", "/v1/regions/EU/connect", { headers: { upgrade: "websocket" } })],
  ["nodes with count=abc", () => signedFetch(peer, "GET", `/v1/regions/eu/nodes?target=${nodeId}&count=abc`)],
  ["nodes with count=-1", () => signedFetch(peer, "GET", `/v1/regions/eu/nodes?target=${nodeId}&count=-1`)],
  ["nodes with count=1e3", () => signedFetch(peer, "GET", `/v1/regions/eu/nodes?target=${nodeId}&count=1e3`)],
  ["nodes with an upper-case target", () => signedFetch(peer, "GET", `/v1/regions/eu/nodes?target=${nodeId.toUpperCase()}`)],
  ["nodes with garbage headers", unsigned("GET", `/v1/regions/eu/nodes?target=${nodeId}`, { headers: garbageHeaders })],
  ["providers with an upper-case CID", () => signedFetch(peer, "GET", `/v1/regions/eu/providers/${"B".repeat(59)}`)],
  ["providers with a percent-encoded CID", () => signedFetch(peer, "GET", "/v1/regions/eu/providers/%FF%FE")],
  ["providers with a CID of the wrong codec", () => signedFetch(peer, "GET", "/v1/regions/eu/providers/bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")],
  ...[
    ["pins", "/v1/regions/eu/pins"],
    ["place", "/v1/regions/eu/place"],
    ["signal", "/v1/signal"],
  ].flatMap(([name, path]): Case[] => [
    [`${name} unsigned`, unsigned("POST", path, { body: "{}" })],
    [`${name} with garbage headers`, unsigned("POST", path, { body: "{}", headers: garbageHeaders })],
    [`${name} with non-JSON`, () => signedFetch(publisher, "POST", path, { body: "{oops" })],
    [`${name} with an empty body`, () => signedFetch(publisher, "POST", path)],
    [`${name} with deep JSON`, () => signedFetch(publisher, "POST", path, { body: deepJson })],
    [`${name} with an oversized body`, () => signedFetch(publisher, "POST", path, { body: JSON.stringify({ pad: "x".repeat(200_000) }) })],
    [`${name} with a wrong shape`, () => signedFetch(publisher, "POST", path, { body: JSON.stringify({ cids: "x", count: "2", to: 5, payload: undefined }) })],
    [`${name} with the body changed after signing`, async () => edgeFetch(path, { method: "POST", headers: await signedHeaders(publisher, "POST", path, "{}"), body: '{"a":1}' })],
  ]),
  ["pins with too many CIDs", () => signedFetch(publisher, "POST", "/v1/regions/eu/pins", { body: JSON.stringify({ cids: Array(1001).fill(cid), replicas: 1 }) })],
  ["pins with replicas 17", () => signedFetch(publisher, "POST", "/v1/regions/eu/pins", { body: JSON.stringify({ cids: [cid], replicas: 17 }) })],
  ["place with 100 exclusions", () => signedFetch(publisher, "POST", "/v1/regions/eu/place", { body: JSON.stringify({ count: 1, exclude: Array(100).fill(nodeId) }) })],
  ["signal with a cyclic-looking payload", () => signedFetch(peer, "POST", "/v1/signal", { body: JSON.stringify({ to: nodeId, payload: { a: { b: { c: deepJson } } } }) })],
  ["chunk PUT with garbage headers", unsigned("PUT", `/v1/chunks/${cid}`, { body: new Uint8Array(16), headers: garbageHeaders })],
  ["chunk PUT with an invalid CID", () => signedFetch(publisher, "PUT", "/v1/chunks/xyz", { body: new Uint8Array(16) })],
  ["chunk PUT empty body, wrong CID", () => signedFetch(publisher, "PUT", `/v1/chunks/${cid}`)],
  ["chunk GET with a huge range start", () => edgeFetch(`/v1/chunks/${stored}`, { headers: { range: "bytes=99999999999999999999999-" } })],
  ["chunk GET with a zero-length suffix", () => edgeFetch(`/v1/chunks/${stored}`, { headers: { range: "bytes=-0" } })],
  ["chunk GET of a missing chunk", unsigned("GET", `/v1/chunks/${cid}`)],
  ["chunk GET of an invalid CID", unsigned("GET", "/v1/chunks/%F0%9F%98%80")],
  ["chunk GET with a broken percent-encoding", unsigned("GET", "/v1/chunks/%E0%A4%A")],
  ["region with a broken percent-encoding", unsigned("GET", "/v1/regions/%ZZ/nodes?target=%ZZ")],
  ["chunk DELETE", unsigned("DELETE", `/v1/chunks/${cid}`)],
  ["admin with a 10k bearer", unsigned("GET", "/v1/admin/join-tokens", { headers: { authorization: "Bearer " + "x".repeat(10_000) } })],
  ["admin with an empty bearer", unsigned("GET", "/v1/admin/join-tokens", { headers: { authorization: "Bearer " } })],
  ["admin create with non-JSON", () => adminFetch("/v1/admin/join-tokens", { method: "POST", body: "label=x" })],
  ["admin create with deep JSON", () => adminFetch("/v1/admin/join-tokens", { method: "POST", body: deepJson })],
  ["admin create with an oversized body", () => adminFetch("/v1/admin/join-tokens", { method: "POST", body: JSON.stringify({ label: "x".repeat(10_000) }) })],
  ["admin create with a numeric label", () => adminFetch("/v1/admin/join-tokens", { method: "POST", body: '{"label":5}' })],
  ["admin list with a garbage cursor", () => adminFetch("/v1/admin/join-tokens?cursor=%00%01")],
  ["admin revoke with an upper-case ID", () => adminFetch(`/v1/admin/join-tokens/${nodeId.toUpperCase()}`, { method: "DELETE" })],
  ["admin revoke without an ID", () => adminFetch("/v1/admin/join-tokens/", { method: "DELETE" })],
  ["admin unknown route", () => adminFetch("/v1/admin/secrets")],
];

describe("malformed requests", () => {
  it.each(CASES)("%s → 4xx with a JSON error", async (_name, make) => {
    const res = await make();
    const text = await res.text();
    expect(res.status, text).toBeGreaterThanOrEqual(400);
    expect(res.status, text).toBeLessThan(500);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = JSON.parse(text);
    expect(body.error.code).toMatch(/^[a-z_]+$/);
    expect(typeof body.error.message).toBe("string");
    expect(text).not.toMatch(/at .*\.ts:\d+/); // no stack traces
  });

  // Range headers the edge may ignore (RFC 9110 §14.2) are answered with the whole chunk, never an error.
  it.each(["bytes=--5", "bytes=" + "0-1,".repeat(2500), "bytes=a-b", "bytes=1-0"])("ignores the Range header %s", async (range) => {
    const res = await edgeFetch(`/v1/chunks/${stored}`, { headers: { range } });
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(100);
  });

  it("leaves the edge working afterwards", async () => {
    expect((await edgeFetch("/v1/network")).status).toBe(200);
    const fresh = await joinPeer({ region: "eu" });
    const res = await signedFetch(fresh, "GET", `/v1/regions/eu/nodes?target=${fresh.identity.nodeId}&count=1`);
    expect((await json(res)).nodes[0].nodeId).toBe(fresh.identity.nodeId);
  });
});
