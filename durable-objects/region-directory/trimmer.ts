/**
 * Trim (issue 6 item 5): the directory's half of removing surplus replicas.
 * A pinned chunk is over-replicated when more peers that are not dead hold
 * it than its target — a drained peer came back, a dead one returned after
 * repair re-created its copies, a service peer cached a download. One pass
 * (`run`, from the object's alarm, after the repair pass):
 *
 *  1. reads at most `trimChunksPerPass` chunks whose holders outnumber their
 *     target while their counting replicas (`pins.live_count`: holders
 *     neither dead nor draining) reach it, and that have no repair job of
 *     any state;
 *  2. a chunk is trimmed only once it has been over-replicated for
 *     `trimGraceMs` (remembered in memory: a restart only restarts the
 *     grace), so a fresh cache copy or a short outage costs no deletion;
 *  3. the surplus holders are picked draining peers first (their copies do
 *     not count, and they are leaving), then the sources of confirmed
 *     rebalance moves (rebalancer.ts: their copies are the ones a move
 *     replaced), then the fullest (least free space), then the most
 *     loaded; a counting holder is picked only while the counting replicas
 *     left stay at or above the target — never below;
 *  4. each picked holder gets one `trim` message listing its chunks; the
 *     peer deletes them and announces the removals, which is what lowers
 *     the counts. Until then the pair is "pending" (for a repair job's
 *     timeout) and not picked again, nor counted as a holder.
 *
 * A chunk whose surplus a rebalance move made on purpose waits for no
 * grace (nothing is cached or coming back: the copy was moved), and such
 * chunks are read first, so the move's source is relieved in the next pass.
 *
 * A cold chunk (cold-tier.ts: in R2 only) has target 0 here, so every
 * holder is surplus and its replicas are trimmed after the same grace.
 *
 * The scan reads the whole `pins` table once per pass (bounded by the
 * alarm's pace, at most once per `TRIM_INTERVAL_MS`); a region with
 * millions of pinned chunks would keep an over-replicated queue like the
 * under-replicated one instead.
 */
import type { DirectoryToPeer } from "../../src/core/messages.js";
import type { NetworkParams } from "../../src/core/params.js";
import type { Directory } from "./directory.js";
import type { PeerRecord } from "./peer-store.js";
import type { Sql } from "./sql.js";

/** Shortest time between two trim scans. */
export const TRIM_INTERVAL_MS = 10_000;

export interface TrimmerOptions {
  directory: Directory;
  sql: Sql;
  params: NetworkParams;
  send(nodeId: string, message: DirectoryToPeer): boolean;
}

export interface TrimPass {
  /** node ID → chunks it was asked to delete. */
  sent: Map<string, string[]>;
  /** When the next pass has something due without news (a grace ending); null: nothing. */
  nextDueMs: number | null;
}

export class Trimmer {
  /** cid → when it was first seen over-replicated. */
  private readonly overSince = new Map<string, number>();
  /** "cid node" → until when a sent trim is awaited. */
  private readonly pending = new Map<string, number>();
  private lastRunMs = -Infinity;

  constructor(private readonly opts: TrimmerOptions) {}

  run(nowMs: number, force = false): TrimPass {
    const sent = new Map<string, string[]>();
    if (!force && nowMs < this.lastRunMs + TRIM_INTERVAL_MS) return { sent, nextDueMs: this.lastRunMs + TRIM_INTERVAL_MS };
    this.lastRunMs = nowMs;
    const { params } = this.opts;
    for (const [key, untilMs] of this.pending) if (untilMs <= nowMs) this.pending.delete(key);

    const rows = this.opts.sql
      .exec<{ cid: string; target: number; live_count: number }>(
        `SELECT p.cid, CASE WHEN p.cold = 1 THEN 0 ELSE p.target END AS target, p.live_count FROM pins p
         WHERE p.live_count >= CASE WHEN p.cold = 1 THEN 0 ELSE p.target END
           AND (SELECT count(*) FROM replicas r JOIN peers pe ON pe.node_id = r.node_id WHERE r.cid = p.cid AND pe.state != 'dead')
             > CASE WHEN p.cold = 1 THEN 0 ELSE p.target END
           AND NOT EXISTS (SELECT 1 FROM repair_jobs j WHERE j.cid = p.cid)
         ORDER BY EXISTS (SELECT 1 FROM rebalance_moves m WHERE m.cid = p.cid AND m.trimmed_ms IS NULL) DESC
         LIMIT ?`,
        params.trimChunksPerPass,
      )
      .toArray();
    const seen = new Set<string>();
    let nextDueMs: number | null = null;
    for (const row of rows) {
      seen.add(row.cid);
      const since = this.overSince.get(row.cid) ?? nowMs;
      this.overSince.set(row.cid, since);
      const moved = new Set(this.opts.directory.rebalanceLedger.untrimmedSources(row.cid));
      if (moved.size === 0 && nowMs < since + params.trimGraceMs) {
        nextDueMs = Math.min(nextDueMs ?? Infinity, since + params.trimGraceMs);
        continue;
      }
      for (const holder of this.surplus(row.cid, row.target, moved)) {
        const list = sent.get(holder.nodeId) ?? [];
        list.push(row.cid);
        sent.set(holder.nodeId, list);
      }
    }
    for (const cid of this.overSince.keys()) if (!seen.has(cid)) this.overSince.delete(cid);

    for (const [nodeId, cids] of sent) {
      if (!this.opts.send(nodeId, { type: "trim", cids })) {
        sent.delete(nodeId);
        continue;
      }
      for (const cid of cids) this.pending.set(`${cid} ${nodeId}`, nowMs + params.repairJobTimeoutMs);
    }
    return { sent, nextDueMs };
  }

  /** The holders of `cid` to trim: draining first, then rebalance sources (`moved`), then fullest, then busiest; counting ones only above the target. */
  private surplus(cid: string, target: number, moved: ReadonlySet<string>): PeerRecord[] {
    const holders = this.opts.directory.liveHolders(cid).filter((h) => !this.pending.has(`${cid} ${h.nodeId}`));
    let extra = holders.length - target;
    let counting = holders.filter((h) => !h.draining).length;
    const ordered = [...holders].sort(
      (a, b) =>
        Number(b.draining === true) - Number(a.draining === true) ||
        Number(moved.has(b.nodeId)) - Number(moved.has(a.nodeId)) ||
        (a.freeBytes ?? Number.MAX_SAFE_INTEGER) - (b.freeBytes ?? Number.MAX_SAFE_INTEGER) ||
        (b.load?.activeTransfers ?? 0) - (a.load?.activeTransfers ?? 0) ||
        a.nodeId.localeCompare(b.nodeId),
    );
    const out: PeerRecord[] = [];
    for (const h of ordered) {
      if (extra <= 0) break;
      if (!h.draining) {
        if (counting <= target) continue;
        counting--;
      }
      out.push(h);
      extra--;
    }
    return out;
  }
}
