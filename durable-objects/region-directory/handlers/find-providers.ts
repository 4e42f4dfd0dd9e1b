/**
 * `find_providers`: live holders of a chunk in this region, best source first
 * (src/core/placement.ts). With `cids` it answers many chunks at once
 * (`providers_batch`), so that a download asks once per batch of chunks
 * rather than once per chunk.
 */
import type { Handler } from "./types.js";

export const handleFindProviders: Handler<"find_providers"> = (message, { directory }) =>
  "cids" in message
    ? { type: "providers_batch", id: message.id, providers: directory.findProvidersBatch(message.cids, message.count) }
    : { type: "providers", id: message.id, cid: message.cid, providers: directory.findProviders(message.cid, message.count) };
