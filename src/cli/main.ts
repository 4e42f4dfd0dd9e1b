/**
 * The `peercloud` command (bin/peercloud.js runs this file through tsx).
 *
 * commander parses; each command lives in `commands/`. Every failure —
 * commander's own usage errors included — leaves through the single
 * `reportError` (errors.ts): one line on stderr, or a JSON error object on
 * stdout with `--json`, and exit status 2 (bad input) or 1 (run time).
 */
import { Command, CommanderError } from "commander";
import { registerGet } from "./commands/get.js";
import { registerInit } from "./commands/init.js";
import { registerLs } from "./commands/ls.js";
import { registerPeer } from "./commands/peer.js";
import { registerPin } from "./commands/pin.js";
import { registerPut } from "./commands/put.js";
import { registerStatus } from "./commands/status.js";
import { registerUnpin } from "./commands/unpin.js";
import { reportError } from "./errors.js";

export const VERSION = "0.1.0";

export function buildProgram(): Command {
  const program = new Command("peercloud")
    .description("A P2P cloud: put files as encrypted, content-addressed chunks on peers; get them back from anywhere.")
    .version(VERSION, "-V, --version")
    .option("--home <dir>", "peer home directory (default $PEERCLOUD_HOME or ~/.peercloud)")
    .option("--json", "machine-readable output (one JSON object; progress as JSON lines on stderr)")
    .exitOverride()
    // Errors are printed by reportError, once; help shown because of an error is suppressed in favour of that line.
    .configureOutput({ outputError: () => {}, writeErr: () => {} })
    .showSuggestionAfterError(true);
  registerInit(program);
  registerPeer(program);
  registerPut(program);
  registerGet(program);
  registerStatus(program);
  registerLs(program);
  registerUnpin(program);
  registerPin(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (thrown) {
    let error = thrown;
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return 0;
      if (error.code === "commander.help" || error.code === "commander.executeSubCommandAsync") {
        error = new CommanderError(2, "commander.missingArgument", "missing command; run `peercloud --help` to list them");
      }
    }
    const json = argv.includes("--json");
    return reportError(error, { json, stdout: process.stdout, stderr: process.stderr });
  }
}

const exitCode = await main(process.argv.slice(2));
// Let stdout drain (a piped `get -o - --stream` may still be flushing), then exit even if a socket lingers.
process.stdout.write("", () => process.exit(exitCode));
