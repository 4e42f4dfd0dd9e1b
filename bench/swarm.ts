/**
 * `npm run bench:swarm` — distribution time of one file to N peers on an
 * emulated network, against the Kumar–Ross lower bound and against a
 * central HTTP server in the same run and topology (issue 4).
 *
 * Method (each step in its own module under bench/swarm/):
 *  1. Sandbox (sandbox.ts): root is required; the run re-executes itself in
 *     private pid/mount/net namespaces so that nothing it makes can outlive
 *     it, even after SIGKILL. Stale `pcs-*` namespaces and temp dirs of dead
 *     runs are removed first.
 *  2. Topology (topology.ts): a switch namespace with a bridge; hosts
 *     "origin" (the edge, and the HTTP baseline's server), "pub" (the
 *     publisher) and p1…pN, each joined by a veth pair, 10.77.0.0/24.
 *  3. Shaping (shaping.ts): HTB per host and direction; netem delay only
 *     where the kernel has it, recorded either way.
 *  4. Link check (link-check.ts): one TCP stream each way between hosts must
 *     reach the configured rate × TCP payload share within 15 %, or the run
 *     is refused.
 *  5. peercloud (peers.ts, edge-host.ts): the real local edge in "origin",
 *     a real daemon per host. Per run: a fresh random file; the publisher
 *     puts it with 1 replica (its own), the directory must list only the
 *     publisher for every CID, every downloader's store must be empty.
 *  6. Timed phases (phase.ts): preloaded drivers, one "go", per-peer
 *     completion, interface counters, CPU; every copy checked bit-exact.
 *     The HTTP baseline (http-server.ts, http-driver.ts) runs in the same
 *     topology; the two systems alternate their order from run to run.
 *  7. Report (report.ts, chart.ts): medians across runs, table, SVG chart,
 *     `--json` object.
 *
 * Exit status: 0 with results (targets are printed PASS/FAIL and do not
 * change it) or when skipped (not root, no namespaces); 1 when a run fails
 * (link check off, a download fails or times out, a copy is not bit-exact);
 * 2 for a bad flag.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { kumarRossBound } from "./swarm/bound.js";
import { renderChart } from "./swarm/chart.js";
import { cleanup, installCleanupHandlers, interrupt, interruption, registerCleanup, removeStaleRuns } from "./swarm/cleanup.js";
import { capacityProblem, FlagError, parseFlags, USAGE, type BenchFlags } from "./swarm/flags.js";
import { tryRun } from "./swarm/command.js";
import { checkLinks } from "./swarm/link-check.js";
import { emptyDownloaders, publishFile, startPeercloudNetwork } from "./swarm/peercloud-network.js";
import { BitExactError, runPhase, type PhaseResult, type SystemName } from "./swarm/phase.js";
import { REPO_ROOT, spawnTsInNs, type NsProcess } from "./swarm/processes.js";
import { writeRandomFile } from "../test/helpers/files.js";
import { renderText, summarizeSystem, targetsOf, type Report, type RunRecord } from "./swarm/report.js";
import { insideSandbox, RUN_ID_ENV, runInSandbox, sandboxAvailable, skipReason, watchLifeline } from "./swarm/sandbox.js";
import { delayRecord, linkFraming, payloadShare, probeCongestionControl, probeQdiscs, shapeTopology } from "./swarm/shaping.js";
import { buildTopology, hostByName, runPrefix, type HostSpec } from "./swarm/topology.js";

const SWARM_DIR = join(REPO_ROOT, "bench", "swarm");
const HTTP_PORT = 8080;
const DRIVER_READY_TIMEOUT_MS = 120_000;

let jsonMode = false;
const log = (line: string) => process.stderr.write(`[bench:swarm ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** The commit measured and the source files that differ from it (others may be editing the tree while a run goes). */
async function codeVersion(): Promise<Report["code"]> {
  const commit = (await tryRun("git", ["-C", REPO_ROOT, "rev-parse", "--short", "HEAD"]))?.trim() ?? null;
  const status = (await tryRun("git", ["-C", REPO_ROOT, "status", "--porcelain", "--", "src", "workers", "durable-objects"])) ?? "";
  return {
    commit,
    modified: status
      .split("\n")
      .filter(Boolean)
      .map((l) => l.slice(3)),
  };
}

