/**
 * Typed per-request access to the edge's configuration and bindings.
 *
 * Configuration (network parameters, the network key pair, the region map)
 * is derived from `env` once per isolate and cached against the env object,
 * so a request pays for neither JSON parsing nor key derivation. A missing or
 * malformed secret or variable becomes a clear 500 `edge_misconfigured`
 * naming the variable — never its value — and is not cached, so a fixed
 * deployment recovers without a restart.
 */
import type { Context } from "hono";
import { fromBase64Url, toBase64Url } from "../src/core/bytes.js";
import { identityFromSecret } from "../src/core/identity.js";
import type { NetworkParams } from "../src/core/params.js";
import { paramsFromEnv } from "../src/core/params-env.js";
import { parseRegionConfig, type RegionConfig } from "../src/core/region-map.js";
import { NotFoundError } from "../src/core/errors.js";
import type { RegionDirectoryRpc } from "../durable-objects/region-directory-contract.js";
import type { Env } from "./env.js";
import { EdgeMisconfiguredError } from "./errors.js";

export type AppEnv = { Bindings: Env };
export type AppContext = Context<AppEnv>;

export interface NetworkKey {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  /** base64url of the public key, as published by GET /v1/network. */
  publicKeyBase64: string;
  /** Network ID: hex SHA-256 of the public key (the node-ID form). */
  id: string;
}

/** A region directory stub typed by its contract (RPC methods plus the WebSocket entry). */
export type RegionStub = RegionDirectoryRpc & { fetch(request: Request): Promise<Response> };

interface ReplayGuardRpc {
  claim(key: string, expiresAtMs: number): Promise<boolean>;
}

// Keyed by the env object: one workerd isolate reuses it across requests.
const paramsCache = new WeakMap<object, NetworkParams>();
const regionCache = new WeakMap<object, RegionConfig>();
const keyCache = new WeakMap<object, Promise<NetworkKey>>();

export function networkParams(env: Env): NetworkParams {
  let params = paramsCache.get(env);
  if (!params) {
    try {
      params = paramsFromEnv(env);
    } catch (err) {
      throw new EdgeMisconfiguredError(`network parameter override in [vars] is invalid: ${(err as Error).message}`);
    }
    paramsCache.set(env, params);
  }
  return params;
}

export function regionConfig(env: Env): RegionConfig {
  let config = regionCache.get(env);
  if (!config) {
    try {
      config = parseRegionConfig(env.REGIONS, env.REGION_MAP);
    } catch (err) {
      throw new EdgeMisconfiguredError(`REGIONS / REGION_MAP in [vars] are invalid: ${(err as Error).message}`);
    }
    regionCache.set(env, config);
  }
  return config;
}

export function networkKey(env: Env): Promise<NetworkKey> {
  let key = keyCache.get(env);
  if (!key) {
    key = deriveNetworkKey(env.EDGE_SIGNING_KEY);
    keyCache.set(env, key);
    key.catch(() => keyCache.delete(env));
  }
  return key;
}

async function deriveNetworkKey(encoded: unknown): Promise<NetworkKey> {
  if (typeof encoded !== "string" || encoded.trim() === "") {
    throw new EdgeMisconfiguredError("EDGE_SIGNING_KEY is not set (wrangler secret put EDGE_SIGNING_KEY; locally: npm run dev:secrets)");
  }
  let seed: Uint8Array;
  try {
    seed = fromBase64Url(encoded.trim());
  } catch {
    throw new EdgeMisconfiguredError("EDGE_SIGNING_KEY is not base64url");
  }
  if (seed.length !== 32) throw new EdgeMisconfiguredError(`EDGE_SIGNING_KEY must encode a 32-byte Ed25519 seed, not ${seed.length} bytes`);
  const identity = await identityFromSecret(seed);
  return { secretKey: seed, publicKey: identity.publicKey, publicKeyBase64: toBase64Url(identity.publicKey), id: identity.nodeId };
}

/** Throws 404 `unknown_region` for a region name this deployment does not configure. */
export function requireRegion(env: Env, region: string): string {
  if (!Object.hasOwn(regionConfig(env).regions, region)) {
    throw new NotFoundError("unknown_region", `unknown region ${JSON.stringify(region.slice(0, 40))}; known: ${Object.keys(regionConfig(env).regions).join(", ")}`);
  }
  return region;
}

/**
 * The region's directory object, named by the region and placed near it with
 * its location hint (a hint only matters when the object is first created).
 */
export function regionStub(env: Env, region: string): RegionStub {
  const hint = regionConfig(env).regions[requireRegion(env, region)];
  const ns = env.REGION_DIRECTORY;
  const stub = ns.get(ns.idFromName(region), { locationHint: hint as DurableObjectLocationHint });
  return stub as unknown as RegionStub;
}

/**
 * Claims a nonce in the ReplayGuard; false means it was seen before.
 * The guard is sharded by the first two hex digits of the node ID (256
 * objects): a peer's nonces always land in one shard, and no single object
 * sees more than ~1/256 of the network's signed traffic.
 */
export async function claimNonce(env: Env, nodeId: string, nonce: string, expiresAtMs: number): Promise<boolean> {
  const ns = env.REPLAY_GUARD;
  const guard = ns.get(ns.idFromName(`replay-${nodeId.slice(0, 2)}`)) as unknown as ReplayGuardRpc;
  return guard.claim(`${nodeId}:${nonce}`, expiresAtMs);
}

/** The client IP that rate limits key on; "local" where the runtime does not set one (wrangler dev, tests). */
export function clientIp(c: AppContext): string {
  return c.req.header("cf-connecting-ip")?.slice(0, 64) || "local";
}

/** Geolocation of the caller from `request.cf` (absent locally unless a test sets it). */
export function callerGeo(c: AppContext): { country: string | null; continent: string | null } {
  const cf = (c.req.raw as Request & { cf?: { country?: unknown; continent?: unknown } }).cf;
  const text = (v: unknown) => (typeof v === "string" && /^[A-Z0-9]{2}$/.test(v) ? v : null);
  return { country: text(cf?.country), continent: text(cf?.continent) };
}

/** `waitUntil` when the runtime gives us an execution context (it always does in workerd; not in bare app.request()). */
export function background(c: AppContext, work: Promise<unknown>): void {
  const guarded = work.catch((err) => console.error("peercloud edge: background task failed", err));
  try {
    c.executionCtx.waitUntil(guarded);
  } catch {
    // No execution context: the promise still runs, just without extending the request's lifetime.
  }
}
