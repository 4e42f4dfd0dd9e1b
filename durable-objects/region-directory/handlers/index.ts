/** The dispatch table: one handler per peer → directory message type, checked exhaustive by the compiler. */
import type { PeerToDirectory } from "../../../src/core/messages.js";
import { handleAuditResult } from "./audit-result.js";
import { handleAnnounce } from "./announce.js";
import { handleDrain } from "./drain.js";
import { handleFindNode } from "./find-node.js";
import { handleFindProviders } from "./find-providers.js";
import { handlePin } from "./pin.js";
import { handlePlace } from "./place.js";
import { handleRepairResult } from "./repair-result.js";
import { handleSignal } from "./signal.js";
import { handleStatus } from "./status.js";
import type { Handler, HandlerContext, Reply } from "./types.js";

const HANDLERS: { [T in PeerToDirectory["type"]]: Handler<T> } = {
  status: handleStatus,
  announce: handleAnnounce,
  find_node: handleFindNode,
  find_providers: handleFindProviders,
  pin: handlePin,
  signal: handleSignal,
  place: handlePlace,
  repair_result: handleRepairResult,
  drain: handleDrain,
  audit_result: handleAuditResult,
};

export function dispatch(message: PeerToDirectory, ctx: HandlerContext): Reply | Promise<Reply> {
  return (HANDLERS[message.type] as Handler<typeof message.type>)(message as never, ctx);
}

export type { HandlerContext } from "./types.js";
