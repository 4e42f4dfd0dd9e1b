/**
 * The replica registry in SQL: which peer holds which chunk (`replicas`),
 * which chunks must be kept at a replication factor (`pins`, with their live
 * replica count kept incrementally), and the queue of pinned chunks below
 * their factor (`under_replicated`, drained by repair in a later issue).
 *
 * Pins belong to the publishers that set them (`pinners`, one row per chunk
 * and publisher): a chunk's effective target is the highest of its pinners'
 * targets, a publisher's `replicas: 0` withdraws only its own pin, and the
 * chunk is unpinned when no pinner remains — so a peer that merely
 * downloaded a file cannot unpin it for its publisher.
 *
 * Full-inventory sync is mark and sweep: each row carries the epoch of the
 * last sync that listed it (`replicas.epoch`; delta additions take the
 * peer's current epoch from `replica_syncs`), and the sync's last batch
 * deletes the peer's rows of any other epoch. Rows are only ever removed at
 * that point, so live counts never dip while a sync is under way.
 *
 * Invariants: `pins.live_count` = number of `replicas` rows of the CID whose
 * holder is not dead and not draining (a draining peer's copies still
 * serve, but do not count: see Directory.setDraining); `pins.target` = max(`pinners.target`) of the CID, and
 * a `pins` row exists exactly when a `pinners` row does. Every method that changes holders or their liveness
 * keeps it, and re-syncs the queue for exactly the CIDs it touched.
 * Batches go through `json_each(?)` so that one statement handles a whole
 * announcement: SQLite compiles a handful of constant statements once and
 * the runtime caches them.
 */
import type { Sql } from "./sql.js";

/** Sub-selects naming "the CIDs concerned" for the queue re-sync. */
const CIDS_IN_JSON = `SELECT value FROM json_each(?)`;
const CIDS_OF_NODE = `SELECT cid FROM replicas WHERE node_id = ?`;

const queueUpsert = (cids: string) =>
  `INSERT INTO under_replicated (cid, missing, since_ms)
   SELECT cid, target - live_count, ? FROM pins WHERE cid IN (${cids}) AND live_count < target AND cold = 0
   ON CONFLICT (cid) DO UPDATE SET missing = excluded.missing WHERE missing != excluded.missing`;
const queueDelete = (cids: string) => `DELETE FROM under_replicated WHERE cid IN (SELECT cid FROM pins WHERE cid IN (${cids}) AND (live_count >= target OR cold = 1))`;

const QUEUE_UPSERT_JSON = queueUpsert(CIDS_IN_JSON);
const QUEUE_DELETE_JSON = queueDelete(CIDS_IN_JSON);
const QUEUE_UPSERT_NODE = queueUpsert(CIDS_OF_NODE);
const QUEUE_DELETE_NODE = queueDelete(CIDS_OF_NODE);

/** Counter of replica rows whose holder is not dead (kept incrementally: counting the largest table would read every row). */
export const LIVE_REPLICAS = "live_replicas";
export const R2_EGRESS_BYTES = "r2_egress_bytes";

export interface PinState {
  cid: string;
  target: number;
  liveCount: number;
  sizeBytes: number | null;
}

export interface QueuedChunk {
  cid: string;
  missing: number;
  sinceMs: number;
}

