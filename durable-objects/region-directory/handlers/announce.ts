/**
 * `announce`: a storage peer's inventory change (CIDs added and removed since
 * its last announcement, at most 1000 of each), or with `sync` one batch of
 * its full inventory (the last batch sweeps what the sync did not list; see
 * replica-store.ts). Only peers that store chunks for others may announce:
 * a client's cache is not a replica. An added chunk that a running repair
 * job asked this peer for confirms that job.
 */
import { PeercloudError } from "../../../src/core/errors.js";
import { storesChunks } from "../../../src/core/roles.js";
import type { Handler } from "./types.js";

export const handleAnnounce: Handler<"announce"> = (message, { directory, sender, wakeRepair }) => {
  if (!storesChunks(sender.roles)) {
    throw new PeercloudError("not_a_storage_peer", "only peers with the service role announce replicas", 403);
  }
  // A repaired replica confirms its job: free its peers' repair slots for the next job at once.
  if (directory.announce(sender.nodeId, message.added, message.removed, message.sync).repaired > 0) wakeRepair();
  return message.id === undefined ? undefined : { type: "ack", id: message.id };
};
