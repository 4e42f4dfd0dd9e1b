/**
 * The `peers` table: one row per peer ever registered in this region, dead
 * ones included (a dead peer that comes back keeps its identity and its
 * replica rows). Rows are written on registration, on status reports and on
 * liveness state changes only — never on every heartbeat, because the
 * heartbeat path must not cost a write (liveness between writes comes from
 * the WebSocket timestamps, see durable-objects/region-directory.ts).
 */
import { reputationScore } from "../../src/core/audit.js";
import type { Capacity, Load, PeerState } from "../../src/core/messages.js";
import type { Role } from "../../src/core/roles.js";
import type { Sql } from "./sql.js";

export interface PeerRecord {
  nodeId: string;
  publicKey: string;
  hostId: string;
  addresses: string[];
  roles: Role[];
  capacity: Capacity;
  load: Load | null;
  freeBytes: number | null;
  state: PeerState;
  /** Last sighting persisted in SQL (or newer, in memory); sockets may know a later one. */
  lastSeenMs: number;
  registeredMs: number;
  certExpiresMs: number;
  /** Leaving for good (`drain`): its replicas do not count, nothing new is placed on it. Absent: false. */
  draining?: boolean;
  /** Audits this peer passed and failed (auditor.ts); absent: none. */
  auditsPassed?: number;
  auditsFailed?: number;
  /** reputationScore(auditsPassed, auditsFailed) (src/core/audit.ts): 1 for a peer never audited; low ones should be placed last. */
  reputation?: number;
  /**
   * When the directory last applied a status report of this peer. In memory
   * only: after a restart it is unknown until the next report, and the
   * rebalancer leaves such a peer alone until then (it cannot tell which
   * moves its last free-space figure shows).
   */
  statusAtMs?: number;
}

type PeerRow = {
  node_id: string;
  public_key: string;
  host_id: string;
  addresses: string;
  roles: string;
  capacity: string;
  load: string | null;
  free_bytes: number | null;
  state: string;
  last_seen_ms: number;
  registered_ms: number;
  cert_expires_ms: number;
  draining: number;
  audits_passed: number;
  audits_failed: number;
};

function fromRow(row: PeerRow): PeerRecord {
  return {
    nodeId: row.node_id,
    publicKey: row.public_key,
    hostId: row.host_id,
    addresses: JSON.parse(row.addresses) as string[],
    roles: JSON.parse(row.roles) as Role[],
    capacity: JSON.parse(row.capacity) as Capacity,
    load: row.load === null ? null : (JSON.parse(row.load) as Load),
    freeBytes: row.free_bytes,
    state: row.state as PeerState,
    lastSeenMs: row.last_seen_ms,
    registeredMs: row.registered_ms,
    certExpiresMs: row.cert_expires_ms,
    draining: row.draining === 1,
    auditsPassed: row.audits_passed,
    auditsFailed: row.audits_failed,
    reputation: reputationScore(row.audits_passed, row.audits_failed),
  };
}

export interface StatusUpdate {
  load: Load;
  freeBytes: number;
  capacity?: Capacity;
  addresses?: string[];
}

export class PeerStore {
  constructor(private readonly sql: Sql) {}

  /** Every peer that is not dead: the object's in-memory view is rebuilt from these. */
  loadNotDead(): PeerRecord[] {
    return this.sql.exec<PeerRow>(`SELECT * FROM peers WHERE state != 'dead'`).toArray().map(fromRow);
  }

  get(nodeId: string): PeerRecord | null {
    const row = this.sql.exec<PeerRow>(`SELECT * FROM peers WHERE node_id = ?`, nodeId).toArray()[0];
    return row ? fromRow(row) : null;
  }

