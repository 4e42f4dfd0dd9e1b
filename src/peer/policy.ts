/**
 * Changing the replica policy of stored content (issue 6 "Policies":
 * `peercloud pin LINK --replicas N [--min-regions M]`). The publisher's
 * home re-pins every object of the content (manifests and chunks) at each
 * region directory of the new plan with that region's share
 * (region-spread.ts), and withdraws its pin from every other region.
 *
 * The directories do the rest where they can: a higher share in a region
 * that already holds the content is repaired from its own holders, a lower
 * one is trimmed. A region that holds none of it (newly chosen by a higher
 * minimum, or nearer now) has nothing to repair from but R2, so this home
 * seeds it: it asks that region's directory who holds what, places the
 * missing copies there and pushes them from its own store (a target that
 * reports a chunk already is skipped), exactly like put. Pins come last,
 * as in put, so repair does not race the pushes.
 */
import { PeercloudError } from "../core/errors.js";
import type { ChunkStore } from "./chunk-store.js";
import type { TreeCids } from "./content-tree.js";
import type { ProgressCallback } from "./progress.js";
import { pinInRegion, type SharedNeeds } from "./pin-ledger.js";
import { planRegions, type OtherRegions, type ReplicaPolicy } from "./region-spread.js";
import { Replicator } from "./replicator.js";
import type { ReplicaTarget, ReplicaTargets } from "./sources.js";

export interface PolicyResult {
  replicas: number;
  minRegions: number;
  /** Home (region null) first: each region's share and the copies this command pushed there. */
  regions: { region: string | null; replicas: number; pushedTo: string[] }[];
  /** Regions this home's pin was withdrawn from (their directories trim what they held of it). */
  withdrawnFrom: string[];
  sentBytes: number;
}

export interface PolicyDeps {
  store: ChunkStore;
  targets: ReplicaTargets;
}

export interface PolicyHooks {
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  onWarning?: (message: string) => void;
}

/** `needs`: what other content this home keeps pinned needs of these chunks (pin-ledger.ts); none is pinned lower than that. */
export async function applyPolicy(
  tree: Pick<TreeCids, "cids" | "sealedSizes">,
  policy: ReplicaPolicy,
  deps: PolicyDeps,
  needs: SharedNeeds,
  otherRegions: OtherRegions,
  hooks: PolicyHooks = {},
): Promise<PolicyResult> {
  const { cids, sealedSizes } = tree;
  const plan = await planRegions(deps.targets, policy, otherRegions);
  const chosen = new Set(plan.map((s) => s.region));
  // Every other region is told: one that held a share under the old policy must hear that it no longer does.
  const others = await otherRegions();
  const withdraw = others.filter((r) => !chosen.has(r));
  const totalBytes = sealedSizes.reduce((a, b) => a + b, 0);

  // The home copy stays: it is one of the home region's share.
  for (const cid of cids) await deps.store.pin(cid);

  const regions: PolicyResult["regions"] = [];
  let sentBytes = 0;
  for (const share of plan) {
    const pushedTo: string[] = [];
    if (share.region !== null) {
      const seeded = await seedRegion(share.region, share.targets, share.replicas, cids, totalBytes, deps.store, hooks, (sent) =>
        hooks.onProgress?.({ op: "put", phase: "replicate", bytesDone: sentBytes + sent, bytesTotal: totalBytes * share.replicas, chunksDone: 0, chunksTotal: cids.length }),
      );
      pushedTo.push(...seeded.pushedTo);
      sentBytes += seeded.sentBytes;
    }
    regions.push({ region: share.region, replicas: share.replicas, pushedTo });
  }

  hooks.onProgress?.({ op: "put", phase: "pin", bytesDone: totalBytes, bytesTotal: totalBytes, chunksDone: cids.length, chunksTotal: cids.length });
  for (const share of plan) await pinInRegion(share.targets, share.region, cids, sealedSizes, share.replicas, needs);
  for (const region of withdraw) await pinInRegion(deps.targets.inRegion!(region), region, cids, sealedSizes, 0, needs);
  hooks.onProgress?.({ op: "put", phase: "done", bytesDone: totalBytes, bytesTotal: totalBytes, chunksDone: cids.length, chunksTotal: cids.length });
  return { replicas: policy.replicas, minRegions: policy.minRegions, regions, withdrawnFrom: withdraw, sentBytes };
}

/**
 * Makes sure `replicas` peers of a region hold every object: the fewest
 * holders any object has there decides how many new targets are placed
 * (never on a peer holding part of it already), and they get every object
 * they lack from the local store.
 */
async function seedRegion(
  region: string,
  targets: ReplicaTargets,
  replicas: number,
  cids: readonly string[],
  totalBytes: number,
  store: ChunkStore,
  hooks: PolicyHooks,
  onSent: (sentBytes: number) => void,
): Promise<{ pushedTo: string[]; sentBytes: number }> {
  const holders = targets.holders ? await targets.holders(cids, hooks.signal) : null;
  const counts = cids.map((cid) => holders?.[cid]?.length ?? 0);
  const need = replicas - Math.min(...counts);
  if (need <= 0) return { pushedTo: [], sentBytes: 0 };
  const exclude = [...new Set(Object.values(holders ?? {}).flat())];
  const placed: ReplicaTarget[] = (await targets.place(need, exclude, totalBytes)).filter((t) => !exclude.includes(t.id));
  if (placed.length < need) hooks.onWarning?.(`region ${region}: only ${placed.length} of ${need} new replica peer(s) available`);
  if (placed.length === 0) return { pushedTo: [], sentBytes: 0 };
  const replicator = new Replicator(placed, undefined, { onSent });
  try {
    for (const cid of cids) {
      hooks.signal?.throwIfAborted();
      const sealed = await store.get(cid);
      if (!sealed) throw new PeercloudError("chunk_not_local", `object ${cid} is no longer in this home's store, so it cannot seed another region with it; get the content here first`, 409);
      await replicator.add(cid, sealed, true);
    }
    await replicator.finish();
  } catch (error) {
    await replicator.cancel();
    throw error;
  }
  const report = replicator.report();
  for (const id of report.failedTargets) hooks.onWarning?.(`replica peer ${id} failed; its region's directory repairs the copy later`);
  return { pushedTo: report.completeTargets.map((t) => t.id), sentBytes: report.sentBytes };
}
