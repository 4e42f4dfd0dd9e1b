/**
 * Who serves a chunk, and where new replicas go: the directory's ranking
 * rules, as pure functions over what peers last reported.
 *
 * - Providers: live holders only (alive before suspect — a suspect peer may
 *   be gone, so it is tried last), then the least loaded (shortest queue plus
 *   fewest active transfers, then the idlest CPU; a peer that never reported
 *   load ranks after those that did), then the most free space, then node ID
 *   so that answers are deterministic.
 * - Placement: alive storage peers, not excluded, with room for the chunk
 *   when both sizes are known, at most one per host and none on the host of
 *   an excluded peer (replicas of one chunk never share a failure domain;
 *   the excluded peers are the asker and the current holders), most free
 *   space first, then least loaded.
 *
 * This greedy ranking is the placeholder for the auction of DESIGN
 * "Scheduling"; callers depend only on these two signatures.
 */
import type { Load, PeerState } from "./messages.js";
import { storesChunks, type Role } from "./roles.js";

export interface RankedPeer {
  nodeId: string;
  hostId: string;
  roles: readonly Role[];
  state: PeerState;
  load: Load | null;
  freeBytes: number | null;
}

/** Work waiting on or running at a peer; Infinity when it never reported. */
export function loadScore(load: Load | null): number {
  return load ? load.queueLength + load.activeTransfers : Infinity;
}

const STATE_RANK: Record<PeerState, number> = { alive: 0, suspect: 1, dead: 2 };

function byFreeSpaceDesc(a: RankedPeer, b: RankedPeer): number {
  return (b.freeBytes ?? -1) - (a.freeBytes ?? -1);
}

function byLoadAsc(a: RankedPeer, b: RankedPeer): number {
  const la = loadScore(a.load);
  const lb = loadScore(b.load);
  if (la === lb) return (a.load?.cpu ?? 1) - (b.load?.cpu ?? 1);
  return la < lb ? -1 : 1;
}

function byNodeId(a: RankedPeer, b: RankedPeer): number {
  return a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;
}

/** Holders of a chunk, best source first; dead holders are dropped. */
export function rankProviders<T extends RankedPeer>(holders: readonly T[], count = holders.length): T[] {
  return holders
    .filter((p) => p.state !== "dead")
    .sort((a, b) => STATE_RANK[a.state] - STATE_RANK[b.state] || byLoadAsc(a, b) || byFreeSpaceDesc(a, b) || byNodeId(a, b))
    .slice(0, count);
}

export interface PlacementRequest {
  count: number;
  /** Node IDs that must not be chosen; their hosts are avoided too. */
  exclude?: readonly string[];
  /** Size of the chunk, when known: peers reporting less free space are skipped. */
  sizeBytes?: number;
}

/** Up to `count` peers for new replicas, best first, on distinct hosts. */
export function choosePlacement<T extends RankedPeer>(candidates: readonly T[], request: PlacementRequest): T[] {
  const excluded = new Set(request.exclude ?? []);
  const usedHosts = new Set(candidates.filter((p) => excluded.has(p.nodeId)).map((p) => p.hostId));
  const eligible = candidates
    .filter(
      (p) =>
        p.state === "alive" &&
        storesChunks(p.roles) &&
        !excluded.has(p.nodeId) &&
        (request.sizeBytes === undefined || p.freeBytes === null || p.freeBytes >= request.sizeBytes),
    )
    .sort((a, b) => byFreeSpaceDesc(a, b) || byLoadAsc(a, b) || byNodeId(a, b));
  const chosen: T[] = [];
  for (const p of eligible) {
    if (chosen.length >= request.count) break;
    if (usedHosts.has(p.hostId)) continue;
    usedHosts.add(p.hostId);
    chosen.push(p);
  }
  return chosen;
}
