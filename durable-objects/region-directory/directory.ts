/**
 * The region directory's model: the authoritative part of the Kademlia DHT
 * for one region (k-buckets of every live peer, FIND_NODE, FIND_PROVIDERS)
 * plus the heartbeat and replica registry. It owns the SQL stores and the
 * in-memory view, and knows nothing of WebSockets, alarms or RPC: the
 * Durable Object in ../region-directory.ts feeds it events and sightings.
 *
 * In memory: every peer that is not dead, in a map and in a KBucketTree
 * with split policy "always" (the directory keeps all of them, so closest()
 * is exact). Rebuilt from SQL when the object starts — one read per
 * non-dead peer per wake-up, which is cheap because a region with many
 * peers hears from one every few milliseconds and never hibernates, while
 * an idle one is small. Dead peers live only in SQL until they come back.
 */
import { reputationScore } from "../../src/core/audit.js";
import { KBucketTree } from "../../src/core/k-bucket-tree.js";
import { deadAfterMs, latestSightingMs, livenessState, nextLivenessChangeMs, replicasCountChange, suspectAfterMs } from "../../src/core/liveness.js";
import { PeercloudError } from "../../src/core/errors.js";
import { batchProviderCount, type RegionQualityReport, type DrainProgress, type PeerInfo, type PeerState, type ProviderInfo } from "../../src/core/messages.js";
import type { NetworkParams } from "../../src/core/params.js";
import { choosePlacement, placeBatch, rankProviders, type PlacementJob } from "../../src/core/placement.js";
import { storesChunks } from "../../src/core/roles.js";
import type { RegisterPeerInput } from "../region-directory-contract.js";
import { PeerStore, type PeerRecord, type StatusUpdate } from "./peer-store.js";
import { RebalanceLedger } from "./rebalance-ledger.js";
import { RepairJobs } from "./repair-jobs.js";
import { RegionQualityStore } from "./region-quality.js";
import { ReplicaStore } from "./replica-store.js";
import type { Sql } from "./sql.js";

const STATE_RANK: Record<PeerState, number> = { alive: 0, suspect: 1, dead: 2 };

/** The `sync` part of a full-inventory announcement (src/core/messages.ts). */
export interface AnnounceSync {
  epoch: string;
  done: boolean;
}

export interface DirectoryOptions {
  sql: Sql;
  params: NetworkParams;
  /** Wall-clock time in ms; injected so that tests can move it. */
  now: () => number;
  /** Uniform [0, 1); injected for reproducible bootstrap answers. */
  random: () => number;
  region: () => string;
}

export class Directory {
  readonly peerStore: PeerStore;
  readonly replicaStore: ReplicaStore;
  readonly repairJobs: RepairJobs;
  readonly rebalanceLedger: RebalanceLedger;
  readonly regionQuality: RegionQualityStore;
  private readonly live = new Map<string, PeerRecord>();
  private readonly tree: KBucketTree<PeerRecord>;

  constructor(private readonly opts: DirectoryOptions) {
    this.peerStore = new PeerStore(opts.sql);
    this.replicaStore = new ReplicaStore(opts.sql);
    this.rebalanceLedger = new RebalanceLedger(opts.sql);
    this.repairJobs = new RepairJobs(opts.sql, this.rebalanceLedger);
    this.regionQuality = new RegionQualityStore(opts.sql);
    this.tree = new KBucketTree<PeerRecord>({ k: opts.params.k, splitPolicy: "always" });
    for (const record of this.peerStore.loadNotDead()) this.remember(record);
  }

  /** State of a known peer, null if it never registered here. */
  stateOf(nodeId: string): PeerState | null {
    return this.live.get(nodeId)?.state ?? this.peerStore.get(nodeId)?.state ?? null;
  }

  record(nodeId: string): PeerRecord | null {
    return this.live.get(nodeId) ?? this.peerStore.get(nodeId);
  }

