/**
 * Which chunk response goes out next when many peers download from this one
 * at once (the transfer server's GETs). Without it every open request
 * streams at once and TCP shares the uplink per connection, so a downloader
 * that keeps more requests open here gets more of it. For a seed that is
 * the swarm's worst case: the pieces leave it unevenly, the downloaders
 * that got most must forward most, and the others' uplinks idle while
 * everyone waits on the busiest (measured in the swarm benchmark: seed
 * line full, downloader uplinks 42–88 % used, a long tail of trading).
 *
 * So at most `slots` responses stream at once, and a freed slot goes to the
 * next requester in round-robin order, not to the oldest request: while
 * several peers wait, each gets an equal share of responses — BitTorrent's
 * super-seeding goal (every downloader leaves with a different, equal part
 * of the seed's pieces) reached from the server side, without the seed
 * having to know who holds what. One requester alone still gets every slot.
 */

export class FairServeQueue {
  private active = 0;
  /** requester → its waiting grants, oldest first; a Map iterates in insertion order, which is the round-robin ring. */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(readonly slots: number) {
    if (!Number.isSafeInteger(slots) || slots < 1) throw new RangeError(`FairServeQueue: slots must be a positive integer, got ${slots}`);
  }

  /** Every slot is streaming: a new request would wait. */
  get full(): boolean {
    return this.active >= this.slots;
  }

  /** Requests of `requester` waiting for a slot. */
  waitingFor(requester: string): number {
    return this.waiting.get(requester)?.length ?? 0;
  }

  /** Requests waiting for a slot (reported as queued load). */
  get queued(): number {
    let n = 0;
    for (const list of this.waiting.values()) n += list.length;
    return n;
  }

  /**
   * Resolves with a release function once `requester` may stream; rejects
   * with the signal's reason if it aborts first (then it never holds a
   * slot). Call the release exactly once when the response is over.
   */
  acquire(requester: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.active < this.slots) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(this.releaser());
      };
      const onAbort = () => {
        const list = this.waiting.get(requester);
        const at = list?.indexOf(grant) ?? -1;
        if (at >= 0) {
          list!.splice(at, 1);
          if (list!.length === 0) this.waiting.delete(requester);
        }
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const list = this.waiting.get(requester);
      if (list) list.push(grant);
      else this.waiting.set(requester, [grant]);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.next();
    };
  }

  /** Gives a free slot to the requester at the front of the ring, which then moves to the back. */
  private next(): void {
    while (this.active < this.slots && this.waiting.size > 0) {
      const [requester, list] = this.waiting.entries().next().value!;
      const grant = list.shift()!;
      this.waiting.delete(requester);
      if (list.length > 0) this.waiting.set(requester, list);
      this.active++;
      grant();
    }
  }
}
