/**
 * Replay protection for signed requests a peer receives: a nonce is claimed
 * once and remembered until its signed timestamp leaves the accepted window
 * (after which the timestamp check alone refuses a replay), the local
 * counterpart of the edge's ReplayGuard Durable Object.
 *
 * Memory is bounded twice: expired entries are swept from the oldest end on
 * every claim (entries arrive roughly in expiry order, so the sweep stops at
 * the first live one), and a full cache refuses new claims instead of
 * growing — the caller answers 503 and the client retries shortly.
 */

export type ClaimResult = "claimed" | "replayed" | "full";

export class NonceCache {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly maxEntries = 100_000) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new RangeError(`NonceCache: maxEntries must be a positive integer, got ${maxEntries}`);
  }

  get size(): number {
    return this.expiries.size;
  }

  /** Claims `key` (e.g. "<nodeId>:<nonce>") until `expiresAtMs`. */
  claim(key: string, expiresAtMs: number, nowMs: number): ClaimResult {
    for (const [old, oldExpiry] of this.expiries) {
      if (oldExpiry > nowMs) break;
      this.expiries.delete(old);
    }
    const seen = this.expiries.get(key);
    if (seen !== undefined && seen > nowMs) return "replayed";
    if (this.expiries.size >= this.maxEntries) return "full";
    this.expiries.set(key, expiresAtMs);
    return "claimed";
  }
}
