/**
 * The human-readable report of `npm run bench:edge`: one section per
 * question the issue asks (joining, messages/s, latency, memory, per-message
 * costs, wake-ups, the bill, where sharding starts), PASS/FAIL next to the
 * targets, and notes when the machine was not quiet enough to trust the
 * absolute rates.
 */
import { availableParallelism } from "node:os";
import type { BenchResult } from "../edge.js";
import { costTable, mib, num, section, verdict, type Row } from "./report.js";

type Latency = BenchResult["latencyAtRest"];

const lat = (l: Latency, k: "find_node" | "find_providers") => `${num(l[k].p50Ms, 2)} / ${num(l[k].p99Ms, 2)} ms`;
const errs = (e: Record<string, number>) => (Object.keys(e).length ? `errors ${JSON.stringify(e)}` : "");
const rate = (count: number, ms: number) => num(ms > 0 ? (count * 1000) / ms : 0);

function calibrationRow(label: string, c: BenchResult["calibration"][keyof BenchResult["calibration"]], rateNote = "msgs/s"): Row {
  return [
    label,
    `${num(c.wakesPerMsg, 2)} wakes`,
    `${num(c.msgsPerSec)} ${rateNote}, workerd ${num(c.workerdCpuUsPerMsg)} µs CPU; rows read ${num(c.rowsReadPerMsg, 1)}, written ${num(c.rowsWrittenPerMsg, 1)} ${errs(c.errors)}`,
  ];
}

