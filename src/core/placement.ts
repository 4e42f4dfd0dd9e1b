/**
 * Who serves a chunk, and where new replicas go: the directory's ranking
 * rules, as pure functions over what peers last reported.
 *
 * - Providers: live holders only (alive before suspect — a suspect peer may
 *   be gone, so it is tried last; a peer that failed too many audits after
 *   the others), then the least loaded (shortest queue plus
 *   fewest active transfers, then the idlest CPU; a peer that never reported
 *   load ranks after those that did), then the fastest upload capacity
 *   (what its status reports say: its cap, or its measured peak), then the
 *   most free space, then node ID so that answers are deterministic.
 * - Placement: alive storage peers, not excluded, with room for the chunk
 *   when both sizes are known, at most one per host and none on the host of
 *   an excluded peer (replicas of one chunk never share a failure domain;
 *   the excluded peers are the asker and the current holders). Who gets
 *   which replica is an auction (auction.ts, DESIGN "Scheduling"): each
 *   replica is an item, each peer a bidder worth more the more free space
 *   it reports (relative to the roomiest) and the less loaded it is, so a
 *   single placement is "most free space, then least loaded", and a batch
 *   (`placeBatch`: many chunks at once, e.g. repair) also spreads the
 *   replicas in proportion to free space instead of piling every one onto
 *   the same few roomiest peers until their next status report. Peers with
 *   a low audit reputation are worth less than any other, so they get a
 *   replica only when nothing else can take it.
 */
import { LOW_REPUTATION } from "./audit.js";
import { auction, type AuctionBidder, type AuctionItem, type Benefit } from "./auction.js";
import type { Load, PeerState } from "./messages.js";
import { storesChunks, type Role } from "./roles.js";

