/**
 * Issue 5's "Real check", small: `npm run bench:sources` end to end with
 * real peer processes on HTB-shaped namespaces — 32 MiB from three sources
 * at 20, 10 and 2.5 Mbit/s to one downloader, one run. The slowest source
 * must serve clearly less than the fastest (its share of bytes under twice
 * its share of rate, the fastest sending over three times its bytes), and
 * the download must not be held up by the slow source: under 2 × the ideal
 * time (an even split of the file would take over 4 ×: a third of 32 MiB
 * at 2.5 Mbit/s is 37 s against an ideal of 8.6 s).
 *
 * How close to the ideal it gets (1.12–1.19 × measured) is the bench's
 * figure, not this test's: DESIGN "Testing" keeps speed in benchmarks, and
 * CI runs this file next to other heavy ones on 2 cores. The bound here is
 * loose enough for a loaded machine and still fails a scheduler that
 * ignores source speed. 32 MiB, not 16: chunks are ~1 MiB and one takes
 * 3.5 s from the 2.5 Mbit/s source, so a 16 MiB file is mostly start-up and
 * chunk granularity.
 *
 * Needs root and `ip netns`; otherwise it skips with the reason printed.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../bench/swarm/processes.js";
import { skipReason } from "../../bench/swarm/sandbox.js";
import { listNamespaces } from "../../bench/swarm/topology.js";

const reason = skipReason();
if (reason) console.log(`skipped: bench:sources real multi-source check: ${reason}`);

interface SourceRow {
  name: string;
  rateMbit: number;
  bytesSent: number;
  shareOfBytes: number;
  shareOfRate: number;
}

describe.skipIf(reason !== null)("npm run bench:sources, small real run", () => {
  it("a slow source serves proportionally less and the download finishes near the ideal time", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(REPO_ROOT, "bench", "sources.ts"), "--file-mib", "32", "--source-rates", "20,10,2.5", "--runs", "1", "--link-check-s", "1", "--json"],
      { cwd: REPO_ROOT, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolveExit) => child.on("close", resolveExit));
    expect(code, stderr.slice(-4000)).toBe(0);
    const lines = stdout.trim().split("\n");
    expect(lines, "exactly one JSON object on stdout").toHaveLength(1);
    const report = JSON.parse(lines[0]) as { fileBytes: number; ratioToIdeal: number; sources: SourceRow[]; publisherTxBytes: number };
    expect(report.fileBytes).toBe(32 * 2 ** 20);
    expect(report.sources.map((s) => s.rateMbit)).toEqual([20, 10, 2.5]);
    const [fastest, , slowest] = report.sources;
    const sent = report.sources.reduce((a, s) => a + s.bytesSent, 0);
    // The sources together sent at least the file (kernel counters), and the stopped publisher next to nothing.
    expect(sent).toBeGreaterThanOrEqual(report.fileBytes);
    expect(report.publisherTxBytes).toBeLessThan(report.fileBytes * 0.01);
    expect(slowest.shareOfBytes, stderr.slice(-2000)).toBeLessThan(2 * slowest.shareOfRate);
    expect(fastest.bytesSent, stderr.slice(-2000)).toBeGreaterThan(3 * slowest.bytesSent);
    console.log(
      `[sources] completion ${report.ratioToIdeal.toFixed(3)} × ideal; slowest source ${(slowest.shareOfBytes * 100).toFixed(1)} % of bytes for ${(slowest.shareOfRate * 100).toFixed(1)} % of rate`,
    );
    expect(report.ratioToIdeal, stderr.slice(-2000)).toBeLessThan(2);
    // The sandbox took everything with it.
    expect(listNamespaces(`pcs-${child.pid}-`)).toEqual([]);
  }, 150_000);
});
