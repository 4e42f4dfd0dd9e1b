/**
 * The region part of `peercloud status`: the home's region summary as the
 * region directory keeps it (peers, live replicas, under-replicated and
 * cold chunks, repair jobs queued/running/failed, bytes repaired, audit
 * verdicts, rebalance figures, the estimates of the quality between
 * regions), fetched with one signed `GET /v1/regions/:region/summary`
 * (docs/api.md). Best effort and bounded: status must still answer when
 * the edge is unreachable, so a failure becomes `regionSummary: null` plus
 * the reason, never an error.
 */
import type { RegionSummary } from "../../../durable-objects/region-directory-contract.js";
import type { RegionQuality } from "../../../durable-objects/region-directory/region-quality.js";
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

/** Summary fields an edge of another version may lack, printed when present (rebalance: only from edges that run the rebalancer). */
type SummaryAsSent = Omit<RegionSummary, "audits" | "coldChunks" | "regionQuality"> & Partial<Pick<RegionSummary, "audits" | "coldChunks" | "regionQuality">> & { rebalance?: object };

export function formatRegionStatus(r: RegionStatus): string[] {
  if (!r.regionSummary) return [`network  region summary unavailable (${r.regionSummaryError})`];
  const s: SummaryAsSent = r.regionSummary;
  const j = s.repair;
  const cold = s.coldChunks === undefined ? "" : `, ${s.coldChunks} cold (in R2 only)`;
  const lines = [
    `network  ${s.peers.alive} alive / ${s.peers.suspect} suspect / ${s.peers.dead} dead peer(s); ${s.replicas} replica(s) of ${s.pinnedChunks} pinned chunk(s), ${s.underReplicatedChunks} under-replicated${cold}`,
    `repair   ${j.queuedJobs} queued, ${j.runningJobs} running, ${j.failedJobs} failed (backing off); ${j.completedJobs} done, ${formatBytes(j.bytesRepaired)} repaired, ${j.failedAttempts} failed attempt(s)`,
  ];
  const a = s.audits;
  if (a) lines.push(`audits   ${a.pendingAudits} pending; ${a.passed} passed, ${a.failed} failed, ${a.inconclusive} inconclusive; ${a.lowReputationPeers} peer(s) of low reputation`);
  if (s.rebalance) lines.push(`rebalance ${formatFigures(s.rebalance)}`);
  if (s.regionQuality) lines.push(`regions  ${formatRegionQuality(s.region, s.regionQuality)}`);
  return lines;
}

/** Most regions listed on the status line; the rest are counted (`--json` has them all). */
const MAX_REGIONS_SHOWN = 6;

/** The region's estimates of the other regions (and its own sources), best rate first as the summary lists them. */
export function formatRegionQuality(region: string, estimates: readonly RegionQuality[]): string {
  if (estimates.length === 0) return `nothing measured from ${region} yet`;
  const shown = estimates.slice(0, MAX_REGIONS_SHOWN).map((q) => {
    const rtt = q.rttMs === null ? "? ms" : `${Math.round(q.rttMs)} ms`;
    const rate = q.rateBytesPerSecond === null ? "?/s" : `${formatBytes(q.rateBytesPerSecond)}/s`;
    return `${q.region} ${rtt}, ${rate} (${q.samples} download${q.samples === 1 ? "" : "s"})`;
  });
  const more = estimates.length > MAX_REGIONS_SHOWN ? `; ${estimates.length - MAX_REGIONS_SHOWN} more` : "";
  return `measured from ${region}: ${shown.join("; ")}${more}`;
}

/**
 * A flat object of figures as "1 queued moves, 2.00 MiB moved": the
 * rebalance summary is printed without this CLI knowing its fields, so a
 * newer edge's figures still show. camelCase names become words; a name
 * about bytes is printed as a size.
 */
export function formatFigures(figures: object): string {
  const parts = Object.entries(figures as Record<string, unknown>)
    .filter((entry): entry is [string, number] => typeof entry[1] === "number")
    .map(([name, value]) => {
      const words = name.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
      if (!/\bbytes\b/.test(words)) return `${value} ${words}`;
      return `${formatBytes(value)} ${words.replace(/\s*\bbytes\b\s*/, " ").trim()}`;
    });
  return parts.length > 0 ? parts.join(", ") : "nothing to report";
}
