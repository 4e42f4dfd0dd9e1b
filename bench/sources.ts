/**
 * `npm run bench:sources` — the "Real check" of issue 5: with real peer
 * processes on shaped links, a multi-source download asks each source in
 * proportion to what it delivers, so a slow source ends up serving
 * proportionally fewer chunks, and the download still finishes near the
 * ideal time F / Σ source rates.
 *
 * Method (the swarm bench's modules under bench/swarm/ do the network work):
 *  1. Sandbox (swarm/sandbox.ts): root is required; the run re-executes
 *     itself in private pid/mount/net namespaces, so nothing it makes can
 *     outlive it; stale `pcs-*` namespaces and temp dirs of dead runs go first.
 *  2. Topology (swarm/topology.ts, swarm/shaping.ts): hosts "origin" (the
 *     edge), "pub" (the publisher), s1…sK (the sources, each with its own
 *     upload rate, `--source-rates`) and "dl" (the downloader, fast downlink
 *     `--down-mbit`), HTB-shaped both ways.
 *  3. Link check (swarm/link-check.ts): one TCP stream from each source to
 *     the downloader must reach rate × TCP payload share within 15 %, or the
 *     run is refused.
 *  4. peercloud (sources/network.ts): the real local edge, the publisher and
 *     the sources as service daemons, the downloader as a client-only daemon.
 *  5. Per run: a fresh random file; the publisher's daemon is started, puts
 *     it with K + 1 replicas (swarm/publish.ts with `holders`: placement must pick exactly
 *     the K sources, and the directory must list every source for every
 *     CID), and is stopped — so the downloader has exactly the K sources
 *     (the stopped publisher is listed as suspect for a while; its bytes sent
 *     are reported and checked to be ~0). The downloader's store is emptied.
 *  6. Timed phase (swarm/phase.ts with swarm/peercloud-driver.ts): the get
 *     through the downloader's daemon, the interface counters of every host
 *     around it, the copy checked bit-exact.
 *  7. Report (sources/report.ts): per source its bytes sent (kernel
 *     counters) and share of bytes against its share of rate, completion /
 *     ideal; medians of `--runs`; checks printed PASS/FAIL; `--json`.
 *
 * Exit status: 0 with results (checks do not change it) or when skipped
 * (not root, no namespaces); 1 when a run fails (link check off, the put or
 * the get fails or times out, a copy is not bit-exact); 2 for a bad flag.
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeRandomFile } from "../test/helpers/files.js";
import { FlagError, parseSourcesFlags, USAGE, type SourcesFlags } from "./sources/flags.js";
import { startSourcesNetwork } from "./sources/network.js";
import { checksOf, idealSeconds, renderText, runResult, summarize, type PublishInfo, type RunResult, type SourcesReport } from "./sources/report.js";
import { cleanup, installCleanupHandlers, interrupt, interruption, registerCleanup, removeStaleRuns } from "./swarm/cleanup.js";
import { tryRun } from "./swarm/command.js";
import { DEFAULT_TOLERANCE, measureStream } from "./swarm/link-check.js";
import { PEER_TIMEOUTS } from "./swarm/peercloud-network.js";
import { resetPeer, startDaemon, stopDaemon } from "./swarm/peers.js";
import { BitExactError, runPhase } from "./swarm/phase.js";
import { REPO_ROOT, runToEnd } from "./swarm/processes.js";
import { insideSandbox, RUN_ID_ENV, runInSandbox, sandboxAvailable, skipReason, watchLifeline } from "./swarm/sandbox.js";
import { delayRecord, linkFraming, payloadShare, probeQdiscs, shapeTopology } from "./swarm/shaping.js";
import { buildTopology, hostByName, runPrefix, type HostSpec } from "./swarm/topology.js";

/** Line rates of the hosts that are not under test: fast enough never to be the bottleneck, low enough to stay link-bound on 2 cores. */
const ORIGIN_MBIT = 100;
const PUBLISHER_UP_MBIT = 200;
const SOURCE_DOWN_MBIT = 100;
const DOWNLOADER_UP_MBIT = 100;
const DRIVER_READY_TIMEOUT_MS = 120_000;
const PUBLISH_ANNOUNCE_TIMEOUT_MS = 120_000;
/** Payload a link-check stream must carry at least (a 64 KB counting error stays under ~4 %). */
const LINK_CHECK_MIN_BYTES = 1.5 * 2 ** 20;

