/**
 * `drain`: a storage peer starts (`draining: true`) or cancels (`false`) its
 * drain, or only asks how far it is (no `draining`); answered with
 * `drain_status` (Directory.setDraining / drainProgress). Starting or
 * cancelling wakes the repair pass: the peer's chunks have just entered (or
 * left) the under-replicated queue.
 */
import type { Handler } from "./types.js";

export const handleDrain: Handler<"drain"> = (message, { directory, sender, wakeRepair }) => {
  if (message.draining === undefined) return { type: "drain_status", id: message.id, progress: directory.drainProgress(sender.nodeId) };
  const progress = directory.setDraining(sender.nodeId, message.draining);
  wakeRepair();
  return { type: "drain_status", id: message.id, progress };
};
