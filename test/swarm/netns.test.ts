/**
 * The swarm bench's emulated network, checked with the bench's own modules
 * (bench/swarm/): namespaces + bridge + veths, HTB shaping both ways, the TCP
 * link check, interface counters, and complete cleanup; then one tiny real
 * run of `npm run bench:swarm` end to end (2 peers, 8 MiB).
 *
 * Needs root and `ip netns`; otherwise every test skips with the reason
 * printed. No timing is asserted as a performance claim: the shaped goodput
 * is compared with the configured rate (that is what shaping means, within
 * the bench's own ±15 % tolerance), and the unshaped path only has to be
 * clearly faster than the shaped one.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../bench/swarm/command.js";
import { snapshotDelta, snapshotHosts } from "../../bench/swarm/counters.js";
import { checkLinks, DEFAULT_TOLERANCE, measureStream } from "../../bench/swarm/link-check.js";
import { REPO_ROOT, runningProcesses, stopAllProcesses } from "../../bench/swarm/processes.js";
import { skipReason } from "../../bench/swarm/sandbox.js";
import { delayRecord, linkFraming, payloadShare, probeQdiscs, shapeTopology } from "../../bench/swarm/shaping.js";
import { buildTopology, destroyTopology, hostByName, listNamespaces, runPrefix, type Topology } from "../../bench/swarm/topology.js";

const reason = skipReason();
if (reason) console.log(`skipped: swarm bench network tests: ${reason}`);

const RATE_MBIT = 20;

describe.skipIf(reason !== null)("swarm bench: emulated network", () => {
  const prefix = runPrefix(process.pid);
  const logDir = mkdtempSync(join(tmpdir(), `pcs-${process.pid}-test-`));
  let topology: Topology;

  beforeAll(async () => {
    topology = await buildTopology({
      prefix,
      hosts: ["origin", "p1", "p2"].map((name) => ({ name, upMbit: RATE_MBIT, downMbit: RATE_MBIT })),
    });
  });

  afterAll(async () => {
    await stopAllProcesses(2000);
    if (topology) await destroyTopology(topology);
    rmSync(logDir, { recursive: true, force: true });
  });

  it("shapes each direction to the configured rate × the TCP payload share, well below the unshaped path, and the counters see the bytes", async () => {
    const origin = hostByName(topology, "origin");
    const p1 = hostByName(topology, "p1");
    const p2 = hostByName(topology, "p2");
    // Every interface and address is inside the run's namespaces; the root namespace got none of them.
    expect(listNamespaces(prefix)).toEqual([topology.switchNs, ...topology.hosts.map((h) => h.ns)].sort());
    expect(await run("ip", ["-o", "addr"])).not.toContain(`${topology.subnet}.`);
    expect(await run("ip", ["-o", "link"])).not.toMatch(/\bv-(origin|p1|p2)\b/);

    const unshaped = await measureStream(origin, p1, { logDir, warmupMs: 300, measureMs: 1000 });

    const support = await probeQdiscs(`${prefix}probe`);
    const delay = delayRecord(0, support);
    expect(delay.applied).toBe(false);
    if (!support.netem) expect(support.netemError).toMatch(/netem/);
    await shapeTopology(topology, support, delay);
    const framing = await linkFraming(p1);
    const share = payloadShare(framing.mtuBytes, framing.tcpTimestamps);
    expect(share).toBeGreaterThan(0.9);
    expect(share).toBeLessThan(1);

    const check = await checkLinks([[origin, p1]], share, { logDir, warmupMs: 700, measureMs: 2000 });
    for (const m of check.measurements) {
      expect(m.configuredMbit).toBe(RATE_MBIT);
      expect(Math.abs(m.ratio - 1), `${m.from} → ${m.to}: ${m.measuredGoodputMbit.toFixed(2)} Mbit/s vs ${m.expectedGoodputMbit.toFixed(2)} expected`).toBeLessThanOrEqual(DEFAULT_TOLERANCE);
    }
    expect(check.ok).toBe(true);
    const shapedBits = Math.max(...check.measurements.map((m) => m.measuredGoodputMbit * 1e6));
    expect(unshaped.goodputBitsPerS, "the unshaped veth path must be much faster than the shaping").toBeGreaterThan(3 * shapedBits);

    // Counters: p2 → origin; p2 sent at least the payload the receiver counted, origin received what p2 sent, p1 stayed idle.
    const before = await snapshotHosts(topology);
    const sample = await measureStream(p2, origin, { logDir, warmupMs: 300, measureMs: 1000 });
    const delta = snapshotDelta(before, await snapshotHosts(topology));
    const sent = delta.get("p2")!;
    const received = delta.get("origin")!;
    expect(sent.txBytes).toBeGreaterThan(sample.bytes);
    expect(received.rxBytes).toBeGreaterThanOrEqual(sent.txBytes * 0.99);
    expect(received.rxBytes).toBeLessThanOrEqual(sent.txBytes * 1.01 + 10_000);
    expect(delta.get("p1")!.txBytes).toBeLessThan(10_000);
  });

  it("removes every namespace and process it made", async () => {
    await stopAllProcesses(2000);
    await destroyTopology(topology);
    expect(listNamespaces(prefix)).toEqual([]);
    expect(runningProcesses()).toEqual([]);
  });
});

describe.skipIf(reason !== null)("npm run bench:swarm, smallest real run", () => {
  it("distributes 8 MiB to 2 peers by peercloud and by HTTP, bit-exact, with interface-counter accounting, and leaves nothing behind", async () => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(REPO_ROOT, "bench", "swarm.ts"),
        "--peers",
        "2",
        "--file-mib",
        "8",
        "--rate-mbit",
        "100",
        "--runs",
        "1",
        "--link-check-s",
        "1",
        "--json",
        "--chart",
        join(tmpdir(), `pcs-${process.pid}-chart.svg`),
      ],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolveExit) => child.on("close", resolveExit));
    rmSync(join(tmpdir(), `pcs-${process.pid}-chart.svg`), { force: true });
    expect(code, stderr.slice(-4000)).toBe(0);
    const lines = stdout.trim().split("\n");
    expect(lines, "exactly one JSON object on stdout").toHaveLength(1);
    const report = JSON.parse(lines[0]);
    const F = 8 * 2 ** 20;
    expect(report).toMatchObject({ benchmark: "swarm", fileBytes: F, peers: 2 });
    expect(report.tMinSeconds).toBeGreaterThan(0);
    expect(report.linkCheck.ok).toBe(true);
    // The hosts' TCP runs what was asked (the first of cubic,reno a namespace may use), and the record says so.
    const cc = report.shaping.tcpCongestionControl;
    expect(cc.requested).toEqual(["cubic", "reno"]);
    expect(["cubic", "reno"]).toContain(cc.applied);
    for (const system of ["peercloud", "http"]) {
      const s = report[system];
      for (const key of ["lastCompletionSeconds", "ratioToTMin", "originEgressRatio", "cpuSaturatedShare"]) expect(typeof s[key], `${system}.${key}`).toBe("number");
      // A run cannot beat the bound, and every peer received at least the file (counted by the kernel, not by the programs).
      expect(s.lastCompletionSeconds).toBeGreaterThan(report.tMinSeconds);
      for (const p of s.perPeer) expect(p.rxBytes).toBeGreaterThanOrEqual(F);
      // The receiving timeline covers the phase and says the downlinks carried something.
      expect(s.downloadersReceiveBySecond.length).toBeGreaterThan(0);
      expect(Math.max(...s.downloadersReceiveBySecond)).toBeGreaterThan(0);
    }
    // The central server sends every peer its own copy.
    expect(report.http.originEgressRatio).toBeGreaterThanOrEqual(2);
    // The sandbox took everything with it.
    expect(listNamespaces(`pcs-${child.pid}-`)).toEqual([]);
  }, 180_000);
});
