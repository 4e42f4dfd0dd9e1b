/**
 * The bench's flags, each validated with a one-line error (exit status 2):
 *
 *   --peers N              downloaders (default 8)
 *   --rate-mbit R          every peer's upload and download line rate (default 50)
 *   --rates a,b,…          per-peer upload rates (N values; heterogeneous peers)
 *   --down-rates a,b,…     per-peer download rates (N values)
 *   --origin-rate-mbit R   the publisher's and the edge/origin host's rate, both ways (default: --rate-mbit)
 *   --file-mib M           file size (default 256)
 *   --runs K               runs; the figures are medians (default 3)
 *   --delay-ms D           one-way delay per host upload, where sch_netem exists (default 0)
 *   --tcp-cc a,b,…|inherit the hosts' TCP congestion control: the first of these the kernel lets a
 *                          network namespace use (default cubic,reno), or the machine's own
 *   --link-check-s S       seconds each link-check stream is measured, after a warm-up of a third of it (default 3)
 *   --only peercloud|http  one system only
 *   --chart PATH           the SVG (default bench-results/swarm-<time>.svg)
 *   --json                 one JSON object on stdout, everything else on stderr
 *   --keep                 keep the temp dir (homes, logs) for debugging
 *   --force                run even when total upload capacity ≥ 600 Mbit/s
 *   --no-sandbox           do not wrap the run in private pid/mount/net namespaces
 */
import { parseArgs } from "node:util";

export const MAX_PEERS = 200;
/** Past this total upload capacity a 2-core machine stops being link-bound (DESIGN "Emulated networks"). */
export const LINK_BOUND_CAPACITY_MBIT = 600;

export interface BenchFlags {
  peers: number;
  rateMbit: number;
  /** Per peer, resolved (length = peers). */
  upMbit: number[];
  downMbit: number[];
  originRateMbit: number;
  fileMib: number;
  runs: number;
  delayMs: number;
  /** Congestion controls to try for the hosts, in order; empty = inherit the machine's default. */
  tcpCongestionControl: string[];
  linkCheckSeconds: number;
  only: "peercloud" | "http" | null;
  chart: string | null;
  json: boolean;
  keep: boolean;
  force: boolean;
  sandbox: boolean;
  help: boolean;
}

export class FlagError extends Error {
  override name = "FlagError";
}

function integer(raw: string, flag: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < min || n > max) throw new FlagError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

function rate(raw: string, flag: string): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n <= 0 || n > 10_000) throw new FlagError(`${flag} must be a rate in Mbit/s above 0 and at most 10000, got ${JSON.stringify(raw)}`);
  return n;
}

function rateList(raw: string, flag: string, count: number): number[] {
  const parts = raw.split(",").map((s) => s.trim());
  if (parts.length !== count) throw new FlagError(`${flag} needs one rate per peer: ${count} comma-separated values, got ${parts.length}`);
  return parts.map((p, i) => rate(p, `${flag} value ${i + 1}`));
}