  /** Inserts or refreshes a registration; the peer is alive. Keeps the first registration time and the last status report. */
  upsertRegistration(p: Omit<PeerRecord, "load" | "freeBytes" | "state" | "draining" | "auditsPassed" | "auditsFailed" | "reputation" | "statusAtMs">): void {
    this.sql.exec(
      `INSERT INTO peers (node_id, public_key, host_id, addresses, roles, capacity, load, free_bytes, state, last_seen_ms, registered_ms, cert_expires_ms)
       VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, 'alive', ?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET
         public_key = excluded.public_key, host_id = excluded.host_id, addresses = excluded.addresses,
         roles = excluded.roles, capacity = excluded.capacity, state = 'alive',
         last_seen_ms = max(last_seen_ms, excluded.last_seen_ms), cert_expires_ms = excluded.cert_expires_ms`,
      p.nodeId,
      p.publicKey,
      p.hostId,
      JSON.stringify(p.addresses),
      JSON.stringify(p.roles),
      JSON.stringify(p.capacity),
      p.lastSeenMs,
      p.registeredMs,
      p.certExpiresMs,
    );
  }

  setState(nodeId: string, state: PeerState, lastSeenMs: number): void {
    this.sql.exec(`UPDATE peers SET state = ?, last_seen_ms = max(last_seen_ms, ?) WHERE node_id = ?`, state, lastSeenMs, nodeId);
  }

  /** Persists a sighting without a state change (connect and disconnect; not heartbeats). */
  /** Sets the last sighting even to an earlier time (a peer's goodbye: Directory.leaving). */
  rewindSighting(nodeId: string, lastSeenMs: number): void {
    this.sql.exec(`UPDATE peers SET last_seen_ms = ? WHERE node_id = ?`, lastSeenMs, nodeId);
  }

  touch(nodeId: string, lastSeenMs: number): void {
    this.sql.exec(`UPDATE peers SET last_seen_ms = ? WHERE node_id = ? AND last_seen_ms < ?`, lastSeenMs, nodeId, lastSeenMs);
  }

  setStatus(nodeId: string, status: StatusUpdate, lastSeenMs: number): void {
    this.sql.exec(
      `UPDATE peers SET load = ?, free_bytes = ?, capacity = coalesce(?, capacity), addresses = coalesce(?, addresses),
         last_seen_ms = max(last_seen_ms, ?) WHERE node_id = ?`,
      JSON.stringify(status.load),
      status.freeBytes,
      status.capacity ? JSON.stringify(status.capacity) : null,
      status.addresses ? JSON.stringify(status.addresses) : null,
      lastSeenMs,
      nodeId,
    );
  }

  setDraining(nodeId: string, draining: boolean): void {
    this.sql.exec(`UPDATE peers SET draining = ? WHERE node_id = ?`, draining ? 1 : 0, nodeId);
  }

  /** A renewed certificate's expiry (never moved earlier: renewals may race). */
  setCertificateExpiry(nodeId: string, certExpiresMs: number): void {
    this.sql.exec(`UPDATE peers SET cert_expires_ms = ? WHERE node_id = ? AND cert_expires_ms < ?`, certExpiresMs, nodeId, certExpiresMs);
  }

  /** Adds one audit outcome to a peer's record (its reputation). */
  recordAudit(nodeId: string, passed: boolean): void {
    this.sql.exec(passed ? `UPDATE peers SET audits_passed = audits_passed + 1 WHERE node_id = ?` : `UPDATE peers SET audits_failed = audits_failed + 1 WHERE node_id = ?`, nodeId);
  }

  /** Peers that are not dead with a reputation below `threshold`. */
  countLowReputation(threshold: number): number {
    return this.sql
      .exec<{ passed: number; failed: number }>(`SELECT audits_passed AS passed, audits_failed AS failed FROM peers WHERE state != 'dead' AND audits_failed > 0`)
      .toArray()
      .filter((r) => reputationScore(r.passed, r.failed) < threshold).length;
  }

  countDead(): number {
    return this.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM peers WHERE state = 'dead'`).one().n;
  }
}