function phaseTimeoutMs(tMinSeconds: number, centralServerSeconds: number): number {
  // A stuck run must fail loudly, but a system as slow as a central server (today's peercloud included) must still finish.
  return (Math.max(4 * tMinSeconds, 1.5 * centralServerSeconds) + 60) * 1000;
}

async function bench(flags: BenchFlags, runId: number): Promise<number> {
  const prefix = runPrefix(runId);
  const code = await codeVersion();
  const tempDir = mkdtempSync(join(tmpdir(), `pcs-${runId}-`));
  registerCleanup({ prefix, tempDir, keepTempDir: flags.keep });
  const logDir = join(tempDir, "logs");
  const dataDir = join(tempDir, "data");
  for (const d of [logDir, dataDir]) mkdirSync(d, { recursive: true });
  log(`run ${runId}${insideSandbox() ? " in a private pid/mount/net sandbox" : ""}: temp dir ${tempDir}${flags.keep ? " (kept)" : ""}`);

  const support = await probeQdiscs(`${prefix}probe`);
  const delay = delayRecord(flags.delayMs, support);
  log(`qdiscs: leaf ${support.leaf}; netem ${support.netem ? "available" : `unavailable (${support.netemError})`}; delay ${delay.note}`);
  const congestionControl = await probeCongestionControl(`${prefix}ccprobe`, flags.tcpCongestionControl);
  log(`TCP congestion control of the hosts: ${congestionControl.note}`);

  const peerNames = flags.upMbit.map((_, i) => `p${i + 1}`);
  const hosts: HostSpec[] = [
    { name: "origin", upMbit: flags.originRateMbit, downMbit: flags.originRateMbit },
    { name: "pub", upMbit: flags.originRateMbit, downMbit: flags.originRateMbit },
    ...peerNames.map((name, i) => ({ name, upMbit: flags.upMbit[i], downMbit: flags.downMbit[i] })),
  ];
  const topology = await buildTopology({ prefix, hosts, tcpCongestionControl: flags.tcpCongestionControl.length > 0 ? congestionControl.applied : undefined });
  await shapeTopology(topology, support, delay);
  const origin = hostByName(topology, "origin");
  const pub = hostByName(topology, "pub");
  const downloaders = peerNames.map((n) => hostByName(topology, n));
  log(`topology: ${topology.hosts.length} hosts + switch, ${topology.subnet}.0/24, shaped`);

  const framing = await linkFraming(downloaders[0]);
  const share = payloadShare(framing.mtuBytes, framing.tcpTimestamps);
  // The source hosts and the slowest-uploading downloader, each both ways.
  const slowest = downloaders.reduce((a, b) => (b.upMbit < a.upMbit ? b : a));
  const linkCheck = await checkLinks(
    [
      [origin, downloaders[0]],
      [pub, slowest === downloaders[0] && downloaders.length > 1 ? downloaders[downloaders.length - 1] : slowest],
    ],
    share,
    { logDir, measureMs: flags.linkCheckSeconds * 1000, warmupMs: (flags.linkCheckSeconds * 1000) / 3 },
  );
  for (const m of linkCheck.measurements) log(`link check ${m.from} → ${m.to}: ${m.measuredGoodputMbit.toFixed(2)} / ${m.expectedGoodputMbit.toFixed(2)} Mbit/s (${m.ratio.toFixed(3)})`);
  if (!linkCheck.ok) {
    const off = linkCheck.measurements.filter((m) => !m.ok).map((m) => `${m.from} → ${m.to} ${m.measuredGoodputMbit.toFixed(2)} Mbit/s vs ${m.expectedGoodputMbit.toFixed(2)} expected`);
    log(`refusing to run: the link check is off by more than ${linkCheck.tolerance * 100} % (${off.join("; ")}); the shaping is not what the bound assumes (or the machine is too loaded)`);
    return 1;
  }

  const fileBytes = flags.fileMib * 2 ** 20;
  const bound = kumarRossBound({ fileBytes, sourceUpMbit: flags.originRateMbit, peerUpMbit: flags.upMbit, peerDownMbit: flags.downMbit, payloadShare: share });
  const timeoutMs = phaseTimeoutMs(bound.tMinSeconds, bound.centralServerSeconds);
  log(`T_min ${bound.tMinSeconds.toFixed(1)} s (${bound.binding}); central-server minimum ${bound.centralServerSeconds.toFixed(1)} s; per-phase timeout ${Math.round(timeoutMs / 1000)} s`);

  const systems: SystemName[] = flags.only ? [flags.only] : ["peercloud", "http"];
  const net = systems.includes("peercloud") ? await startPeercloudNetwork({ origin, pub, downloaders, homesDir: join(tempDir, "homes"), logDir, log }) : null;
  let httpServer: NsProcess | null = null;
  if (systems.includes("http")) {
    httpServer = spawnTsInNs({ name: "http-server", ns: origin.ns, script: join(SWARM_DIR, "http-server.ts"), args: [origin.ip, String(HTTP_PORT), dataDir], logDir });
    await httpServer.waitForJson("stdout", (v) => v.listening === true, 60_000, "its listening line");
  }
  // Whose output tails explain a failed phase: the edge, every current daemon, the HTTP server.
  const contextOf = () => [...(net?.processes() ?? []), ...(httpServer ? [httpServer] : [])];
  const cpuGroups = () => ({
    ...(net
      ? { edge: [net.edge.pid], "publisher daemon": net.publisher.daemon ? [net.publisher.daemon.pid] : [], "downloader daemons": net.downloaders.flatMap((p) => (p.daemon ? [p.daemon.pid] : [])) }
      : {}),
    ...(httpServer ? { "HTTP server": [httpServer.pid] } : {}),
  });
  const upMbit = Object.fromEntries(topology.hosts.map((h) => [h.name, h.upMbit]));

  const runs: RunRecord[] = [];
  for (let index = 1; index <= flags.runs; index++) {
    const order = index % 2 === 1 ? systems : [...systems].reverse();
    const record: RunRecord = { index, order };
    const fileName = `run-${index}.bin`;
    const file = join(dataDir, fileName);
    log(`run ${index}/${flags.runs}: writing ${flags.fileMib} MiB of random data`);
    const sourceSha256 = await writeRandomFile(file, fileBytes, `pcs-${runId}-${index}`);
    const outDir = join(tempDir, "out", `run-${index}`);
    for (const h of downloaders) mkdirSync(join(outDir, h.name), { recursive: true });
    if (index > 1 && net) {
      log("emptying every downloader's store (daemon restart)");
      await emptyDownloaders(net, logDir);
    }
    // What both systems' phases share: the same file, hosts, limits and measurements.
    const common = {
      topology,
      originHosts: ["origin", "pub"],
      fileBytes,
      sourceSha256,
      readyTimeoutMs: DRIVER_READY_TIMEOUT_MS,
      timeoutMs,
      logDir,
      context: contextOf,
      cpuGroups,
      upMbit,
      payloadShare: share,
    };
    for (const system of order) {
      let result: PhaseResult;
      if (system === "peercloud") {
        log(`run ${index}: publisher puts the file (1 replica) and waits for the directory to list it`);
        const info = await publishFile(net!, file, `publish-${index}`, logDir);
        record.publish = info;
        log(`run ${index}: ${info.chunks} chunks (${info.cids} CIDs); peercloud phase: ${net!.downloaders.length} gets at once`);
        result = await runPhase({
          system,
          driverScript: join(SWARM_DIR, "peercloud-driver.ts"),
          downloaders: net!.downloaders.map((p) => ({
            host: p.host,
            config: { home: p.home, link: info.link, output: join(outDir, p.host.name, fileName) },
            output: join(outDir, p.host.name, fileName),
          })),
          ...common,
        });
      } else {
        log(`run ${index}: HTTP baseline: ${downloaders.length} downloads of the whole file from the origin at once`);
        result = await runPhase({
          system,
          driverScript: join(SWARM_DIR, "http-driver.ts"),
          downloaders: downloaders.map((h) => ({
            host: h,
            config: { url: `http://${origin.ip}:${HTTP_PORT}/${fileName}`, output: join(outDir, h.name, fileName) },
            output: join(outDir, h.name, fileName),
          })),
          ...common,
        });
      }
      record[system] = result;
      log(
        `run ${index} ${system}: last completion ${result.lastCompletionSeconds.toFixed(1)} s (${(result.lastCompletionSeconds / bound.tMinSeconds).toFixed(2)} × T_min), origin egress ${result.originEgressRatio.toFixed(2)} × F, CPU saturated ${(result.cpu.saturatedShare * 100).toFixed(0)} % of seconds; all ${result.downloaders.length} copies bit-exact`,
      );
    }
    await rm(file, { force: true });
    await rm(outDir, { recursive: true, force: true });
    runs.push(record);
  }

  const summary = (s: SystemName) =>
    systems.includes(s)
      ? summarizeSystem(
          runs.map((r) => r[s]!),
          bound.tMinSeconds,
          peerNames,
        )
      : undefined;
  const peercloud = summary("peercloud");
  const http = summary("http");
  const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
  const chartPath = resolve(flags.chart ?? join(REPO_ROOT, "bench-results", `swarm-${stamp}.svg`));
  const report: Report = {
    benchmark: "swarm",
    date: new Date().toISOString(),
    code,
    fileBytes,
    peers: flags.peers,
    runs: flags.runs,
    tMinSeconds: bound.tMinSeconds,
    bound,
    payloadShare: share,
    rates: { sourceMbit: flags.originRateMbit, upMbit: flags.upMbit, downMbit: flags.downMbit },
    shaping: { discipline: "htb", leaf: support.leaf, delay, tcpCongestionControl: congestionControl },
    linkCheck,
    cliStartupSeconds: net?.cliStartupSeconds ?? null,
    ...(peercloud ? { peercloud } : {}),
    ...(http ? { http } : {}),
    targets: targetsOf(peercloud),
    chart: chartPath,
    runsDetail: runs,
  };
  mkdirSync(resolve(chartPath, ".."), { recursive: true });
  writeFileSync(
    chartPath,
    renderChart({
      title: `peercloud swarm vs central HTTP server: ${flags.peers} peers, ${flags.fileMib} MiB`,
      subtitle: `peers ${flags.upMbit.every((r) => r === flags.upMbit[0]) ? flags.upMbit[0] : "mixed"} Mbit/s up, source ${flags.originRateMbit} Mbit/s; ${flags.runs} run(s), median bold; ${report.date.slice(0, 16)}Z`,
      peers: flags.peers,
      tMinSeconds: bound.tMinSeconds,
      centralServerSeconds: bound.centralServerSeconds,
      series: [
        ...(peercloud ? [{ label: "peercloud", color: "#1f6fd1", runs: runs.map((r) => r.peercloud!.downloaders.map((d) => d.completionSeconds)), medianRun: peercloud.medianRun }] : []),
        ...(http ? [{ label: "HTTP from the origin", color: "#e07b00", runs: runs.map((r) => r.http!.downloaders.map((d) => d.completionSeconds)), medianRun: http.medianRun }] : []),
      ],
    }),
  );
  const text = renderText({ ...report, chart: relative(process.cwd(), chartPath) || chartPath });
  if (jsonMode) {
    process.stderr.write("\n" + text);
    process.stdout.write(JSON.stringify(report) + "\n");
  } else process.stdout.write("\n" + text);
  return 0;
}