export function parseFlags(argv: string[]): BenchFlags {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        peers: { type: "string", default: "8" },
        "rate-mbit": { type: "string", default: "50" },
        rates: { type: "string" },
        "down-rates": { type: "string" },
        "origin-rate-mbit": { type: "string" },
        "file-mib": { type: "string", default: "256" },
        runs: { type: "string", default: "3" },
        "delay-ms": { type: "string", default: "0" },
        "tcp-cc": { type: "string", default: "cubic,reno" },
        "link-check-s": { type: "string", default: "3" },
        only: { type: "string" },
        chart: { type: "string" },
        json: { type: "boolean", default: false },
        keep: { type: "boolean", default: false },
        force: { type: "boolean", default: false },
        "no-sandbox": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    const message = (error as Error).message.split("\n")[0];
    const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(message);
    if (ambiguous) throw new FlagError(`${ambiguous[1]} got a value starting with "-" (write ${ambiguous[1]}=VALUE if that is really meant)`);
    throw new FlagError(message.replace(/\. To specify .*$/, ""));
  }
  const str = (k: string) => values[k] as string | undefined;
  const peers = integer(str("peers")!, "--peers", 1, MAX_PEERS);
  const rateMbit = rate(str("rate-mbit")!, "--rate-mbit");
  const upMbit = str("rates") !== undefined ? rateList(str("rates")!, "--rates", peers) : Array<number>(peers).fill(rateMbit);
  const downMbit = str("down-rates") !== undefined ? rateList(str("down-rates")!, "--down-rates", peers) : Array<number>(peers).fill(rateMbit);
  const originRateMbit = str("origin-rate-mbit") !== undefined ? rate(str("origin-rate-mbit")!, "--origin-rate-mbit") : rateMbit;
  const fileMib = integer(str("file-mib")!, "--file-mib", 1, 16_384);
  const runs = integer(str("runs")!, "--runs", 1, 99);
  const delayRaw = str("delay-ms")!;
  const delayMs = Number(delayRaw);
  if (delayRaw.trim() === "" || !Number.isFinite(delayMs) || delayMs < 0 || delayMs > 10_000)
    throw new FlagError(`--delay-ms must be a number of milliseconds from 0 to 10000, got ${JSON.stringify(delayRaw)}`);
  const ccRaw = str("tcp-cc")!.trim();
  const tcpCongestionControl = ccRaw === "inherit" ? [] : ccRaw.split(",").map((name) => name.trim());
  if (ccRaw === "" || tcpCongestionControl.some((name) => !/^[a-z0-9_]{1,15}$/.test(name)))
    throw new FlagError(`--tcp-cc must be "inherit" or a comma-separated list of congestion control names (e.g. cubic,reno), got ${JSON.stringify(ccRaw)}`);
  const linkCheckRaw = str("link-check-s")!;
  const linkCheckSeconds = Number(linkCheckRaw);
  if (linkCheckRaw.trim() === "" || !Number.isFinite(linkCheckSeconds) || linkCheckSeconds < 0.5 || linkCheckSeconds > 60)
    throw new FlagError(`--link-check-s must be a number of seconds from 0.5 to 60, got ${JSON.stringify(linkCheckRaw)}`);
  const only = str("only");
  if (only !== undefined && only !== "peercloud" && only !== "http") throw new FlagError(`--only must be peercloud or http, got ${JSON.stringify(only)}`);
  const chart = str("chart");
  if (chart !== undefined && chart.trim() === "") throw new FlagError("--chart needs a file path");
  return {
    peers,
    rateMbit,
    upMbit,
    downMbit,
    originRateMbit,
    fileMib,
    runs,
    delayMs,
    tcpCongestionControl,
    linkCheckSeconds,
    only: (only as BenchFlags["only"]) ?? null,
    chart: chart ?? null,
    json: values.json === true,
    keep: values.keep === true,
    force: values.force === true,
    sandbox: values["no-sandbox"] !== true,
    help: values.help === true,
  };
}

/** Upload capacity that can carry the file at once: the source's and every downloader's (the Kumar–Ross denominator). */
export function totalUploadMbit(flags: Pick<BenchFlags, "originRateMbit" | "upMbit">): number {
  return flags.originRateMbit + flags.upMbit.reduce((a, b) => a + b, 0);
}

/** Why this configuration would not be link-bound, or null. */
export function capacityProblem(flags: BenchFlags): string | null {
  const total = totalUploadMbit(flags);
  if (total < LINK_BOUND_CAPACITY_MBIT || flags.force) return null;
  const fitting = Math.floor(((LINK_BOUND_CAPACITY_MBIT * 0.85) / (flags.peers + 1)) * 10) / 10;
  return `total upload capacity ${total} Mbit/s (source ${flags.originRateMbit} + ${flags.peers} peers) is not under ${LINK_BOUND_CAPACITY_MBIT} Mbit/s: on 2 cores the run would be CPU-bound, not link-bound; use e.g. --rate-mbit ${fitting}, or --force`;
}

export const USAGE = `usage: npm run bench:swarm -- [--peers N] [--rate-mbit R] [--rates a,b,…] [--down-rates a,b,…]
       [--origin-rate-mbit R] [--file-mib M] [--runs K] [--delay-ms D] [--tcp-cc a,b,…|inherit] [--link-check-s S] [--only peercloud|http]
       [--chart PATH] [--json] [--keep] [--force] [--no-sandbox]
Needs root (network namespaces, tc). See docs/operations.md "Swarm benchmark".`;
