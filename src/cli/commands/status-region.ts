/**
 * The region part of `peercloud status`: the home's region summary as the
 * region directory keeps it (peers, live replicas, under-replicated chunks,
 * repair jobs queued/running/failed, bytes repaired), fetched with one
 * signed `GET /v1/regions/:region/summary` (docs/api.md). Best effort and
 * bounded: status must still answer when the edge is unreachable, so a
 * failure becomes `regionSummary: null` plus the reason, never an error.
 */
import type { RegionSummary } from "../../../durable-objects/region-directory-contract.js";
import { signRequest } from "../../core/signed-request.js";
import type { PeerHome } from "../../peer/home.js";
import { formatBytes } from "../../peer/progress.js";

/** How long status waits for the edge. */
export const REGION_SUMMARY_TIMEOUT_MS = 3000;

export type RegionStatus = { regionSummary: RegionSummary } | { regionSummary: null; regionSummaryError: string };

export async function fetchRegionStatus(home: PeerHome, timeoutMs = REGION_SUMMARY_TIMEOUT_MS): Promise<RegionStatus> {
  try {
    const { config, identity } = await home.load();
    const base = new URL(config.edgeUrl);
    const path = `${base.pathname.replace(/\/+$/, "")}/v1/regions/${encodeURIComponent(config.region)}/summary`;
    const headers = await signRequest({ method: "GET", pathWithQuery: path, certificate: config.certificate, secretKey: identity.secretKey });
    const res = await fetch(new URL(path, base), { headers, signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as RegionSummary & { error?: { code: string; message: string } };
    if (!res.ok) return { regionSummary: null, regionSummaryError: `${body.error?.code ?? `http_${res.status}`}: ${body.error?.message ?? ""}` };
    return { regionSummary: body };
  } catch (error) {
    return { regionSummary: null, regionSummaryError: (error as Error).message };
  }
}

export function formatRegionStatus(r: RegionStatus): string[] {
  if (!r.regionSummary) return [`network  region summary unavailable (${r.regionSummaryError})`];
  const s = r.regionSummary;
  const j = s.repair;
  return [
    `network  ${s.peers.alive} alive / ${s.peers.suspect} suspect / ${s.peers.dead} dead peer(s); ${s.replicas} replica(s) of ${s.pinnedChunks} pinned chunk(s), ${s.underReplicatedChunks} under-replicated`,
    `repair   ${j.queuedJobs} queued, ${j.runningJobs} running, ${j.failedJobs} failed (backing off); ${j.completedJobs} done, ${formatBytes(j.bytesRepaired)} repaired, ${j.failedAttempts} failed attempt(s)`,
  ];
}
