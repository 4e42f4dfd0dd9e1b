/**
 * `repair_result`: the target of a repair job reports its outcome (see
 * repair-scheduler.ts). A success confirms the job once the replica is
 * recorded; a failure sends the job back to the queue avoiding the peer the
 * code blames. Stale results (the job was confirmed by the announcement, or
 * timed out and went to another target) change nothing. No reply: the
 * result is itself the answer to the directory's `repair`.
 */
import type { Handler } from "./types.js";

export const handleRepairResult: Handler<"repair_result"> = (message, { repair, sender, wakeRepair }) => {
  if (repair.onResult(sender, message)) wakeRepair();
  return undefined;
};