export class ReplicaStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Records chunks now held by a live peer; returns how many were new. With
   * `syncEpoch` (a batch of a full-inventory sync) that epoch becomes the
   * peer's current one first. Every listed row — new or already known — is
   * stamped with the peer's current epoch, so a sync's sweep keeps it.
   */
  add(nodeId: string, cids: readonly string[], nowMs: number, syncEpoch?: string): number {
    if (syncEpoch !== undefined) {
      this.sql.exec(`INSERT INTO replica_syncs (node_id, epoch) VALUES (?, ?) ON CONFLICT (node_id) DO UPDATE SET epoch = excluded.epoch WHERE epoch != excluded.epoch`, nodeId, syncEpoch);
    }
    if (cids.length === 0) return 0;
    const json = JSON.stringify(cids);
    // Re-stamp rows the peer already had (no write for a peer that never synced: its epoch is NULL on both sides).
    this.sql.exec(
      `UPDATE replicas SET epoch = (SELECT epoch FROM replica_syncs WHERE node_id = ?)
       WHERE node_id = ? AND cid IN (${CIDS_IN_JSON}) AND epoch IS NOT (SELECT epoch FROM replica_syncs WHERE node_id = ?)`,
      nodeId,
      nodeId,
      json,
      nodeId,
    );
    const inserted = this.sql
      .exec<{ cid: string }>(
        `INSERT INTO replicas (cid, node_id, epoch) SELECT value, ?, (SELECT epoch FROM replica_syncs WHERE node_id = ?) FROM json_each(?) WHERE true ON CONFLICT DO NOTHING RETURNING cid`,
        nodeId,
        nodeId,
        json,
      )
      .toArray()
      .map((r) => r.cid);
    if (this.counts(nodeId)) this.shiftCids(inserted, +1, nowMs);
    return inserted.length;
  }

  /** The sweep of a finished sync: forgets the live peer's rows that sync `epoch` did not list; returns how many. */
  sweepUnsynced(nodeId: string, epoch: string, nowMs: number): number {
    const deleted = this.sql
      .exec<{ cid: string }>(`DELETE FROM replicas WHERE node_id = ? AND epoch IS NOT ? RETURNING cid`, nodeId, epoch)
      .toArray()
      .map((r) => r.cid);
    if (this.counts(nodeId)) this.shiftCids(deleted, -1, nowMs);
    return deleted.length;
  }

  /** Forgets chunks a live peer dropped; returns how many it had. */
  remove(nodeId: string, cids: readonly string[], nowMs: number): number {
    if (cids.length === 0) return 0;
    const deleted = this.sql
      .exec<{ cid: string }>(`DELETE FROM replicas WHERE node_id = ? AND cid IN (SELECT value FROM json_each(?)) RETURNING cid`, nodeId, JSON.stringify(cids))
      .toArray()
      .map((r) => r.cid);
    if (this.counts(nodeId)) this.shiftCids(deleted, -1, nowMs);
    return deleted.length;
  }

  /** Whether a peer's replicas count toward live counts: it is known, not dead and not draining. */
  counts(nodeId: string): boolean {
    return this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM peers WHERE node_id = ? AND state != 'dead' AND draining = 0`, nodeId).one().n > 0;
  }

  /** A holder died (-1) or came back (+1): all its replicas stop or start counting. Rows are kept either way. */
  shiftHolder(nodeId: string, delta: 1 | -1, nowMs: number): void {
    const held = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM replicas WHERE node_id = ?`, nodeId).one().n;
    if (held === 0) return;
    this.sql.exec(`UPDATE pins SET live_count = max(0, live_count + ?) WHERE cid IN (${CIDS_OF_NODE})`, delta, nodeId);
    this.sql.exec(QUEUE_UPSERT_NODE, nowMs, nodeId);
    this.sql.exec(QUEUE_DELETE_NODE, nodeId);
    this.addCounter(LIVE_REPLICAS, delta * held);
  }

  /** Deletes every replica row of a peer (it no longer stores chunks); `counted` says whether they were counting. */
  dropHolder(nodeId: string, counted: boolean, nowMs: number): void {
    const deleted = this.sql
      .exec<{ cid: string }>(`DELETE FROM replicas WHERE node_id = ? RETURNING cid`, nodeId)
      .toArray()
      .map((r) => r.cid);
    if (counted) this.shiftCids(deleted, -1, nowMs);
  }

  /** Node IDs recorded as holding `cid`, dead ones included (the caller filters by liveness). */
  holders(cid: string): string[] {
    return this.sql
      .exec<{ node_id: string }>(`SELECT node_id FROM replicas WHERE cid = ?`, cid)
      .toArray()
      .map((r) => r.node_id);
  }

  /**
   * Sets `pinnedBy`'s own replication target for chunks; `target` 0 withdraws
   * its pin only (a CID it never pinned is left alone). The effective target
   * is recomputed as the max over the remaining pinners; a chunk with none
   * left is unpinned and leaves the queue — and is released (releaser.ts);
   * pinning recomputes the live count from the holders. Returns how many
   * chunks were released.
   */
  pin(cids: readonly string[], target: number, sizesBytes: readonly (number | undefined)[] | undefined, pinnedBy: string, nowMs: number): number {
    let released = 0;
    if (target === 0) {
      const withdrawn = this.sql
        .exec<{ cid: string }>(`DELETE FROM pinners WHERE node_id = ? AND cid IN (${CIDS_IN_JSON}) RETURNING cid`, pinnedBy, JSON.stringify(cids))
        .toArray()
        .map((r) => r.cid);
      if (withdrawn.length === 0) return 0;
      const json = JSON.stringify(withdrawn);
      // Nobody pins these any more: their holders are told to release their copies (releaser.ts).
      released = this.sql
        .exec(
          `INSERT INTO released_chunks (cid, released_ms) SELECT cid, ? FROM pins WHERE cid IN (${CIDS_IN_JSON}) AND NOT EXISTS (SELECT 1 FROM pinners WHERE pinners.cid = pins.cid)
           ON CONFLICT (cid) DO UPDATE SET released_ms = excluded.released_ms RETURNING cid`,
          nowMs,
          json,
        )
        .toArray().length;
      this.sql.exec(`DELETE FROM pins WHERE cid IN (${CIDS_IN_JSON}) AND NOT EXISTS (SELECT 1 FROM pinners WHERE pinners.cid = pins.cid)`, json);
      this.sql.exec(`DELETE FROM under_replicated WHERE cid IN (${CIDS_IN_JSON}) AND NOT EXISTS (SELECT 1 FROM pins WHERE pins.cid = under_replicated.cid)`, json);
      this.sql.exec(
        `UPDATE pins SET target = (SELECT max(target) FROM pinners WHERE pinners.cid = pins.cid)
         WHERE cid IN (${CIDS_IN_JSON}) AND target != (SELECT max(target) FROM pinners WHERE pinners.cid = pins.cid)`,
        json,
      );
      this.syncQueue(withdrawn, nowMs, json);
      return released;
    }
    this.sql.exec(`DELETE FROM released_chunks WHERE cid IN (${CIDS_IN_JSON})`, JSON.stringify(cids));
    this.sql.exec(
      `INSERT INTO pinners (cid, node_id, target, pinned_ms) SELECT value, ?, ?, ? FROM json_each(?) WHERE true
       ON CONFLICT (cid, node_id) DO UPDATE SET target = excluded.target, pinned_ms = excluded.pinned_ms`,
      pinnedBy,
      target,
      nowMs,
      JSON.stringify(cids),
    );
    cids.forEach((cid, i) => {
      this.sql.exec(
        `INSERT INTO pins (cid, target, size_bytes, live_count, pinned_by, pinned_ms)
         VALUES (?, (SELECT max(target) FROM pinners WHERE cid = ?), ?,
           (SELECT count(*) FROM replicas r JOIN peers p ON p.node_id = r.node_id WHERE r.cid = ? AND p.state != 'dead' AND p.draining = 0), ?, ?)
         ON CONFLICT (cid) DO UPDATE SET target = excluded.target, size_bytes = coalesce(excluded.size_bytes, size_bytes),
           live_count = excluded.live_count, pinned_by = excluded.pinned_by, cold = 0`,
        cid,
        cid,
        sizesBytes?.[i] ?? null,
        cid,
        pinnedBy,
        nowMs,
      );
    });
    this.syncQueue(cids, nowMs);
    return 0;
  }

  pinState(cid: string): PinState | null {
    const row = this.sql.exec<{ target: number; live_count: number; size_bytes: number | null }>(`SELECT target, live_count, size_bytes FROM pins WHERE cid = ?`, cid).toArray()[0];
    return row ? { cid, target: row.target, liveCount: row.live_count, sizeBytes: row.size_bytes } : null;
  }

  /** The repair queue, most missing replicas first, then oldest. */
  underReplicated(limit: number): QueuedChunk[] {
    return this.sql
      .exec<{ cid: string; missing: number; since_ms: number }>(`SELECT cid, missing, since_ms FROM under_replicated ORDER BY missing DESC, since_ms LIMIT ?`, limit)
      .toArray()
      .map((r) => ({ cid: r.cid, missing: r.missing, sinceMs: r.since_ms }));
  }

  /**
   * Cold tier: pinned chunks not cold, not wanted since `beforeMs` (their
   * last lookup, else their pin time), and with no repair job — candidates
   * to drop to R2 only.
   */
  coldCandidates(beforeMs: number, limit: number): string[] {
    return this.sql
      .exec<{ cid: string }>(
        `SELECT cid FROM pins WHERE cold = 0 AND coalesce(last_wanted_ms, pinned_ms) < ?
           AND NOT EXISTS (SELECT 1 FROM repair_jobs j WHERE j.cid = pins.cid) LIMIT ?`,
        beforeMs,
        limit,
      )
      .toArray()
      .map((r) => r.cid);
  }

  /** Marks chunks cold (in R2 only): they leave the repair queue and their replicas become surplus. */
  setCold(cids: readonly string[], beforeMs: number, nowMs: number): void {
    if (cids.length === 0) return;
    const json = JSON.stringify(cids);
    // Still unwanted: a lookup may have come while R2 was asked.
    this.sql.exec(`UPDATE pins SET cold = 1 WHERE cid IN (${CIDS_IN_JSON}) AND coalesce(last_wanted_ms, pinned_ms) < ?`, json, beforeMs);
    this.syncQueue(cids, nowMs, json);
  }

  /**
   * A provider lookup wants these chunks: their last-wanted time moves on
   * (written at most once per `refreshAfterMs` per chunk, so lookups stay
   * read-only), and cold ones become warm again — back in the repair queue,
   * restored from R2. Returns the CIDs that were cold.
   */
  wanted(cids: readonly string[], nowMs: number, refreshAfterMs: number): string[] {
    if (cids.length === 0) return [];
    const json = JSON.stringify(cids);
    const warmed = this.sql
      .exec<{ cid: string }>(`SELECT cid FROM pins WHERE cid IN (${CIDS_IN_JSON}) AND cold = 1`, json)
      .toArray()
      .map((r) => r.cid);
    this.sql.exec(`UPDATE pins SET last_wanted_ms = ?, cold = 0 WHERE cid IN (${CIDS_IN_JSON}) AND (cold = 1 OR coalesce(last_wanted_ms, pinned_ms) < ?)`, nowMs, json, nowMs - refreshAfterMs);
    if (warmed.length > 0) this.syncQueue(warmed, nowMs);
    return warmed;
  }

  totals(): { pinnedChunks: number; storedBytes: number; underReplicatedChunks: number; liveReplicas: number; coldChunks: number } {
    const pins = this.sql.exec<{ n: number; bytes: number }>(`SELECT count(*) AS n, coalesce(sum(size_bytes * live_count), 0) AS bytes FROM pins`).one();
    const queued = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM under_replicated`).one().n;
    const cold = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM pins WHERE cold = 1`).one().n;
    return { pinnedChunks: pins.n, storedBytes: pins.bytes, underReplicatedChunks: queued, liveReplicas: this.counter(LIVE_REPLICAS), coldChunks: cold };
  }

  addCounter(name: string, delta: number): void {
    if (delta === 0) return;
    this.sql.exec(`INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`, name, delta);
  }

  counter(name: string): number {
    return this.sql.exec<{ value: number }>(`SELECT value FROM counters WHERE name = ?`, name).toArray()[0]?.value ?? 0;
  }

  private shiftCids(cids: readonly string[], delta: 1 | -1, nowMs: number): void {
    if (cids.length === 0) return;
    const json = JSON.stringify(cids);
    this.sql.exec(`UPDATE pins SET live_count = max(0, live_count + ?) WHERE cid IN (${CIDS_IN_JSON})`, delta, json);
    this.syncQueue(cids, nowMs, json);
    this.addCounter(LIVE_REPLICAS, delta * cids.length);
  }

  private syncQueue(cids: readonly string[], nowMs: number, json = JSON.stringify(cids)): void {
    this.sql.exec(QUEUE_UPSERT_JSON, nowMs, json);
    this.sql.exec(QUEUE_DELETE_JSON, json);
  }
}
