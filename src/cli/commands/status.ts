/**
 * `peercloud status`: who this peer is, its certificate, whether its daemon
 * runs (and how its directory connection and transfers are doing), its
 * store, and its region's summary with the repair figures
 * (status-region.ts). Works without a daemon (then it reads the home
 * in-process) and without the edge (then the region part says why not).
 */
import type { Command } from "commander";
import { formatBytes } from "../../peer/progress.js";
import type { StatusReport } from "../../peer/operations.js";
import { contextOf, printResult, withOperations } from "../context.js";
import { fetchRegionStatus, formatRegionStatus } from "./status-region.js";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("show this peer's identity, daemon, directory connection, store, and its region's replication and repair")
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextOf(command);
      const report = await withOperations(ctx, (ops) => ops.status());
      // After the local report (which needs no network): the region's view, bounded by a short timeout.
      const region = await fetchRegionStatus(ctx.home);
      printResult(ctx, { ...report, ...region }, [...formatStatus(report), ...formatRegionStatus(region)]);
    });
}

export function formatStatus(r: StatusReport, nowMs = Date.now()): string[] {
  const leftMs = r.certificateExpiresAtMs - nowMs;
  const cert = leftMs > 0 ? `expires ${new Date(r.certificateExpiresAtMs).toISOString()} (in ${formatDuration(leftMs)})` : `EXPIRED ${new Date(r.certificateExpiresAtMs).toISOString()}`;
  const store = r.store;
  const limit = store.limitBytes === null ? "no limit" : `limit ${formatBytes(store.limitBytes)}, ${formatBytes(store.freeBytes ?? 0)} free`;
  const lines = [
    `node     ${r.nodeId}`,
    `region   ${r.region} (roles ${r.roles.join(", ")}${r.hostId ? `; host ${r.hostId}` : ""})`,
    `edge     ${r.edgeUrl} (network ${r.networkId.slice(0, 16)}…)`,
    `cert     ${cert}`,
  ];
  if (r.daemon) {
    const d = r.daemon;
    lines.push(`daemon   running (pid ${d.pid}, up ${formatDuration(nowMs - d.startedAtMs)}), transfer ${d.transferUrl}, directory ${d.directory}`);
    lines.push(`traffic  served ${d.transfer.chunksServed} chunk(s) / ${formatBytes(d.transfer.bytesServed)}, received ${d.transfer.chunksReceived} / ${formatBytes(d.transfer.bytesReceived)}`);
  } else {
    lines.push("daemon   not running (start it with `peercloud peer start`)");
  }
  lines.push(`store    ${store.chunks} chunk(s), ${formatBytes(store.usedBytes)} used (${formatBytes(store.pinnedBytes)} pinned), ${limit}`);
  return lines;
}

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? ` ${s % 60}s` : ""}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
