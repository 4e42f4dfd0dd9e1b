/**
 * `signal`: a small message to another peer by node ID (NAT traversal offers,
 * connect-back requests). Delivered over the recipient's own WebSocket when
 * it is connected here, through its region's directory when the sender names
 * another region; otherwise the sender learns "peer_not_connected" at once
 * rather than waiting for a reply that will never come.
 */
import { NotFoundError } from "../../../src/core/errors.js";
import type { Handler } from "./types.js";

export const handleSignal: Handler<"signal"> = async (message, ctx) => {
  if (message.region !== undefined && message.region !== ctx.region) {
    await ctx.forwardSignal(message.region, message.to, message.payload);
  } else if (!ctx.deliverLocal(message.to, { type: "signal", from: ctx.sender.nodeId, fromRegion: ctx.region, payload: message.payload })) {
    throw new NotFoundError("peer_not_connected", `peer ${message.to.slice(0, 16)}… is not connected to region ${ctx.region}`);
  }
  return { type: "ack", id: message.id };
};
