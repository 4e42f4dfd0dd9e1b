/**
 * One timed phase: N downloaders fetch the same file at the same instant,
 * by one system (peercloud or the HTTP baseline).
 *
 *  1. A driver per downloader is started in its namespace and awaited until
 *     it prints its ready line (code loaded, daemon reached; for peercloud
 *     the daemon's store must be empty: no downloader may hold a chunk).
 *  2. Interface counters of every host and the shapers' drop counts are
 *     read, the CPU sampler starts, and "go" is written to every driver in
 *     one loop: the common instant all completion times count from.
 *  3. Each driver reports its own wall-clock completion; the phase ends at
 *     the last one (or fails at the timeout, naming who was still running).
 *  4. Counters are read again; the deltas are what each host sent and
 *     received during the phase. Origin egress = what the origin hosts sent.
 *  5. Every downloaded copy is hashed from disk and compared with the
 *     source: a single differing byte fails the run. Copies are then deleted.
 */
import { rm } from "node:fs/promises";
import { CpuSampler, type CpuSummary } from "./cpu-sampler.js";
import { readHostsAtSwitch, snapshotDelta, snapshotHosts, type InterfaceCounters } from "./counters.js";
import { spawnTsInNs, type NsProcess } from "./processes.js";
import { shaperStats } from "./shaping.js";
import type { Host, Topology } from "./topology.js";
import { sha256File } from "../../test/helpers/files.js";

export type SystemName = "peercloud" | "http";

export interface DownloaderSpec {
  host: Host;
  /** The driver's JSON config (its only argument). */
  config: Record<string, unknown>;
  /** The file the download must produce. */
  output: string;
}

export interface PhaseSpec {
  system: SystemName;
  topology: Topology;
  driverScript: string;
  downloaders: DownloaderSpec[];
  /** Names of the hosts whose sent bytes are "origin egress". */
  originHosts: string[];
  fileBytes: number;
  sourceSha256: string;
  readyTimeoutMs: number;
  timeoutMs: number;
  logDir: string;
  /** Processes whose output tails explain a failure (daemons, servers, the edge). */
  context: () => NsProcess[];
  /** Long-lived processes whose CPU is reported by name (pids). */
  cpuGroups: () => Record<string, number[]>;
  /** Upload line rate of every host by name, for link utilisation. */
  upMbit: Record<string, number>;
  payloadShare: number;
}

export interface DownloaderOutcome {
  name: string;
  completionSeconds: number;
  /** How long after the bench wrote "go" the driver read it. */
  goLagMs: number;
  txBytes: number;
  rxBytes: number;
  tcpRetransSegs: number;
  /** What the system itself reports (peercloud's GetResult: chunks from peers, cold…); informational only. */
  reported: Record<string, unknown>;
}

export interface PhaseResult {
  system: SystemName;
  lastCompletionSeconds: number;
  downloaders: DownloaderOutcome[];
  originTxBytes: number;
  originEgressRatio: number;
  /** Sent/received bytes of every host during the phase, by host name. */
  hosts: Record<string, InterfaceCounters>;
  /**
   * Per host: bytes sent / what its upload could carry in payload over the
   * phase (rate × payload share × last completion). A source at ~1.0 was
   * busy all along: the phase could not have ended sooner without it
   * sending less.
   */
  uploadUtilisation: Record<string, number>;
  /** Packets dropped by the shapers during the phase (both directions, all hosts). */
  shaperDrops: number;
  cpu: CpuSummary;
  /**
   * The origin hosts' upload per second of the phase, as a share of what
   * their lines carry in payload: where the bottleneck idled (start-up,
   * mid-run starvation, the tail) when the last completion exceeds T_min.
   */
  originUploadBySecond: number[];
  /** The downloaders' receiving per second, all together, as a share of what their lines carry in payload (F/d_min binds as often as F/u_s). */
  downloadersReceiveBySecond: number[];
}

export class PhaseError extends Error {
  override name = "PhaseError";
}

/** Hard failure of bit-exactness: a copy differs from the source. */
export class BitExactError extends PhaseError {
  override name = "BitExactError";
}

