/**
 * LARGE: a 1 GiB file between two peer processes, with bounded memory.
 *
 * Needs about 3 GiB of free disk in the temp directory while it runs (the
 * source is removed once it is put; the publisher's store, the downloader's
 * store and the output stay until the end) and runs in CI like every other
 * test (aim: well under 3 minutes on 2 cores).
 *
 * Memory is behaviour, not timing, so it is asserted: the `get` process —
 * a one-shot CLI process, so the download runs in it and nothing else does
 * — must peak at ≤ 200 MB resident. The peak is read inside that process as
 * it exits (an `--import`ed probe writes /proc/self/status's VmHWM to a
 * file on "exit"), so nothing is missed
 * between a last outside sample and the exit. Not getrusage's maxRSS: Linux
 * carries the parent's peak across fork+exec into it, so a child spawned by
 * a big test runner would report the runner's size. The publisher daemon's peak
 * (it chunked, sealed and stored the file, then served it) is read from its
 * /proc/<pid>/status and reported.
 *
 * The content is the AES-256-CTR keystream of a fixed key: incompressible,
 * deterministic, generated at GB/s.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listDir, sha256File, startTestNetwork, writeRandomFile, type GetJson, type TestNetwork } from "../helpers/peer-process.js";

const GiB = 1 << 30;
const MB = 1_000_000;
const MAX_GET_RSS_BYTES = 200 * MB;

const PROBE = `
import { readFileSync, writeFileSync } from "node:fs";
process.on("exit", () => {
  const hwm = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  writeFileSync(process.env.PEERCLOUD_TEST_RSS_FILE, JSON.stringify({ vmHwmKiB: hwm ? Number(hwm[1]) : null }));
});
`;

let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork({ peers: 1 });
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

async function vmHwmBytes(pid: number): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

describe("[large] 1 GiB", () => {
  it("round-trips bit-exact between two peer processes; the get process stays under 200 MB resident", async () => {
    const [publisher] = net.peers;
    const downloader = await net.addPeer({ start: false });
    const dir = net.dir("large");
    const source = join(dir, "one-gib.bin");
    const startedMs = Date.now();
    const sha = await writeRandomFile(source, GiB, "large-file-1gib");
    const generatedMs = Date.now();

    const put = await publisher.put(source, ["--replicas", "1"]);
    const putMs = Date.now();
    expect(put.bytes).toBe(GiB);
    expect(put.chunks).toBeGreaterThan(200);
    await rm(source);
    const publisherPeak = await vmHwmBytes(publisher.daemon!.pid);

    const probe = join(net.root, "rss-probe.mjs");
    await writeFile(probe, PROBE);
    const peakOf = async (file: string) => {
      const rss = JSON.parse(await readFile(file, "utf8")) as { vmHwmKiB: number | null };
      if (rss.vmHwmKiB === null) throw new Error(`no VmHWM line in /proc/self/status (${file})`);
      return rss.vmHwmKiB * 1024;
    };
    // The same command's footprint with no transfer (Node and the CLI's module graph, see bin/peercloud.js): for the report.
    const baselineFile = join(net.root, "status-rss.json");
    const status = await downloader.run(["--json", "status"], { nodeArgs: ["--import", pathToFileURL(probe).href], env: { PEERCLOUD_TEST_RSS_FILE: baselineFile } });
    expect(status.code, status.stderr).toBe(0);
    const baselinePeak = await peakOf(baselineFile);

    const rssFile = join(net.root, "get-rss.json");
    const outDir = net.dir("large-out");
    const out = join(outDir, "one-gib.bin");
    const get = downloader.spawnCli(["--json", "get", put.link, "-o", out], {
      nodeArgs: ["--import", pathToFileURL(probe).href],
      env: { PEERCLOUD_TEST_RSS_FILE: rssFile },
      timeoutMs: 540_000,
    });
    const result = await get.exited;
    const gotMs = Date.now();
    expect(result.code, result.stderr.slice(-4000)).toBe(0);
    const got = JSON.parse(result.stdout) as GetJson;
    expect(got).toMatchObject({ path: out, bytes: GiB, chunks: put.chunks, fromCold: 0, fromLocal: 0, sourcesPenalised: [] });
    expect(listDir(outDir)).toEqual(["one-gib.bin"]);
    expect(await sha256File(out)).toBe(sha);
    const verifiedMs = Date.now();

    const getPeakBytes = await peakOf(rssFile);
    const summary =
      `[large] 1 GiB in ${put.chunks} chunks: generate ${((generatedMs - startedMs) / 1000).toFixed(1)} s, put ${((putMs - generatedMs) / 1000).toFixed(1)} s, ` +
      `get ${((gotMs - putMs) / 1000).toFixed(1)} s, verify ${((verifiedMs - gotMs) / 1000).toFixed(1)} s; ` +
      `get peak RSS ${(getPeakBytes / MB).toFixed(0)} MB (limit ${MAX_GET_RSS_BYTES / MB} MB; the same command without a transfer: ${(baselinePeak / MB).toFixed(0)} MB, ` +
      `so the download itself: ${((getPeakBytes - baselinePeak) / MB).toFixed(0)} MB); ` +
      `publisher daemon peak RSS ${publisherPeak === null ? "unknown" : `${(publisherPeak / MB).toFixed(0)} MB`}`;
    console.log(summary);
    expect(baselinePeak).toBeGreaterThan(0);
    expect(getPeakBytes, summary).toBeLessThanOrEqual(MAX_GET_RSS_BYTES);

    // 3 GiB of stores and output: released now rather than at the end of the file.
    await rm(outDir, { recursive: true, force: true });
  }, 600_000);
});
