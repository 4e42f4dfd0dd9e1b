/**
 * `peercloud peer start [--port P] [--storage-limit SIZE] [--host H]
 * [--advertise URL]`: runs the daemon in the foreground until SIGINT or
 * SIGTERM (see src/peer/daemon.ts). Once it serves, it prints one ready line
 * — with `--json`, `{"event":"ready","transferUrl","nodeId",…}` on stdout,
 * which scripts and end-to-end tests wait for — and then one line per
 * notable event (directory connected/lost, certificate renewed, scrub
 * results, warnings): JSON lines on stdout with `--json`, text on stderr
 * without. Flags override config.json for this run only.
 *
 * `peercloud peer stop` asks a running daemon to stop (SIGTERM) and waits.
 */
import { InvalidArgumentError, type Command } from "commander";
import { PeercloudError } from "../../core/errors.js";
import type { DaemonEvent } from "../../peer/daemon.js";
import { processAlive } from "../../peer/home.js";
import { formatBytes } from "../../peer/progress.js";
import { contextOf, printResult, type CliContext } from "../context.js";
import { parseSize } from "../size.js";

interface StartFlags {
  port?: number;
  storageLimit?: number;
  maxUploadRate?: number;
  host?: string;
  advertise?: string;
}

export function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new InvalidArgumentError("must be a port number from 0 to 65535");
  return Number(text);
}

function parseSizeOption(text: string): number {
  try {
    const bytes = parseSize(text, "size");
    if (bytes < 1) throw new InvalidArgumentError("must be more than 0 bytes");
    return bytes;
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    throw new InvalidArgumentError((error as Error).message);
  }
}

export function parseAdvertise(text: string): string {
  if (!/^https?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(text)) throw new InvalidArgumentError("must be http(s)://host:port");
  return text;
}

export function registerPeer(program: Command): void {
  const peer = program.command("peer").description("run this home's peer daemon");
  peer
    .command("start")
    .description("store and serve chunks, stay connected to the region directory (foreground; Ctrl-C stops)")
    .option("--port <port>", "transfer server port (default: config.json's, set by init)", parsePort)
    .option("--storage-limit <size>", "most chunk bytes to keep, e.g. 200GiB or 500MB (default: config.json's, else unlimited)", parseSizeOption)
    .option("--max-upload-rate <size>", "most bytes per second to send to other peers, all together, e.g. 5MB or 800KiB (default: unlimited)", parseSizeOption)
    .option("--host <address>", "interface to listen on: 127.0.0.1 (this machine only) or 0.0.0.0 (default)")
    .option("--advertise <url>", "transfer URL other peers should use (behind NAT or a proxy), e.g. http://203.0.113.7:7070", parseAdvertise)
    .action(async (flags: StartFlags, command: Command) => {
      const ctx = contextOf(command);
      // The daemon's modules (transfer server, directory WebSocket, control socket) load only for this command.
      const { PeerDaemon } = await import("../../peer/daemon.js");
      const daemon = await PeerDaemon.start({
        home: ctx.home,
        port: flags.port,
        host: flags.host,
        advertiseUrl: flags.advertise,
        storageLimitBytes: flags.storageLimit,
        maxUploadBytesPerSecond: flags.maxUploadRate,
        onEvent: (event) => printEvent(ctx, event),
      });
      const stop = () => void daemon.stop();
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
      const s = daemon.info();
      printResult(
        ctx,
        { event: "ready", transferUrl: s.transferUrl, nodeId: s.nodeId, region: s.region, controlSocket: s.controlSocket, pid: process.pid },
        `peer ${s.nodeId.slice(0, 16)}… (region ${s.region}) serving at ${s.transferUrl}; store limit ${s.storageLimitBytes === null ? "none" : formatBytes(s.storageLimitBytes)}; Ctrl-C stops`,
      );
      await daemon.stopped;
      printResult(ctx, { event: "stopped" }, "peer stopped", ctx.json ? ctx.stdout : ctx.stderr);
    });

  peer
    .command("stop")
    .description("stop the daemon running in this home and wait until it has")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const pid = await ctx.home.runningPid();
      if (pid === null) throw new PeercloudError("peer_not_running", `no peer daemon runs in ${ctx.home.dir}`, 409);
      process.kill(pid, "SIGTERM");
      // Waiting on another process has no event to await; poll its existence with a deadline.
      const deadline = Date.now() + 30_000;
      while (processAlive(pid)) {
        if (Date.now() > deadline) throw new PeercloudError("peer_stop_timeout", `the daemon (pid ${pid}) did not stop within 30 s`, 500);
        await new Promise((r) => setTimeout(r, 100));
      }
      printResult(ctx, { stopped: pid }, `stopped the daemon (pid ${pid})`);
    });
}

function printEvent(ctx: CliContext, event: DaemonEvent): void {
  if (ctx.json) ctx.stdout.write(JSON.stringify(event) + "\n");
  else ctx.stderr.write(`peercloud: ${event.event}${event.message ? `: ${event.message}` : ""}\n`);
}
