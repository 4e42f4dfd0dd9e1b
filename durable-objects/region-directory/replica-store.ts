/**
 * The replica registry in SQL: which peer holds which chunk (`replicas`),
 * which chunks must be kept at a replication factor (`pins`, with their live
 * replica count kept incrementally), and the queue of pinned chunks below
 * their factor (`under_replicated`, drained by repair in a later issue).
 *
 * Invariant: `pins.live_count` = number of `replicas` rows of the CID whose
 * holder is not dead. Every method that changes holders or their liveness
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
   SELECT cid, target - live_count, ? FROM pins WHERE cid IN (${cids}) AND live_count < target
   ON CONFLICT (cid) DO UPDATE SET missing = excluded.missing WHERE missing != excluded.missing`;
const queueDelete = (cids: string) => `DELETE FROM under_replicated WHERE cid IN (SELECT cid FROM pins WHERE cid IN (${cids}) AND live_count >= target)`;

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

  /** Records chunks now held by a live peer; returns how many were new. */
  add(nodeId: string, cids: readonly string[], nowMs: number): number {
    if (cids.length === 0) return 0;
    const inserted = this.sql
      .exec<{ cid: string }>(`INSERT INTO replicas (cid, node_id) SELECT value, ? FROM json_each(?) WHERE true ON CONFLICT DO NOTHING RETURNING cid`, nodeId, JSON.stringify(cids))
      .toArray()
      .map((r) => r.cid);
    this.shiftCids(inserted, +1, nowMs);
    return inserted.length;
  }

  /** Forgets chunks a live peer dropped; returns how many it had. */
  remove(nodeId: string, cids: readonly string[], nowMs: number): number {
    if (cids.length === 0) return 0;
    const deleted = this.sql
      .exec<{ cid: string }>(`DELETE FROM replicas WHERE node_id = ? AND cid IN (SELECT value FROM json_each(?)) RETURNING cid`, nodeId, JSON.stringify(cids))
      .toArray()
      .map((r) => r.cid);
    this.shiftCids(deleted, -1, nowMs);
    return deleted.length;
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

  /** Sets the replication target of chunks; `target` 0 unpins. The live count is recomputed from the holders. */
  pin(cids: readonly string[], target: number, sizesBytes: readonly (number | undefined)[] | undefined, pinnedBy: string, nowMs: number): void {
    if (target === 0) {
      const json = JSON.stringify(cids);
      this.sql.exec(`DELETE FROM pins WHERE cid IN (${CIDS_IN_JSON})`, json);
      this.sql.exec(`DELETE FROM under_replicated WHERE cid IN (${CIDS_IN_JSON})`, json);
      return;
    }
    cids.forEach((cid, i) => {
      this.sql.exec(
        `INSERT INTO pins (cid, target, size_bytes, live_count, pinned_by, pinned_ms)
         VALUES (?, ?, ?, (SELECT count(*) FROM replicas r JOIN peers p ON p.node_id = r.node_id WHERE r.cid = ? AND p.state != 'dead'), ?, ?)
         ON CONFLICT (cid) DO UPDATE SET target = excluded.target, size_bytes = coalesce(excluded.size_bytes, size_bytes),
           live_count = excluded.live_count, pinned_by = excluded.pinned_by`,
        cid,
        target,
        sizesBytes?.[i] ?? null,
        cid,
        pinnedBy,
        nowMs,
      );
    });
    this.syncQueue(cids, nowMs);
  }

  pinState(cid: string): PinState | null {
    const row = this.sql
      .exec<{ target: number; live_count: number; size_bytes: number | null }>(`SELECT target, live_count, size_bytes FROM pins WHERE cid = ?`, cid)
      .toArray()[0];
    return row ? { cid, target: row.target, liveCount: row.live_count, sizeBytes: row.size_bytes } : null;
  }

  /** The repair queue, most missing replicas first, then oldest. */
  underReplicated(limit: number): QueuedChunk[] {
    return this.sql
      .exec<{ cid: string; missing: number; since_ms: number }>(`SELECT cid, missing, since_ms FROM under_replicated ORDER BY missing DESC, since_ms LIMIT ?`, limit)
      .toArray()
      .map((r) => ({ cid: r.cid, missing: r.missing, sinceMs: r.since_ms }));
  }

  totals(): { pinnedChunks: number; storedBytes: number; underReplicatedChunks: number; liveReplicas: number } {
    const pins = this.sql.exec<{ n: number; bytes: number }>(`SELECT count(*) AS n, coalesce(sum(size_bytes * live_count), 0) AS bytes FROM pins`).one();
    const queued = this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM under_replicated`).one().n;
    return { pinnedChunks: pins.n, storedBytes: pins.bytes, underReplicatedChunks: queued, liveReplicas: this.counter(LIVE_REPLICAS) };
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