export interface RankedPeer {
  nodeId: string;
  hostId: string;
  roles: readonly Role[];
  state: PeerState;
  load: Load | null;
  freeBytes: number | null;
  /** From audits (audit.ts reputationScore): 1 when never audited; below LOW_REPUTATION the peer is offered and chosen last. */
  reputation?: number;
  /** Reported capacity; 0 (or absent) when the peer has not measured its upload yet. */
  capacity?: { uploadBps: number } | null;
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

function byUploadDesc(a: RankedPeer, b: RankedPeer): number {
  return (b.capacity?.uploadBps ?? 0) - (a.capacity?.uploadBps ?? 0);
}

function byNodeId(a: RankedPeer, b: RankedPeer): number {
  return a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;
}

/** Holders of a chunk, best source first; dead holders are dropped. */
export function rankProviders<T extends RankedPeer>(holders: readonly T[], count = holders.length): T[] {
  return holders
    .filter((p) => p.state !== "dead")
    .sort((a, b) => STATE_RANK[a.state] - STATE_RANK[b.state] || distrusted(a) - distrusted(b) || byLoadAsc(a, b) || byUploadDesc(a, b) || byFreeSpaceDesc(a, b) || byNodeId(a, b))
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
  return placeBatch(candidates, [{ id: "", ...request }]).get("")!;
}

/** One chunk's replicas to place in a batch. */
export interface PlacementJob extends PlacementRequest {
  /** Unique in the batch (e.g. the CID). */
  id: string;
  /** Jobs of one group (default: the job alone) are placed on distinct hosts too: e.g. several repair jobs of one chunk, each with its own exclusions. */
  group?: string;
}

/**
 * Targets for many chunks at once: job id → up to `count` peers, best first,
 * on distinct hosts and avoiding each job's excluded peers and their hosts.
 * A peer takes at most its fair share of the batch (replicas × its share of
 * the free space, rounded up) and, when sizes are known, only what fits; so
 * the batch fills peers in proportion to their room. Jobs that cannot get
 * every replica get what is feasible (possibly none). `capacityOf` caps a
 * peer further (e.g. its free repair slots).
 */
export function placeBatch<T extends RankedPeer>(candidates: readonly T[], jobs: readonly PlacementJob[], options: { capacityOf?: (peer: T) => number } = {}): Map<string, T[]> {
  const eligible = candidates.filter((p) => p.state === "alive" && storesChunks(p.roles));
  const byId = new Map(eligible.map((p) => [p.nodeId, p]));
  const hostOf = new Map(candidates.map((p) => [p.nodeId, p.hostId]));
  const maxFree = Math.max(1, ...eligible.map((p) => p.freeBytes ?? 0));
  const totalFree = eligible.reduce((sum, p) => sum + Math.max(0, p.freeBytes ?? 0), 0);
  const replicas = jobs.reduce((sum, j) => sum + Math.max(0, j.count), 0);
  const typicalSize = jobs.find((j) => j.sizeBytes !== undefined)?.sizeBytes;

  const bidders: AuctionBidder[] = eligible.map((p) => {
    const share = totalFree > 0 ? Math.max(0, p.freeBytes ?? 0) / totalFree : 1 / eligible.length;
    let capacity = Math.max(1, Math.ceil(replicas * share));
    if (typicalSize !== undefined && typicalSize > 0 && p.freeBytes !== null) capacity = Math.min(capacity, Math.floor(p.freeBytes / typicalSize));
    if (options.capacityOf) capacity = Math.min(capacity, Math.max(0, Math.floor(options.capacityOf(p))));
    return { id: p.nodeId, capacity, host: p.hostId };
  });
  const maxUpload = Math.max(1, ...eligible.map((p) => p.capacity?.uploadBps ?? 0));
  const value = new Map(eligible.map((p) => [p.nodeId, placementValue(p, maxFree, maxUpload)]));

  const items: AuctionItem[] = [];
  const benefits = new Map<string, Benefit[]>();
  for (const job of jobs) {
    const excluded = new Set(job.exclude ?? []);
    const excludedHosts = new Set([...excluded].map((id) => hostOf.get(id)).filter((h): h is string => h !== undefined));
    const allowed: Benefit[] = [];
    for (const p of eligible) {
      if (excluded.has(p.nodeId) || excludedHosts.has(p.hostId)) continue;
      if (job.sizeBytes !== undefined && p.freeBytes !== null && p.freeBytes < job.sizeBytes) continue;
      allowed.push({ bidder: p.nodeId, value: value.get(p.nodeId)! });
    }
    for (let r = 0; r < job.count; r++) {
      const item = `${job.id}\u0000${r}`;
      items.push({ id: item, group: job.group ?? job.id });
      benefits.set(item, allowed);
    }
  }
  const { assignment } = auction({ items, bidders, benefits });
  const out = new Map<string, T[]>(jobs.map((j) => [j.id, []]));
  for (const job of jobs) {
    const chosen: T[] = [];
    for (let r = 0; r < job.count; r++) {
      const peer = assignment.get(`${job.id}\u0000${r}`);
      if (peer !== undefined) chosen.push(byId.get(peer)!);
    }
    chosen.sort((a, b) => value.get(b.nodeId)! - value.get(a.nodeId)! || byNodeId(a, b));
    out.set(job.id, chosen);
  }
  return out;
}

/**
 * What giving a replica to this peer is worth (always > 0, as the auction
 * wants gains): free space relative to the roomiest peer dominates (a
 * replica belongs where there is room), then idleness (fewer queued and
 * active transfers), then upload capacity relative to the fastest (the
 * copy will be served from there), then CPU, so that among equally roomy
 * peers the least busy, best connected one serves the new copy. A peer
 * that never reported counts as full, busy and slow, but is still usable.
 */
function placementValue(p: RankedPeer, maxFree: number, maxUpload: number): number {
  const room = Math.max(0, p.freeBytes ?? 0) / maxFree;
  const work = loadScore(p.load);
  const idle = Number.isFinite(work) ? 1 / (1 + work) : 0;
  const cpu = p.load ? 1 - Math.min(1, Math.max(0, p.load.cpu)) : 0;
  const upload = Math.max(0, p.capacity?.uploadBps ?? 0) / maxUpload;
  const value = 1 + 100 * room + 10 * idle + 5 * upload + cpu;
  // Below every trusted peer (whose value is at least 1), still usable when nothing else is.
  return distrusted(p) ? value / 1000 : value;
}

/** 1 for a peer that failed too many audits (ranked and chosen after the others), else 0. */
function distrusted(p: RankedPeer): number {
  return (p.reputation ?? 1) < LOW_REPUTATION ? 1 : 0;
}
