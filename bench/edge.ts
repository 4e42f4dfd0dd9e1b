/**
 * `npm run bench:edge` — capacity of one region directory Durable Object in
 * local workerd, driven by many simulated peers over real WebSockets, with a
 * trivial echo Durable Object in the same workerd process as the same-run
 * baseline (issue 2 "Benchmark"; DESIGN "Decisions already measured").
 *
 * Method (every phase bounded in time; see bench/edge/*.ts for each part):
 *  1. Bundle the Worker with `wrangler deploy --dry-run` and run it in
 *     Miniflare with counting subclasses of its Durable Objects.
 *  2. Bootstrap N peers (own Ed25519 identity, join token, signed request),
 *     then open N signed WebSockets to the region object; time both; workerd
 *     RSS (sum of VmRSS of Miniflare's workerd children) before and after.
 *  3. Calibrate per message kind (one message per socket, counters before/
 *     after): wake-ups and SQLite rows read/written per status report,
 *     announcement (20 CIDs) and lookup; database bytes per peer and replica.
 *  4. FIND_NODE / FIND_PROVIDERS latency at rest; then the realistic mix at
 *     full speed (bounded outstanding) with latency probes alongside, in
 *     slices alternating with the same mix against the echo object (so both
 *     meet the same machine: the ratio says how close the directory gets to
 *     what workerd itself moves); then the mix paced at the 1,000 msg/s
 *     target with probes.
 *  5. Pings: 10,000 (or more) "ping"s, pongs counted, handler counters
 *     compared before/after — auto-answered pings must not wake the object
 *     (the echo object likewise).
 *  6. Steady state at the protocol's own rates, counting wake-ups; from it
 *     and the intervals, wake-ups per peer per hour, and the monthly bill for
 *     10k and 100k peers from the measured rates (bench/edge/cost.ts).
 *
 * Targets (printed PASS/FAIL, the exit code does not depend on them): 10,000
 * peers connected to one object; 1,000 inventory/heartbeat messages/s.
 *
 * Every peer pings every heartbeat interval throughout, as real ones do.
 *
 * Flags: --peers N (10000)  --duration-s S (15 of full speed for each of
 *        directory and echo)  --paced-s S (10)
 *        --window N (256)  --echo-sockets N (min(peers, 1000))  --json
 *        --steady-s S (130: the protocol's own rates — pings every heartbeat
 *        interval, a status report every status interval — for two snapshot
 *        intervals, counting the object's wake-ups)
 *        --state-dir DIR (where the objects' SQLite files live; default /dev/shm,
 *        i.e. memory — pass a disk folder to see what local fsyncs cost)
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import { DEFAULT_PARAMS } from "../src/core/params.js";
import { directoryHeapBytesPerPeer } from "./edge/heap.js";
import { DEFAULT_ASSUMPTIONS, QUIET_ASSUMPTIONS, monthlyBill, r2PerTib, type Intervals, type MeasuredRates } from "./edge/cost.js";
import { CidPool, Heartbeat, mergeLoads, oneUnitEach, statusFrame, percentile, pingAll, probeLatency, runLoad, type LatencySamples, type LoadResult } from "./edge/load.js";
import { bootstrapPeers, connectEcho, connectPeers, createJoinToken, fetchNetwork } from "./edge/peers.js";
import { renderText } from "./edge/render.js";
import { defaultStateParentDir, machineCpuMs, startEdge, workerdCpuMs, workerdRssBytes, type EdgeRuntime } from "./edge/runtime.js";
import { delta } from "./edge/counters.js";
import { newTotals, type PeerSocket } from "./edge/socket.js";

const TARGET_PEERS = 10_000;
const TARGET_MSGS_PER_SEC = 1_000;
const REGION = "eu";
/** Full-speed runs of the directory and the echo baseline alternate in this many slices each. */
const FULL_SPEED_SLICES = 3;
const MAX_RUN_MS = 40 * 60_000;

