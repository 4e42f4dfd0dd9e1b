/**
 * Super-seeding, the seed's half (BitTorrent's super-seeding, BEP 16): while
 * a swarm downloads a file, a seed — above all the publisher, whose uplink
 * bounds how fast the whole swarm can finish — should send each piece once
 * and let the downloaders pass it on among themselves.
 *
 * The downloaders already avoid asking the seed for a piece another one is
 * fetching (chunk-scheduler.ts, "Swarm views"), but they learn that from
 * views polled a few times a second, and a request may wait seconds in the
 * seed's send queue (fair-serve.ts): two of them can ask for the same piece
 * before either sees the other, and measured at the publisher of the swarm
 * benchmark this made ~4 % of its bytes second copies. Only the seed sees
 * every request, so it settles it: a request that says it can get the chunk
 * from the swarm instead (`x-peercloud-defer: swarm`, sent by a downloader
 * in a swarm with other downloaders in progress) for a chunk this peer is
 * sending to another swarm member, or finished sending less than `windowMs`
 * ago, is refused with 409 `sent_to_swarm` and when to ask again, at no
 * cost in bytes. The window starts when the send ends, not when it begins:
 * on a thin uplink shared by a few sends one chunk takes seconds, and the
 * recipient can list it only once it holds it. The downloader then waits
 * for that member's view to list the piece, and asks the seed again only
 * after the window, so a recipient that vanished costs a delay, never the
 * piece (a send cut off frees the chunk at once). Requests without the
 * header (single downloads, repairs, replica pushes) are never refused and
 * not recorded.
 */
/** Request header by which a downloader says it would rather wait for the swarm than take a second copy from this peer. */
export const DEFER_HEADER = "x-peercloud-defer";
export const DEFER_TO_SWARM = "swarm";
/** Error code of the refusal (HTTP 409). */
export const SENT_TO_SWARM = "sent_to_swarm";
/** How long after a send ends a seed refers other swarm members to its recipient: several times the 250 ms – 1 s in which views travel. */
export const DEFAULT_SUPER_SEED_WINDOW_MS = 4_000;
/** Sends remembered at most (the oldest are forgotten first): a CID and a node ID each, a few MB at worst. */
const MAX_REMEMBERED_SENDS = 65_536;

export interface Refusal {
  /** The member the chunk went to. */
  sentTo: string;
  /** When the seed would send it again. */
  retryAfterMs: number;
}

/** The chunks a seed is sending or sent lately to swarm members, and whom to. */
export class RecentSends {
  /** `endedAtMs` null: still sending. */
  private readonly sends = new Map<string, { nodeId: string; endedAtMs: number | null }>();

  constructor(
    private readonly windowMs: number,
    private readonly maxEntries = MAX_REMEMBERED_SENDS,
  ) {}

  /** Sending `cid` to `nodeId` begins. */
  started(cid: string, nodeId: string, nowMs: number): void {
    // Re-inserted, so the map stays in order of sends and pruning stops at the first entry still wanted.
    this.sends.delete(cid);
    this.sends.set(cid, { nodeId, endedAtMs: null });
    for (const [oldCid, send] of this.sends) {
      const wanted = send.endedAtMs === null || send.endedAtMs + this.windowMs > nowMs;
      if (wanted && this.sends.size <= this.maxEntries) break;
      this.sends.delete(oldCid);
    }
  }

  /** `nodeId` has the whole chunk: the window starts. */
  ended(cid: string, nodeId: string, nowMs: number): void {
    const send = this.sends.get(cid);
    if (send?.nodeId === nodeId) send.endedAtMs = nowMs;
  }

  /** The send to `nodeId` was cut off: the chunk goes to the next member who asks. */
  forget(cid: string, nodeId: string): void {
    if (this.sends.get(cid)?.nodeId === nodeId) this.sends.delete(cid);
  }

  /** Why `nodeId` should get `cid` from the swarm instead, or null to serve it. */
  refusal(cid: string, nodeId: string, nowMs: number): Refusal | null {
    const send = this.sends.get(cid);
    if (!send || send.nodeId === nodeId) return null;
    // Still sending: the recipient holds it a window after the end at the earliest; ask again after one window.
    if (send.endedAtMs === null) return { sentTo: send.nodeId, retryAfterMs: this.windowMs };
    const left = send.endedAtMs + this.windowMs - nowMs;
    return left > 0 ? { sentTo: send.nodeId, retryAfterMs: Math.ceil(left) } : null;
  }
}