let jsonMode = false;
const log = (line: string) => process.stderr.write(`[bench:sources ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

/** The commit measured and the source files that differ from it (others may be editing the tree while a run goes). */
async function codeVersion(): Promise<SourcesReport["code"]> {
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

async function bench(flags: SourcesFlags, runId: number): Promise<number> {
  const prefix = runPrefix(runId);
  const code = await codeVersion();
  const tempDir = mkdtempSync(join(tmpdir(), `pcs-${runId}-`));
  registerCleanup({ prefix, tempDir, keepTempDir: flags.keep });
  const logDir = join(tempDir, "logs");
  const dataDir = join(tempDir, "data");
  for (const d of [logDir, dataDir]) mkdirSync(d, { recursive: true });
  log(`run ${runId}${insideSandbox() ? " in a private pid/mount/net sandbox" : ""}: temp dir ${tempDir}${flags.keep ? " (kept)" : ""}`);

  const support = await probeQdiscs(`${prefix}probe`);
  const sourceSpecs = flags.sourceRatesMbit.map((rateMbit, i) => ({ name: `s${i + 1}`, rateMbit }));
  const hosts: HostSpec[] = [
    { name: "origin", upMbit: ORIGIN_MBIT, downMbit: ORIGIN_MBIT },
    { name: "pub", upMbit: PUBLISHER_UP_MBIT, downMbit: ORIGIN_MBIT },
    ...sourceSpecs.map((s) => ({ name: s.name, upMbit: s.rateMbit, downMbit: SOURCE_DOWN_MBIT })),
    { name: "dl", upMbit: DOWNLOADER_UP_MBIT, downMbit: flags.downMbit },
  ];
  const topology = await buildTopology({ prefix, hosts });
  await shapeTopology(topology, support, delayRecord(0, support));
  const origin = hostByName(topology, "origin");
  const pub = hostByName(topology, "pub");
  const dl = hostByName(topology, "dl");
  const sourceHosts = sourceSpecs.map((s) => hostByName(topology, s.name));
  log(`topology: ${topology.hosts.map((h) => `${h.name} ${h.upMbit}↑/${h.downMbit}↓`).join(", ")} Mbit/s; HTB, leaf ${support.leaf}`);

  const framing = await linkFraming(dl);
  const share = payloadShare(framing.mtuBytes, framing.tcpTimestamps);
  const linkCheck: SourcesReport["linkCheck"] = [];
  for (const src of sourceHosts) {
    const expectedGoodputMbit = Math.min(src.upMbit, dl.downMbit) * share;
    // The probe's window may count one receive piece (up to 64 KB) too many: on a slow link, measure long enough to carry LINK_CHECK_MIN_BYTES.
    const measureMs = Math.max(flags.linkCheckSeconds * 1000, (LINK_CHECK_MIN_BYTES * 8 * 1000) / (expectedGoodputMbit * 1e6));
    const sample = await measureStream(src, dl, { logDir, warmupMs: measureMs / 3, measureMs });
    const measuredGoodputMbit = sample.goodputBitsPerS / 1e6;
    linkCheck.push({ from: src.name, to: dl.name, expectedGoodputMbit, measuredGoodputMbit, ratio: measuredGoodputMbit / expectedGoodputMbit });
    log(`link check ${src.name} → ${dl.name}: ${measuredGoodputMbit.toFixed(2)} / ${expectedGoodputMbit.toFixed(2)} Mbit/s (${(measuredGoodputMbit / expectedGoodputMbit).toFixed(3)})`);
  }
  const off = linkCheck.filter((m) => Math.abs(m.ratio - 1) > DEFAULT_TOLERANCE);
  if (off.length) {
    log(
      `refusing to run: the link check is off by more than ${DEFAULT_TOLERANCE * 100} % (${off.map((m) => `${m.from} → ${m.to}`).join(", ")}); the shaping is not what the ideal assumes (or the machine is too loaded)`,
    );
    return 1;
  }

  const fileBytes = flags.fileMib * 2 ** 20;
  const ideal = idealSeconds(fileBytes, flags.sourceRatesMbit, flags.downMbit, share);
  const timeoutMs = (4 * ideal + 60) * 1000;
  log(`ideal ${ideal.toFixed(2)} s for ${flags.fileMib} MiB; per-phase timeout ${Math.round(timeoutMs / 1000)} s`);

  const { net, sources, downloader } = await startSourcesNetwork({ origin, pub, sources: sourceHosts, downloader: dl, homesDir: join(tempDir, "homes"), logDir, log });
  const daemons = () => [...net.processes(), ...(downloader.daemon ? [downloader.daemon] : [])];
  const cpuGroups = () => ({
    edge: [net.edge.pid],
    "source daemons": sources.flatMap((p) => (p.daemon ? [p.daemon.pid] : [])),
    "downloader daemon": downloader.daemon ? [downloader.daemon.pid] : [],
  });
  const upMbit = Object.fromEntries(topology.hosts.map((h) => [h.name, h.upMbit]));

  const runs: RunResult[] = [];
  for (let index = 1; index <= flags.runs; index++) {
    const fileName = `run-${index}.bin`;
    const file = join(dataDir, fileName);
    const output = join(tempDir, "out", fileName);
    mkdirSync(join(tempDir, "out"), { recursive: true });
    log(`run ${index}/${flags.runs}: writing ${flags.fileMib} MiB of random data`);
    const sourceSha256 = await writeRandomFile(file, fileBytes, `pcs-sources-${runId}-${index}`);
    if (!net.publisher.daemon) await startDaemon(net.publisher, logDir, PEER_TIMEOUTS);
    log(`run ${index}: the publisher puts the file with ${sources.length + 1} replicas and waits for the directory to list every source`);
    const proc = await runToEnd(
      {
        name: `publish-${index}`,
        ns: pub.ns,
        command: process.execPath,
        args: [
          "--import",
          "tsx",
          join(REPO_ROOT, "bench", "swarm", "publish.ts"),
          JSON.stringify({ home: net.publisher.home, file, holders: sources.map((s) => s.nodeId), timeoutMs: PUBLISH_ANNOUNCE_TIMEOUT_MS }),
        ],
        logDir,
      },
      PEER_TIMEOUTS.commandMs + PUBLISH_ANNOUNCE_TIMEOUT_MS,
    );
    const publish = proc.jsonLines("stdout").find((l) => typeof l.link === "string") as PublishInfo | undefined;
    if (!publish) throw new Error(`the publish step printed no link\n${proc.describeTails()}`);
    log(`run ${index}: ${publish.chunks} chunks (${publish.cids} CIDs) on ${publish.replicaPeers.length} sources in ${publish.announcedSeconds.toFixed(1)} s; stopping the publisher's daemon`);
    await stopDaemon(net.publisher);
    if (index > 1) await resetPeer(downloader, logDir, PEER_TIMEOUTS);

    const phase = await runPhase({
      system: "peercloud",
      topology,
      driverScript: join(REPO_ROOT, "bench", "swarm", "peercloud-driver.ts"),
      downloaders: [{ host: dl, config: { home: downloader.home, link: publish.link, output }, output }],
      originHosts: ["origin", "pub"],
      fileBytes,
      sourceSha256,
      readyTimeoutMs: DRIVER_READY_TIMEOUT_MS,
      timeoutMs,
      logDir,
      context: daemons,
      cpuGroups,
      upMbit,
      payloadShare: share,
    });
    const result = runResult(index, publish, phase, sourceSpecs, dl.name, ideal);
    runs.push(result);
    log(
      `run ${index}: ${result.completionSeconds.toFixed(2)} s = ${result.ratioToIdeal.toFixed(3)} × ideal; bytes sent ${result.sources.map((s) => `${s.name} ${(s.bytesSent / 2 ** 20).toFixed(1)} MiB (${(s.shareOfBytes * 100).toFixed(1)} % vs ${(s.shareOfRate * 100).toFixed(1)} % of rate)`).join(", ")}; publisher ${(result.publisherTxBytes / 2 ** 20).toFixed(2)} MiB; copy bit-exact`,
    );
    await rm(file, { force: true });
  }

  const summary = summarize(runs);
  const report: SourcesReport = {
    benchmark: "sources",
    date: new Date().toISOString(),
    code,
    fileBytes,
    runs: flags.runs,
    downMbit: flags.downMbit,
    payloadShare: share,
    ...summary,
    checks: checksOf(summary.ratioToIdeal, summary.sources, summary.publisherTxBytes, fileBytes),
    linkCheck,
    runsDetail: runs,
  };
  const text = renderText(report);
  if (jsonMode) {
    process.stderr.write("\n" + text);
    process.stdout.write(JSON.stringify(report) + "\n");
  } else process.stdout.write("\n" + text);
  return 0;
}

async function main(): Promise<number> {
  let flags: SourcesFlags;
  try {
    flags = parseSourcesFlags(process.argv.slice(2));
  } catch (error) {
    if (error instanceof FlagError) {
      process.stderr.write(`bench:sources: ${error.message} (--help lists the flags)\n`);
      return 2;
    }
    throw error;
  }
  jsonMode = flags.json;
  if (flags.help) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (!insideSandbox()) {
    const reason = skipReason();
    if (reason) {
      process.stderr.write(`bench:sources: skipped: ${reason}\n`);
      if (flags.json) process.stdout.write(JSON.stringify({ benchmark: "sources", skipped: true, reason }) + "\n");
      return 0;
    }
    const stale = await removeStaleRuns();
    if (stale.length) log(`removed leftovers of dead runs: ${stale.join(", ")}`);
    if (flags.sandbox && sandboxAvailable()) return runInSandbox(process.pid);
    if (flags.sandbox) log("unshare cannot make a private pid/mount/net sandbox here; running without it (cleanup relies on this process)");
  }
  const runId = Number(process.env[RUN_ID_ENV] ?? process.pid);
  installCleanupHandlers(log);
  if (insideSandbox()) watchLifeline(() => interrupt("SIGTERM", "the launching process went away", log));
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
