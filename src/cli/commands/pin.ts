/**
 * `peercloud pin LINK [--replicas N] [--min-regions M]`: changes the replica
 * policy of content this home put (src/peer/policy.ts). Each region
 * directory of the new plan gets its share as this home's pin; regions no
 * longer in the plan lose it; a region new to the content is seeded from
 * this home's store. The directories' repair and trim then bring the copies
 * to the new counts. Unpinned content is pinned again.
 */
import type { Command } from "commander";
import { parseLink } from "../../core/link.js";
import { contextOf, operationHooks, printResult, withOperations } from "../context.js";
import { parseMinRegions, parseReplicas } from "./put.js";

interface PinFlags {
  replicas?: number;
  minRegions?: number;
}

export function registerPin(program: Command): void {
  program
    .command("pin")
    .description("change the replica policy of content this home put (copies to keep, regions to span)")
    .argument("<link>", "a link this home put")
    .option("--replicas <n>", "copies to keep, this peer's included (default: as recorded at put)", parseReplicas)
    .option("--min-regions <n>", "regions the copies must span, nearest first (default: as recorded at put, else 1)", parseMinRegions)
    .action(async (linkText: string, flags: PinFlags, command: Command) => {
      const ctx = contextOf(command);
      parseLink(linkText);
      const hooks = operationHooks(ctx, "pin");
      try {
        const result = await withOperations(ctx, (ops) => ops.pin({ link: linkText, replicas: flags.replicas, minRegions: flags.minRegions }, hooks));
        hooks.done();
        const where = result.regions.map((r) => `${r.replicas} in ${r.region ?? "the home region"}${r.pushedTo.length > 0 ? ` (seeded ${r.pushedTo.length} peer(s))` : ""}`).join(", ");
        const withdrawn = result.withdrawnFrom.length > 0 ? `; none kept in ${result.withdrawnFrom.join(", ")}` : "";
        printResult(ctx, result, `pinned ${result.name}: ${result.replicas} replica(s) — ${where}${withdrawn}`);
      } finally {
        hooks.done();
      }
    });
}
