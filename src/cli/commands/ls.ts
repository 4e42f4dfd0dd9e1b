/**
 * `peercloud ls`: what this home put (with links) and got, newest last.
 * The links carry their keys: this list is as secret as the home itself.
 */
import type { Command } from "commander";
import { formatBytes } from "../../peer/progress.js";
import { contextOf, printResult, withOperations } from "../context.js";

export function registerLs(program: Command): void {
  program
    .command("ls")
    .description("list what this home has put (with links) and got")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const entries = (await withOperations(ctx, (ops) => ops.ls())).sort((a, b) => a.atMs - b.atMs);
      const lines = entries.length
        ? entries.map((e) => {
            const state = e.op === "put" ? (e.replicas === 0 ? "unpinned" : `x${e.replicas}${e.cold ? "+cold" : ""}`) : (e.path ?? "");
            return [e.op.padEnd(3), new Date(e.atMs).toISOString().slice(0, 19).replace("T", " "), formatBytes(e.bytes).padStart(10), e.name, state, e.link].join("  ");
          })
        : ["(nothing put or got in this home yet)"];
      printResult(ctx, { entries }, lines);
    });
}
