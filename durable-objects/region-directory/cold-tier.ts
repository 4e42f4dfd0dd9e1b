/**
 * Cold tier (issue 6 item 6): content nobody wants drops to R2 only, and
 * comes back to peers on demand.
 *
 * "Wanted" means a provider lookup by a downloader (`find_providers` on the
 * socket, the HTTP providers routes): Directory.wanted() stamps the chunks'
 * `pins.last_wanted_ms` (at most 16 writes per cold period per chunk). A
 * pass (`run`, from the alarm, at most every `COLD_INTERVAL_MS`) takes up
 * to `coldChunksPerPass` pinned chunks not wanted for `coldAfterMs` (their
 * pin time standing in for a chunk never looked up) and without a repair
 * job, checks that each is in R2 (a HEAD per chunk: the directory is not
 * told of uploads) and marks those cold. A cold chunk's target on peers is
 * 0: it leaves the repair queue, and the trimmer removes its replicas after
 * `trimGraceMs` (peers delete them, i.e. evict). A chunk missing from R2
 * stays warm: R2 is the last line of defence, never dropped to.
 *
 * On demand: the first lookup of a cold chunk makes it warm again — back in
 * the under-replicated queue with all its replicas missing — and the
 * repair loop restores them from R2 (no live holder left: source R2). The
 * downloader meanwhile finds no provider and falls back to R2 through the
 * edge, as for any chunk without a live holder. Re-pinning also warms.
 */
import type { NetworkParams } from "../../src/core/params.js";
import type { Directory } from "./directory.js";

/** Shortest time between two cold-tier scans. */
export const COLD_INTERVAL_MS = 60_000;

export interface ColdTierOptions {
  directory: Directory;
  params: NetworkParams;
  /** Whether R2 holds the chunk (the edge's CHUNKS bucket, keyed by CID). */
  inR2(cid: string): Promise<boolean>;
}

export class ColdTier {
  private lastRunMs = -Infinity;

  constructor(private readonly opts: ColdTierOptions) {}

  /** One pass at `nowMs` (skipped if the last was less than COLD_INTERVAL_MS ago, unless forced); returns the CIDs made cold. */
  async run(nowMs: number, force = false): Promise<{ cold: string[]; nextDueMs: number | null }> {
    if (!force && nowMs < this.lastRunMs + COLD_INTERVAL_MS) return { cold: [], nextDueMs: null };
    this.lastRunMs = nowMs;
    const { directory, params } = this.opts;
    const beforeMs = nowMs - params.coldAfterMs;
    const candidates = directory.replicaStore.coldCandidates(beforeMs, params.coldChunksPerPass);
    const cold: string[] = [];
    for (const cid of candidates) {
      try {
        if (await this.opts.inR2(cid)) cold.push(cid);
      } catch (err) {
        console.error("region directory: R2 check for the cold tier failed", err);
      }
    }
    directory.replicaStore.setCold(cold, beforeMs, nowMs);
    // A full batch may have more behind it: look again soon; otherwise the liveness and snapshot alarms suffice.
    return { cold, nextDueMs: candidates.length >= params.coldChunksPerPass ? nowMs + COLD_INTERVAL_MS : null };
  }
}