const { values: args } = parseArgs({
  options: {
    peers: { type: "string", default: "10000" },
    "duration-s": { type: "string", default: "15" },
    "paced-s": { type: "string", default: "10" },
    window: { type: "string", default: "256" },
    "echo-sockets": { type: "string" },
    "probe-sockets": { type: "string", default: "4" },
    "rest-samples": { type: "string", default: "300" },
    "state-dir": { type: "string" },
    "steady-s": { type: "string", default: "130" },
    json: { type: "boolean", default: false },
  },
});
const PEERS = positiveInt(args.peers, "--peers");
const DURATION_MS = positiveInt(args["duration-s"], "--duration-s") * 1000;
const PACED_MS = positiveInt(args["paced-s"], "--paced-s") * 1000;
const WINDOW = positiveInt(args.window, "--window");
const ECHO_SOCKETS = args["echo-sockets"] ? positiveInt(args["echo-sockets"], "--echo-sockets") : Math.min(PEERS, 1000);
const PROBE_SOCKETS = positiveInt(args["probe-sockets"], "--probe-sockets");
const REST_SAMPLES = positiveInt(args["rest-samples"], "--rest-samples");
const JSON_OUT = args.json;
const STEADY_MS = positiveInt(args["steady-s"], "--steady-s") * 1000;
const STATE_PARENT_DIR = args["state-dir"] ?? defaultStateParentDir();

