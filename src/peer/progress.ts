/**
 * Progress of put and get, for people and for machines.
 *
 * ingest.ts and download.ts emit `ProgressEvent`s through a callback as they
 * go (often: every chunk); a reporter turns them into output:
 *  - "bar": one cli-progress bar on a terminal (stderr) with bytes, rate and
 *    ETA; cli-progress throttles redraws itself;
 *  - "json": JSON lines (one event per line), throttled to one line per
 *    `intervalMs` plus every phase change and the final event — what the
 *    CLI's `--json` and the daemon's NDJSON control stream carry;
 *  - "none"; and "auto" = "bar" when the stream is a TTY, else "none", so
 *    logs and pipes stay clean.
 * Progress goes to stderr by default: stdout is for the result (or the file
 * itself with `get -o - --stream`). Call `stop()` on every exit path (it
 * restores the cursor the bar hides).
 */
import { SingleBar, type Options as BarOptions } from "cli-progress";
import type { SourceStats } from "./source-scores.js";

export type ProgressPhase =
  /** put: walking the input to learn its size */
  | "scan"
  /** put: chunking, sealing and storing locally (pushes overlap) */
  | "chunk"
  /** put: pushing replicas to other peers */
  | "replicate"
  /** put: uploading to the R2 cold store */
  | "cold"
  /** put: recording pins at the directory */
  | "pin"
  /** get: fetching and opening manifests */
  | "manifest"
  /** get: checking chunks a previous run already wrote */
  | "resume"
  /** get: fetching chunks */
  | "fetch"
  /** get: checking the whole-file SHA-256 */
  | "verify"
  | "done";

export interface ProgressEvent {
  op: "put" | "get";
  phase: ProgressPhase;
  bytesDone: number;
  bytesTotal: number;
  chunksDone: number;
  chunksTotal: number;
  /** get: per-source statistics of the current file's download. */
  sources?: SourceStats[];
  /** The file being processed, relative to the put/get root ("" for a single file). */
  path?: string;
}

export type ProgressCallback = (event: ProgressEvent) => void;

export type ProgressMode = "auto" | "bar" | "json" | "none";

export interface ProgressReporterOptions {
  mode?: ProgressMode;
  /** Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Label before the bar, e.g. "put" or the file name. */
  label?: string;
  /** Least time between JSON lines (phase changes and the end are always written). Default 250. */
  intervalMs?: number;
  /** Clock, injectable for tests. Default Date.now. */
  now?: () => number;
}

export interface ProgressReporter {
  readonly update: ProgressCallback;
  /** Draws the final state and releases the terminal. Idempotent. */
  stop(): void;
}

export function createProgressReporter(options: ProgressReporterOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const mode = options.mode ?? "auto";
  const resolved = mode === "auto" ? (stream.isTTY ? "bar" : "none") : mode;
  if (resolved === "bar") return barReporter(stream, options);
  if (resolved === "json") return jsonReporter(stream, options);
  return { update: () => {}, stop: () => {} };
}

function jsonReporter(stream: NodeJS.WritableStream, options: ProgressReporterOptions): ProgressReporter {
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? 250;
  let lastWrittenMs = -Infinity;
  let lastPhase: string | undefined;
  let pending: ProgressEvent | null = null;
  const write = (event: ProgressEvent) => {
    stream.write(JSON.stringify({ type: "progress", ...event }) + "\n");
    lastWrittenMs = now();
    lastPhase = event.phase;
    pending = null;
  };
  return {
    update(event) {
      const t = now();
      if (event.phase !== lastPhase || event.phase === "done" || t - lastWrittenMs >= intervalMs) write(event);
      else pending = event;
    },
    stop() {
      if (pending) write(pending);
    },
  };
}

function barReporter(stream: NodeJS.WritableStream, options: ProgressReporterOptions): ProgressReporter {
  const now = options.now ?? Date.now;
  const label = options.label ?? "";
  const rate = new RateMeter(now);
  const barOptions: BarOptions = {
    stream,
    format: `${label ? label + " " : ""}{phase} [{bar}] {percentage}% | {doneText} / {totalText} | {rateText} | ETA {eta_formatted}`,
    barsize: 30,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    // Never write to a non-TTY, even if forced into "bar" mode.
    noTTYOutput: false,
    // cli-progress would otherwise add its own SIGINT/SIGTERM listeners, which replace Node's default
    // exit-on-Ctrl-C: the CLI owns signals (abort the operation, so get saves its resume state, then stop()).
    gracefulExit: false,
  };
  const bar = new SingleBar(barOptions);
  let started = false;
  let stopped = false;
  return {
    update(event) {
      if (stopped) return;
      const payload = {
        phase: event.phase.padEnd(9),
        doneText: formatBytes(event.bytesDone),
        totalText: formatBytes(event.bytesTotal),
        rateText: `${formatBytes(rate.sample(event.bytesDone))}/s`,
      };
      if (!started) {
        bar.start(Math.max(event.bytesTotal, 1), event.bytesDone, payload);
        started = true;
      } else {
        if (bar.getTotal() !== Math.max(event.bytesTotal, 1)) bar.setTotal(Math.max(event.bytesTotal, 1));
        bar.update(event.bytesDone, payload);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (started) bar.stop();
    },
  };
}

/** Bytes per second over a sliding window of recent samples (about the last 5 s). */
export class RateMeter {
  private readonly samples: { atMs: number; bytes: number }[] = [];
  constructor(
    private readonly now: () => number = Date.now,
    private readonly windowMs = 5000,
  ) {}

  sample(bytesDone: number): number {
    const t = this.now();
    this.samples.push({ atMs: t, bytes: bytesDone });
    while (this.samples.length > 2 && t - this.samples[1].atMs >= this.windowMs) this.samples.shift();
    const first = this.samples[0];
    const elapsedMs = t - first.atMs;
    return elapsedMs > 0 ? ((bytesDone - first.bytes) * 1000) / elapsedMs : 0;
  }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}
