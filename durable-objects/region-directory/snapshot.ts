/**
 * The region summary and its periodic KV snapshot, which the admin
 * dashboard reads (DESIGN: "KV holds the dashboard's data"). KV is
 * eventually consistent and writes are billed, so the snapshot is written
 * only when something in it changed (the timestamp aside); the last
 * written body is kept in SQL so that this holds across restarts.
 */
import type { AuditSummary, RegionSummary } from "../region-directory-contract.js";
import type { Directory } from "./directory.js";
import { REBALANCE_BYTES, REBALANCE_FAILED_ATTEMPTS, REBALANCE_MOVES, REPAIR_BYTES, REPAIR_COMPLETED, REPAIR_FAILED_ATTEMPTS } from "./repair-jobs.js";
import { R2_EGRESS_BYTES } from "./replica-store.js";
import { readMeta, writeMeta } from "./schema.js";
import type { Sql } from "./sql.js";

export const snapshotKey = (region: string) => `region:${region}`;
const LAST_SNAPSHOT = "last_snapshot";

export function buildSummary(directory: Directory, region: string, connected: number, nowMs: number, audits: AuditSummary): RegionSummary {
  const totals = directory.replicaStore.totals();
  return {
    region,
    peers: { ...directory.counts(), connected },
    storedBytes: totals.storedBytes,
    replicas: totals.liveReplicas,
    pinnedChunks: totals.pinnedChunks,
    underReplicatedChunks: totals.underReplicatedChunks,
    coldChunks: totals.coldChunks,
    repair: repairSummary(directory),
    rebalance: rebalanceSummary(directory),
    audits,
    regionQuality: directory.regionQuality.list(),
    r2EgressBytes: directory.replicaStore.counter(R2_EGRESS_BYTES),
    updatedAtMs: nowMs,
  };
}

function repairSummary(directory: Directory): RegionSummary["repair"] {
  const jobs = directory.repairJobs;
  const counts = jobs.counts("repair");
  return {
    queuedJobs: counts.queued,
    runningJobs: counts.running,
    failedJobs: counts.failed,
    completedJobs: jobs.counter(REPAIR_COMPLETED),
    failedAttempts: jobs.counter(REPAIR_FAILED_ATTEMPTS),
    bytesRepaired: jobs.counter(REPAIR_BYTES),
  };
}

function rebalanceSummary(directory: Directory): RegionSummary["rebalance"] {
  const jobs = directory.repairJobs;
  const counts = jobs.counts("move");
  return {
    queuedMoves: counts.queued,
    runningMoves: counts.running,
    completedMoves: jobs.counter(REBALANCE_MOVES),
    movedBytes: jobs.counter(REBALANCE_BYTES),
    failedAttempts: jobs.counter(REBALANCE_FAILED_ATTEMPTS),
  };
}

/** Writes `summary` to KV unless the last snapshot said the same; returns whether it wrote. */
export async function writeSnapshotIfChanged(kv: KVNamespace, sql: Sql, summary: RegionSummary): Promise<boolean> {
  const { updatedAtMs: _, ...content } = summary;
  const fingerprint = JSON.stringify(content);
  if (readMeta(sql, LAST_SNAPSHOT) === fingerprint) return false;
  await kv.put(snapshotKey(summary.region), JSON.stringify(summary));
  writeMeta(sql, LAST_SNAPSHOT, fingerprint);
  return true;
}
