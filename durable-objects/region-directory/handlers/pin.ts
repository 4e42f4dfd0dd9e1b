/**
 * `pin`: a publisher sets its own replication target for chunks (0 withdraws
 * its own pin; a chunk stays pinned while any publisher pins it, at the
 * highest target); the directory queues those below target, and has the
 * holders of chunks nobody pins any more release them.
 */
import { PeercloudError, ValidationError } from "../../../src/core/errors.js";
import type { Handler } from "./types.js";

export const handlePin: Handler<"pin"> = (message, { directory, sender, wakeRepair }) => {
  if (!sender.roles.includes("publisher")) throw new PeercloudError("forbidden", "only peers with the publisher role pin chunks", 403);
  if (message.sizeBytes && message.sizeBytes.length !== message.cids.length) {
    throw new ValidationError("message.sizeBytes: must have one entry per CID");
  }
  // Chunks nobody pins any more are released by their holders in the next alarm pass.
  if (directory.pin(sender.nodeId, message.cids, message.replicas, message.sizeBytes) > 0) wakeRepair();
  return { type: "ack", id: message.id };
};
