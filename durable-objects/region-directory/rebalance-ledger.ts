/**
 * The `rebalance_moves` table: confirmed rebalance moves whose effects are
 * not settled yet (schema step 8). A move copies a chunk from a fuller
 * holder (`from`) to an emptier peer (`to`); once the copy is confirmed the
 * chunk is one replica over its target, and the copy that must come off is
 * `from`'s. A row says so until it did, which is what the trimmer reads
 * (trimmer.ts: such a source goes first and waits for no grace), and until
 * both peers' status reports show the move, which is what the rebalancer
 * reads to count bytes that the reports do not show yet (rebalancer.ts).
 * Rows, not memory: a restart between the copy and the trim must still trim
 * the right copy.
 */
import type { Sql } from "./sql.js";

export interface LedgerMove {
  cid: string;
  from: string;
  to: string;
  sizeBytes: number;
  confirmedMs: number;
  /** When `from`'s copy was seen gone; null while it still holds it. */
  trimmedMs: number | null;
}

type MoveRow = { cid: string; from_node: string; to_node: string; size_bytes: number; confirmed_ms: number; trimmed_ms: number | null };

export class RebalanceLedger {
  constructor(private readonly sql: Sql) {}

  /** A move's copy was confirmed at `confirmedMs`: `from`'s copy is now the surplus one. */
  record(move: { cid: string; from: string; to: string; sizeBytes: number }, confirmedMs: number): void {
    this.sql.exec(
      `INSERT INTO rebalance_moves (cid, from_node, to_node, size_bytes, confirmed_ms, trimmed_ms) VALUES (?, ?, ?, ?, ?, NULL)
       ON CONFLICT (cid, from_node) DO UPDATE SET to_node = excluded.to_node, size_bytes = excluded.size_bytes,
         confirmed_ms = excluded.confirmed_ms, trimmed_ms = NULL`,
      move.cid,
      move.from,
      move.to,
      move.sizeBytes,
      confirmedMs,
    );
  }

  /** `nodeId` announced these chunks removed: where it was a move's source, its copy is gone now. */
  markRemoved(nodeId: string, cids: readonly string[], nowMs: number): void {
    if (cids.length === 0) return;
    this.sql.exec(`UPDATE rebalance_moves SET trimmed_ms = ? WHERE from_node = ? AND trimmed_ms IS NULL AND cid IN (SELECT value FROM json_each(?))`, nowMs, nodeId, JSON.stringify(cids));
  }

  /** Catches copies that went without an announced removal (an inventory sync's sweep, a failed audit). */
  markGone(nowMs: number): void {
    this.sql.exec(
      `UPDATE rebalance_moves SET trimmed_ms = ? WHERE trimmed_ms IS NULL
         AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.cid = rebalance_moves.cid AND r.node_id = rebalance_moves.from_node)`,
      nowMs,
    );
  }

  /** The sources of confirmed moves of `cid` that still hold their copy: the copies to trim. */
  untrimmedSources(cid: string): string[] {
    return this.sql
      .exec<{ from_node: string }>(`SELECT from_node FROM rebalance_moves WHERE cid = ? AND trimmed_ms IS NULL`, cid)
      .toArray()
      .map((r) => r.from_node);
  }

  /** Every row (few: each lives about one status interval). */
  list(): LedgerMove[] {
    return this.sql
      .exec<MoveRow>(`SELECT * FROM rebalance_moves`)
      .toArray()
      .map((r) => ({ cid: r.cid, from: r.from_node, to: r.to_node, sizeBytes: r.size_bytes, confirmedMs: r.confirmed_ms, trimmedMs: r.trimmed_ms }));
  }

  forget(move: Pick<LedgerMove, "cid" | "from">): void {
    this.sql.exec(`DELETE FROM rebalance_moves WHERE cid = ? AND from_node = ?`, move.cid, move.from);
  }
}
