/**
 * ReplayGuard: remembers single-use keys (request nonces, one-time tokens)
 * until they expire, so that a signed request cannot be replayed within its
 * validity window. `claim` is atomic because a Durable Object handles one
 * event at a time and its SQLite is synchronous: two concurrent claims of
 * one key cannot both win.
 *
 * The Worker shards guards by the first two hex characters of the node ID
 * (`idFromName("replay-" + nodeId.slice(0, 2))`, 256 objects), which spreads
 * the claim rate while keeping each peer's nonces in one place. Expired keys
 * are purged by an alarm set to the earliest expiry, re-armed only while
 * keys remain, so an idle guard costs nothing.
 */
import { DurableObject } from "cloudflare:workers";
import { ValidationError } from "../src/core/errors.js";
import type { Env } from "../workers/env.js";

/** Longest accepted key (nonces are short; this only bounds abuse). */
export const MAX_REPLAY_KEY_CHARS = 256;
/** Keys deleted per alarm run, so that one run stays short; the alarm re-arms at once if more are due. */
const PURGE_BATCH = 10_000;

export class ReplayGuard extends DurableObject<Env> {
  /** Wall-clock time in ms; tests replace it through runInDurableObject. */
  clock: () => number = () => Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    void ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID`);
      ctx.storage.sql.exec(`CREATE INDEX IF NOT EXISTS claims_by_expiry ON claims (expires_ms)`);
    });
  }

  /** True if `key` was not seen (or its earlier claim expired): the caller may proceed. False for a replay. */
  async claim(key: string, expiresAtMs: number): Promise<boolean> {
    if (typeof key !== "string" || key.length === 0 || key.length > MAX_REPLAY_KEY_CHARS) {
      throw new ValidationError(`replay key must be 1–${MAX_REPLAY_KEY_CHARS} characters`);
    }
    if (!Number.isSafeInteger(expiresAtMs)) throw new ValidationError("expiresAtMs must be an integer timestamp in ms");
    const now = this.clock();
    if (expiresAtMs <= now) return false; // already expired: nothing to remember, and nothing valid to protect
    const sql = this.ctx.storage.sql;
    // Insert, or take over an expired claim; RETURNING yields a row only when this call won.
    const won =
      sql
        .exec(
          `INSERT INTO claims (key, expires_ms) VALUES (?, ?)
         ON CONFLICT (key) DO UPDATE SET expires_ms = excluded.expires_ms WHERE claims.expires_ms <= ?
         RETURNING key`,
          key,
          expiresAtMs,
          now,
        )
        .toArray().length === 1;
    if (won) {
      const alarmMs = await this.ctx.storage.getAlarm();
      if (alarmMs === null || alarmMs > expiresAtMs) await this.ctx.storage.setAlarm(expiresAtMs);
    }
    return won;
  }

  /** Number of remembered keys (for tests and diagnostics). */
  async size(): Promise<number> {
    return this.ctx.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM claims`).one().n;
  }

  override async alarm(): Promise<void> {
    const now = this.clock();
    const sql = this.ctx.storage.sql;
    sql.exec(`DELETE FROM claims WHERE key IN (SELECT key FROM claims WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?)`, now, PURGE_BATCH);
    const next = sql.exec<{ expires_ms: number }>(`SELECT expires_ms FROM claims ORDER BY expires_ms LIMIT 1`).toArray()[0];
    if (next) await this.ctx.storage.setAlarm(Math.max(next.expires_ms, now + 1));
  }
}
