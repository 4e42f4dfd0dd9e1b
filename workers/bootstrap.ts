/**
 * Joining and staying joined: `POST /v1/bootstrap` and
 * `POST /v1/certificates/renew`.
 *
 * Bootstrap checks run cheapest first, and nothing touches state before the
 * signature has verified: rate limit (per client IP, counts every attempt,
 * so floods burn the flooder's budget before any CPU goes to crypto) → size
 * → JSON → schema → timestamp window → self-signature → join token (a KV
 * read) → roles → region → nonce claim (first state change) → registration
 * in the region directory → certificate.
 *
 * Renewal policy: a certificate may be renewed only in the last
 * `certificateRenewBeforeMs` of its life (409 `too_early_to_renew` before),
 * which bounds how many valid certificates one key can hold at a time to
 * two; an expired certificate cannot renew (401 `certificate_expired`) and
 * its holder must bootstrap again with a join token. Renewal keeps region
 * and roles and refuses peers the region directory does not know or has
 * declared dead.
 */
import { Hono } from "hono";
import { bootstrapRequestSchema, MAX_BOOTSTRAP_BODY_CHARS, verifyBootstrapSignature, type BootstrapResponse, type RenewResponse } from "../src/core/bootstrap.js";
import { randomBytes, toBase64Url } from "../src/core/bytes.js";
import { issueCertificate, type VerifiedCertificate } from "../src/core/certificate.js";
import { ConflictError, RateLimitError } from "../src/core/errors.js";
import { joinTokenStatus } from "../src/core/join-token.js";
import { nodeIdFromPublicKey } from "../src/core/node-id.js";
import { chooseRegion } from "../src/core/region-map.js";
import { bodyDigestHex, checkTimestamp } from "../src/core/signed-request.js";
import type { Role } from "../src/core/roles.js";
import { readBodyBytes, readJson } from "./body.js";
import { callerGeo, clientIp, networkKey, networkParams, regionConfig, regionStub, type AppContext, type AppEnv } from "./context.js";
import { ForbiddenError } from "./errors.js";
import { findJoinToken } from "./join-tokens.js";
import { authenticatePeer, claimOnce } from "./peer-auth.js";

/** A renewal carries no meaningful body; anything larger than this is refused unread. */
const MAX_RENEW_BODY_BYTES = 1024;

export const bootstrap = new Hono<AppEnv>();

export function directoryPath(region: string): string {
  return `/v1/regions/${region}/connect`;
}

async function issueFor(c: AppContext, subject: { nodeId: string; publicKey: string; region: string; roles: Role[] }, nowMs: number) {
  const key = await networkKey(c.env);
  const expiresAtMs = nowMs + networkParams(c.env).certificateTtlMs;
  const certificate = await issueCertificate(key.secretKey, {
    v: 1,
    network: key.id,
    ...subject,
    issuedAtMs: nowMs,
    expiresAtMs,
    serial: toBase64Url(randomBytes(12)),
  });
  return { certificate, certificateExpiresAtMs: expiresAtMs };
}

