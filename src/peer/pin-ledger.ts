/**
 * Pins of content that shares chunks. A region directory keeps one pin per
 * chunk and publisher (durable-objects/region-directory/replica-store.ts),
 * and the local store one marker per chunk; but one publisher's contents
 * share chunks (convergent keys de-duplicate identical data: a re-put of an
 * edited file, two trees holding the same file). So whenever this home
 * sets the pins of one content (put, `pin`, `unpin`), each shared chunk
 * must stay at what the *other* content it keeps pinned still asks:
 *
 *  - `sharedNeeds` walks the other pinned contents of the library (their
 *    manifests are in this home's store) and answers, for each chunk of
 *    the content at hand that they share, the largest share of replicas
 *    they ask per region (their own policies, region-spread.ts);
 *  - `pinInRegions` then pins each region's chunks at the larger of the
 *    content's own share there and that need — grouped, as a pin call has
 *    one factor — so unpinning one content (share 0) withdraws only what
 *    nothing else keeps, and lowering its policy never lowers another's.
 *
 * The walk costs one read of each other content's manifests; it runs only
 * when the library holds other pinned content, and for a put only when the
 * put found some of its chunks already stored (otherwise nothing is shared).
 */
import { parseLink } from "../core/link.js";
import type { ChunkStore } from "./chunk-store.js";
import { collectTreeCids } from "./content-tree.js";
import type { LibraryEntry } from "./library.js";
import { regionShares, validatePolicy } from "./region-spread.js";
import type { ReplicaTargets } from "./sources.js";

/** cid → region (null: home) → replicas other content asks there. */
export type SharedNeeds = Map<string, Map<string | null, number>>;

const PIN_BATCH = 1000;

/**
 * What the other content this home keeps pinned (library puts with replicas
 * > 0, other than `exceptCid`) needs of `cids`. `others` are the other
 * regions nearest first, as a plan would use them. Content whose manifests
 * are gone from the store is skipped (it cannot be walked; its chunks keep
 * whatever pins they have).
 */
export async function sharedNeeds(entries: readonly LibraryEntry[], exceptCid: string, cids: ReadonlySet<string>, store: ChunkStore, others: readonly string[]): Promise<SharedNeeds> {
  const needs: SharedNeeds = new Map();
  for (const entry of entries) {
    if (entry.op !== "put" || entry.cid === exceptCid || !entry.replicas || entry.replicas < 1) continue;
    let tree;
    try {
      const link = parseLink(entry.link);
      tree = await collectTreeCids(link.cid, link.key, async (cid) => {
        const sealed = await store.get(cid);
        if (!sealed) throw new Error(`manifest ${cid} is not local`);
        return sealed;
      });
    } catch {
      continue;
    }
    const minRegions = Math.min(entry.minRegions ?? 1, others.length + 1, entry.replicas);
    const shares = regionShares(validatePolicy(entry.replicas, minRegions));
    const regions = [null, ...others.slice(0, minRegions - 1)];
    for (const cid of tree.cids) {
      if (!cids.has(cid)) continue;
      let byRegion = needs.get(cid);
      if (!byRegion) needs.set(cid, (byRegion = new Map()));
      regions.forEach((region, i) => byRegion.set(region, Math.max(byRegion.get(region) ?? 0, shares[i])));
    }
  }
  return needs;
}

/**
 * Pins `cids` in one region's directory at `replicas` (0 withdraws this
 * home's pin), except that a chunk other content needs more of there is
 * pinned at that need.
 */
export async function pinInRegion(targets: ReplicaTargets, region: string | null, cids: readonly string[], sizes: readonly number[], replicas: number, needs: SharedNeeds): Promise<void> {
  const groups = new Map<number, { cids: string[]; sizes: number[] }>();
  cids.forEach((cid, i) => {
    const factor = Math.max(replicas, needs.get(cid)?.get(region) ?? 0);
    let group = groups.get(factor);
    if (!group) groups.set(factor, (group = { cids: [], sizes: [] }));
    group.cids.push(cid);
    group.sizes.push(sizes[i]);
  });
  for (const [factor, group] of groups) {
    for (let i = 0; i < group.cids.length; i += PIN_BATCH) await targets.pin(group.cids.slice(i, i + PIN_BATCH), factor, group.sizes.slice(i, i + PIN_BATCH));
  }
}

/** Whether any other pinned content keeps `cid` (anywhere): then this home's store must keep it pinned too. */
export function neededElsewhere(needs: SharedNeeds, cid: string): boolean {
  const byRegion = needs.get(cid);
  return byRegion !== undefined && [...byRegion.values()].some((n) => n > 0);
}
