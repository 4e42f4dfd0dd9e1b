/**
 * `peercloud put PATH [--replicas N] [--min-regions M] [--cold] [--private]`: stores a file or
 * a directory tree and prints its link (stdout: the link alone, so
 * `LINK=$(peercloud put f)` works; `--json`: the whole PutResult, which
 * starts with `link`, `cid` and `bytes`).
 */
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { NotFoundError } from "../../core/errors.js";
import { formatBytes } from "../../peer/progress.js";
import { contextOf, operationHooks, printResult, withOperations } from "../context.js";

interface PutFlags {
  replicas?: number;
  minRegions?: number;
  cold?: boolean;
  private?: boolean;
}

export function parseReplicas(text: string): number {
  if (!/^\d{1,2}$/.test(text) || Number(text) < 1 || Number(text) > 16) throw new InvalidArgumentError("must be an integer from 1 to 16");
  return Number(text);
}

/** As --replicas: a region per copy at most (put and pin check it against the replicas). */
export function parseMinRegions(text: string): number {
  return parseReplicas(text);
}

export function registerPut(program: Command): void {
  program
    .command("put")
    .description("store a file or directory (encrypted, content-addressed) and print its link")
    .argument("<path>", "file or directory to store")
    .option("--replicas <n>", "copies to keep, this peer's included (default: the network's, usually 3)", parseReplicas)
    .option("--min-regions <n>", "regions the copies must span, the home region and the nearest others (default 1)", parseMinRegions)
    .option("--cold", "also upload every chunk to the edge's R2 cold store")
    .option("--private", "random per-file keys (no de-duplication with other publishers' identical data)")
    .action(async (pathArg: string, flags: PutFlags, command: Command) => {
      const ctx = contextOf(command);
      const path = resolve(pathArg);
      // Checked before the home is touched, so a typo never opens (or creates) anything.
      await stat(path).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT" || error.code === "ENOTDIR") throw new NotFoundError("path_not_found", `no such file or directory: ${pathArg}`);
        throw error;
      });
      const hooks = operationHooks(ctx, "put");
      try {
        const result = await withOperations(ctx, (ops) => ops.put({ path, replicas: flags.replicas, minRegions: flags.minRegions, cold: flags.cold, private: flags.private }, hooks));
        hooks.done();
        const { link, cid, bytes, ...rest } = result;
        printResult(ctx, { link, cid, bytes, ...rest }, link);
        if (!ctx.json) {
          ctx.stderr.write(
            `put ${formatBytes(bytes)} in ${result.chunks} chunk(s) (${result.newChunks} new, ${formatBytes(result.sentBytes)} sent), ` +
              `${result.replicasAchieved} replica(s)${result.regions.length > 1 ? ` in ${result.regions.length} regions` : ""}${result.coldChunks ? `, ${result.coldChunks} in cold storage` : ""}\n`,
          );
        }
      } finally {
        hooks.done();
      }
    });
}
