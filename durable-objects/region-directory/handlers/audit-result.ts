/**
 * `audit_result`: a holder answers the directory's `audit` (auditor.ts)
 * with its proof or why it has none. The last answer of a round judges it
 * at once; a failure removes the holder's replica, which may queue the
 * chunk for repair, so a repair pass is woken then. Stale answers (the
 * round was judged, or this peer was not asked) change nothing. No reply.
 */
import type { Handler } from "./types.js";

export const handleAuditResult: Handler<"audit_result"> = (message, { audit, sender, wakeRepair }) => {
  const verdicts = audit.onResult(sender, message);
  if (verdicts?.some((v) => v.outcome === "failed")) wakeRepair();
  return undefined;
};
