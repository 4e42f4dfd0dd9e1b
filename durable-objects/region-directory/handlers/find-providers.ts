/**
 * `find_providers`: live holders of a chunk in this region, best source first
 * (src/core/placement.ts). With `cids` it answers many chunks at once
 * (`providers_batch`), so that a download asks once per batch of chunks
 * rather than once per chunk. A lookup counts as demand for the cold tier.
 */
import type { Handler } from "./types.js";

export const handleFindProviders: Handler<"find_providers"> = (message, { directory, wakeRepair }) => {
  // A downloader wants these chunks: cold ones come back to peers (cold-tier.ts), through a repair pass.
  if (directory.wanted("cids" in message ? message.cids : [message.cid]).length > 0) wakeRepair();
  return "cids" in message
    ? { type: "providers_batch", id: message.id, providers: directory.findProvidersBatch(message.cids, message.count) }
    : { type: "providers", id: message.id, cid: message.cid, providers: directory.findProviders(message.cid, message.count) };
};
