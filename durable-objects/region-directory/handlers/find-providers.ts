/** `find_providers`: live holders of a chunk in this region, best source first (src/core/placement.ts). */
import type { Handler } from "./types.js";

export const handleFindProviders: Handler<"find_providers"> = (message, { directory }) => ({
  type: "providers",
  id: message.id,
  cid: message.cid,
  providers: directory.findProviders(message.cid, message.count),
});
