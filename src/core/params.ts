/**
 * Every network-wide tunable, with its default, in one place. The edge
 * publishes the values in force through `GET /v1/network`, so peers never
 * hard-code them; `wrangler.toml` [vars] may override the ones marked so.
 */
export interface NetworkParams {
  /** Kademlia bucket size and the number of peers FIND_NODE returns. */
  k: number;
  /** How often a peer pings its region directory (auto-answered, does not wake the object). */
  heartbeatIntervalMs: number;
  /** How often a peer sends a status report (load, free space), which does wake the object. */
  statusIntervalMs: number;
  /** Missed heartbeat intervals before a peer is suspect (its replicas stop being offered first). */
  suspectAfterMissedHeartbeats: number;
  /** Missed heartbeat intervals before a peer is dead (its replicas stop counting). */
  deadAfterMissedHeartbeats: number;
  /** Lifetime of an edge-signed peer certificate. */
  certificateTtlMs: number;
  /** A certificate may be renewed once less than this much of its life is left. */
  certificateRenewBeforeMs: number;
  /** Accepted clock difference for signed timestamps; also how long nonces are remembered. */
  signatureMaxSkewMs: number;
  /** Target replicas of a pinned chunk unless the publisher asks otherwise. */
  defaultReplicationFactor: number;
  /** Largest chunk the edge and peers accept. */
  maxChunkBytes: number;
  /** Random peers added to the k closest in a bootstrap answer, for routing-table diversity. */
  bootstrapRandomPeers: number;
  /** Largest number of CIDs in one inventory announcement. */
  maxAnnounceBatch: number;
  /** Interval of the region directory's KV summary snapshot. */
  snapshotIntervalMs: number;
  /**
   * Repair jobs a peer takes part in at once, as the target that copies and
   * as the source that serves (the directory enforces it; a peer refuses
   * more). Small, so that repair traffic leaves a peer's links to its users.
   */
  repairJobsPerPeer: number;
  /** A dispatched repair job not confirmed within this long fails (and is retried elsewhere). */
  repairJobTimeoutMs: number;
  /** Dispatches of one repair job (each to another target/source) before it waits `repairRetryBackoffMs`. */
  repairMaxAttempts: number;
  /** How long a repair job that used up its attempts waits before it is tried again from scratch. */
  repairRetryBackoffMs: number;
  /**
   * How long a pinned chunk must have stayed over-replicated (more live
   * holders than its target) before the directory trims the surplus: a
   * fresh download's cached copy or a peer back from a short outage is not
   * deleted at once.
   */
  trimGraceMs: number;
  /** Most chunks one trim pass looks at and trims (the trim "rate limit"). */
  trimChunksPerPass: number;
  /**
   * Rebalance (durable-objects/region-directory/rebalancer.ts): how many
   * percentage points a storage peer's fill (used / capacity, as reported)
   * may stray from the region's mean before replicas move. A peer this far
   * below the mean is a target (a new empty peer), one this far above it a
   * source; inside the band nothing moves, so a balanced region does not
   * churn. 100 turns rebalancing off.
   */
  rebalanceThresholdPercent: number;
  /** Most moves (one replica copied onto an emptier peer, the fuller holder's copy trimmed) one pass plans. */
  rebalanceChunksPerPass: number;
  /**
   * Time between two audit passes of a region directory (durable-objects/
   * region-directory/auditor.ts); the first pass of an object comes one
   * interval after it first ran its alarm.
   */
  auditIntervalMs: number;
  /** Most chunks one audit pass challenges (each at all its connected live holders). */
  auditChunksPerPass: number;
  /** Most audits one peer receives in one pass (the audit "rate limit" of a holder). */
  auditsPerPeerPerPass: number;
  /** An audited holder that has not answered within this long fails the audit. */
  auditTimeoutMs: number;
  /** Bytes of the random range one audit asks a holder to hash (at most 1 MiB, clamped to the chunk). */
  auditRangeBytes: number;
  /**
   * Cold tier (issue 6 item 6): a pinned chunk nobody asked providers for
   * during this long, and that is in R2, drops to cold only — its peer
   * replicas are trimmed — until a lookup wants it again, when repair
   * restores its replicas from R2.
   */
  coldAfterMs: number;
  /** Most chunks one cold-tier pass checks in R2 and moves to cold. */
  coldChunksPerPass: number;
}

export const DEFAULT_PARAMS: NetworkParams = {
  k: 20,
  heartbeatIntervalMs: 30_000,
  statusIntervalMs: 300_000,
  suspectAfterMissedHeartbeats: 3,
  deadAfterMissedHeartbeats: 6,
  certificateTtlMs: 24 * 3600_000,
  certificateRenewBeforeMs: 6 * 3600_000,
  signatureMaxSkewMs: 5 * 60_000,
  defaultReplicationFactor: 3,
  maxChunkBytes: 8 * 1024 * 1024,
  bootstrapRandomPeers: 4,
  maxAnnounceBatch: 1000,
  snapshotIntervalMs: 60_000,
  repairJobsPerPeer: 2,
  repairJobTimeoutMs: 120_000,
  repairMaxAttempts: 3,
  repairRetryBackoffMs: 5 * 60_000,
  trimGraceMs: 10 * 60_000,
  trimChunksPerPass: 64,
  rebalanceThresholdPercent: 10,
  rebalanceChunksPerPass: 16,
  auditIntervalMs: 3600_000,
  auditChunksPerPass: 16,
  auditsPerPeerPerPass: 2,
  auditTimeoutMs: 30_000,
  auditRangeBytes: 64 * 1024,
  coldAfterMs: 30 * 24 * 3600_000,
  coldChunksPerPass: 64,
};

/** Applies string overrides (from wrangler vars or a test environment) over the defaults, rejecting nonsense. */
export function resolveParams(overrides: Partial<Record<keyof NetworkParams, unknown>> = {}): NetworkParams {
  const out: NetworkParams = { ...DEFAULT_PARAMS };
  for (const key of Object.keys(DEFAULT_PARAMS) as (keyof NetworkParams)[]) {
    const raw = overrides[key];
    if (raw === undefined || raw === null || raw === "") continue;
    const value = typeof raw === "number" ? raw : Number(raw);
    if (!Number.isFinite(value) || value <= 0 || !Number.isInteger(value)) {
      throw new RangeError(`network parameter ${key} must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    out[key] = value;
  }
  if (out.deadAfterMissedHeartbeats <= out.suspectAfterMissedHeartbeats) {
    throw new RangeError("deadAfterMissedHeartbeats must exceed suspectAfterMissedHeartbeats");
  }
  if (out.rebalanceThresholdPercent > 100) throw new RangeError("rebalanceThresholdPercent must be at most 100 (percentage points of fill)");
  if (out.auditRangeBytes > 1024 * 1024) throw new RangeError("auditRangeBytes must be at most 1 MiB (MAX_AUDIT_RANGE_BYTES)");
  return out;
}
