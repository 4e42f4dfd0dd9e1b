/** `status`: the periodic load / free-space report, with the peer's region-quality measurements. Persisted (it is what placement and provider ranking read); no reply. */
import type { Handler } from "./types.js";

export const handleStatus: Handler<"status"> = (message, { directory, sender, wakeRepair }) => {
  // A peer's first report since it (or this object) started makes it a rebalance candidate (rebalancer.ts reads
  // fills from reports): a pass soon, rather than at the next liveness expiry, gives a newcomer its share sooner.
  const first = sender.statusAtMs === undefined;
  directory.applyStatus(sender, { load: message.load, freeBytes: message.freeBytes, capacity: message.capacity, addresses: message.addresses });
  if (message.regionQuality?.length) directory.observeRegionQuality(message.regionQuality);
  if (first && sender.roles.includes("service")) wakeRepair();
  return undefined;
};
