/**
 * SQLite schema of a region directory, created or migrated in the object's
 * constructor (inside blockConcurrencyWhile, so no event sees a half-built
 * schema). Migrations are append-only: each step runs once, in order, and
 * the number of applied steps is kept in `meta.schema_version`.
 *
 * Design notes (every row read and written is billed):
 * - WITHOUT ROWID tables keyed by what we look up, so a lookup is one B-tree
 *   descent and the key is not stored twice;
 * - `replicas` has its primary key on (cid, node_id) for FIND_PROVIDERS and
 *   a covering index on (node_id, cid) for "what did this dead peer hold";
 * - peers' JSON columns (addresses, roles, capacity, load) are read back
 *   only when the object rebuilds its in-memory view;
 * - a pin belongs to the publisher that set it (`pinners`); `pins` holds the
 *   per-chunk aggregate the queue and the summary read.
 */
import type { Sql } from "./sql.js";

const MIGRATIONS: readonly string[][] = [
  [
    `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`,
    `CREATE TABLE IF NOT EXISTS peers (
       node_id TEXT PRIMARY KEY,
       public_key TEXT NOT NULL,
       host_id TEXT NOT NULL,
       addresses TEXT NOT NULL,
       roles TEXT NOT NULL,
       capacity TEXT NOT NULL,
       load TEXT,
       free_bytes INTEGER,
       state TEXT NOT NULL CHECK (state IN ('alive', 'suspect', 'dead')),
       last_seen_ms INTEGER NOT NULL,
       registered_ms INTEGER NOT NULL,
       cert_expires_ms INTEGER NOT NULL
     ) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS peers_by_state ON peers (state)`,
    `CREATE TABLE IF NOT EXISTS replicas (cid TEXT NOT NULL, node_id TEXT NOT NULL, PRIMARY KEY (cid, node_id)) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS replicas_by_node ON replicas (node_id, cid)`,
    `CREATE TABLE IF NOT EXISTS pins (
       cid TEXT PRIMARY KEY,
       target INTEGER NOT NULL CHECK (target > 0),
       size_bytes INTEGER,
       live_count INTEGER NOT NULL CHECK (live_count >= 0),
       pinned_by TEXT NOT NULL,
       pinned_ms INTEGER NOT NULL
     ) WITHOUT ROWID`,
    `CREATE TABLE IF NOT EXISTS under_replicated (cid TEXT PRIMARY KEY, missing INTEGER NOT NULL, since_ms INTEGER NOT NULL) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS under_replicated_by_priority ON under_replicated (missing DESC, since_ms)`,
    `CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID`,
  ],
  // 2: pin ownership and inventory sync.
  // - `pinners`: one row per (chunk, publisher that pinned it) with that publisher's own target;
  //   `pins.target` becomes the max over a chunk's pinners (kept in step by ReplicaStore.pin) and
  //   `pins.pinned_by` the last publisher to set it. Existing pins are carried over as their
  //   recorded publisher's pin, so deployed objects keep every chunk pinned at its old target.
  // - `replicas.epoch`: the full-inventory sync that last listed the row (NULL: never synced);
  //   `replica_syncs`: each peer's current sync epoch, which delta additions are stamped with.
  [
    `CREATE TABLE IF NOT EXISTS pinners (
       cid TEXT NOT NULL,
       node_id TEXT NOT NULL,
       target INTEGER NOT NULL CHECK (target > 0),
       pinned_ms INTEGER NOT NULL,
       PRIMARY KEY (cid, node_id)
     ) WITHOUT ROWID`,
    `INSERT INTO pinners (cid, node_id, target, pinned_ms) SELECT cid, pinned_by, target, pinned_ms FROM pins WHERE true ON CONFLICT DO NOTHING`,
    `ALTER TABLE replicas ADD COLUMN epoch TEXT`,
    `CREATE TABLE IF NOT EXISTS replica_syncs (node_id TEXT PRIMARY KEY, epoch TEXT NOT NULL) WITHOUT ROWID`,
  ],
  // 3: repair jobs (repair-jobs.ts). A job re-creates one replica of an under-replicated chunk; it
  // is a row from planning to confirmation so that it survives the object's restarts. `target` /
  // `source` are the current or last dispatch ("r2": the cold store); `avoid_*` the peers that
  // failed it in this round (JSON arrays); `deadline_ms` the timeout of a running job.
  [
    `CREATE TABLE IF NOT EXISTS repair_jobs (
       job_id TEXT PRIMARY KEY,
       cid TEXT NOT NULL,
       state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'failed')),
       missing INTEGER NOT NULL,
       size_bytes INTEGER,
       attempts INTEGER NOT NULL,
       target TEXT,
       source TEXT,
       avoid_targets TEXT NOT NULL,
       avoid_sources TEXT NOT NULL,
       not_before_ms INTEGER NOT NULL,
       deadline_ms INTEGER,
       created_ms INTEGER NOT NULL,
       last_error TEXT
     ) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS repair_jobs_by_cid ON repair_jobs (cid)`,
    `CREATE INDEX IF NOT EXISTS repair_jobs_by_target ON repair_jobs (target, cid)`,
    `CREATE INDEX IF NOT EXISTS repair_jobs_by_state ON repair_jobs (state, missing DESC, created_ms)`,
  ],
  // 4: drain (issue 6 item 4). A draining peer's replicas do not count toward `pins.live_count`, it
  // is never a placement or repair target, and its copies are trimmed once others hold enough. A
  // column of `peers`, so it survives the object's restarts and the peer's reconnects.
  [`ALTER TABLE peers ADD COLUMN draining INTEGER NOT NULL DEFAULT 0`],
  // 5: audits (issue 6 item 7, auditor.ts). One row per challenged holder of an audit round (`job_id`
  // is the round: one chunk, one nonce and range for all its holders), kept until the round is judged
  // so that a restart loses no outstanding audit; `answer` is NULL until the holder answers, then its
  // proof (hex) or `!<failure code>`. Each peer's audit record lives in `peers` (its reputation).
  [
    `CREATE TABLE IF NOT EXISTS audits (
       job_id TEXT NOT NULL,
       node_id TEXT NOT NULL,
       cid TEXT NOT NULL,
       nonce TEXT NOT NULL,
       offset_bytes INTEGER NOT NULL,
       length_bytes INTEGER NOT NULL,
       sent_ms INTEGER NOT NULL,
       deadline_ms INTEGER NOT NULL,
       answer TEXT,
       PRIMARY KEY (job_id, node_id)
     ) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS audits_by_cid ON audits (cid)`,
    `ALTER TABLE peers ADD COLUMN audits_passed INTEGER NOT NULL DEFAULT 0`,
    `ALTER TABLE peers ADD COLUMN audits_failed INTEGER NOT NULL DEFAULT 0`,
  ],
  // 6: cold tier (issue 6 item 6, cold-tier.ts). `last_wanted_ms`: the last provider lookup of the chunk
  // (NULL: none since it was pinned; `pinned_ms` stands in); `cold`: the chunk lives in R2 only — its
  // effective target on peers is 0, so it is never under-replicated and its replicas are trimmed.
  [`ALTER TABLE pins ADD COLUMN last_wanted_ms INTEGER`, `ALTER TABLE pins ADD COLUMN cold INTEGER NOT NULL DEFAULT 0`],
  // 7: estimates of the quality between this region and each other one (region-quality.ts), from what the
  // region's peers measured of their sources.
  [
    `CREATE TABLE IF NOT EXISTS region_quality (
       region TEXT PRIMARY KEY,
       rtt_ms REAL,
       rate_bps REAL,
       samples INTEGER NOT NULL,
       updated_ms INTEGER NOT NULL
     ) WITHOUT ROWID`,
  ],
  // 8: rebalance (rebalancer.ts). A move is a repair job with `move_from` (the fuller holder, whose copy is
  // trimmed afterwards) and `move_to` (the emptier peer that must receive the copy) set; a repair job has
  // both NULL. `rebalance_moves` keeps each confirmed move until its source's copy is trimmed and both
  // peers' status reports show it: the trimmer takes that copy first, and planning counts the bytes the
  // reports do not show yet.
  [
    `ALTER TABLE repair_jobs ADD COLUMN move_from TEXT`,
    `ALTER TABLE repair_jobs ADD COLUMN move_to TEXT`,
    `CREATE TABLE IF NOT EXISTS rebalance_moves (
       cid TEXT NOT NULL,
       from_node TEXT NOT NULL,
       to_node TEXT NOT NULL,
       size_bytes INTEGER NOT NULL,
       confirmed_ms INTEGER NOT NULL,
       trimmed_ms INTEGER,
       PRIMARY KEY (cid, from_node)
     ) WITHOUT ROWID`,
  ],
  // Step 9 (releaser.ts): chunks whose last pin was withdrawn, until every holder was told to release its copy.
  [`CREATE TABLE IF NOT EXISTS released_chunks (cid TEXT PRIMARY KEY, released_ms INTEGER NOT NULL) WITHOUT ROWID`],
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the schema up to date; a no-op (one read) once it is. */
export function migrate(sql: Sql): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID`);
  const row = sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = 'schema_version'`).toArray()[0];
  const applied = row ? Number(row.value) : 0;
  if (applied > SCHEMA_VERSION) throw new Error(`region directory storage has schema ${applied}, newer than this code's ${SCHEMA_VERSION}`);
  for (let step = applied; step < SCHEMA_VERSION; step++) {
    for (const statement of MIGRATIONS[step]) {
      try {
        sql.exec(statement);
      } catch (err) {
        // Steps are safe to run again (every CREATE says IF NOT EXISTS); SQLite has no ADD COLUMN IF NOT EXISTS.
        if (!(/^ALTER TABLE \w+ ADD COLUMN/.test(statement) && /duplicate column name/.test(String(err)))) throw err;
      }
    }
  }
  if (applied !== SCHEMA_VERSION) {
    sql.exec(`INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, String(SCHEMA_VERSION));
  }
}

/** A value of the `meta` table (region name, last snapshot…), or null. */
export function readMeta(sql: Sql, key: string): string | null {
  return sql.exec<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key).toArray()[0]?.value ?? null;
}

export function writeMeta(sql: Sql, key: string, value: string): void {
  sql.exec(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
}
