/**
 * `peercloud unpin LINK`: releases content this home put — unpinned in the
 * local store (evictable) and replication factor 0 at the region directory,
 * which stops repairing it. Other peers drop their copies as they need room.
 */
import type { Command } from "commander";
import { parseLink } from "../../core/link.js";
import { contextOf, operationHooks, printResult, withOperations } from "../context.js";

export function registerUnpin(program: Command): void {
  program
    .command("unpin")
    .description("stop keeping what a link names (locally and in the network's replica registry)")
    .argument("<link>", "a link this home put")
    .action(async (linkText: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      parseLink(linkText);
      const hooks = operationHooks(ctx, "unpin");
      try {
        const result = await withOperations(ctx, (ops) => ops.unpin(linkText, hooks));
        printResult(ctx, result, `unpinned ${result.name}: ${result.cids} object(s) released${result.directoryUnpinned ? "" : " locally (the directory was not reachable)"}`);
      } finally {
        hooks.done();
      }
    });
}
