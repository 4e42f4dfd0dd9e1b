/**
 * bench:sources flags, each validated with a one-line error (exit status 2):
 *
 *   --source-rates a,b,…   upload line rate of each source peer, Mbit/s (default 40,20,5: K = 3 sources)
 *   --down-mbit R          the downloader's download line rate (default 100)
 *   --file-mib M           file size (default 64)
 *   --runs N               runs; the figures are medians (default 3)
 *   --link-check-s S       seconds each source → downloader check stream is measured (default 2)
 *   --json                 one JSON object on stdout, everything else on stderr
 *   --keep                 keep the temp dir (homes, logs) for debugging
 *   --no-sandbox           do not wrap the run in private pid/mount/net namespaces
 */
import { parseArgs } from "node:util";
import { FlagError, LINK_BOUND_CAPACITY_MBIT } from "../swarm/flags.js";

export { FlagError };

export const MAX_SOURCES = 8;

export interface SourcesFlags {
  sourceRatesMbit: number[];
  downMbit: number;
  fileMib: number;
  runs: number;
  linkCheckSeconds: number;
  json: boolean;
  keep: boolean;
  sandbox: boolean;
  help: boolean;
}

function rate(raw: string, flag: string): number {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n <= 0 || n > 10_000) throw new FlagError(`${flag} must be a rate in Mbit/s above 0 and at most 10000, got ${JSON.stringify(raw)}`);
  return n;
}

function integer(raw: string, flag: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) throw new FlagError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

export function parseSourcesFlags(argv: string[]): SourcesFlags {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        "source-rates": { type: "string", default: "40,20,5" },
        "down-mbit": { type: "string", default: "100" },
        "file-mib": { type: "string", default: "64" },
        runs: { type: "string", default: "3" },
        "link-check-s": { type: "string", default: "2" },
        json: { type: "boolean", default: false },
        keep: { type: "boolean", default: false },
        "no-sandbox": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new FlagError((error as Error).message.split("\n")[0].replace(/\. To specify .*$/, ""));
  }
  const str = (k: string) => values[k] as string;
  const parts = str("source-rates")
    .split(",")
    .map((s) => s.trim());
  if (parts.length < 2 || parts.length > MAX_SOURCES) throw new FlagError(`--source-rates needs 2 to ${MAX_SOURCES} comma-separated rates, got ${parts.length}`);
  const sourceRatesMbit = parts.map((p, i) => rate(p, `--source-rates value ${i + 1}`));
  const linkCheckSeconds = Number(str("link-check-s"));
  if (!Number.isFinite(linkCheckSeconds) || linkCheckSeconds < 0.5 || linkCheckSeconds > 60)
    throw new FlagError(`--link-check-s must be a number of seconds from 0.5 to 60, got ${JSON.stringify(str("link-check-s"))}`);
  const flags: SourcesFlags = {
    sourceRatesMbit,
    downMbit: rate(str("down-mbit"), "--down-mbit"),
    fileMib: integer(str("file-mib"), "--file-mib", 1, 4096),
    runs: integer(str("runs"), "--runs", 1, 99),
    linkCheckSeconds,
    json: values.json === true,
    keep: values.keep === true,
    sandbox: values["no-sandbox"] !== true,
    help: values.help === true,
  };
  const total = sourceRatesMbit.reduce((a, b) => a + b, 0);
  if (total >= LINK_BOUND_CAPACITY_MBIT)
    throw new FlagError(`the sources' total upload ${total} Mbit/s is not under ${LINK_BOUND_CAPACITY_MBIT} Mbit/s: on 2 cores the run would be CPU-bound, not link-bound`);
  return flags;
}

export const USAGE = `usage: npm run bench:sources -- [--source-rates a,b,…] [--down-mbit R] [--file-mib M] [--runs N]
       [--link-check-s S] [--json] [--keep] [--no-sandbox]
Needs root (network namespaces, tc). See docs/operations.md "Multi-source download benchmark".`;
