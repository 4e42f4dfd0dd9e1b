/**
 * Drain progress on the terminal, the way put/get show theirs
 * (progress.ts): a bar with bytes moved, rate and ETA on a TTY, JSON lines
 * (`{"type":"progress","op":"drain",…}`) with --json, nothing otherwise.
 * "Moved" is how many of the bytes that lacked replicas elsewhere when the
 * drain started no longer do: the directory's `remainingBytes` going down.
 */
import { SingleBar } from "cli-progress";
import type { DrainProgress } from "../core/messages.js";
import { formatBytes, RateMeter } from "./progress.js";

export interface DrainProgressLine extends DrainProgress {
  type: "progress";
  op: "drain";
  bytesDone: number;
  bytesTotal: number;
  elapsedMs: number;
}

export interface DrainReporter {
  update(progress: DrainProgress): void;
  stop(): void;
}

export function createDrainReporter(mode: "bar" | "json" | "none", stream: NodeJS.WritableStream, now: () => number = Date.now): DrainReporter {
  const startMs = now();
  let totalBytes: number | null = null;
  const line = (p: DrainProgress): DrainProgressLine => {
    // The total is what lacked replicas at the start; it only grows if more turns up (a holder died meanwhile).
    totalBytes = Math.max(totalBytes ?? 0, p.remainingBytes);
    return { type: "progress", op: "drain", ...p, bytesDone: totalBytes - p.remainingBytes, bytesTotal: totalBytes, elapsedMs: now() - startMs };
  };
  if (mode === "json") {
    return { update: (p) => void stream.write(JSON.stringify(line(p)) + "\n"), stop: () => {} };
  }
  if (mode === "none") return { update: (p) => void line(p), stop: () => {} };
  const rate = new RateMeter(now);
  const bar = new SingleBar({
    stream,
    format: "drain [{bar}] {percentage}% | {doneText} / {totalText} | {chunks} chunk(s) left | {rateText} | ETA {eta_formatted}",
    barsize: 30,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 20,
    noTTYOutput: false,
    gracefulExit: false,
  });
  let started = false;
  let stopped = false;
  return {
    update(p) {
      if (stopped) return;
      const l = line(p);
      const payload = { doneText: formatBytes(l.bytesDone), totalText: formatBytes(l.bytesTotal), chunks: p.remainingChunks, rateText: `${formatBytes(rate.sample(l.bytesDone))}/s` };
      if (!started) {
        bar.start(Math.max(l.bytesTotal, 1), p.done ? Math.max(l.bytesTotal, 1) : l.bytesDone, payload);
        started = true;
      } else {
        if (bar.getTotal() !== Math.max(l.bytesTotal, 1)) bar.setTotal(Math.max(l.bytesTotal, 1));
        bar.update(p.done ? Math.max(l.bytesTotal, 1) : l.bytesDone, payload);
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (started) bar.stop();
    },
  };
}