const wallMs = () => performance.timeOrigin + performance.now();

/**
 * Reads every host's counters once a second (a read still running skips a
 * tick rather than piling up): the origin hosts' upload and the
 * downloaders' receiving, each as a share of its lines' payload rate.
 */
class LineSampler {
  private readonly samples: { atMs: number; originTx: number; downloadersRx: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | null = null;
  private readonly topology: Topology;
  private readonly origin: Host[];
  private readonly downloaders: Host[];
  private readonly originPayloadBytesPerSecond: number;
  private readonly downloadPayloadBytesPerSecond: number;

  constructor(spec: PhaseSpec) {
    this.topology = spec.topology;
    this.origin = spec.topology.hosts.filter((h) => spec.originHosts.includes(h.name));
    this.downloaders = spec.downloaders.map((d) => d.host);
    const payload = (mbit: number) => (mbit * 1e6 * spec.payloadShare) / 8;
    this.originPayloadBytesPerSecond = payload(this.origin.reduce((sum, h) => sum + spec.upMbit[h.name], 0));
    this.downloadPayloadBytesPerSecond = payload(this.downloaders.reduce((sum, h) => sum + h.downMbit, 0));
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  async stop(): Promise<{ originUploadBySecond: number[]; downloadersReceiveBySecond: number[] }> {
    clearInterval(this.timer);
    await this.reading;
    const originUploadBySecond: number[] = [];
    const downloadersReceiveBySecond: number[] = [];
    for (let i = 1; i < this.samples.length; i++) {
      const [a, b] = [this.samples[i - 1], this.samples[i]];
      const seconds = (b.atMs - a.atMs) / 1000;
      // A tick skipped (the machine was busy) makes a longer interval: its rate stands for each of its seconds.
      for (let k = Math.max(1, Math.round(seconds)); k > 0; k--) {
        originUploadBySecond.push((b.originTx - a.originTx) / seconds / this.originPayloadBytesPerSecond);
        downloadersReceiveBySecond.push((b.downloadersRx - a.downloadersRx) / seconds / this.downloadPayloadBytesPerSecond);
      }
    }
    return { originUploadBySecond, downloadersReceiveBySecond };
  }

  private tick(): void {
    if (this.reading) return;
    const atMs = wallMs();
    this.reading = readHostsAtSwitch(this.topology)
      .then((hosts) => {
        const sum = (list: Host[], pick: (c: { txBytes: number; rxBytes: number }) => number) => list.reduce((total, h) => total + pick(hosts.get(h.name)!), 0);
        this.samples.push({ atMs, originTx: sum(this.origin, (c) => c.txBytes), downloadersRx: sum(this.downloaders, (c) => c.rxBytes) });
      })
      .catch(() => {})
      .finally(() => (this.reading = null));
  }
}

async function totalShaperDrops(topology: Topology): Promise<number> {
  const all = await Promise.all(topology.hosts.flatMap((h) => [shaperStats(h.ns, h.hostIf), shaperStats(topology.switchNs, h.switchIf)]));
  return all.reduce((sum, s) => sum + s.drops, 0);
}

export async function runPhase(spec: PhaseSpec): Promise<PhaseResult> {
  const drivers = spec.downloaders.map((d) =>
    spawnTsInNs({ name: `${spec.system}-driver-${d.host.name}`, ns: d.host.ns, script: spec.driverScript, args: [JSON.stringify(d.config)], logDir: spec.logDir, stdin: true }),
  );
  const explain = (procs: NsProcess[]) => [...procs, ...spec.context()].map((p) => p.describeTails()).join("\n");
  try {
    const ready = await Promise.all(drivers.map((p) => p.waitForJson("stdout", (v) => v.ready === true || typeof v.error === "object", spec.readyTimeoutMs, "its ready line")));
    for (const [i, r] of ready.entries()) {
      if (r.error) throw new PhaseError(`${drivers[i].name} could not get ready: ${JSON.stringify(r.error)}\n${explain([drivers[i]])}`);
      if (spec.system === "peercloud" && r.storeChunks !== 0) {
        throw new PhaseError(`${spec.downloaders[i].host.name}'s store holds ${String(r.storeChunks)} chunk(s) before the get: the run would not start from the publisher alone`);
      }
    }

    const dropsBefore = await totalShaperDrops(spec.topology);
    const before = await snapshotHosts(spec.topology);
    const cpu = new CpuSampler();
    cpu.start(spec.cpuGroups());
    const lines = new LineSampler(spec);
    const goAtMs = wallMs();
    for (const d of drivers) d.writeLine("go");
    lines.start();

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const pending = drivers.filter((p) => p.running);
        reject(
          new PhaseError(
            `${spec.system}: ${pending.length} of ${drivers.length} downloads still running after ${Math.round(spec.timeoutMs / 1000)} s (${pending.map((p) => p.name).join(", ")})\n${explain(pending)}`,
          ),
        );
      }, spec.timeoutMs);
    });
    let done: Record<string, unknown>[];
    try {
      done = await Promise.race([Promise.all(drivers.map((p) => p.waitForJson("stdout", (v) => v.done === true || typeof v.error === "object", spec.timeoutMs + 60_000, "its result"))), timeout]);
    } finally {
      clearTimeout(timer);
    }
    const { originUploadBySecond, downloadersReceiveBySecond } = await lines.stop();
    const after = await snapshotHosts(spec.topology);
    const cpuSummary = cpu.stop();
    const dropsAfter = await totalShaperDrops(spec.topology);
    for (const [i, r] of done.entries()) {
      if (r.error) throw new PhaseError(`${spec.system}: the download of ${spec.downloaders[i].host.name} failed: ${JSON.stringify(r.error)}\n${explain([drivers[i]])}`);
    }

    // Bit-exact: every copy, hashed from disk, against the source.
    for (const d of spec.downloaders) {
      const sha = await sha256File(d.output).catch((error: Error) => `unreadable (${error.message})`);
      if (sha !== spec.sourceSha256) throw new BitExactError(`${spec.system}: the copy of ${d.host.name} (${d.output}) differs from the source: SHA-256 ${sha}, expected ${spec.sourceSha256}`);
    }
    await Promise.all(spec.downloaders.map((d) => rm(d.output, { force: true })));

    const deltas = snapshotDelta(before, after);
    const downloaders: DownloaderOutcome[] = spec.downloaders.map((d, i) => {
      const r = done[i];
      const c = deltas.get(d.host.name)!;
      const { done: _done, goAtMs: driverGoAtMs, doneAtMs, ...reported } = r as { done: boolean; goAtMs: number; doneAtMs: number } & Record<string, unknown>;
      return {
        name: d.host.name,
        completionSeconds: (doneAtMs - goAtMs) / 1000,
        goLagMs: driverGoAtMs - goAtMs,
        txBytes: c.txBytes,
        rxBytes: c.rxBytes,
        tcpRetransSegs: c.tcpRetransSegs,
        reported: (reported.result as Record<string, unknown> | undefined) ?? reported,
      };
    });
    const lastCompletionSeconds = Math.max(...downloaders.map((d) => d.completionSeconds));
    const uploadUtilisation = Object.fromEntries([...deltas].map(([name, c]) => [name, (c.txBytes * 8) / (spec.upMbit[name] * 1e6 * spec.payloadShare * lastCompletionSeconds)]));
    const originTxBytes = spec.originHosts.reduce((sum, name) => sum + (deltas.get(name)?.txBytes ?? 0), 0);
    return {
      system: spec.system,
      lastCompletionSeconds,
      downloaders,
      originTxBytes,
      originEgressRatio: originTxBytes / spec.fileBytes,
      hosts: Object.fromEntries(deltas),
      uploadUtilisation,
      shaperDrops: dropsAfter - dropsBefore,
      cpu: cpuSummary,
      originUploadBySecond,
      downloadersReceiveBySecond,
    };
  } finally {
    await Promise.all(drivers.map((p) => p.stop(3000)));
  }
}
