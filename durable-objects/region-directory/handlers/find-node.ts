/** `find_node`: Kademlia FIND_NODE over this region's live peers (Maymounkov & Mazières 2002, §2.3). */
import type { Handler } from "./types.js";

export const handleFindNode: Handler<"find_node"> = (message, { directory }) => ({
  type: "nodes",
  id: message.id,
  nodes: directory.findNode(message.target, message.count),
});
