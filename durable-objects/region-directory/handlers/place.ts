/** `place`: where should `count` new replicas go? Alive storage peers on distinct hosts, best first (src/core/placement.ts). */
import type { Handler } from "./types.js";

export const handlePlace: Handler<"place"> = (message, { directory }) => ({
  type: "nodes",
  id: message.id,
  nodes: directory.place(message.count, message.exclude, message.sizeBytes),
});
