/**
 * Inventory announcements waiting to reach the region directory, as plain
 * data (no sockets, no timers) so the batching rules are testable alone.
 *
 * Changes are coalesced per CID — the last of "added"/"removed" wins, in the
 * order the changes happened — and cut into batches of at most
 * `maxBatchCids` (the directory's limit, DEFAULT_PARAMS.maxAnnounceBatch).
 * A sent batch stays here until the directory acknowledges its id; after a
 * reconnect the unacknowledged change batches are sent again, while
 * unacknowledged full-inventory batches are dropped, because every
 * reconnect announces the full inventory afresh.
 */

export type AnnounceKind = "delta" | "inventory";

export interface AnnounceBatch {
  added: string[];
  removed: string[];
  kind: AnnounceKind;
}

export class AnnounceQueue {
  /** CID → its latest change, oldest change first. */
  private readonly pending = new Map<string, "added" | "removed">();
  /** Sent, not yet acknowledged, by request id, in sending order. */
  private readonly unacked = new Map<string, AnnounceBatch>();

  constructor(readonly maxBatchCids: number) {
    if (!Number.isSafeInteger(maxBatchCids) || maxBatchCids < 1) throw new RangeError(`AnnounceQueue: maxBatchCids must be a positive integer, got ${maxBatchCids}`);
  }

  /** Records changes; a CID changed twice keeps only its last change, at its latest position. */
  add(added: Iterable<string>, removed: Iterable<string>): void {
    for (const cid of added) this.record(cid, "added");
    for (const cid of removed) this.record(cid, "removed");
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get unackedCount(): number {
    return this.unacked.size;
  }

  /** True when every change recorded so far has been acknowledged. */
  get settled(): boolean {
    return this.pending.size === 0 && this.unacked.size === 0;
  }

  /** Takes the next batch of pending changes (null when none are pending). */
  takeBatch(): AnnounceBatch | null {
    if (this.pending.size === 0) return null;
    const batch: AnnounceBatch = { added: [], removed: [], kind: "delta" };
    for (const [cid, change] of this.pending) {
      if (batch.added.length + batch.removed.length >= this.maxBatchCids) break;
      (change === "added" ? batch.added : batch.removed).push(cid);
      this.pending.delete(cid);
    }
    return batch;
  }

  /** Cuts a full inventory into batches (not tracked as pending: a later reconnect sends a fresh one). */
  *inventoryBatches(cids: Iterable<string>): Generator<AnnounceBatch> {
    let added: string[] = [];
    for (const cid of cids) {
      added.push(cid);
      if (added.length === this.maxBatchCids) {
        yield { added, removed: [], kind: "inventory" };
        added = [];
      }
    }
    if (added.length) yield { added, removed: [], kind: "inventory" };
  }

  sent(id: string, batch: AnnounceBatch): void {
    this.unacked.set(id, batch);
  }

  /** The directory acknowledged (or refused) batch `id`; returns whether it was ours. */
  settle(id: string): boolean {
    return this.unacked.delete(id);
  }

  /** After a reconnect: the change batches to send again, oldest first; stale inventory batches are forgotten. */
  takeForResend(): AnnounceBatch[] {
    const again = Array.from(this.unacked.values()).filter((b) => b.kind === "delta");
    this.unacked.clear();
    return again;
  }

  private record(cid: string, change: "added" | "removed"): void {
    this.pending.delete(cid);
    this.pending.set(cid, change);
  }
}
