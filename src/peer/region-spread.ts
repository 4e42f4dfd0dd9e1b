/**
 * A file's replica policy across regions (issue 6 "Policies": a replication
 * factor and optionally a minimum number of regions). Each region directory
 * keeps its own share as an ordinary pin and repairs it with its own peers
 * (or R2), so a policy of "3 replicas in at least 2 regions" is two pins:
 * 2 in the home region (the publisher's copy included) and 1 in the nearest
 * other region. Shares are as even as possible, the home region taking the
 * remainder: it holds the publisher's copy and is where the content is
 * most likely wanted.
 *
 * Which other regions: the nearest first by the home directory's estimates
 * of the quality between regions (ReplicaTargets.otherRegions), so copies
 * land where they are cheapest to repair from and fetch.
 */
import { ValidationError } from "../core/errors.js";
import type { ReplicaTargets } from "./sources.js";

/** As `--replicas`: at most this many copies, so at most this many regions. */
export const MAX_REPLICAS = 16;

export interface ReplicaPolicy {
  replicas: number;
  /** 1 (the default) keeps every replica in the home region. */
  minRegions: number;
}

export function validatePolicy(replicas: number, minRegions = 1): ReplicaPolicy {
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS)
    throw new ValidationError(`replicas must be an integer from 1 to ${MAX_REPLICAS}, got ${replicas}`, "invalid_replicas");
  if (!Number.isSafeInteger(minRegions) || minRegions < 1 || minRegions > MAX_REPLICAS) {
    throw new ValidationError(`min-regions must be an integer from 1 to ${MAX_REPLICAS}, got ${minRegions}`, "invalid_min_regions");
  }
  if (minRegions > replicas) throw new ValidationError(`min-regions (${minRegions}) cannot exceed replicas (${replicas}): each region needs a copy`, "invalid_min_regions");
  return { replicas, minRegions };
}

/** Replicas per region, home first: `minRegions` shares summing to `replicas`, as even as possible, the remainder at home. */
export function regionShares({ replicas, minRegions }: ReplicaPolicy): number[] {
  const base = Math.floor(replicas / minRegions);
  return [base + (replicas % minRegions), ...Array.from({ length: minRegions - 1 }, () => base)];
}

/** One region's part of a policy. */
export interface RegionShare {
  /** null for the home region. */
  region: string | null;
  /** Replicas this region's directory keeps (its pin target). */
  replicas: number;
  targets: ReplicaTargets;
}

/** The network's other regions nearest first, or none where only the home region is reachable. */
export type OtherRegions = () => Promise<string[]>;

/**
 * The other regions, asked of the edge (a network read and a region
 * summary) at most once however often one operation needs them: put, pin
 * and unpin each need them to plan, to withdraw and to weigh shared chunks.
 */
export function otherRegionsOnce(targets: ReplicaTargets | undefined, signal?: AbortSignal): OtherRegions {
  let asked: Promise<string[]> | null = null;
  return () => (asked ??= targets?.otherRegions ? targets.otherRegions(signal) : Promise.resolve([]));
}

/**
 * The regions a policy uses and each one's share; throws a clear error when
 * the network has fewer regions than the policy asks (nothing is stored
 * yet at that point).
 */
export async function planRegions(targets: ReplicaTargets, policy: ReplicaPolicy, otherRegions: OtherRegions): Promise<RegionShare[]> {
  const shares = regionShares(policy);
  const plan: RegionShare[] = [{ region: null, replicas: shares[0], targets }];
  if (policy.minRegions === 1) return plan;
  if (!targets.otherRegions || !targets.inRegion) throw new ValidationError("min-regions needs the edge's directories of other regions, which this client cannot reach", "min_regions_unavailable");
  const others = await otherRegions();
  if (others.length < policy.minRegions - 1) {
    throw new ValidationError(`min-regions ${policy.minRegions} needs ${policy.minRegions} regions; the network has ${others.length + 1}`, "min_regions_unavailable");
  }
  for (let i = 1; i < shares.length; i++) plan.push({ region: others[i - 1], replicas: shares[i], targets: targets.inRegion(others[i - 1]) });
  return plan;
}