function positiveInt(raw: string | undefined, flag: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

const log = (line: string) => process.stderr.write(`[bench:edge ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

// ---- cleanup on every exit path ---------------------------------------------

const openSockets: PeerSocket[] = [];
let runtime: EdgeRuntime | undefined;
let stopHeartbeat = () => {};
let stopStatus = () => {};
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    stopHeartbeat();
    stopStatus();
    for (const s of openSockets) s.close();
    openSockets.length = 0;
    const r = runtime;
    runtime = undefined;
    if (r) await r.dispose();
  })();
  return cleaning;
}
// On Ctrl-C: close the sockets now (synchronous); Miniflare's own signal hook, which runs after
// this one, then kills workerd and exits, and the runtime's "exit" hook removes the run's state.
// Before Miniflare has started, the asynchronous cleanup below does it all.
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (interrupted) return; // Ctrl-C arrives twice: from the terminal and relayed by tsx
    interrupted = true;
    log(`${signal}: cleaning up`);
    stopHeartbeat();
    stopStatus();
    for (const s of openSockets) s.close();
    void cleanup().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  log(`run exceeded ${MAX_RUN_MS / 60_000} min: aborting`);
  void cleanup().finally(() => process.exit(2));
}, MAX_RUN_MS);
watchdog.unref();

function latencySummary(s: LatencySamples) {
  const p = (xs: number[], q: number) => percentile(xs, q);
  return {
    find_node: { samples: s.find_node.length, p50Ms: p(s.find_node, 50), p99Ms: p(s.find_node, 99) },
    find_providers: { samples: s.find_providers.length, p50Ms: p(s.find_providers, 50), p99Ms: p(s.find_providers, 99) },
    errors: s.errors,
  };
}

function loadSummary(r: LoadResult) {
  return { ...r, elapsedMs: Math.round(r.elapsedMs), msgsPerSec: Math.round(r.msgsPerSec) };
}

/** Runs `work`, adding the CPU that workerd, this client and every other process used meanwhile to `into`. */
async function withCpu<T>(into: CpuShare, work: () => Promise<T>): Promise<T> {
  const wall0 = performance.now();
  const workerd0 = await workerdCpuMs();
  const machine0 = await machineCpuMs();
  const node0 = process.cpuUsage();
  const value = await work();
  const workerdMs = (await workerdCpuMs()) - workerd0;
  const node = process.cpuUsage(node0);
  const nodeMs = (node.user + node.system) / 1000;
  into.workerdMs += workerdMs;
  into.nodeMs += nodeMs;
  into.otherMs += Math.max(0, (await machineCpuMs()) - machine0 - workerdMs - nodeMs);
  into.wallMs += performance.now() - wall0;
  return value;
}

interface CpuShare {
  workerdMs: number;
  nodeMs: number;
  otherMs: number;
  wallMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mapToObject = (m: Map<string, number>) => Object.fromEntries(m);

// ---- the run ----------------------------------------------------------------

async function measure() {
  const tRun = performance.now();
  const projectDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  log(`peers=${PEERS} duration=${DURATION_MS / 1000}s paced=${PACED_MS / 1000}s window=${WINDOW} echoSockets=${ECHO_SOCKETS}`);
  runtime = await startEdge({ projectDir, region: REGION, stateParentDir: STATE_PARENT_DIR, log });
  const rt = runtime;
  const rssIdleBytes = await workerdRssBytes();
  const network = await fetchNetwork(rt.edgeUrl).catch((err) => {
    log(`GET /v1/network failed (${(err as Error).message}); using DEFAULT_PARAMS`);
    return { params: DEFAULT_PARAMS as unknown as Record<string, number> };
  });
  const params = { ...DEFAULT_PARAMS, ...network.params };
  const intervals: Intervals = {
    heartbeatIntervalMs: params.heartbeatIntervalMs,
    statusIntervalMs: params.statusIntervalMs,
    snapshotIntervalMs: params.snapshotIntervalMs,
    certificateTtlMs: params.certificateTtlMs,
    certificateRenewBeforeMs: params.certificateRenewBeforeMs,
  };
  const cids = new CidPool(200_000);

  // -- join ------------------------------------------------------------------
  const joinToken = await createJoinToken(rt.edgeUrl, rt.adminSecret, REGION);
  const c0 = await rt.regionCounters();
  log(`bootstrapping ${PEERS} peers…`);
  const boot = await bootstrapPeers(rt.edgeUrl, joinToken, REGION, PEERS, 32, (n) => log(`  bootstrapped ${n}`));
  if (boot.failures.size) log(`bootstrap failures: ${JSON.stringify(mapToObject(boot.failures))}`);
  const rssBootstrappedBytes = await workerdRssBytes();
  const c1 = await rt.regionCounters();

  log(`connecting ${boot.peers.length} WebSockets…`);
  const totals = newTotals();
  const conn = await connectPeers(rt.edgeUrl, boot.peers, totals, 64, (n) => log(`  connected ${n}`));
  openSockets.push(...conn.sockets);
  if (conn.failures.size) log(`connect failures: ${JSON.stringify(mapToObject(conn.failures))}`);
  const sockets = conn.sockets;
  // The directory may greet each socket with `welcome`; give stragglers a moment.
  for (let i = 0; i < 100 && sockets.some((s) => !s.welcomed) && sockets.some((s) => s.welcomed); i++) await sleep(50);
  const welcomed = sockets.filter((s) => s.welcomed).length;
  const heartbeat = new Heartbeat(sockets, intervals.heartbeatIntervalMs);
  heartbeat.start();
  stopHeartbeat = () => heartbeat.stop();
  await sleep(500);
  const rssConnectedBytes = await workerdRssBytes();
  const c2 = await rt.regionCounters();
  if (sockets.length === 0) throw new Error("no peer could connect; see the failures above");

  // -- calibration: per-message costs ----------------------------------------
  log("calibrating per-message costs…");
  const sample = sockets.slice(0, Math.min(sockets.length, 2000));
  // workerd CPU per phase: steadier than rates on a 2-core machine the client shares.
  const cpuMark = async () => ({ workerdMs: await workerdCpuMs(), node: process.cpuUsage() });
  const cpuSince = async (m: { workerdMs: number; node: NodeJS.CpuUsage }) => {
    const u = process.cpuUsage(m.node);
    return { workerdMs: (await workerdCpuMs()) - m.workerdMs, nodeMs: (u.user + u.system) / 1000 };
  };
  let mark = await cpuMark();
  const seed = await oneUnitEach(sockets, "announce", cids, WINDOW);
  const cpuSeed = await cpuSince(mark);
  const c3 = await rt.regionCounters();
  mark = await cpuMark();
  const re = await oneUnitEach(sample, "reannounce", cids, WINDOW);
  const cpuRe = await cpuSince(mark);
  const c3b = await rt.regionCounters();
  mark = await cpuMark();
  const fn = await oneUnitEach(sample, "findNode", cids, WINDOW);
  const cpuFn = await cpuSince(mark);
  const c4 = await rt.regionCounters();
  mark = await cpuMark();
  const st = await oneUnitEach(sample, "statusBarrier", cids, WINDOW);
  const cpuSt = await cpuSince(mark);
  const c5 = await rt.regionCounters();
  mark = await cpuMark();
  const fp = await oneUnitEach(sample, "findProviders", cids, WINDOW);
  const cpuFp = await cpuSince(mark);
  const c6 = await rt.regionCounters();
  const usPer = (cpuMs: number, n: number) => (n > 0 ? (cpuMs * 1000) / n : 0);
  const dSeed = delta(c2, c3, "RegionDirectory");
  const dRe = delta(c3, c3b, "RegionDirectory");
  const dFn = delta(c3b, c4, "RegionDirectory");
  const dSt = delta(c4, c5, "RegionDirectory");
  const dFp = delta(c5, c6, "RegionDirectory");
  const per = (x: number, n: number) => (n > 0 ? x / n : 0);
  const calib = {
    announce: {
      messages: seed.answered,
      msgsPerSec: per(seed.answered * 1000, seed.elapsedMs),
      workerdCpuUsPerMsg: usPer(cpuSeed.workerdMs, seed.answered),
      errors: seed.errors,
      wakesPerMsg: per(dSeed.messages, seed.answered),
      rowsReadPerMsg: per(dSeed.rowsRead, seed.answered),
      rowsWrittenPerMsg: per(dSeed.rowsWritten, seed.answered),
    },
    reannounce: {
      messages: re.answered,
      msgsPerSec: per(re.answered * 1000, re.elapsedMs),
      workerdCpuUsPerMsg: usPer(cpuRe.workerdMs, re.answered),
      errors: re.errors,
      wakesPerMsg: per(dRe.messages, re.answered),
      rowsReadPerMsg: per(dRe.rowsRead, re.answered),
      rowsWrittenPerMsg: per(dRe.rowsWritten, re.answered),
    },
    find_node: {
      messages: fn.answered,
      msgsPerSec: per(fn.answered * 1000, fn.elapsedMs),
      workerdCpuUsPerMsg: usPer(cpuFn.workerdMs, fn.answered),
      errors: fn.errors,
      wakesPerMsg: per(dFn.messages, fn.answered),
      rowsReadPerMsg: per(dFn.rowsRead, fn.answered),
      rowsWrittenPerMsg: per(dFn.rowsWritten, fn.answered),
    },
    status: {
      messages: st.answered,
      /** status + find_node pairs: both messages count. */
      msgsPerSec: per(st.answered * 2000, st.elapsedMs),
      /** The pair's CPU less one find_node's. */
      workerdCpuUsPerMsg: usPer(cpuSt.workerdMs, st.answered) - usPer(cpuFn.workerdMs, fn.answered),
      errors: st.errors,
      wakesPerMsg: per(dSt.messages - per(dFn.messages, fn.answered) * st.answered, st.answered),
      rowsReadPerMsg: per(dSt.rowsRead - per(dFn.rowsRead, fn.answered) * st.answered, st.answered),
      rowsWrittenPerMsg: per(dSt.rowsWritten - per(dFn.rowsWritten, fn.answered) * st.answered, st.answered),
    },
    find_providers: {
      messages: fp.answered,
      msgsPerSec: per(fp.answered * 1000, fp.elapsedMs),
      workerdCpuUsPerMsg: usPer(cpuFp.workerdMs, fp.answered),
      errors: fp.errors,
      wakesPerMsg: per(dFp.messages, fp.answered),
      rowsReadPerMsg: per(dFp.rowsRead, fp.answered),
      rowsWrittenPerMsg: per(dFp.rowsWritten, fp.answered),
    },
  };
  const dBoot = delta(c0, c1, "RegionDirectory");
  const dConnDir = delta(c1, c2, "RegionDirectory");
  const dConnGuard = delta(c1, c2, "ReplayGuard");
  const storage = {
    databaseBytesAfterBootstrap: c1.RegionDirectory?.databaseBytes ?? 0,
    bytesPerPeer: per(dBoot.databaseBytes, boot.peers.length),
    bytesPerReplica: per(dSeed.databaseBytes, seed.answered * 20),
    rowsWrittenPerBootstrap: per(dBoot.rowsWritten + delta(c0, c1, "ReplayGuard").rowsWritten, boot.peers.length),
    rowsWrittenPerConnect: per(dConnDir.rowsWritten + dConnGuard.rowsWritten, sockets.length),
  };

  // -- latency at rest, then load --------------------------------------------
  const probes = sockets.slice(0, Math.min(PROBE_SOCKETS, sockets.length - 1));
  const loadSockets = sockets.slice(probes.length);
  log(`latency at rest (${REST_SAMPLES} of each lookup)…`);
  const rest = await probeLatency(probes, cids, { count: REST_SAMPLES });

  // -- the echo baseline's sockets, so that its full-speed run can alternate with the directory's
  log(`echo baseline: ${ECHO_SOCKETS} sockets…`);
  const echoTotals = newTotals();
  const rssBeforeEchoBytes = await workerdRssBytes();
  const echo = await connectEcho(rt.echoUrl, ECHO_SOCKETS, echoTotals, 64);
  openSockets.push(...echo.sockets);
  await sleep(500);
  const rssEchoConnectedBytes = await workerdRssBytes();
  const e0 = await rt.echoCounters();
  const echoPing = await pingAll(echo.sockets, echoTotals, Math.max(1, Math.ceil(10_000 / Math.max(1, echo.sockets.length))), 60_000);
  await sleep(500);
  const e1 = await rt.echoCounters();
  const dEchoPing = delta(e0, e1, "EchoRoom");
  const echoProbes = echo.sockets.slice(0, Math.min(PROBE_SOCKETS, echo.sockets.length - 1));
  const echoLoadSockets = echo.sockets.slice(echoProbes.length);
  const echoRest = await probeLatency(echoProbes, cids, { count: REST_SAMPLES });

  // -- full speed: directory and echo in alternating slices, so that both meet the same machine
  log(`full-speed mix, ${DURATION_MS / 1000} s each for the directory (${loadSockets.length} sockets) and the echo baseline, in ${FULL_SPEED_SLICES} alternating slices, ≤ ${WINDOW} outstanding…`);
  const sliceMs = DURATION_MS / FULL_SPEED_SLICES;
  const dirSlices: LoadResult[] = [];
  const echoSlices: LoadResult[] = [];
  const dirCpu: CpuShare = { workerdMs: 0, nodeMs: 0, otherMs: 0, wallMs: 0 };
  const echoCpu: CpuShare = { workerdMs: 0, nodeMs: 0, otherMs: 0, wallMs: 0 };
  const underSat: LatencySamples = { find_node: [], find_providers: [], errors: 0 };
  const cLoad0 = await rt.regionCounters();
  for (let slice = 0; slice < FULL_SPEED_SLICES; slice++) {
    // Probes run exactly while load is offered: not during the drain, when the queue empties.
    let stopProbes = false;
    let probing: Promise<LatencySamples> | undefined;
    const stopSliceProbes = () => (stopProbes = true);
    dirSlices.push(
      await withCpu(dirCpu, () => {
        probing = probeLatency(probes, cids, { stop: () => stopProbes });
        return runLoad({ sockets: loadSockets, durationMs: sliceMs, window: WINDOW, cids, onMeasuredEnd: stopSliceProbes });
      }),
    );
    const samples = await probing!;
    underSat.find_node.push(...samples.find_node);
    underSat.find_providers.push(...samples.find_providers);
    underSat.errors += samples.errors;
    echoSlices.push(await withCpu(echoCpu, () => runLoad({ sockets: echoLoadSockets, durationMs: sliceMs, window: WINDOW, cids })));
  }
  for (const s of echo.sockets) s.close();
  const cLoad1 = await rt.regionCounters();
  const sat = mergeLoads(dirSlices);
  const echoSat = mergeLoads(echoSlices);
  const dSat = delta(cLoad0, cLoad1, "RegionDirectory");

  log(`paced mix at ${TARGET_MSGS_PER_SEC} msg/s for ${PACED_MS / 1000} s…`);
  let stopPacedProbes = false;
  const probingPaced = probeLatency(probes, cids, { stop: () => stopPacedProbes });
  const paced = await runLoad({
    sockets: loadSockets,
    durationMs: PACED_MS,
    window: WINDOW,
    cids,
    pacedMsgsPerSec: TARGET_MSGS_PER_SEC,
    onMeasuredEnd: () => (stopPacedProbes = true),
  });
  const underPaced = await probingPaced;

  // -- pings -----------------------------------------------------------------
  const pingsPerSocket = Math.max(1, Math.ceil(10_000 / sockets.length));
  log(`pings: ${pingsPerSocket} per socket on ${sockets.length} sockets…`);
  heartbeat.stop(); // so that every pong counted below answers a ping of this test
  await sleep(1000);
  const cPing0 = await rt.regionCounters();
  const ping = await pingAll(sockets, totals, pingsPerSocket, 60_000);
  await sleep(500);
  const cPing1 = await rt.regionCounters();
  heartbeat.start();
  const dPing = delta(cPing0, cPing1, "RegionDirectory");
  const rssAfterLoadBytes = await workerdRssBytes();

  // -- steady state: the protocol's own rates ---------------------------------
  log(`steady state for ${STEADY_MS / 1000} s: pings every ${intervals.heartbeatIntervalMs / 1000} s, a status report every ${intervals.statusIntervalMs / 1000} s per peer…`);
  const status = new Heartbeat(sockets, intervals.statusIntervalMs, statusFrame);
  stopStatus = () => status.stop();
  const cSteady0 = await rt.regionCounters();
  const tSteady0 = performance.now();
  status.start();
  await sleep(STEADY_MS);
  status.stop();
  await sleep(500);
  const cSteady1 = await rt.regionCounters();
  const steadyHours = (performance.now() - tSteady0) / 3_600_000;
  const dSteady = delta(cSteady0, cSteady1, "RegionDirectory");
  const steadyGuard = delta(cSteady0, cSteady1, "ReplayGuard");
  const cEnd = cSteady1;
  const summary = await fetch(new URL("/v1/admin/regions", rt.edgeUrl), { headers: { authorization: `Bearer ${rt.adminSecret}` } })
    .then(async (r) => (r.ok ? (((await r.json()) as { regions: { name: string; live: unknown }[] }).regions.find((x) => x.name === REGION)?.live ?? null) : null))
    .catch(() => null);

  // -- derived figures -------------------------------------------------------
  const runHours = (performance.now() - tRun) / 3_600_000;
  const alarmsSteady = dSteady.alarms;
  const alarmsPerObjectHour = alarmsSteady / steadyHours;
  const steady = {
    seconds: Math.round(steadyHours * 3600),
    statusReportsSent: status.sent,
    wakes: dSteady.wakes,
    messages: dSteady.messages,
    alarms: dSteady.alarms,
    wakesPerPeerHour: per(dSteady.wakes, sockets.length * steadyHours),
    rowsWrittenPerPeerHour: per(dSteady.rowsWritten + steadyGuard.rowsWritten, sockets.length * steadyHours),
    rowsReadPerPeerHour: per(dSteady.rowsRead + steadyGuard.rowsRead, sockets.length * steadyHours),
  };
  const pingsPerPeerHour = 3_600_000 / intervals.heartbeatIntervalMs;
  const statusPerPeerHour = 3_600_000 / intervals.statusIntervalMs;
  // Alarms are driven by the clock, not by the pings; every other handler invocation would be a ping waking the object.
  const pingWakes = dPing.wakes - dPing.alarms;
  const wakesPerPing = ping.sent > 0 ? pingWakes / ping.sent : 0;
  const wakes = {
    pingsPerPeerHour,
    wakesPerPing,
    statusPerPeerHour,
    wakesPerStatus: calib.status.wakesPerMsg,
    alarmsPerObjectHour,
    perPeerHourFromPings: pingsPerPeerHour * wakesPerPing,
    perPeerHourFromStatus: statusPerPeerHour * calib.status.wakesPerMsg,
    perPeerHourFromAlarms: alarmsPerObjectHour / Math.max(1, sockets.length),
    perPeerHourProtocol: 0,
  };
  wakes.perPeerHourProtocol = wakes.perPeerHourFromPings + wakes.perPeerHourFromStatus + wakes.perPeerHourFromAlarms;

  const measured: MeasuredRates = {
    sustainedMsgsPerSec: sat.msgsPerSec,
    wakesPerPing,
    wakesPerStatus: calib.status.wakesPerMsg,
    rowsWrittenPerStatus: calib.status.rowsWrittenPerMsg,
    rowsReadPerStatus: calib.status.rowsReadPerMsg,
    rowsWrittenPerAnnounce: calib.announce.rowsWrittenPerMsg,
    rowsReadPerAnnounce: calib.announce.rowsReadPerMsg,
    rowsReadPerLookup: (calib.find_node.rowsReadPerMsg + calib.find_providers.rowsReadPerMsg) / 2,
    rowsReadPerReannouncedCid: calib.reannounce.rowsReadPerMsg / 20,
    rowsWrittenPerReannouncedCid: calib.reannounce.rowsWrittenPerMsg / 20,
    reannouncedCidsPerSec: calib.reannounce.msgsPerSec * 20,
    rowsWrittenPerConnect: storage.rowsWrittenPerConnect,
    dbBytesPerPeer: storage.bytesPerPeer,
    dbBytesPerReplica: storage.bytesPerReplica,
    alarmsPerObjectHour,
  };
  const bills = [10_000, 100_000].map((peers) => ({ peers, ...monthlyBill(peers, measured, intervals) }));
  const quietBills = [10_000, 100_000].map((peers) => ({ peers, ...monthlyBill(peers, measured, intervals, QUIET_ASSUMPTIONS) }));
  const r2 = r2PerTib(1 << 20, 1);
  const msgsPerPeerHour = statusPerPeerHour + DEFAULT_ASSUMPTIONS.announcesPerPeerHour + DEFAULT_ASSUMPTIONS.lookupsPerPeerHour;
  const peersPerObjectByRate = (sat.msgsPerSec * 0.5 * 3600) / msgsPerPeerHour;
  const heapBytesPerPeer = directoryHeapBytesPerPeer();
  // Half of a production isolate's 128 MB for the peers' in-memory view.
  const peersPerObjectByHeap = (64 * 2 ** 20) / heapBytesPerPeer;
  // After a deploy every peer reconnects and re-announces its whole inventory.
  const stormSecondsPer10kPeers = (10_000 * DEFAULT_ASSUMPTIONS.chunksPerPeer) / Math.max(1, measured.reannouncedCidsPerSec);
  const rssPerSocketBytes = per(rssConnectedBytes - rssBootstrappedBytes, sockets.length);
  const rssPerEchoSocketBytes = per(rssEchoConnectedBytes - rssBeforeEchoBytes, echo.sockets.length);
  const rssPerRegisteredPeerBytes = per(rssBootstrappedBytes - rssIdleBytes, boot.peers.length);

  const result = {
    config: {
      stateDir: STATE_PARENT_DIR,
      peers: PEERS,
      durationMs: DURATION_MS,
      pacedMs: PACED_MS,
      window: WINDOW,
      echoSockets: ECHO_SOCKETS,
      region: REGION,
      compatibilityDate: rt.compatibilityDate,
      node: process.version,
    },
    params: intervals,
    join: {
      bootstrapped: boot.peers.length,
      bootstrapMs: Math.round(boot.elapsedMs),
      bootstrapFailures: mapToObject(boot.failures),
      bootstrapRetries: boot.retries,
      connected: sockets.length,
      connectMs: Math.round(conn.elapsedMs),
      connectFailures: mapToObject(conn.failures),
      welcomed,
      directoryFetches: dConnDir.fetches,
      objectConstructions: cEnd.RegionDirectory?.constructed ?? 0,
      directorySummary: summary,
    },
    calibration: calib,
    storage,
    latencyAtRest: latencySummary(rest),
    saturated: {
      ...loadSummary(sat),
      workerdCpuMs: dirCpu.workerdMs,
      cpuUsPerMsg: per(dirCpu.workerdMs * 1000, sat.messagesAnsweredWithDrain),
      workerdCores: per(dirCpu.workerdMs, dirCpu.wallMs),
      nodeCores: per(dirCpu.nodeMs, dirCpu.wallMs),
      otherProcessesCores: per(dirCpu.otherMs, dirCpu.wallMs),
      wakes: dSat.wakes,
      objectMessages: dSat.messages,
      latency: latencySummary(underSat),
    },
    paced: { targetMsgsPerSec: TARGET_MSGS_PER_SEC, ...loadSummary(paced), latency: latencySummary(underPaced) },
    pings: { ...ping, elapsedMs: Math.round(ping.elapsedMs), wakes: pingWakes, objectMessages: dPing.messages, alarmsMeanwhile: dPing.alarms, backgroundHeartbeatPings: heartbeat.sent },
    echo: {
      connected: echo.sockets.length,
      connectMs: Math.round(echo.elapsedMs),
      connectFailures: mapToObject(echo.failures),
      pings: { ...echoPing, elapsedMs: Math.round(echoPing.elapsedMs), wakes: dEchoPing.wakes },
      latencyAtRest: latencySummary(echoRest),
      saturated: {
        ...loadSummary(echoSat),
        workerdCpuMs: echoCpu.workerdMs,
        cpuUsPerMsg: per(echoCpu.workerdMs * 1000, echoSat.messagesAnsweredWithDrain),
        workerdCores: per(echoCpu.workerdMs, echoCpu.wallMs),
        nodeCores: per(echoCpu.nodeMs, echoCpu.wallMs),
        otherProcessesCores: per(echoCpu.otherMs, echoCpu.wallMs),
      },
      ratioDirectoryToEcho: per(sat.msgsPerSec, echoSat.msgsPerSec),
    },
    memory: {
      workerdRssIdleBytes: rssIdleBytes,
      workerdRssBootstrappedBytes: rssBootstrappedBytes,
      workerdRssConnectedBytes: rssConnectedBytes,
      workerdRssAfterLoadBytes: rssAfterLoadBytes,
      workerdRssEchoConnectedBytes: rssEchoConnectedBytes,
      rssPerRegisteredPeerBytes,
      rssPerSocketBytes,
      rssPerEchoSocketBytes,
      replayGuardObjects: c1.ReplayGuard?.objects ?? 0,
      nodeRssBytes: process.memoryUsage().rss,
    },
    wakes,
    steady,
    sharding: {
      msgsPerPeerHour,
      peersPerObjectAtHalfMeasuredRate: Math.round(peersPerObjectByRate),
      peersPerObjectAtHalfCloudflareSoftLimit: Math.round((1000 * 0.5 * 3600) / msgsPerPeerHour),
      heapBytesPerPeer: Math.round(heapBytesPerPeer),
      peersPerObjectInHalfAnIsolate: Math.round(peersPerObjectByHeap),
      reconnectStormObjectSecondsPer10kPeers: Math.round(stormSecondsPer10kPeers),
    },
    socketErrors: { unmatchedErrors: mapToObject(totals.unmatchedErrors), unexpectedCloses: totals.unexpectedCloses },
    counters: cEnd,
    targets: {
      connectedPeers: { target: TARGET_PEERS, value: sockets.length, pass: sockets.length >= TARGET_PEERS },
      msgsPerSec: { target: TARGET_MSGS_PER_SEC, value: Math.round(sat.msgsPerSec), pass: sat.msgsPerSec >= TARGET_MSGS_PER_SEC },
      pacedMsgsPerSec: { target: TARGET_MSGS_PER_SEC, value: Math.round(paced.msgsPerSec), pass: paced.msgsPerSec >= TARGET_MSGS_PER_SEC * 0.97 && paced.lost === 0 },
      pingWakes: { target: 0, value: pingWakes, pass: pingWakes === 0 && ping.pongs === ping.sent },
    },
    bills: bills.map((b) => ({ peers: b.peers, totalUsd: b.totalUsd, lines: b.lines })),
    quietBills: quietBills.map((b) => ({ peers: b.peers, totalUsd: b.totalUsd, lines: b.lines })),
    r2: { lines: r2, totalUsd: r2.reduce((sum, l) => sum + l.usd, 0) },
    assumptions: DEFAULT_ASSUMPTIONS,
    quietAssumptions: QUIET_ASSUMPTIONS,
    runSeconds: Math.round(runHours * 3600),
  };

  return result;
}

export type BenchResult = Awaited<ReturnType<typeof measure>>;

async function main(): Promise<void> {
  const result = await measure();
  process.stdout.write(JSON_OUT ? JSON.stringify(result) + "\n" : renderText(result));
}

main()
  .catch((err) => {
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await cleanup();
    clearTimeout(watchdog);
  });
