/**
 * The peers' WebSockets as the Hibernation API keeps them: each socket is
 * tagged with its peer's node ID and carries a small attachment that
 * survives hibernation (the object may be evicted between any two
 * messages; only storage and attachments remain). Liveness evidence lives
 * here rather than in SQL: the last real message (in the attachment) and
 * the last auto-answered ping (kept by the runtime), so that heartbeats
 * cost no storage write and pings do not even wake the object.
 */
import { latestSightingMs } from "../../src/core/liveness.js";
import type { DirectoryToPeer } from "../../src/core/messages.js";

export interface SocketAttachment {
  nodeId: string;
  connectedAtMs: number;
  lastMessageMs: number;
  /** Invalid frames since the last valid one; the connection is closed at a limit. */
  invalidMessages: number;
}

export function attachmentOf(ws: WebSocket): SocketAttachment | null {
  const att = ws.deserializeAttachment() as SocketAttachment | null;
  return att && typeof att.nodeId === "string" ? att : null;
}

/** The latest evidence that this socket's peer was alive. */
export function socketSightingMs(ctx: DurableObjectState, ws: WebSocket, att: SocketAttachment): number {
  return latestSightingMs(att.connectedAtMs, att.lastMessageMs, ctx.getWebSocketAutoResponseTimestamp(ws)?.getTime());
}

/** Node ID → latest sighting over all of its open sockets. */
export function socketSightings(ctx: DurableObjectState): Map<string, number> {
  const out = new Map<string, number>();
  for (const ws of ctx.getWebSockets()) {
    const att = attachmentOf(ws);
    if (!att) continue;
    const seenMs = socketSightingMs(ctx, ws, att);
    if (seenMs > (out.get(att.nodeId) ?? -Infinity)) out.set(att.nodeId, seenMs);
  }
  return out;
}

/** Number of distinct peers with an open socket. */
export function connectedPeers(ctx: DurableObjectState): number {
  const ids = new Set<string>();
  for (const ws of ctx.getWebSockets()) {
    if (ws.readyState !== WebSocket.OPEN) continue;
    const att = attachmentOf(ws);
    if (att) ids.add(att.nodeId);
  }
  return ids.size;
}

/** Sends one protocol message; false if the socket is already gone (the peer will reconnect). */
export function sendMessage(ws: WebSocket, message: DirectoryToPeer): boolean {
  try {
    ws.send(JSON.stringify(message));
    return true;
  } catch {
    return false;
  }
}

/** Sends to the newest open socket of a peer; false when it has none. */
export function sendToPeer(ctx: DurableObjectState, nodeId: string, message: DirectoryToPeer): boolean {
  const sockets = ctx.getWebSockets(nodeId).filter((ws) => ws.readyState === WebSocket.OPEN);
  for (let i = sockets.length - 1; i >= 0; i--) if (sendMessage(sockets[i], message)) return true;
  return false;
}

/** Closes a socket, ignoring "already closed" and reserved close codes (1005/1006 cannot be sent). */
export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code >= 1000 && code <= 4999 && code !== 1005 && code !== 1006 && code !== 1015 ? code : 1000, reason);
  } catch {
    // already closed
  }
}
