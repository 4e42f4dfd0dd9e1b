/**
 * Rebalance planning (issue 6 item 5): which replicas should move so that a
 * peer that joined empty gets its share of the region's data. Pure: the
 * region directory (durable-objects/region-directory/rebalancer.ts) gives
 * it each storage peer's fill — bytes used over capacity, as the peer
 * reported them, with moves the reports do not show yet applied — and the
 * chunks a full peer could give away; it returns moves, each "copy this
 * chunk from `from` to `to`, then trim `from`'s copy".
 *
 * The rule is the one HDFS's balancer uses. The mean fill is the region's
 * used bytes over its capacity (so a big peer counts for more than a small
 * one). A move pairs a peer below the mean with one above it, and only
 * while one of the two is outside the band: the target more than
 * `thresholdPercent` points below the mean, or the source that far above;
 * inside the band nothing moves, so balanced regions do not churn. A move
 * never leaves the target fuller than the source (the pair never swaps
 * places), so every move lowers the sum of the peers' squared deviations
 * from the mean (weighted by capacity): no chunk can move back and forth,
 * and the region settles. Emptiest targets and fullest sources
 * are paired first, each peer within its free repair slots, each chunk
 * moved at most once per plan, and never onto a peer that holds the chunk
 * or shares a host with one that does (replicas never share a failure domain).
 */

export interface BalancePeer {
  nodeId: string;
  hostId: string;
  /** Bytes in use: capacity minus reported free space, with moves its report does not show yet applied. */
  usedBytes: number;
  /** Reported capacity in bytes (> 0). */
  capacityBytes: number;
  /** Moves it may join now, as source or target (its free repair slots). */
  slots: number;
}

/** A chunk a source could give away. */
export interface MoveCandidate {
  cid: string;
  sizeBytes: number;
  /** Node IDs of every recorded holder (the source included). */
  holders: readonly string[];
  /** Their host IDs. */
  holderHosts: readonly string[];
}

export interface PlannedMove {
  cid: string;
  /** The fuller holder: the source of the copy, and the copy trimmed afterwards. */
  from: string;
  /** The emptier peer that receives the copy. */
  to: string;
  sizeBytes: number;
}

/**
 * Peers of each side (targets, sources) one plan looks at, per move it may
 * plan: the emptiest and the fullest with a free slot. Bounds a pass's work
 * in a region of many peers; the others get their turn as those settle.
 */
export const PEERS_PER_SIDE_PER_MOVE = 4;

export interface RebalanceOptions {
  /** Percentage points of fill a peer may be off the mean before it must move data (0–100). */
  thresholdPercent: number;
  /** Most moves to plan. */
  maxMoves: number;
}

/** The region's mean fill: used bytes over capacity, summed over its peers (0 with no capacity). */
export function meanFill(peers: readonly Pick<BalancePeer, "usedBytes" | "capacityBytes">[]): number {
  const capacity = peers.reduce((sum, p) => sum + p.capacityBytes, 0);
  return capacity > 0 ? peers.reduce((sum, p) => sum + p.usedBytes, 0) / capacity : 0;
}

/**
 * Moves that bring the peers toward the mean fill (see the file comment).
 * `chunksOf(source)` is asked only for peers above the mean, in order of
 * preference; chunks that do not fit the rules are skipped.
 */
export function planMoves(peers: readonly BalancePeer[], chunksOf: (source: string) => readonly MoveCandidate[], options: RebalanceOptions): PlannedMove[] {
  const usable = peers.filter((p) => p.capacityBytes > 0);
  if (usable.length < 2 || options.maxMoves <= 0) return [];
  const mean = meanFill(usable);
  const band = options.thresholdPercent / 100;
  const used = new Map(usable.map((p) => [p.nodeId, p.usedBytes]));
  const slots = new Map(usable.map((p) => [p.nodeId, p.slots]));
  const fill = (p: BalancePeer) => used.get(p.nodeId)! / p.capacityBytes;
  const byNode = (a: BalancePeer, b: BalancePeer) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0);
  const perSide = PEERS_PER_SIDE_PER_MOVE * options.maxMoves;
  const targets = usable
    .filter((p) => p.slots > 0 && fill(p) < mean)
    .sort((a, b) => fill(a) - fill(b) || byNode(a, b))
    .slice(0, perSide);
  const sources = usable
    .filter((p) => p.slots > 0 && fill(p) > mean)
    .sort((a, b) => fill(b) - fill(a) || byNode(a, b))
    .slice(0, perSide);

  const moves: PlannedMove[] = [];
  const moved = new Set<string>();
  for (const to of targets) {
    for (const from of sources) {
      while (moves.length < options.maxMoves && slots.get(to.nodeId)! > 0 && slots.get(from.nodeId)! > 0) {
        // Still below and above the mean, and one of the pair outside the band: inside it, moving would be churn.
        if (fill(to) >= mean || fill(from) <= mean || !(fill(to) < mean - band || fill(from) > mean + band)) break;
        const usedTo = used.get(to.nodeId)!;
        const usedFrom = used.get(from.nodeId)!;
        const chunk = chunksOf(from.nodeId).find(
          (c) =>
            !moved.has(c.cid) &&
            !c.holders.includes(to.nodeId) &&
            !c.holderHosts.includes(to.hostId) &&
            // The pair never swaps places: the move goes downhill, so nothing moves back later.
            (usedTo + c.sizeBytes) / to.capacityBytes <= (usedFrom - c.sizeBytes) / from.capacityBytes,
        );
        if (!chunk) break;
        moves.push({ cid: chunk.cid, from: from.nodeId, to: to.nodeId, sizeBytes: chunk.sizeBytes });
        moved.add(chunk.cid);
        used.set(to.nodeId, usedTo + chunk.sizeBytes);
        used.set(from.nodeId, usedFrom - chunk.sizeBytes);
        slots.set(to.nodeId, slots.get(to.nodeId)! - 1);
        slots.set(from.nodeId, slots.get(from.nodeId)! - 1);
      }
      if (moves.length >= options.maxMoves) return moves;
    }
  }
  return moves;
}
