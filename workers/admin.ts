/**
 * The operator's API: join tokens and region summaries, behind
 * `Authorization: Bearer <ADMIN_SECRET>`.
 *
 * The secret is compared in constant time (both sides hashed first, so not
 * even its length leaks). An unset, empty or short (< 16 characters) secret
 * disables the API — 403 `admin_disabled` — rather than ever letting a
 * request through. The dashboard UI (a later issue) builds on these routes.
 *
 * Join tokens are stored hashed (workers/join-tokens.ts); the token itself
 * appears once, in the creation answer. Revocation keeps the record, so a
 * peer presenting a revoked token is told so. KV is eventually consistent:
 * in production a new token or a revocation can take up to ~60 s to reach
 * every Cloudflare location.
 */
import { Hono } from "hono";
import * as v from "valibot";
import { constantTimeEqual, utf8 } from "../src/core/bytes.js";
import { sha256 } from "../src/core/cid.js";
import { AuthError, NotFoundError, ValidationError } from "../src/core/errors.js";
import { generateJoinToken, joinTokenId, type JoinTokenRecord } from "../src/core/join-token.js";
import { regionSchema, roleListSchema } from "../src/core/messages.js";
import type { Role } from "../src/core/roles.js";
import type { RegionSummary } from "../durable-objects/region-directory-contract.js";
import { readJson } from "./body.js";
import { regionConfig, regionStub, type AppEnv } from "./context.js";
import { ForbiddenError } from "./errors.js";
import { getJoinToken, listJoinTokens, putJoinToken } from "./join-tokens.js";

const MIN_ADMIN_SECRET_CHARS = 16;
const MAX_ADMIN_BODY_BYTES = 4096;
/** Join tokens expire after a week unless the operator asks otherwise; `ttlSeconds: null` means never. */
export const DEFAULT_JOIN_TOKEN_TTL_SECONDS = 7 * 24 * 3600;
const MAX_JOIN_TOKEN_TTL_SECONDS = 10 * 365 * 24 * 3600;
/** Roles a token grants when the operator names none: everything but publishing. */
const DEFAULT_TOKEN_ROLES: Role[] = ["service", "client", "gateway"];
/** Kept small so the record fits KV's 1 KiB metadata (one-call listing). */
const MAX_TOKEN_REGIONS = 8;

const createTokenSchema = v.strictObject({
  label: v.pipe(v.string(), v.trim(), v.minLength(1, "label must not be empty"), v.maxLength(64)),
  ttlSeconds: v.optional(v.nullable(v.pipe(v.number(), v.integer(), v.minValue(60), v.maxValue(MAX_JOIN_TOKEN_TTL_SECONDS)))),
  roles: v.optional(roleListSchema),
  regions: v.optional(
    v.pipe(
      v.array(regionSchema),
      v.maxLength(MAX_TOKEN_REGIONS),
      v.check((r) => new Set(r).size === r.length, "regions must not repeat"),
    ),
  ),
});

export const admin = new Hono<AppEnv>();

admin.use("/admin/*", async (c, next) => {
  const secret = typeof c.env.ADMIN_SECRET === "string" ? c.env.ADMIN_SECRET : "";
  if (secret.length < MIN_ADMIN_SECRET_CHARS) {
    throw new ForbiddenError("admin_disabled", `the admin API is disabled until ADMIN_SECRET (at least ${MIN_ADMIN_SECRET_CHARS} characters) is set`);
  }
  const header = c.req.header("authorization");
  const match = header ? /^Bearer\s+(\S{1,512})\s*$/i.exec(header) : null;
  if (!match) throw new AuthError("admin_auth_required", "send Authorization: Bearer <admin secret>");
  const [given, expected] = await Promise.all([sha256(utf8(match[1])), sha256(utf8(secret))]);
  if (!constantTimeEqual(given, expected)) throw new ForbiddenError("admin_auth_failed", "the admin secret is wrong");
  c.header("cache-control", "no-store");
  await next();
});

admin.post("/admin/join-tokens", async (c) => {
  const body = await readJson(c.req.raw, createTokenSchema, MAX_ADMIN_BODY_BYTES);
  const known = regionConfig(c.env).regions;
  const unknown = (body.regions ?? []).filter((r) => !Object.hasOwn(known, r));
  if (unknown.length) throw new ValidationError(`unknown region(s) ${unknown.join(", ")}; known: ${Object.keys(known).join(", ")}`, "unknown_region");

  const token = generateJoinToken();
  const nowMs = Date.now();
  const ttlSeconds = body.ttlSeconds === undefined ? DEFAULT_JOIN_TOKEN_TTL_SECONDS : body.ttlSeconds;
  const record: JoinTokenRecord = {
    id: await joinTokenId(token),
    label: body.label,
    createdAtMs: nowMs,
    expiresAtMs: ttlSeconds === null ? null : nowMs + ttlSeconds * 1000,
    revokedAtMs: null,
    roles: body.roles ?? DEFAULT_TOKEN_ROLES,
    regions: body.regions ?? [],
  };
  await putJoinToken(c.env, record);
  return c.json({ ...record, token }, 201);
});

admin.get("/admin/join-tokens", async (c) => {
  const cursor = c.req.query("cursor");
  if (cursor !== undefined && !/^[A-Za-z0-9+/=_-]{1,1024}$/.test(cursor)) throw new ValidationError("query.cursor is malformed");
  return c.json(await listJoinTokens(c.env, cursor));
});

admin.delete("/admin/join-tokens/:id", async (c) => {
  const id = c.req.param("id");
  if (!/^[0-9a-f]{64}$/.test(id)) throw new ValidationError("a join-token ID is 64 lower-case hex characters", "invalid_token_id");
  const record = await getJoinToken(c.env, id);
  if (!record) throw new NotFoundError("unknown_join_token", `no join token ${id}`);
  if (record.revokedAtMs === null) {
    record.revokedAtMs = Date.now();
    await putJoinToken(c.env, record);
  }
  return c.json(record);
});

interface RegionReport {
  name: string;
  locationHint: string;
  /** Last periodic snapshot the region wrote to KV (may lag by a snapshot interval plus KV propagation). */
  snapshot: RegionSummary | null;
  /** Asked of the region's object now; null with `liveError` when it did not answer. */
  live: RegionSummary | null;
  liveError?: string;
}

admin.get("/admin/regions", async (c) => {
  const regions = Object.entries(regionConfig(c.env).regions);
  const reports = await Promise.all(
    regions.map(async ([name, locationHint]): Promise<RegionReport> => {
      const [snapshot, live] = await Promise.allSettled([c.env.DASHBOARD.get(`region:${name}`, "json") as Promise<RegionSummary | null>, regionStub(c.env, name).summary()]);
      const report: RegionReport = {
        name,
        locationHint,
        snapshot: snapshot.status === "fulfilled" ? snapshot.value : null,
        live: live.status === "fulfilled" ? live.value : null,
      };
      if (live.status === "rejected") {
        console.error(`peercloud edge: summary of region ${name} failed`, live.reason);
        report.liveError = "the region's directory did not answer";
      }
      return report;
    }),
  );
  return c.json({ regions: reports });
});
