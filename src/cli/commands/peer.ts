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
 *
 * `peercloud peer drain [--stop] [--cancel]` moves this storage peer's
 * replicas elsewhere before it leaves for good (src/peer/drain-client.ts):
 * it tells the region directory through the edge, signed with the home's
 * identity, shows progress (a bar on a TTY, JSON lines on stderr with
 * --json), and ends — one result line, or one JSON object on stdout — once
 * shutting the peer down loses nothing; `--stop` then stops the daemon. The
 * daemon must run meanwhile: its copies are the repair sources. Ctrl-C ends
 * the wait only (the peer stays draining); `--cancel` undoes a drain.
 */
import { InvalidArgumentError, type Command } from "commander";
import { PeercloudError } from "../../core/errors.js";
import type { DaemonEvent } from "../../peer/daemon.js";
import { processAlive } from "../../peer/home.js";
import { formatBytes } from "../../peer/progress.js";
import { contextOf, printResult, warn, type CliContext } from "../context.js";
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
      const pid = await stopDaemon(ctx);
      printResult(ctx, { stopped: pid }, `stopped the daemon (pid ${pid})`);
    });

  peer
    .command("drain")
    .description("move this peer's replicas to other peers before it leaves for good; ends when shutting it down loses nothing")
    .option("--stop", "stop the daemon once the drain is done")
    .option("--cancel", "cancel a drain: this peer's replicas count again and it takes new ones")
    .option("--poll <ms>", "time between progress checks in ms (default 1000)", (t) => {
      if (!/^\d{1,6}$/.test(t) || Number(t) < 50) throw new InvalidArgumentError("must be a number of milliseconds, at least 50");
      return Number(t);
    })
    .action(async (flags: { stop?: boolean; cancel?: boolean; poll?: number }, command: Command) => {
      const ctx = contextOf(command);
      const { config, identity } = await ctx.home.load();
      if (!config.roles.includes("service")) {
        throw new PeercloudError("not_a_storage_peer", `this peer's roles are ${config.roles.join(", ")}: only peers with the service role store replicas, so there is nothing to drain`, 409);
      }
      const { DrainClient, drainUntilDone } = await import("../../peer/drain-client.js");
      const client = new DrainClient({ edgeUrl: config.edgeUrl, region: config.region, secretKey: identity.secretKey, certificate: config.certificate });
      if (flags.cancel) {
        const progress = await client.set(false);
        printResult(ctx, { ...progress, cancelled: true }, `drain cancelled: peer ${progress.nodeId.slice(0, 16)}… takes replicas again (${progress.heldChunks} pinned chunk(s) held)`);
        return;
      }
      if ((await ctx.home.runningPid()) === null) {
        warn(ctx, "no daemon runs in this home: its replicas cannot be copied from here, and the drain ends only if other peers or R2 hold them");
      }
      const { createDrainReporter } = await import("../../peer/drain-progress.js");
      const reporter = createDrainReporter(ctx.json ? "json" : ctx.stderr.isTTY ? "bar" : "none", ctx.stderr);
      const abort = new AbortController();
      const onSignal = () => abort.abort(new PeercloudError("interrupted", "stopped waiting; the peer stays draining (`peercloud peer drain --cancel` undoes it)", 499));
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const startMs = Date.now();
      let initialRemainingBytes: number | null = null;
      let progress;
      try {
        progress = await drainUntilDone(client, {
          pollMs: flags.poll,
          signal: abort.signal,
          onProgress: (p) => {
            initialRemainingBytes ??= p.remainingBytes;
            reporter.update(p);
          },
        });
      } finally {
        reporter.stop();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      const durationMs = Date.now() - startMs;
      const stopped = flags.stop ? await stopDaemon(ctx, true) : null;
      printResult(
        ctx,
        { ...progress, durationMs, movedBytes: initialRemainingBytes ?? 0, stopped },
        `drained peer ${progress.nodeId.slice(0, 16)}… in ${(durationMs / 1000).toFixed(1)} s: every one of its ${progress.heldChunks} pinned chunk(s) has enough replicas elsewhere${
          stopped !== null ? `; stopped the daemon (pid ${stopped})` : flags.stop ? "; no daemon was running" : "; it can be stopped now (peercloud peer stop)"
        }`,
      );
    });
}

/** SIGTERM to the home's daemon and wait until it is gone; its pid (null with `quiet` when none runs). */
async function stopDaemon(ctx: CliContext, quiet?: false): Promise<number>;
async function stopDaemon(ctx: CliContext, quiet: true): Promise<number | null>;
async function stopDaemon(ctx: CliContext, quiet = false): Promise<number | null> {
  const pid = await ctx.home.runningPid();
  if (pid === null) {
    if (quiet) return null;
    throw new PeercloudError("peer_not_running", `no peer daemon runs in ${ctx.home.dir}`, 409);
  }
  process.kill(pid, "SIGTERM");
  // Waiting on another process has no event to await; poll its existence with a deadline.
  const deadline = Date.now() + 30_000;
  while (processAlive(pid)) {
    if (Date.now() > deadline) throw new PeercloudError("peer_stop_timeout", `the daemon (pid ${pid}) did not stop within 30 s`, 500);
    await new Promise((r) => setTimeout(r, 100));
  }
  return pid;
}

function printEvent(ctx: CliContext, event: DaemonEvent): void {
  if (ctx.json) ctx.stdout.write(JSON.stringify(event) + "\n");
  else ctx.stderr.write(`peercloud: ${event.event}${event.message ? `: ${event.message}` : ""}\n`);
}
