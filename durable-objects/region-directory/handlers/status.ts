/** `status`: the periodic load / free-space report, with the peer's region-quality measurements. Persisted (it is what placement and provider ranking read); no reply. */
import type { Handler } from "./types.js";

export const handleStatus: Handler<"status"> = (message, { directory, sender }) => {
  directory.applyStatus(sender, { load: message.load, freeBytes: message.freeBytes, capacity: message.capacity, addresses: message.addresses });
  if (message.regionQuality?.length) directory.observeRegionQuality(message.regionQuality);
  return undefined;
};