  /** Upserts a registration (the peer is alive again) and returns its initial peer list. */
  register(input: RegisterPeerInput): PeerInfo[] {
    const now = this.opts.now();
    const previous = this.record(input.nodeId);
    const counted = (previous?.state === "alive" || previous?.state === "suspect") && !previous.draining;
    if (previous && !storesChunks(input.roles)) this.replicaStore.dropHolder(input.nodeId, counted, now);
    const rec: PeerRecord = {
      nodeId: input.nodeId,
      publicKey: input.publicKey,
      hostId: input.hostId,
      addresses: input.addresses,
      roles: input.roles,
      capacity: input.capacity,
      load: previous?.load ?? null,
      freeBytes: previous?.freeBytes ?? null,
      state: "alive",
      lastSeenMs: Math.max(now, previous?.lastSeenMs ?? now),
      registeredMs: previous?.registeredMs ?? now,
      certExpiresMs: input.certificateExpiresAtMs,
      draining: previous?.draining ?? false,
      auditsPassed: previous?.auditsPassed ?? 0,
      auditsFailed: previous?.auditsFailed ?? 0,
      reputation: previous?.reputation ?? 1,
      statusAtMs: previous?.statusAtMs,
    };
    this.peerStore.upsertRegistration(rec);
    if (previous?.state === "dead" && !rec.draining) this.replicaStore.shiftHolder(input.nodeId, +1, now);
    this.remember(rec);

    const closest = this.tree.closest(input.nodeId, this.opts.params.k, (p) => p.nodeId !== input.nodeId);
    // Random others for routing-table diversity: the alive peer closest to a random point of the ID space.
    // Node IDs are uniform hashes, so this samples nearly uniformly without copying the whole peer set.
    const taken = new Set([input.nodeId, ...closest.map((p) => p.nodeId)]);
    const random: PeerRecord[] = [];
    for (let i = 0; i < this.opts.params.bootstrapRandomPeers; i++) {
      const point = Uint8Array.from({ length: 32 }, () => Math.floor(this.opts.random() * 256));
      const [pick] = this.tree.closest(point, 1, (p) => p.state === "alive" && !taken.has(p.nodeId));
      if (!pick) break;
      taken.add(pick.nodeId);
      random.push(pick);
    }
    return [...closest, ...random].map((p) => this.info(p));
  }

  /**
   * News from a peer at `seenMs` (connect, message, socket sighting): a
   * suspect or dead peer becomes alive again — a sighting never makes a
   * peer worse, only the sweep does. Writes only on a state change or when
   * `persist` asks for it (connect and disconnect, not every message).
   * Returns the peer's record, or null for a peer that never registered here.
   */
  sighted(nodeId: string, seenMs: number, persist = false): PeerRecord | null {
    const rec = this.live.get(nodeId) ?? this.peerStore.get(nodeId);
    if (!rec) return null;
    const state = livenessState(Math.max(seenMs, rec.lastSeenMs), this.opts.now(), this.opts.params);
    if (STATE_RANK[state] < STATE_RANK[rec.state]) {
      this.transition(rec, state, seenMs);
    } else {
      if (seenMs > rec.lastSeenMs) rec.lastSeenMs = seenMs;
      if (persist) this.peerStore.touch(nodeId, seenMs);
    }
    return rec;
  }

  /**
   * A peer said goodbye (closed its socket with CLOSE_LEAVING) at `nowMs`.
   * Its last sighting is moved back as if it had been silent for the
   * suspect timeout already: it is suspect at once (lookups offer it last
   * and clients skip it while others hold the chunk), and its replicas keep
   * counting for the rest of the dead timeout, so a restart costs no repair.
   * Kept as a plain timestamp so that the rule survives the object's
   * eviction and the sweep needs no special case. Returns when it will be
   * dead (for the alarm), null for an unknown or already dead peer.
   */
  leaving(nodeId: string, nowMs: number): number | null {
    const rec = this.live.get(nodeId);
    if (!rec) return null;
    const seenMs = Math.min(rec.lastSeenMs, nowMs - suspectAfterMs(this.opts.params));
    const state = livenessState(seenMs, nowMs, this.opts.params);
    if (state !== rec.state) this.transition(rec, state, seenMs);
    if (state === "dead") return null;
    rec.lastSeenMs = seenMs;
    this.peerStore.rewindSighting(nodeId, seenMs);
    return seenMs + deadAfterMs(this.opts.params);
  }

