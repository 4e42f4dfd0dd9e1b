/**
 * The load and capacity a daemon puts in its status reports (issue 5,
 * "Scores"; docs/architecture.md, "Scheduling (auction)"), gathered from
 * the parts that do the work:
 *
 *  - `activeTransfers`: chunk GETs and PUTs the transfer server is serving;
 *  - `queueLength`: work this peer took on beyond that — responses the
 *    upload cap holds back, chunk requests its own client runs (downloads,
 *    replica pushes, repair copies, waiting for a socket or not), and repair
 *    jobs in progress (a job copying from a peer counts its request too: it
 *    holds a repair slot and a connection). The directory ranks holders and
 *    placement targets on the sum of the two (src/core/placement.ts
 *    loadScore);
 *  - `cpu`: the host's 1-minute load average over its cores, capped at 1;
 *  - `uploadBps` / `downloadBps`: capacity-meter.ts, fed once a second from
 *    the byte counters (bytes the server sent and received, plus bytes the
 *    client downloaded; pushes are sent as whole buffers, so they are not
 *    counted as they go and are left out).
 */
import { cpus, loadavg } from "node:os";
import type { Load } from "../core/messages.js";
import { CapacityMeter, DEFAULT_WINDOW_MS, type MeasuredCapacity } from "./capacity-meter.js";
import type { TransferClient } from "./transfer-client.js";
import type { TransferServer } from "./transfer-server.js";
import type { UploadLimiter } from "./upload-limiter.js";

export interface LoadSources {
  server: Pick<TransferServer, "traffic">;
  client: Pick<TransferClient, "activeTransfers" | "bytesReceived">;
  /** Present when the operator capped the upload rate: its waiters count as queued, its rate is the upload capacity. */
  uploadLimiter?: Pick<UploadLimiter, "waiting" | "bytesPerSecond">;
  /** Repair jobs in progress (none on peers without the service role). */
  repairJobs: () => number;
  /** Share of the host's CPU in use, 0..1. Default: hostCpuShare. */
  cpu?: () => number;
}

export class LoadReporter {
  private readonly meter: CapacityMeter;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly sources: LoadSources) {
    this.meter = new CapacityMeter(sources.uploadLimiter ? { uploadLimitBps: sources.uploadLimiter.bytesPerSecond } : {});
  }

  /** Feeds the capacity meter with the byte totals at `nowMs` (monotonic ms). */
  sample(nowMs: number): void {
    const server = this.sources.server.traffic();
    this.meter.sample(nowMs, { sentBytes: server.bytesSent, receivedBytes: server.bytesReceived + this.sources.client.bytesReceived });
  }

  /** Samples once per capacity window until `stop()`; the timer never keeps the process alive. */
  start(now: () => number = () => performance.now()): void {
    this.sample(now());
    this.timer ??= setInterval(() => this.sample(now()), DEFAULT_WINDOW_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  load(): Load {
    const { server, client, uploadLimiter, repairJobs, cpu } = this.sources;
    return {
      activeTransfers: server.traffic().activeTransfers,
      queueLength: (uploadLimiter?.waiting ?? 0) + client.activeTransfers + repairJobs(),
      cpu: (cpu ?? hostCpuShare)(),
    };
  }

  capacity(): MeasuredCapacity {
    return this.meter.capacity();
  }
}

/** The 1-minute load average per core, within 0..1. */
export function hostCpuShare(): number {
  return Math.min(1, Math.max(0, loadavg()[0] / Math.max(1, cpus().length)));
}