bootstrap.post("/bootstrap", async (c) => {
  const params = networkParams(c.env);
  const key = await networkKey(c.env); // a misconfigured edge says so before it judges anyone
  const limit = await c.env.BOOTSTRAP_LIMITER.limit({ key: `bootstrap:${clientIp(c)}` });
  if (!limit.success) throw new RateLimitError("too many bootstrap attempts from this address; retry in a minute");

  const req = await readJson(c.req.raw, bootstrapRequestSchema, MAX_BOOTSTRAP_BODY_CHARS, "body");
  const nowMs = Date.now();
  checkTimestamp(req.timestampMs, nowMs, params.signatureMaxSkewMs);
  const publicKey = await verifyBootstrapSignature(req);
  const nodeId = await nodeIdFromPublicKey(publicKey);

  const token = await findJoinToken(c.env, req.joinToken);
  if (!token) throw new ForbiddenError("unknown_join_token", "this join token is not known to the network; ask the operator for one");
  const status = joinTokenStatus(token, nowMs);
  if (status === "expired") throw new ForbiddenError("expired_join_token", "this join token has expired; ask the operator for a new one");
  if (status === "revoked") throw new ForbiddenError("revoked_join_token", "this join token was revoked");
  const refused = req.roles.filter((r) => !token.roles.includes(r));
  if (refused.length) throw new ForbiddenError("role_not_allowed", `this join token does not allow the role(s) ${refused.join(", ")}; it allows ${token.roles.join(", ")}`);

  const region = chooseRegion(regionConfig(c.env), { requested: req.region, allowed: token.regions, ...callerGeo(c) });
  await claimOnce(c, nodeId, req.nonce, req.timestampMs);

  const issued = await issueFor(c, { nodeId, publicKey: req.publicKey, region, roles: req.roles }, nowMs);
  const { peers } = await regionStub(c.env, region).register(region, {
    nodeId,
    publicKey: req.publicKey,
    hostId: req.hostId ?? nodeId,
    addresses: req.addresses,
    roles: req.roles,
    capacity: req.capacity,
    certificateExpiresAtMs: issued.certificateExpiresAtMs,
  });
  const body: BootstrapResponse = {
    nodeId,
    region,
    ...issued,
    heartbeatIntervalMs: params.heartbeatIntervalMs,
    statusIntervalMs: params.statusIntervalMs,
    directoryPath: directoryPath(region),
    network: { id: key.id, publicKey: key.publicKeyBase64 },
    peers,
  };
  return c.json(body, 200);
});

bootstrap.post("/certificates/renew", async (c) => {
  const body = await readBodyBytes(c.req.raw, MAX_RENEW_BODY_BYTES);
  const nowMs = Date.now();
  const { certificate, nonce, timestampMs } = await authenticatePeer(c, { bodySha256Hex: await bodyDigestHex(body), replayGuard: false, nowMs });
  const params = networkParams(c.env);
  const leftMs = certificate.expiresAtMs - nowMs;
  if (leftMs > params.certificateRenewBeforeMs) {
    throw new ConflictError(
      "too_early_to_renew",
      `this certificate has ${Math.round(leftMs / 60_000)} min left; renew once less than ${Math.round(params.certificateRenewBeforeMs / 60_000)} min remain`,
    );
  }
  await claimOnce(c, certificate.nodeId, nonce, timestampMs);
  await requireLivePeer(c, certificate);
  const issued: RenewResponse = await issueFor(c, { nodeId: certificate.nodeId, publicKey: certificate.publicKey, region: certificate.region, roles: certificate.roles }, nowMs);
  // The directory keeps each peer's certificate expiry; record the new one. The certificate is valid
  // whether or not this bookkeeping succeeds, so a failing directory is logged, not the peer's problem.
  try {
    await regionStub(c.env, certificate.region).renewed(certificate.nodeId, issued.certificateExpiresAtMs);
  } catch (err) {
    console.error(`peercloud edge: could not record the renewed certificate of ${certificate.nodeId.slice(0, 16)}… in region ${certificate.region}`, err);
  }
  return c.json(issued, 200);
});

async function requireLivePeer(c: AppContext, certificate: VerifiedCertificate): Promise<void> {
  if (!Object.hasOwn(regionConfig(c.env).regions, certificate.region)) {
    throw new ForbiddenError("peer_not_registered", `region ${certificate.region} no longer exists; bootstrap again`);
  }
  const state = await regionStub(c.env, certificate.region).peerState(certificate.nodeId);
  if (state === null) throw new ForbiddenError("peer_not_registered", `region ${certificate.region} does not know this peer; bootstrap again`);
  if (state === "dead") throw new ForbiddenError("peer_dead", `region ${certificate.region} considers this peer dead; reconnect to it, or bootstrap again`);
}
