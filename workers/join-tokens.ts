/**
 * The join-token store in KV (`join-token:<id>`, id = hex SHA-256 of the
 * token; src/core/join-token.ts). Only the hash is ever stored, so a leak of
 * the namespace does not leak usable tokens. The record is also kept as the
 * key's metadata so that listing needs one KV call, not one per token.
 *
 * KV is eventually consistent: a new token or a revocation written at one
 * location can take up to ~60 s to be seen at every other location (reads are
 * cached at the edge). Locally (Miniflare) it is immediate. A revoked token
 * therefore may still admit a peer for about a minute; certificates already
 * issued stay valid until they expire (see docs/api.md).
 */
import * as v from "valibot";
import { isJoinTokenShape, joinTokenId, type JoinTokenRecord } from "../src/core/join-token.js";
import { ROLES } from "../src/core/roles.js";
import type { Env } from "./env.js";

const KEY_PREFIX = "join-token:";
/** Records are dropped this long after they expire or are revoked (until then bootstrap names the precise reason). */
export const RECORD_RETENTION_MS = 30 * 24 * 3600_000;

const recordSchema = v.object({
  id: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  label: v.string(),
  createdAtMs: v.number(),
  expiresAtMs: v.nullable(v.number()),
  revokedAtMs: v.nullable(v.number()),
  roles: v.array(v.picklist(ROLES)),
  regions: v.array(v.string()),
});

export function joinTokenKey(id: string): string {
  return KEY_PREFIX + id;
}

function toRecord(value: unknown): JoinTokenRecord | null {
  const parsed = v.safeParse(recordSchema, value);
  if (!parsed.success) {
    // A record we cannot read must never admit anyone: treat it as absent, and say so in the logs.
    console.error("peercloud edge: unreadable join-token record in KV", parsed.issues[0]?.message);
    return null;
  }
  return parsed.output;
}

/** The record of a presented token, or null when the token is malformed or unknown. */
export async function findJoinToken(env: Env, token: string): Promise<JoinTokenRecord | null> {
  if (!isJoinTokenShape(token)) return null;
  return getJoinToken(env, await joinTokenId(token));
}

export async function getJoinToken(env: Env, id: string): Promise<JoinTokenRecord | null> {
  const raw = await env.DASHBOARD.get(joinTokenKey(id), "json").catch(() => null);
  return raw === null ? null : toRecord(raw);
}

export async function putJoinToken(env: Env, record: JoinTokenRecord): Promise<void> {
  const endMs = Math.min(record.revokedAtMs ?? Infinity, record.expiresAtMs ?? Infinity);
  const options: KVNamespacePutOptions = { metadata: record };
  if (Number.isFinite(endMs)) options.expiration = Math.ceil((endMs + RECORD_RETENTION_MS) / 1000);
  await env.DASHBOARD.put(joinTokenKey(record.id), JSON.stringify(record), options);
}

export async function listJoinTokens(env: Env, cursor?: string): Promise<{ tokens: JoinTokenRecord[]; cursor: string | null }> {
  const page = await env.DASHBOARD.list({ prefix: KEY_PREFIX, cursor, limit: 1000 });
  const tokens: JoinTokenRecord[] = [];
  for (const key of page.keys) {
    const record = key.metadata ? toRecord(key.metadata) : await getJoinToken(env, key.name.slice(KEY_PREFIX.length));
    if (record) tokens.push(record);
  }
  return { tokens, cursor: page.list_complete ? null : page.cursor };
}
