/**
 * What a WebSocket message handler sees: the directory model, the sender
 * (already known, registered and alive) and the two ways to reach another
 * peer. One handler per message type, each in its own module (the layout of
 * js-libp2p kad-dht's `rpc/handlers/`); a handler returns the reply or
 * nothing, and throws PeercloudErrors that the object turns into
 * `{ type: "error", id, code, message }` for the sender.
 */
import type { DirectoryToPeer, PeerToDirectory } from "../../../src/core/messages.js";
import type { AuditResult, AuditVerdict } from "../auditor.js";
import type { Directory } from "../directory.js";
import type { PeerRecord } from "../peer-store.js";
import type { RepairScheduler } from "../repair-scheduler.js";

export interface HandlerContext {
  directory: Directory;
  sender: PeerRecord;
  region: string;
  /** Sends to a peer connected to this object; false when it is not connected. */
  deliverLocal(to: string, message: DirectoryToPeer): boolean;
  /** Hands a signal to another region's directory; rejects with code "peer_not_connected" when the peer is not there. */
  forwardSignal(region: string, to: string, payload: unknown): Promise<void>;
  /** Repair jobs' results (handlers/repair-result.ts); `onResult` is bound to the object's clock. */
  repair: { onResult(sender: PeerRecord, result: Parameters<RepairScheduler["onResult"]>[1]): boolean };
  /** Audit answers (handlers/audit-result.ts); null: stale, []: the round is still open, else the verdicts. */
  audit: { onResult(sender: PeerRecord, result: AuditResult): AuditVerdict[] | null };
  /** A repair job ended (confirmed or failed): run a repair pass soon, to dispatch the next one. */
  wakeRepair(): void;
}

export type MessageOf<T extends PeerToDirectory["type"]> = Extract<PeerToDirectory, { type: T }>;

export type Reply = DirectoryToPeer | undefined;

export type Handler<T extends PeerToDirectory["type"]> = (message: MessageOf<T>, ctx: HandlerContext) => Reply | Promise<Reply>;