  /** A peer's measurements of the regions it downloaded from (its status report), folded into the region-quality estimates. */
  observeRegionQuality(report: RegionQualityReport): void {
    this.regionQuality.observe(report, this.opts.now());
  }

  applyStatus(rec: PeerRecord, status: StatusUpdate): void {
    const now = this.opts.now();
    this.peerStore.setStatus(rec.nodeId, status, now);
    rec.load = status.load;
    rec.freeBytes = status.freeBytes;
    rec.statusAtMs = now;
    if (status.capacity) rec.capacity = status.capacity;
    if (status.addresses) rec.addresses = status.addresses;
    rec.lastSeenMs = Math.max(rec.lastSeenMs, now);
  }

  /**
   * Inventory change of a live storage peer; removals are applied before
   * additions. A batch of a full-inventory sync stamps its rows with the
   * sync's epoch, and its last batch (`done`) then drops the peer's rows
   * that the sync did not list (`swept`). Repair jobs (and rebalance
   * moves) whose last attempt asked this peer for an added chunk are
   * confirmed (`repaired`), even if that attempt was given up meanwhile
   * (RepairJobs.confirm); a removal of a rebalance move's source copy is
   * noted.
   */
  announce(nodeId: string, added: readonly string[], removed: readonly string[], sync?: AnnounceSync): { added: number; removed: number; swept: number; repaired: number } {
    const now = this.opts.now();
    const r = this.replicaStore.remove(nodeId, removed, now);
    const a = this.replicaStore.add(nodeId, added, now, sync?.epoch);
    const swept = sync?.done ? this.replicaStore.sweepUnsynced(nodeId, sync.epoch, now) : 0;
    const repaired = this.repairJobs.confirm(nodeId, added, now).length;
    this.rebalanceLedger.markRemoved(nodeId, removed, now);
    return { added: a, removed: r, swept, repaired };
  }

  /** Records a renewed certificate's expiry (POST /v1/certificates/renew); false for a peer never registered here. */
  renewed(nodeId: string, certificateExpiresAtMs: number): boolean {
    const rec = this.record(nodeId);
    if (!rec) return false;
    rec.certExpiresMs = Math.max(rec.certExpiresMs, certificateExpiresAtMs);
    this.peerStore.setCertificateExpiry(nodeId, certificateExpiresAtMs);
    return true;
  }

  /** Returns how many chunks lost their last pin (to be released by their holders: releaser.ts). */
  pin(pinnedBy: string, cids: readonly string[], replicas: number, sizesBytes?: readonly number[]): number {
    return this.replicaStore.pin(cids, replicas, sizesBytes, pinnedBy, this.opts.now());
  }

  /** The `count` closest peers that are not dead (suspect ones included, marked so), by XOR distance. */
  findNode(target: string, count = this.opts.params.k): PeerInfo[] {
    return this.tree.closest(target, count).map((p) => this.info(p));
  }

  findProviders(cid: string, count = this.opts.params.k): ProviderInfo[] {
    const holders = this.replicaStore.holders(cid).flatMap((id) => this.live.get(id) ?? []);
    return rankProviders(holders, count).map((p) => ({ ...this.info(p), load: p.load, freeBytes: p.freeBytes }));
  }

  /**
   * FIND_PROVIDERS for several CIDs at once: the same answer per CID as
   * findProviders, with `count` lowered by batchProviderCount() to bound the
   * whole answer. Every asked CID is a key (repeats once).
   */
  findProvidersBatch(cids: readonly string[], count = this.opts.params.k): Record<string, ProviderInfo[]> {
    const unique = [...new Set(cids)];
    const perCid = batchProviderCount(count, unique.length);
    const out: Record<string, ProviderInfo[]> = {};
    for (const cid of unique) out[cid] = this.findProviders(cid, perCid);
    return out;
  }

  place(count: number, exclude: readonly string[] = [], sizeBytes?: number): PeerInfo[] {
    return choosePlacement(this.placeable(), { count, exclude, sizeBytes }).map((p) => this.info(p));
  }

  /** Peers new replicas may go to: every peer that is not dead, less the draining ones (placement filters the rest). */
  private placeable(): PeerRecord[] {
    return [...this.live.values()].filter((p) => !p.draining);
  }

