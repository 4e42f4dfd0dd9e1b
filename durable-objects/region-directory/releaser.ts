/**
 * Release: what nobody pins any more stops being kept. When the last pin of
 * a chunk is withdrawn (`unpin`, or `pin` moving a content's share out of
 * this region; replica-store.ts records it in `released_chunks`, schema
 * step 9), its holders still keep their copies pinned — a replica pushed by
 * put or made by repair is pinned at the peer — so without telling them the
 * space would never come back. One pass (`run`, from the object's alarm):
 *
 *  - reads the oldest `RELEASE_CHUNKS_PER_PASS` released chunks;
 *  - sends each live holder one `release` message listing its chunks; the
 *    peer unpins them, so they become evictable cache (still served and
 *    announced while they stay: a download in progress loses nothing);
 *  - forgets a chunk once every holder it knows of got the message, or
 *    after `RELEASE_RETENTION_MS` (a holder that never comes back); a
 *    holder that is offline now gets it on a later pass.
 *
 * A chunk pinned again (by anyone) leaves `released_chunks` at once.
 */
import type { DirectoryToPeer } from "../../src/core/messages.js";
import type { Directory } from "./directory.js";
import type { Sql } from "./sql.js";

export const RELEASE_CHUNKS_PER_PASS = 1000;
/** Shortest time between two passes that found unreachable holders. */
export const RELEASE_RETRY_MS = 60_000;
/** How long a released chunk waits for holders that are away. */
export const RELEASE_RETENTION_MS = 7 * 24 * 3600_000;
/** The `release` message's CID limit (directory-inbound.ts). */
const MAX_CIDS_PER_MESSAGE = 1000;

export interface ReleaserOptions {
  directory: Directory;
  sql: Sql;
  send(nodeId: string, message: DirectoryToPeer): boolean;
}

export interface ReleasePass {
  /** node ID → chunks it was told to release. */
  sent: Map<string, string[]>;
  /** When to try again for holders that could not be told; null: nothing left. */
  nextDueMs: number | null;
}

export class Releaser {
  private lastRunMs = -Infinity;
  /** The last pass read a full batch: more are waiting, so the next one is not held back. */
  private backlog = false;

  constructor(private readonly opts: ReleaserOptions) {}

  run(nowMs: number): ReleasePass {
    const sent = new Map<string, string[]>();
    const rows = this.opts.sql.exec<{ cid: string; released_ms: number }>(`SELECT cid, released_ms FROM released_chunks ORDER BY released_ms LIMIT ?`, RELEASE_CHUNKS_PER_PASS).toArray();
    if (rows.length === 0) return { sent, nextDueMs: null };
    // Only new releases (or a backlog) are worth a pass before the retry interval: the rest wait for holders that were away.
    if (!this.backlog && nowMs < this.lastRunMs + RELEASE_RETRY_MS && rows.every((r) => r.released_ms < this.lastRunMs)) return { sent, nextDueMs: this.lastRunMs + RELEASE_RETRY_MS };
    this.lastRunMs = nowMs;
    this.backlog = rows.length === RELEASE_CHUNKS_PER_PASS;

    const holdersOf = new Map<string, string[]>();
    const byNode = new Map<string, string[]>();
    for (const row of rows) {
      const holders = this.opts.sql
        .exec<{ node_id: string }>(`SELECT node_id FROM replicas WHERE cid = ?`, row.cid)
        .toArray()
        .map((r) => r.node_id);
      holdersOf.set(row.cid, holders);
      for (const node of holders) byNode.set(node, [...(byNode.get(node) ?? []), row.cid]);
    }
    const told = new Set<string>();
    for (const [nodeId, cids] of byNode) {
      let ok = true;
      for (let i = 0; i < cids.length && ok; i += MAX_CIDS_PER_MESSAGE) ok = this.opts.send(nodeId, { type: "release", cids: cids.slice(i, i + MAX_CIDS_PER_MESSAGE) });
      if (!ok) continue;
      told.add(nodeId);
      sent.set(nodeId, cids);
    }
    let waiting = 0;
    for (const row of rows) {
      const done = holdersOf.get(row.cid)!.every((n) => told.has(n)) || nowMs >= row.released_ms + RELEASE_RETENTION_MS;
      if (done) this.opts.sql.exec(`DELETE FROM released_chunks WHERE cid = ?`, row.cid);
      else waiting++;
    }
    return { sent, nextDueMs: this.backlog ? nowMs : waiting > 0 ? nowMs + RELEASE_RETRY_MS : null };
  }
}
