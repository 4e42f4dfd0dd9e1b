/**
 * What every command shares: the global options (`--home`, `--json`), where
 * output goes, progress reporting, Ctrl-C, and the choice between the
 * running daemon and an in-process session.
 *
 * Output rules: stdout carries the result (a link, a path, a table, or one
 * JSON object with `--json`) — or the file itself with `get -o - --stream`;
 * progress (a bar on a TTY, JSON lines with `--json`), warnings and logs go
 * to stderr, so `LINK=$(peercloud put f)` and `peercloud --json put f | jq`
 * both work.
 */
import type { Command } from "commander";
import { PeercloudError } from "../core/errors.js";
import { PeerHome, resolveHomeDir } from "../peer/home.js";
import type { OperationHooks, PeerOperations } from "../peer/operations.js";
import { createProgressReporter } from "../peer/progress.js";

export interface CliContext {
  json: boolean;
  home: PeerHome;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export function contextOf(command: Command): CliContext {
  const globals = command.optsWithGlobals() as { home?: string; json?: boolean };
  return { json: globals.json === true, home: new PeerHome(resolveHomeDir(globals.home)), stdout: process.stdout, stderr: process.stderr };
}

/** The result: one JSON object with --json, else the human lines. */
export function printResult(ctx: CliContext, json: unknown, human: string | string[], to: NodeJS.WritableStream = ctx.stdout): void {
  if (ctx.json) to.write(JSON.stringify(json) + "\n");
  else for (const line of Array.isArray(human) ? human : [human]) to.write(line + "\n");
}

export function warn(ctx: CliContext, message: string): void {
  if (ctx.json) ctx.stderr.write(JSON.stringify({ type: "warning", message }) + "\n");
  else ctx.stderr.write(`peercloud: warning: ${message}\n`);
}

/**
 * Hooks for a long operation: progress on stderr, warnings, and an
 * AbortSignal fired by the first Ctrl-C (the second exits at once).
 */
export function operationHooks(ctx: CliContext, label: string): OperationHooks & { done(): void } {
  const progress = createProgressReporter({ mode: ctx.json ? "json" : "auto", stream: ctx.stderr, label });
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    abort.abort(new PeercloudError("interrupted", "interrupted by a signal (run a get again to resume it)", 499));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: abort.signal,
    onProgress: progress.update,
    onWarning: (message) => warn(ctx, message),
    done() {
      progress.stop();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/**
 * Runs `fn` against the home's daemon if one runs, else in this process
 * (holding the home's lock). Each way is imported only when taken: the
 * in-process session is the whole client stack (store, transfer, download,
 * ingest), which a command served by the daemon never needs to load.
 */
export async function withOperations<T>(ctx: CliContext, fn: (ops: PeerOperations, via: "daemon" | "local") => Promise<T>): Promise<T> {
  const daemon = await ctx.home.runningDaemon();
  const ops: PeerOperations = daemon
    ? new (await import("../peer/control-client.js")).ControlClient(daemon.controlSocket)
    : await (await import("../peer/client-session.js")).ClientSession.open(ctx.home);
  try {
    return await fn(ops, daemon ? "daemon" : "local");
  } finally {
    await ops.close();
  }
}
