/**
 * `announce`: a storage peer's inventory change (CIDs added and removed since
 * its last announcement, at most 1000 of each), or with `sync` one batch of
 * its full inventory (the last batch sweeps what the sync did not list; see
 * replica-store.ts). Only peers that store chunks for others may announce:
 * a client's cache is not a replica.
 */
import { PeercloudError } from "../../../src/core/errors.js";
import { storesChunks } from "../../../src/core/roles.js";
import type { Handler } from "./types.js";

export const handleAnnounce: Handler<"announce"> = (message, { directory, sender }) => {
  if (!storesChunks(sender.roles)) {
    throw new PeercloudError("not_a_storage_peer", "only peers with the service role announce replicas", 403);
  }
  directory.announce(sender.nodeId, message.added, message.removed, message.sync);
  return message.id === undefined ? undefined : { type: "ack", id: message.id };
};