export function renderText(r: BenchResult): string {
  const cores = availableParallelism();
  const t = r.targets;
  const out: string[] = [];
  out.push(`peercloud edge bench — one region object in local workerd (Miniflare), ${r.config.node}, compat ${r.config.compatibilityDate}, object state in ${r.config.stateDir}`);
  out.push(
    section("joining", [
      [
        "peers bootstrapped (POST /v1/bootstrap)",
        num(r.join.bootstrapped),
        `${num(r.join.bootstrapMs / 1000, 1)} s, ${rate(r.join.bootstrapped, r.join.bootstrapMs)}/s${r.join.bootstrapRetries ? `, ${r.join.bootstrapRetries} transport retries` : ""}`,
      ],
      ["peers connected (signed WebSocket)", num(r.join.connected), verdict(t.connectedPeers.pass, `${num(t.connectedPeers.target)} in one object`)],
      ["time to connect them", `${num(r.join.connectMs / 1000, 1)} s`, `${rate(r.join.connected, r.join.connectMs)}/s; welcomed ${num(r.join.welcomed)}`],
      ["region object instances created", num(r.join.objectConstructions), "(1 = never evicted or restarted during the run)"],
    ]),
  );
  const sat = r.saturated;
  const echo = r.echo.saturated;
  out.push(
    section("messages/s (full speed, mix: 90% status+announce(20 CIDs), 5% find_node, 5% find_providers)", [
      ["region directory", num(sat.msgsPerSec), `${verdict(t.msgsPerSec.pass, `${num(t.msgsPerSec.target)}/s`)} ${errs(sat.errors)}${sat.lost ? ` lost ${sat.lost}` : ""}`],
      [
        "echo baseline (same workerd)",
        num(echo.msgsPerSec),
        `${num(r.echo.connected)} sockets; cores workerd / client / others ${num(echo.workerdCores, 2)} / ${num(echo.nodeCores, 2)} / ${num(echo.otherProcessesCores, 2)}${echo.lost ? `, lost ${echo.lost}` : ""}`,
      ],
      ["ratio directory / echo", num(r.echo.ratioDirectoryToEcho, 3), ""],
      ["workerd CPU per message (directory / echo)", `${num(sat.cpuUsPerMsg)} / ${num(echo.cpuUsPerMsg)} µs`, ""],
      [
        "cores busy at full speed (workerd / client / others)",
        `${num(sat.workerdCores, 2)} / ${num(sat.nodeCores, 2)} / ${num(sat.otherProcessesCores, 2)}`,
        `of ${cores} cores; "others" is unrelated load on this machine`,
      ],
      [
        `paced at ${num(t.pacedMsgsPerSec.target)}/s for ${r.config.pacedMs / 1000} s`,
        num(r.paced.msgsPerSec),
        `${verdict(t.pacedMsgsPerSec.pass, "keeps up")}${r.paced.lost ? ` lost ${r.paced.lost}` : ""} ${errs(r.paced.errors)}`,
      ],
    ]),
  );
  const paced = num(t.pacedMsgsPerSec.target);
  out.push(
    section("latency p50 / p99, request → answer on the socket", [
      ["FIND_NODE at rest", lat(r.latencyAtRest, "find_node"), `echo at rest ${lat(r.echo.latencyAtRest, "find_node")}`],
      ["FIND_PROVIDERS at rest", lat(r.latencyAtRest, "find_providers"), ""],
      [`FIND_NODE at ${paced} msg/s`, lat(r.paced.latency, "find_node"), ""],
      [`FIND_PROVIDERS at ${paced} msg/s`, lat(r.paced.latency, "find_providers"), ""],
      ["FIND_NODE at full speed", lat(sat.latency, "find_node"), `(queued behind ≤ ${r.config.window} units)`],
      ["FIND_PROVIDERS at full speed", lat(sat.latency, "find_providers"), ""],
    ]),
  );
  const m = r.memory;
  out.push(
    section("memory (workerd RSS, sum over its processes)", [
      ["idle", mib(m.workerdRssIdleBytes)],
      [
        `after ${num(r.join.bootstrapped)} registrations`,
        mib(m.workerdRssBootstrappedBytes),
        `${num(m.rssPerRegisteredPeerBytes / 1024, 1)} KiB per peer, incl. ${num(m.replayGuardObjects)} ReplayGuard shards`,
      ],
      [`after ${num(r.join.connected)} sockets`, mib(m.workerdRssConnectedBytes), `${num(m.rssPerSocketBytes / 1024, 1)} KiB per socket`],
      [`with ${num(r.echo.connected)} echo sockets too`, mib(m.workerdRssEchoConnectedBytes), `${num(m.rssPerEchoSocketBytes / 1024, 1)} KiB per echo socket`],
      ["after the load (echo sockets closed)", mib(m.workerdRssAfterLoadBytes)],
      ["SQLite database of the region", mib(r.counters.RegionDirectory?.databaseBytes ?? 0), `${num(r.storage.bytesPerPeer)} B/peer, ${num(r.storage.bytesPerReplica)} B/replica row`],
    ]),
  );
  const c = r.calibration;
  out.push(
    section("per message (calibration: one per socket, object counters before/after)", [
      calibrationRow("status report (+ find_node barrier)", c.status, "msgs/s (pairs)"),
      calibrationRow("announce (20 CIDs)", c.announce),
      calibrationRow("re-announce (same 20 CIDs again)", c.reannounce),
      calibrationRow("find_node", c.find_node),
      calibrationRow("find_providers", c.find_providers),
      ["connect (directory + replay guard)", `${num(r.storage.rowsWrittenPerConnect, 1)} rows written`, ""],
    ]),
  );
  const w = r.wakes;
  const s = r.steady;
  out.push(
    section("wake-ups (handler invocations of the region object)", [
      ["pings sent / pongs", `${num(r.pings.sent)} / ${num(r.pings.pongs)}`, `${num(r.pings.elapsedMs)} ms`],
      ["object wake-ups by the pings", num(r.pings.wakes), `${verdict(t.pingWakes.pass, "0")}; alarms meanwhile ${num(r.pings.alarmsMeanwhile)}`],
      ["background heartbeat pings during the run", num(r.pings.backgroundHeartbeatPings), `(every socket every ${r.params.heartbeatIntervalMs / 1000} s)`],
      ["echo: pings / pongs / wake-ups", `${num(r.echo.pings.sent)} / ${num(r.echo.pings.pongs)} / ${num(r.echo.pings.wakes)}`, ""],
      [`pings per peer-hour (every ${r.params.heartbeatIntervalMs / 1000} s)`, num(w.pingsPerPeerHour), `→ ${num(w.perPeerHourFromPings, 2)} wakes`],
      [`status reports per peer-hour (every ${r.params.statusIntervalMs / 1000} s)`, num(w.statusPerPeerHour), `→ ${num(w.perPeerHourFromStatus, 2)} wakes`],
      [
        `alarms per object-hour (${num(s.alarms)} in ${num(s.seconds)} s of steady state)`,
        num(w.alarmsPerObjectHour, 1),
        `→ ${num(w.perPeerHourFromAlarms, 4)} wakes per peer-hour at ${num(r.join.connected)} peers`,
      ],
      ["wake-ups per peer per hour, steady state (from the rates above)", num(w.perPeerHourProtocol, 2), "(+ announcements and lookups as the peer's usage makes them)"],
      [
        `measured in ${num(s.seconds)} s of steady state`,
        num(s.wakesPerPeerHour, 2),
        `${num(s.wakes)} wake-ups (${num(s.messages)} messages, ${num(s.alarms)} alarms) for ${num(s.statusReportsSent)} status reports; rows written ${num(s.rowsWrittenPerPeerHour, 1)}/peer-h`,
      ],
    ]),
  );
  const a = r.assumptions;
  for (const b of r.bills) {
    out.push(
      `monthly Cloudflare bill, ${num(b.peers)} peers, busy network (${a.regions} regions; per peer: ${a.announcesPerPeerHour} announce of 20 CIDs and ${a.lookupsPerPeerHour} lookups per hour, ${a.reconnectsPerPeerDay} reconnect per day, ${num(a.chunksPerPeer)} chunks)\n${costTable(b.lines, b.totalUsd)}`,
    );
  }
  out.push(
    section(
      "quiet network (one 20-CID announce per peer-day, one lookup per peer-hour): monthly totals",
      r.quietBills.map((b): Row => {
        const rows = b.lines.find((l) => l.item === "DO SQLite rows written");
        return [`${num(b.peers)} peers`, `$${num(b.totalUsd, 2)}`, `of which SQLite rows written ${rows ? `$${num(rows.usd, 2)} (${num(rows.quantity / 1e6, 1)} M rows)` : "–"}`];
      }),
    ),
  );
  out.push(`R2 cold tier per TiB kept there (1 MiB chunks, 1 TiB/month served from R2)\n${costTable(r.r2.lines, r.r2.totalUsd)}`);
  const sh = r.sharding;
  out.push(
    section("where one object stops being enough", [
      ["peers per object at half the measured rate", num(sh.peersPerObjectAtHalfMeasuredRate), `(${num(sh.msgsPerPeerHour)} msgs per peer-hour)`],
      ["… at half Cloudflare's 1,000 req/s soft limit", num(sh.peersPerObjectAtHalfCloudflareSoftLimit), ""],
      ["JS heap per peer of the in-memory view (V8)", `${num(sh.heapBytesPerPeer)} B`, `→ ${num(sh.peersPerObjectInHalfAnIsolate)} peers in 64 MB (half an isolate)`],
      ["object time to absorb a reconnect storm, per 10k peers", `${num(sh.reconnectStormObjectSecondsPer10kPeers)} s`, `(${num(a.chunksPerPeer)} CIDs re-announced per peer)`],
      ["run time", `${num(r.runSeconds)} s`, ""],
    ]),
  );
  if (echo.nodeCores > 0.8) {
    out.push(
      `note: the client itself used ${num(echo.nodeCores, 2)} cores during the echo run: the echo baseline is partly the client's limit, so it understates workerd and the directory / echo ratio is an upper bound.`,
    );
  }
  if (sat.otherProcessesCores > 0.25 || echo.otherProcessesCores > 0.25) {
    out.push(
      `note: other processes used ${num(sat.otherProcessesCores, 2)} (directory run) and ${num(echo.otherProcessesCores, 2)} (echo run) of ${cores} cores; rates measured under such load are depressed by it.`,
    );
  }
  const unmatched = r.socketErrors.unmatchedErrors;
  if (Object.keys(unmatched).length || r.socketErrors.unexpectedCloses) {
    out.push(`socket anomalies: errors without id ${JSON.stringify(unmatched)}, unexpected closes ${r.socketErrors.unexpectedCloses}`);
  }
  return out.join("\n\n") + "\n";
}