async function main(): Promise<number> {
  let flags: BenchFlags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (error) {
    if (error instanceof FlagError) {
      process.stderr.write(`bench:swarm: ${error.message} (--help lists the flags)\n`);
      return 2;
    }
    throw error;
  }
  jsonMode = flags.json;
  if (flags.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  const capacity = capacityProblem(flags);
  if (capacity) {
    process.stderr.write(`bench:swarm: ${capacity}\n`);
    return 2;
  }
  if (!insideSandbox()) {
    const reason = skipReason();
    if (reason) {
      process.stderr.write(`bench:swarm: skipped: ${reason}\n`);
      if (flags.json) process.stdout.write(JSON.stringify({ benchmark: "swarm", skipped: true, reason }) + "\n");
      return 0;
    }
    const stale = await removeStaleRuns();
    if (stale.length) log(`removed leftovers of dead runs: ${stale.join(", ")}`);
    if (flags.sandbox && sandboxAvailable()) return runInSandbox(process.pid);
    if (flags.sandbox) log("unshare cannot make a private pid/mount/net sandbox here; running without it (cleanup relies on this process)");
  }
  const runId = Number(process.env[RUN_ID_ENV] ?? process.pid);
  installCleanupHandlers(log);
  if (insideSandbox()) {
    watchLifeline(() => interrupt("SIGTERM", "the launching process went away", log));
  }
  try {
    return await bench(flags, runId);
  } catch (error) {
    if (interruption()) return interruption() === "SIGINT" ? 130 : 143;
    log(`${error instanceof BitExactError ? "NOT BIT-EXACT: " : "failed: "}${(error as Error).stack ?? String(error)}`);
    return 1;
  } finally {
    log("cleaning up (processes, namespaces, temp files)");
    await cleanup();
  }
}

const code = await main();
// Let stdout drain, then exit even if a handle lingers.
process.stdout.write("", () => process.exit(code));
