/**
 * The RPC surface of a RegionDirectory Durable Object, as the edge Worker
 * calls it. The Worker authenticates every caller before it calls these; the
 * object trusts its inputs' authenticity but still validates their shape.
 */
import type { Capacity, DrainProgress, PeerInfo, ProviderInfo } from "../src/core/messages.js";
import type { Role } from "../src/core/roles.js";
import type { RegionQuality } from "./region-directory/region-quality.js";

export interface RegisterPeerInput {
  nodeId: string;
  publicKey: string;
  hostId: string;
  addresses: string[];
  roles: Role[];
  capacity: Capacity;
  certificateExpiresAtMs: number;
}

export interface RegionSummary {
  region: string;
  peers: { alive: number; suspect: number; dead: number; connected: number };
  /** Sum of the sizes of distinct chunks held by live peers, times their replica counts. */
  storedBytes: number;
  replicas: number;
  pinnedChunks: number;
  underReplicatedChunks: number;
  /** Pinned chunks in the cold tier: in R2 only, their peer replicas evicted until a lookup wants them (cold-tier.ts). */
  coldChunks: number;
  /** Replica repair (durable-objects/region-directory/repair-scheduler.ts): jobs by state now, and totals since the region began. */
  repair: RepairSummary;
  /** Rebalance (durable-objects/region-directory/rebalancer.ts): moves of replicas onto emptier peers, now and since the region began. */
  rebalance: RebalanceSummary;
  /** Storage audits (durable-objects/region-directory/auditor.ts): outstanding now, and verdicts since the region began. */
  audits: AuditSummary;
  /** Estimates of the quality between this region and each region its peers downloaded from (region-quality.ts), best rate first. */
  regionQuality: RegionQuality[];
  r2EgressBytes: number;
  updatedAtMs: number;
}

export interface RepairSummary {
  /** Jobs planned and waiting for a free source and target. */
  queuedJobs: number;
  /** Jobs dispatched to a target, not yet confirmed. */
  runningJobs: number;
  /** Jobs that used up their attempts and wait out their backoff before starting over. */
  failedJobs: number;
  /** Replicas re-created and confirmed. */
  completedJobs: number;
  /** Attempts that failed or timed out (each was retried elsewhere or backed off). */
  failedAttempts: number;
  /** Bytes of the confirmed replicas (the chunks' pinned sizes). */
  bytesRepaired: number;
}

export interface RebalanceSummary {
  /** Moves planned and waiting for a free slot (a retry after a source failed). */
  queuedMoves: number;
  /** Moves dispatched to their target, not yet confirmed. */
  runningMoves: number;
  /** Copies confirmed on the emptier peer (each fuller source's copy is then trimmed). */
  completedMoves: number;
  /** Bytes of the confirmed copies. */
  movedBytes: number;
  /** Attempts that failed or timed out. */
  failedAttempts: number;
}

export interface AuditSummary {
  /** Audits sent and not answered yet. */
  pendingAudits: number;
  /** Holder audits passed (the proof agreed with the majority, or was the only one). */
  passed: number;
  /** Holder audits failed (timeout, missing, corrupt, or a proof against the majority): each cost a replica. */
  failed: number;
  /** Holder audits without a verdict (proofs split with no strict majority). */
  inconclusive: number;
  /** Peers not dead whose reputation (src/core/audit.ts) is below LOW_REPUTATION. */
  lowReputationPeers: number;
}

export interface SignalResult {
  delivered: true;
}

export interface RegionDirectoryRpc {
  /** Upserts the peer as alive and returns its initial peer list: the k closest to it, then a few random ones. */
  register(region: string, input: RegisterPeerInput): Promise<{ peers: PeerInfo[] }>;
  /** Current state of a registered peer, or null (certificate renewal refuses unknown and dead peers). */
  peerState(nodeId: string): Promise<"alive" | "suspect" | "dead" | null>;
  findNode(target: string, count?: number): Promise<PeerInfo[]>;
  findProviders(cid: string, count?: number): Promise<ProviderInfo[]>;
  /** findProviders for up to 256 CIDs at once, keyed by CID (every asked CID is a key); `count` may be lowered to bound the answer. */
  findProvidersBatch(cids: string[], count?: number): Promise<Record<string, ProviderInfo[]>>;
  /**
   * Sets `nodeId`'s own target replication factor for chunks; the caller has
   * the publisher role. 0 withdraws only `nodeId`'s pin: a chunk's target is
   * the max over its pinners and it is unpinned when none remains.
   */
  pin(nodeId: string, cids: string[], replicas: number, sizeBytes?: number[]): Promise<void>;
  /** Live service peers on distinct hosts for `count` new replicas, best first. */
  place(count: number, exclude: string[], sizeBytes?: number): Promise<PeerInfo[]>;
  /** Delivers a signaling message to a connected peer of this region; throws NotFoundError "peer_not_connected". */
  deliverSignal(from: string, fromRegion: string, to: string, payload: unknown): Promise<SignalResult>;
  /** Records the expiry of a peer's renewed certificate (POST /v1/certificates/renew); false if the peer is unknown here. */
  renewed(nodeId: string, certificateExpiresAtMs: number): Promise<boolean>;
  /** Adds R2 bytes served to this region's egress counter. */
  addEgress(bytes: number): Promise<void>;
  summary(): Promise<RegionSummary>;
  /** The estimates of the quality between this region and the others (the summary's `regionQuality`, without the rest). */
  regionQuality(): Promise<RegionQuality[]>;
  /** Starts or cancels a storage peer's drain (issue 6 item 4); returns its progress. */
  drain(nodeId: string, draining: boolean): Promise<DrainProgress>;
  /** A peer's drain progress. */
  drainProgress(nodeId: string): Promise<DrainProgress>;
}
