/**
 * Shared helpers of the edge tests: identities, join tokens created through
 * the admin API, signed bootstrap and signed requests, all against the real
 * Worker (`SELF.fetch`) with its real local Durable Objects, R2 and KV.
 *
 * Every bootstrap comes from its own random client IP (`CF-Connecting-IP`),
 * so only the test that means to trip the bootstrap rate limiter does.
 */
import { SELF } from "cloudflare:test";
import { expect } from "vitest";
import { signBootstrapRequest, type BootstrapResponse, type UnsignedBootstrapRequest } from "../../src/core/bootstrap.js";
import { fromBase64Url, toBase64Url, toHex } from "../../src/core/bytes.js";
import { issueCertificate, type CertificateBody } from "../../src/core/certificate.js";
import { sha256 } from "../../src/core/cid.js";
import { generateIdentity, identityFromSecret, type Identity } from "../../src/core/identity.js";
import type { Role } from "../../src/core/roles.js";
import { signRequest } from "../../src/core/signed-request.js";
import type { Env as EdgeEnv } from "../../workers/env.js";
import { TEST_ADMIN_SECRET, TEST_EDGE_SIGNING_KEY } from "./secrets.js";

declare global {
  // The pool's typed `env` is declared by augmenting this namespace (its documented pattern).
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Cloudflare {
    // eslint-disable-next-line @typescript-eslint/no-empty-object-type
    interface Env extends EdgeEnv {}
  }
}

export const ORIGIN = "https://edge.test";

export function randomIp(): string {
  const b = crypto.getRandomValues(new Uint8Array(3));
  return `10.${b[0]}.${b[1]}.${b[2]}`;
}

export function edgeFetch(path: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(ORIGIN + path, init);
}

/** Parses a JSON answer, failing the test with the body text when it is not JSON. */
export async function json<T = any>(res: Response): Promise<T> {
  const text = await res.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`expected JSON from the edge, got ${res.status}: ${text.slice(0, 200)}`);
  }
}

/** Asserts a `{ error: { code, message } }` answer with the given status and code. */
export async function expectError(res: Response, status: number, code: string): Promise<{ code: string; message: string }> {
  const body = await json(res);
  expect({ status: res.status, code: body?.error?.code }, `answer: ${JSON.stringify(body)}`).toEqual({ status, code });
  expect(typeof body.error.message).toBe("string");
  return body.error;
}

export function adminFetch(path: string, init: RequestInit = {}, secret = TEST_ADMIN_SECRET): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${secret}`);
  return edgeFetch(path, { ...init, headers });
}

export interface CreatedToken {
  id: string;
  token: string;
  roles: Role[];
  regions: string[];
  expiresAtMs: number | null;
}

export async function createJoinToken(options: { label?: string; ttlSeconds?: number | null; roles?: Role[]; regions?: string[] } = {}): Promise<CreatedToken> {
  const res = await adminFetch("/v1/admin/join-tokens", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ label: options.label ?? "test", ...options }),
  });
  expect(res.status).toBe(201);
  return json<CreatedToken>(res);
}

export function networkSecretKey(): Uint8Array {
  return fromBase64Url(TEST_EDGE_SIGNING_KEY);
}

export async function networkPublicKey(): Promise<Uint8Array> {
  const res = await edgeFetch("/v1/network");
  expect(res.status).toBe(200);
  return fromBase64Url((await json(res)).publicKey);
}

export interface BootstrapOptions {
  identity?: Identity;
  token?: string;
  roles?: Role[];
  region?: string;
  hostId?: string;
  ip?: string;
  cf?: Record<string, unknown>;
  nowMs?: number;
}

export async function bootstrapRequest(options: BootstrapOptions & { token: string; identity: Identity }) {
  const unsigned: UnsignedBootstrapRequest = {
    publicKey: toBase64Url(options.identity.publicKey),
    addresses: ["http://203.0.113.7:7070"],
    roles: options.roles ?? ["service"],
    capacity: { storageBytes: 1e9, uploadBps: 1e7, downloadBps: 1e7 },
    joinToken: options.token,
    ...(options.region ? { region: options.region } : {}),
    ...(options.hostId ? { hostId: options.hostId } : {}),
  };
  return signBootstrapRequest(options.identity.secretKey, unsigned, options.nowMs);
}

export function postBootstrap(body: unknown, options: { ip?: string; cf?: Record<string, unknown> } = {}): Promise<Response> {
  return edgeFetch("/v1/bootstrap", {
    method: "POST",
    headers: { "content-type": "application/json", "cf-connecting-ip": options.ip ?? randomIp() },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(options.cf ? { cf: options.cf } : {}),
  } as RequestInit);
}

export interface Peer {
  identity: Identity;
  certificate: string;
  response: BootstrapResponse;
}

/** A peer joined through the real bootstrap endpoint (a fresh join token unless one is given). */
export async function joinPeer(options: BootstrapOptions = {}): Promise<Peer> {
  const identity = options.identity ?? (await generateIdentity());
  const roles = options.roles ?? ["service"];
  const token = options.token ?? (await createJoinToken({ roles })).token;
  const res = await postBootstrap(await bootstrapRequest({ ...options, identity, token, roles }), options);
  const body = await json<BootstrapResponse>(res);
  expect(res.status, JSON.stringify(body)).toBe(200);
  return { identity, certificate: body.certificate, response: body };
}

/** A certificate minted with the test network key, for validity windows the edge would not issue now. */
export async function forgeCertificate(identity: Identity, body: Partial<CertificateBody>): Promise<string> {
  const network = await identityFromSecret(networkSecretKey());
  return issueCertificate(networkSecretKey(), {
    v: 1,
    network: network.nodeId,
    nodeId: identity.nodeId,
    publicKey: toBase64Url(identity.publicKey),
    region: "eu",
    roles: ["service"],
    issuedAtMs: Date.now() - 1000,
    expiresAtMs: Date.now() + 3600_000,
    serial: "forged",
    ...body,
  });
}

export interface SignedInit {
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  nowMs?: number;
  cf?: Record<string, unknown>;
}

/** Signed headers for `method path` with the given body, as a peer would send them. */
export async function signedHeaders(peer: { identity: Identity; certificate: string }, method: string, path: string, body?: Uint8Array | string, nowMs?: number) {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  return signRequest({
    method,
    pathWithQuery: path,
    bodySha256Hex: bytes && bytes.length ? toHex(await sha256(bytes)) : undefined,
    certificate: peer.certificate,
    secretKey: peer.identity.secretKey,
    nowMs,
  });
}

export async function signedFetch(peer: { identity: Identity; certificate: string }, method: string, path: string, init: SignedInit = {}): Promise<Response> {
  const signed = await signedHeaders(peer, method, path, init.body, init.nowMs);
  return edgeFetch(path, {
    method,
    headers: { ...signed, ...(typeof init.body === "string" ? { "content-type": "application/json" } : {}), ...init.headers },
    body: init.body,
    ...(init.cf ? { cf: init.cf } : {}),
  } as RequestInit);
}

export function signedJson(peer: { identity: Identity; certificate: string }, method: string, path: string, value: unknown): Promise<Response> {
  return signedFetch(peer, method, path, { body: JSON.stringify(value) });
}

export function randomBytesOf(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)));
  return out;
}
