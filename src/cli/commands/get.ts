/**
 * `peercloud get LINK [-o PATH] [--stream]`: downloads the file or tree a
 * link names. Prints the path written (`--json`: the whole GetResult).
 * `-o - --stream` writes the file to stdout in order as chunks arrive (the
 * result, with `--json`, then goes to stderr, since stdout is the file).
 * The link is checked before anything else, so a malformed one writes
 * nothing and opens no home.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { parseLink } from "../../core/link.js";
import { formatBytes } from "../../peer/progress.js";
import { contextOf, operationHooks, printResult, withOperations } from "../context.js";
import { UsageError } from "../errors.js";

interface GetFlags {
  output?: string;
  stream?: boolean;
}

export function registerGet(program: Command): void {
  program
    .command("get")
    .description("download what a link names; resumes an interrupted download of the same link")
    .argument("<link>", "peercloud://<cid>#<key> or https://<edge>/d/<cid>#<key>")
    .option("-o, --output <path>", "where to write (an existing directory receives the content's own name); '-' with --stream: stdout")
    .option("--stream", "emit the file in order as chunks arrive (with -o -: to stdout, e.g. into a video player)")
    .action(async (linkText: string, flags: GetFlags, command: Command) => {
      const ctx = contextOf(command);
      parseLink(linkText);
      const toStdout = flags.output === "-";
      if (toStdout && !flags.stream) throw new UsageError("-o - writes to stdout and needs --stream");
      if (flags.stream && !toStdout) throw new UsageError("--stream writes to stdout: use it with -o -");
      // Resolved here: with a daemon, the get runs in another process with another working directory.
      const output = toStdout ? undefined : resolve(flags.output ?? ".");
      const hooks = operationHooks(ctx, "get");
      try {
        const result = await withOperations(ctx, (ops) => ops.get({ link: linkText, output, stream: toStdout }, hooks, toStdout ? process.stdout : undefined));
        hooks.done();
        const summary = `got ${formatBytes(result.bytes)} in ${result.chunks} chunk(s): ${result.fromPeers} from peers, ${result.fromLocal} local, ${result.fromCold} from cold storage`;
        if (toStdout) printResult(ctx, result, summary, ctx.stderr);
        else {
          printResult(ctx, result, result.path);
          if (!ctx.json) ctx.stderr.write(summary + "\n");
        }
      } finally {
        hooks.done();
      }
    });
}
