/**
 * The link check that a run must pass before its numbers are trusted: one
 * TCP stream (link-probe.ts) each way between two hosts, its goodput
 * compared with what the shaping promises, i.e. the slower of the sender's
 * upload and the receiver's download × the TCP payload share of line rate
 * (shaping.ts payloadShare()). Off by more than the tolerance either way
 * (shaping not in force, a CPU-bound path, a wrong framing assumption) and
 * the bench refuses to run.
 */
import { join } from "node:path";
import { REPO_ROOT, spawnTsInNs } from "./processes.js";
import type { Host } from "./topology.js";

const PROBE_SCRIPT = join(REPO_ROOT, "bench", "swarm", "link-probe.ts");
const PROBE_PORT = 5201;
export const DEFAULT_TOLERANCE = 0.15;

export interface StreamMeasurement {
  from: string;
  to: string;
  /** Line rate that bounds this direction: min(sender upload, receiver download). */
  configuredMbit: number;
  expectedGoodputMbit: number;
  measuredGoodputMbit: number;
  /** measured / expected. */
  ratio: number;
  ok: boolean;
}

export interface LinkCheckResult {
  payloadShare: number;
  tolerance: number;
  measurements: StreamMeasurement[];
  ok: boolean;
}

export interface StreamOptions {
  logDir: string;
  warmupMs?: number;
  measureMs?: number;
}

export interface StreamSample {
  /** Payload bytes received in the measurement window, and its length. */
  bytes: number;
  seconds: number;
  goodputBitsPerS: number;
}

/** Goodput (payload) of one TCP stream from `from` to `to`, after a warm-up. */
export async function measureStream(from: Host, to: Host, options: StreamOptions): Promise<StreamSample> {
  const warmupMs = options.warmupMs ?? 1000;
  const measureMs = options.measureMs ?? 3000;
  const tag = `${from.name}-to-${to.name}`;
  const receiver = spawnTsInNs({ name: `link-recv-${tag}`, ns: to.ns, script: PROBE_SCRIPT, args: ["recv", to.ip, String(PROBE_PORT), String(warmupMs), String(measureMs)], logDir: options.logDir });
  try {
    await receiver.waitForJson("stdout", (v) => v.listening === true, 30_000, "its listening line");
    const sender = spawnTsInNs({ name: `link-send-${tag}`, ns: from.ns, script: PROBE_SCRIPT, args: ["send", to.ip, String(PROBE_PORT)], logDir: options.logDir });
    try {
      return await receiver.waitForJson<StreamSample>("stdout", (v) => typeof v.goodputBitsPerS === "number", warmupMs + measureMs + 60_000, "its goodput");
    } finally {
      await sender.stop(2000);
    }
  } finally {
    await receiver.stop(2000);
  }
}

/** Both directions between each pair, one stream at a time. */
export async function checkLinks(pairs: [Host, Host][], share: number, options: StreamOptions & { tolerance?: number }): Promise<LinkCheckResult> {
  const tolerance = options.tolerance ?? DEFAULT_TOLERANCE;
  const measurements: StreamMeasurement[] = [];
  for (const [a, b] of pairs) {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ]) {
      const configuredMbit = Math.min(from.upMbit, to.downMbit);
      const expectedGoodputMbit = configuredMbit * share;
      const measuredGoodputMbit = (await measureStream(from, to, options)).goodputBitsPerS / 1e6;
      const ratio = measuredGoodputMbit / expectedGoodputMbit;
      measurements.push({ from: from.name, to: to.name, configuredMbit, expectedGoodputMbit, measuredGoodputMbit, ratio, ok: Math.abs(ratio - 1) <= tolerance });
    }
  }
  return { payloadShare: share, tolerance, measurements, ok: measurements.every((m) => m.ok) };
}