  /**
   * Starts (`draining` true) or cancels a storage peer's drain. A draining
   * peer's replicas stop counting toward their chunks' targets at once —
   * the chunks it holds that others do not hold often enough enter the
   * under-replicated queue, and the repair loop copies them elsewhere (this
   * peer stays a source: it is still a provider) — and it is no target of
   * placement or repair. Cancelling makes them count again (over-replicated
   * chunks are then trimmed). Idempotent; returns the peer's progress.
   */
  setDraining(nodeId: string, draining: boolean): DrainProgress {
    const rec = this.record(nodeId);
    if (!rec) throw new PeercloudError("peer_not_registered", "this peer is not registered in this region; bootstrap again", 404);
    if (!storesChunks(rec.roles)) throw new PeercloudError("not_a_storage_peer", "only peers with the service role store replicas, so only they drain", 403);
    if ((rec.draining === true) !== draining) {
      this.peerStore.setDraining(nodeId, draining);
      if (rec.state !== "dead") this.replicaStore.shiftHolder(nodeId, draining ? -1 : +1, this.opts.now());
      rec.draining = draining;
    }
    return this.drainProgress(nodeId);
  }

  /**
   * How far a peer's drain is: its pinned chunks, and those of them with
   * fewer counting replicas than their target — for a draining peer, the
   * chunks that shutting it down would leave below target.
   */
  drainProgress(nodeId: string): DrainProgress {
    const rec = this.record(nodeId);
    if (!rec) throw new PeercloudError("peer_not_registered", "this peer is not registered in this region; bootstrap again", 404);
    const row = this.opts.sql
      .exec<{ held: number; held_bytes: number; remaining: number; remaining_bytes: number }>(
        `SELECT count(*) AS held, coalesce(sum(p.size_bytes), 0) AS held_bytes,
           coalesce(sum(p.live_count < p.target AND p.cold = 0), 0) AS remaining,
           coalesce(sum(CASE WHEN p.live_count < p.target AND p.cold = 0 THEN p.size_bytes ELSE 0 END), 0) AS remaining_bytes
         FROM replicas r JOIN pins p ON p.cid = r.cid WHERE r.node_id = ?`,
        nodeId,
      )
      .one();
    const repairsRunning = this.opts.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM repair_jobs WHERE state = 'running' AND cid IN (SELECT cid FROM replicas WHERE node_id = ?)`, nodeId).one().n;
    return {
      nodeId,
      draining: rec.draining === true,
      heldChunks: row.held,
      heldBytes: row.held_bytes,
      remainingChunks: row.remaining,
      remainingBytes: row.remaining_bytes,
      repairsRunning,
      done: rec.draining === true && row.remaining === 0,
    };
  }

  /** Records of every peer that is not dead (the in-memory view; callers must not change them). */
  liveRecords(): PeerRecord[] {
    return [...this.live.values()];
  }

  /** Live records of the holders of `cid` (dead ones left out). */
  liveHolders(cid: string): PeerRecord[] {
    return this.replicaStore.holders(cid).flatMap((id) => this.live.get(id) ?? []);
  }

  /**
   * One audit outcome of a holder (auditor.ts): its record and reputation
   * in SQL and in memory. A failure also forgets the holder's replica of
   * `cid` (it stops counting; the chunk enters the repair queue if that
   * leaves it below target). Returns whether a replica row was removed.
   */
  recordAudit(nodeId: string, cid: string, passed: boolean): boolean {
    this.peerStore.recordAudit(nodeId, passed);
    const rec = this.live.get(nodeId);
    if (rec) {
      if (passed) rec.auditsPassed = (rec.auditsPassed ?? 0) + 1;
      else rec.auditsFailed = (rec.auditsFailed ?? 0) + 1;
      rec.reputation = reputationScore(rec.auditsPassed ?? 0, rec.auditsFailed ?? 0);
    }
    return passed ? false : this.replicaStore.remove(nodeId, [cid], this.opts.now()) > 0;
  }

  /**
   * Provider lookups by downloaders (not repair's own): the chunks are
   * wanted, and cold ones come back to peers (cold-tier.ts). Returns the
   * CIDs that were cold.
   */
  wanted(cids: readonly string[]): string[] {
    const { coldAfterMs } = this.opts.params;
    // The last-wanted time need only be roughly right: refreshed at most 16 times per cold period.
    return this.replicaStore.wanted([...new Set(cids)], this.opts.now(), Math.max(1, Math.floor(coldAfterMs / 16)));
  }

  /** Targets for many chunks at once (the placement auction, placeBatch): job id → node IDs, best first. */
  placeMany(jobs: readonly PlacementJob[], capacityOf?: (nodeId: string) => number): Map<string, string[]> {
    const placed = placeBatch(this.placeable(), jobs, capacityOf ? { capacityOf: (p) => capacityOf(p.nodeId) } : {});
    return new Map([...placed].map(([id, peers]) => [id, peers.map((p) => p.nodeId)]));
  }

  /**
   * Applies the liveness rules at `nowMs` to every peer that is not dead,
   * given the latest socket sightings (node ID → ms), and revives dead peers
   * that a socket shows alive. Writes only where a state changes. Returns
   * when the next state change can happen without news (null: never).
   */
  sweep(sightingsMs: ReadonlyMap<string, number>, nowMs: number): number | null {
    let nextMs: number | null = null;
    for (const rec of [...this.live.values()]) {
      const seenMs = latestSightingMs(rec.lastSeenMs, sightingsMs.get(rec.nodeId));
      const state = livenessState(seenMs, nowMs, this.opts.params);
      if (state !== rec.state) this.transition(rec, state, seenMs);
      else if (seenMs > rec.lastSeenMs) rec.lastSeenMs = seenMs;
      const changeMs = nextLivenessChangeMs(seenMs, nowMs, this.opts.params);
      if (changeMs !== null && (nextMs === null || changeMs < nextMs)) nextMs = changeMs;
    }
    for (const [nodeId, seenMs] of sightingsMs) {
      if (this.live.has(nodeId) || livenessState(seenMs, nowMs, this.opts.params) === "dead") continue;
      if (this.sighted(nodeId, seenMs)) {
        const changeMs = nextLivenessChangeMs(seenMs, nowMs, this.opts.params);
        if (changeMs !== null && (nextMs === null || changeMs < nextMs)) nextMs = changeMs;
      }
    }
    return nextMs;
  }

  /** Alive peers that store chunks: how many repair jobs the region can run at once, times the per-peer limit. */
  liveStoragePeers(): number {
    let n = 0;
    for (const p of this.live.values()) if (p.state === "alive" && storesChunks(p.roles)) n++;
    return n;
  }

  counts(): { alive: number; suspect: number; dead: number } {
    let alive = 0;
    let suspect = 0;
    for (const p of this.live.values()) {
      if (p.state === "alive") alive++;
      else suspect++;
    }
    return { alive, suspect, dead: this.peerStore.countDead() };
  }

  info(p: PeerRecord): PeerInfo {
    return { nodeId: p.nodeId, hostId: p.hostId, region: this.opts.region(), addresses: p.addresses, roles: p.roles, state: p.state };
  }

  /** Moves a peer to a new liveness state: one row write, plus its replicas' counts when it dies or comes back. */
  private transition(rec: PeerRecord, to: PeerState, seenMs: number): void {
    const now = this.opts.now();
    const nodeId = rec.nodeId;
    const from = rec.state;
    this.peerStore.setState(nodeId, to, seenMs);
    const delta = replicasCountChange(from, to);
    // A draining peer's replicas do not count whatever its liveness, so its deaths and returns change no count.
    if (delta !== 0 && !rec.draining) this.replicaStore.shiftHolder(nodeId, delta, now);
    rec.state = to;
    rec.lastSeenMs = Math.max(rec.lastSeenMs, seenMs);
    if (to === "dead") {
      this.live.delete(nodeId);
      this.tree.remove(nodeId);
    } else {
      this.remember(rec);
    }
  }

  /** Puts a non-dead peer in the map and the buckets (replacing an older record of it). */
  private remember(rec: PeerRecord): void {
    this.live.set(rec.nodeId, rec);
    this.tree.add(rec);
  }
}
