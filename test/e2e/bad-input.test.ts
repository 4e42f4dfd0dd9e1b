/**
 * End to end: bad input and hostile conditions, through the real command.
 * Each must end with exactly one clear line on stderr — `peercloud:
 * <message> (<code>)` — or, with `--json`, exactly one `{"error":{…}}`
 * object on stdout, and a non-zero exit (2: the input was wrong, 1: run
 * time); and never leave a partial download under the final name (a
 * `<name>.peercloud-part` with its state file may stay: that is what a
 * re-run resumes from) or a chunk store holding bytes that do not match
 * their CIDs.
 *
 * Where a failure is preceded by warnings about remote sources (a dead edge,
 * corrupt replicas), those are `peercloud: warning: …` lines before the one
 * error line, and JSON warning lines on stderr with `--json`.
 *
 * Conditions that need privileges are arranged without them where possible
 * and skipped with a printed reason otherwise: an unreadable file as root
 * drops CAP_DAC_OVERRIDE with setpriv; a genuinely full filesystem is a
 * 2 MiB tmpfs mounted in a private mount namespace (`unshare --mount
 * --map-root-user`).
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cidFromSha256, isCid } from "../../src/core/cid.js";
import {
  closedPort,
  editConfig,
  killAllCommands,
  listDir,
  sha256File,
  startTestNetwork,
  writeRandomFile,
  type CliResult,
  type PutJson,
  type TestNetwork,
  type TestPeer,
} from "../helpers/peer-process.js";

const MiB = 1 << 20;
const ERROR_LINE = /^peercloud: (.+) \(([a-z0-9_]+)\)$/;

let net: TestNetwork;
/** A one-shot home (no daemon): its commands run in the CLI process. */
let client: TestPeer;
/** A file put once and used by several cases. */
let known: PutJson;
let knownSha: string;

beforeAll(async () => {
  net = await startTestNetwork({ peers: 3 });
  client = await net.addPeer({ start: false });
  const source = join(net.dir("known"), "known.bin");
  knownSha = await writeRandomFile(source, 3 * MiB + 17, "bad-input-known");
  known = await net.peers[0].put(source, ["--replicas", "2"]);
}, 240_000);

afterEach(async () => {
  await killAllCommands();
});

afterAll(async () => {
  await net?.stop();
});

/** Exactly one `peercloud: … (code)` line on stderr (after any warning lines), nothing on stdout, the exit status. */
function expectErrorLine(result: CliResult, code: string, exitCode: 1 | 2, options: { warningsAllowed?: boolean } = {}): string {
  const lines = result.stderr.split("\n").filter((l) => l.length > 0);
  const context = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  expect(result.code, context).toBe(exitCode);
  expect(result.stdout, context).toBe("");
  const errors = lines.filter((l) => !l.startsWith("peercloud: warning: "));
  expect(errors, context).toHaveLength(1);
  if (!options.warningsAllowed) expect(lines, context).toHaveLength(1);
  expect(lines[lines.length - 1], context).toBe(errors[0]);
  const m = ERROR_LINE.exec(errors[0]);
  expect(m, context).not.toBeNull();
  expect(m![2], context).toBe(code);
  return m![1];
}

/** With --json: exactly one `{"error":{code,message}}` on stdout; stderr holds only JSON lines (progress, warnings). */
function expectJsonError(result: CliResult, code: string, exitCode: 1 | 2): string {
  const context = `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
  expect(result.code, context).toBe(exitCode);
  const out = result.stdout.split("\n").filter((l) => l.length > 0);
  expect(out, context).toHaveLength(1);
  const parsed = JSON.parse(out[0]) as { error?: { code?: unknown; message?: unknown } };
  expect(Object.keys(parsed), context).toEqual(["error"]);
  expect(parsed.error?.code, context).toBe(code);
  expect(typeof parsed.error?.message === "string" && parsed.error.message.length > 0 && !parsed.error.message.includes("\n"), context).toBe(true);
  for (const line of result.stderr.split("\n").filter((l) => l.length > 0)) {
    const value = JSON.parse(line) as { type?: unknown };
    expect(["progress", "warning"], context).toContain(value.type);
  }
  return parsed.error!.message as string;
}

/** Every chunk file in a store holds the bytes its CID names, and no temp file is left. */
async function expectStoreIntact(storeDir: string): Promise<number> {
  const chunksDir = join(storeDir, "chunks");
  let count = 0;
  for (const shard of await readdir(chunksDir).catch(() => [] as string[])) {
    for (const name of await readdir(join(chunksDir, shard))) {
      expect(isCid(name), `unexpected file ${shard}/${name} in the store`).toBe(true);
      const bytes = await readFile(join(chunksDir, shard, name));
      expect(cidFromSha256(createHash("sha256").update(bytes).digest()), `${name} does not hold its bytes`).toBe(name);
      count++;
    }
  }
  return count;
}

function randomLink(): string {
  const cid = cidFromSha256(randomBytes(32));
  return `peercloud://${cid}#${randomBytes(32).toString("base64url")}`;
}

/** Runs async jobs a few at a time (each command is a Node process; the machine may have 2 cores). */
async function inBatches<T>(items: readonly T[], size: number, job: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(job));
}

describe("links", () => {
  it("an unknown (well-formed) link: chunk_unavailable, exit 1, nothing written — in-process and through a daemon", async () => {
    const link = randomLink();
    const dir = net.dir("unknown");
    const out = join(dir, "x.bin");
    const message = expectErrorLine(await client.run(["get", link, "-o", out]), "chunk_unavailable", 1);
    expect(message).toContain(/peercloud:\/\/([^#]+)/.exec(link)![1]);
    expect(message).toMatch(/no provider and not in cold storage/);
    expectJsonError(await client.run(["--json", "get", link, "-o", out]), "chunk_unavailable", 1);
    // Through the control socket of a running daemon: the same one line.
    expectErrorLine(await net.peers[1].run(["get", link, "-o", out]), "chunk_unavailable", 1);
    expect(listDir(dir)).toEqual([]);
  }, 180_000);

  it("malformed links and CIDs: invalid_link, exit 2, nothing written, for get, unpin and pin", async () => {
    const cid = known.cid;
    const key = known.link.split("#")[1];
    const bad = [
      "garbage",
      "",
      `peercloud://notacid#${key}`,
      `peercloud://${cid}`,
      `peercloud://${cid}#`,
      `peercloud://${cid}#short`,
      `peercloud://${cid}#${key}${key}`,
      `peercloud://${cid.toUpperCase()}#${key}`,
      `peercloud://QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG#${key}`,
      `peercloud://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi#${key}`,
      `peercloud://${cid.slice(0, -1)}#${key}`,
      `peercloud://../../etc/passwd#${key}`,
      `peercloud://${cid}/../x#${key}`,
      `${net.edgeUrl}/x/${cid}#${key}`,
      `${net.edgeUrl}/d/${cid}`,
      `ftp://${cid}#${key}`,
    ];
    const cwd = net.dir("malformed");
    await inBatches(bad, 4, async (link) => {
      const message = expectErrorLine(await client.run(["get", link], { cwd }), "invalid_link", 2);
      expect(message.length).toBeGreaterThan(10);
    });
    await inBatches(bad.slice(0, 4), 4, async (link) => {
      expectJsonError(await client.run(["--json", "get", link], { cwd }), "invalid_link", 2);
      expectErrorLine(await client.run(["unpin", link], { cwd }), "invalid_link", 2);
      expectErrorLine(await client.run(["pin", link, "--replicas", "2"], { cwd }), "invalid_link", 2);
    });
    expect(listDir(cwd)).toEqual([]);
  }, 240_000);

  it("wrong command-line values: a usage line and exit 2", async () => {
    const file = join(net.dir("usage"), "f.txt");
    await writeFile(file, "x");
    const cases: [string[], string][] = [
      [["put", file, "--replicas", "0"], "invalid_argument"],
      [["put", file, "--replicas", "many"], "invalid_argument"],
      [["put", file, "--min-regions", "0"], "invalid_argument"],
      [["put", file, "--replicas", "2", "--min-regions", "3"], "invalid_min_regions"],
      [["pin", known.link, "--replicas", "0"], "invalid_argument"],
      [["pin", known.link, "--min-regions", "x"], "invalid_argument"],
      [["get", known.link, "-o", "-"], "usage"],
      [["get", known.link, "--stream"], "usage"],
      [["get"], "missing_argument"],
      [["fly"], "unknown_command"],
      [["get", known.link, "--bogus"], "unknown_option"],
    ];
    await inBatches(cases, 4, async ([args, code]) => {
      expectErrorLine(await client.run(args), code, 2);
    });
    expectErrorLine(await net.peers[0].spawnCli(["peer", "start", "--storage-limit", "lots"]).exited, "invalid_argument", 2);
  }, 180_000);
});

describe("input files", () => {
  it("a missing file: path_not_found, exit 2, the store untouched", async () => {
    const before = client.chunkFiles().size;
    const missing = join(net.dir("missing"), "no-such-file.bin");
    const message = expectErrorLine(await client.run(["put", missing]), "path_not_found", 2);
    expect(message).toContain("no-such-file.bin");
    expectJsonError(await client.run(["--json", "put", missing]), "path_not_found", 2);
    // Through a daemon too.
    expectErrorLine(await net.peers[0].run(["put", missing]), "path_not_found", 2);
    expect(client.chunkFiles().size).toBe(before);
  }, 120_000);

  it("an unreadable file: eacces, exit 1, nothing stored", async (ctx) => {
    const dir = net.dir("unreadable");
    const file = join(dir, "secret.txt");
    await writeFile(file, "top secret\n");
    await chmod(file, 0o000);
    let prefix: string[] = [];
    if (process.getuid?.() === 0) {
      // Root reads anything; without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH it obeys the mode bits like anyone.
      const drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"];
      const probe = spawnSync(drop[0], [...drop.slice(1), "cat", file], { encoding: "utf8" });
      if (probe.status === 0 || !/Permission denied/i.test(probe.stderr ?? "")) {
        console.log(`skipped: running as root and cannot drop CAP_DAC_OVERRIDE with setpriv (${probe.error?.message ?? probe.stderr?.trim() ?? "file still readable"})`);
        ctx.skip();
      }
      prefix = drop;
    }
    const before = client.chunkFiles().size;
    const result = await client.spawnCli(["put", file], { prefix }).exited;
    const message = expectErrorLine(result, "eacces", 1);
    expect(message).toMatch(/permission denied/i);
    expect(message).toContain("secret.txt");
    expect(client.chunkFiles().size).toBe(before);
  }, 120_000);
});

describe("the network", () => {
  it("a dead edge: put fails with edge_unreachable; get names the unreachable edge; nothing under the final name", async () => {
    const home = await net.addPeer({ start: false });
    const port = await closedPort();
    await editConfig(home.home, (config) => {
      config.edgeUrl = `http://127.0.0.1:${port}`;
    });
    const file = join(net.dir("dead-edge-in"), "doc.txt");
    await writeFile(file, "to nowhere\n");
    const put = expectErrorLine(await home.run(["put", file]), "edge_unreachable", 1);
    expect(put).toContain(`127.0.0.1:${port}`);
    expectJsonError(await home.run(["--json", "put", file]), "edge_unreachable", 1);
    expect(await expectStoreIntact(home.storeDir)).toBe(0);

    const dir = net.dir("dead-edge-out");
    const out = join(dir, "known.bin");
    const get = expectErrorLine(await home.run(["get", known.link, "-o", out]), "chunk_unavailable", 1, { warningsAllowed: true });
    expect(get).toMatch(/cannot reach the edge/);
    expect(get).toContain(`127.0.0.1:${port}`);
    expectJsonError(await home.run(["--json", "get", known.link, "-o", out]), "chunk_unavailable", 1);
    expect(listDir(dir)).toEqual([]);
  }, 180_000);

  it("every replica serves wrong bytes and there is no R2 copy: a clear error, no output file, no corrupt chunk kept", async () => {
    const [p1] = net.peers;
    const source = join(net.dir("liars-in"), "ledger.bin");
    const sha = await writeRandomFile(source, 5 * MiB + 3, "liars");
    const put = await p1.put(source, ["--replicas", "2"]);
    const chunks = await p1.fileChunks(put.link);
    const victim = chunks[chunks.length - 1];
    const holders = net.holdersOf(victim.cid, net.peers);
    expect(holders).toHaveLength(2);
    for (const holder of holders) await holder.corruptChunk(victim.cid);

    const d = await net.addPeer({ start: false });
    const dir = net.dir("liars-out");
    const out = join(dir, "ledger.bin");
    // An older file under the output name stays as it was.
    await writeFile(out, "previous version\n");
    const message = expectErrorLine(await d.run(["get", put.link, "-o", out]), "chunk_unavailable", 1, { warningsAllowed: true });
    expect(message).toContain(victim.cid);
    expect(message).toMatch(/do not match the CID/);
    expect(await readFile(out, "utf8")).toBe("previous version\n");
    // Everything obtainable is kept for a re-run, under the part name only.
    expect(listDir(dir)).toEqual(["ledger.bin", "ledger.bin.peercloud-part", "ledger.bin.peercloud-part.state"]);
    expect(await expectStoreIntact(d.storeDir)).toBe(chunks.length);
    expect(d.holds(victim.cid)).toBe(false);

    const json = expectJsonError(await d.run(["--json", "get", put.link, "-o", out]), "chunk_unavailable", 1);
    expect(json).toContain(victim.cid);

    // Once a holder has good bytes again (flipping the same bytes back), a re-run resumes and completes.
    await holders[0].corruptChunk(victim.cid);
    const rerun = await d.run(["--json", "get", put.link, "-o", out]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout)).toMatchObject({ resumedChunks: chunks.length - 1, fromPeers: 1 });
    expect(await sha256File(out)).toBe(sha);
    expect(listDir(dir)).toEqual(["ledger.bin"]);
  }, 180_000);
});

describe("full disks", () => {
  it("a storage limit smaller than the file: put fails with store_full and the store stays intact; get still delivers", async () => {
    const small = await net.addPeer({ startOptions: { storageLimit: "1MiB" } });
    const dir = net.dir("limit");
    const file = join(dir, "too-big.bin");
    await writeRandomFile(file, 3 * MiB, "limit");
    const message = expectErrorLine(await small.run(["put", file]), "store_full", 1);
    expect(message.length).toBeGreaterThan(10);
    expectJsonError(await small.run(["--json", "put", file]), "store_full", 1);
    const status = JSON.parse((await small.run(["--json", "status"])).stdout) as { store: { usedBytes: number; pinnedBytes: number; limitBytes: number } };
    expect(status.store.limitBytes).toBe(MiB);
    expect(status.store.usedBytes).toBeLessThanOrEqual(MiB);
    console.log(`after the failed put: ${status.store.usedBytes} bytes used, ${status.store.pinnedBytes} pinned`);

    // The failed put must not leave the store unusable: a small file still fits.
    const smallFile = join(dir, "small.txt");
    await writeFile(smallFile, "fits\n");
    const fits = await small.run(["put", smallFile]);
    expect(fits.code, fits.stderr).toBe(0);

    // A download does not need room in the store (it is only a cache): the file arrives whole.
    const out = join(dir, "known.bin");
    const got = await small.run(["--json", "get", known.link, "-o", out]);
    expect(got.code, got.stderr).toBe(0);
    expect(await sha256File(out)).toBe(knownSha);
    // Stopped, the daemon has flushed everything: only whole, matching chunk files remain.
    await small.stop();
    await expectStoreIntact(small.storeDir);
  }, 180_000);

  describe("a real ENOSPC (a 2 MiB tmpfs in a private mount namespace)", () => {
    const unshare = ["unshare", "--mount", "--map-root-user"];
    const probe = spawnSync(unshare[0], [...unshare.slice(1), "sh", "-c", 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; rc=$?; rmdir "$d"; exit $rc'], { encoding: "utf8" });
    const available = probe.status === 0;
    if (!available) console.log(`skipped: cannot mount a tmpfs in a user+mount namespace (${probe.error?.message ?? probe.stderr?.trim() ?? `exit ${probe.status}`})`);

    /**
     * Runs the command with a fresh 2 MiB tmpfs mounted at `mountAt` (only
     * this process tree sees it), then prints `@@ <file>` per file left on
     * it and copies them to `copyTo` before the namespace — and the tmpfs —
     * go away. The exit status is the command's.
     */
    function onTinyTmpfs(peer: TestPeer, mountAt: string, copyTo: string, args: string[]): Promise<CliResult> {
      const script = [
        'dir="$1"; copy="$2"; shift 2',
        'mount -t tmpfs -o size=2m tmpfs "$dir" || exit 97',
        '"$@"; rc=$?',
        '(cd "$dir" && find . -type f | sort | sed "s/^/@@ /") >&2',
        'cp -a "$dir/." "$copy/"',
        "exit $rc",
      ].join("\n");
      return peer.spawnCli(args, { prefix: [...unshare, "sh", "-c", script, "sh", mountAt, copyTo] }).exited;
    }

    function splitListing(result: CliResult): { result: CliResult; files: string[] } {
      const lines = result.stderr.split("\n");
      const files = lines.filter((l) => l.startsWith("@@ ")).map((l) => l.slice(5));
      return { result: { ...result, stderr: lines.filter((l) => !l.startsWith("@@ ")).join("\n") }, files };
    }

    it.skipIf(!available)(
      "get onto a full filesystem: one error line, exit 1, no file under the final name",
      async () => {
        const d = await net.addPeer({ start: false });
        const mountAt = net.dir("tmpfs-out");
        const copy = net.dir("tmpfs-out-copy");
        const { result, files } = splitListing(await onTinyTmpfs(d, mountAt, copy, ["get", known.link, "-o", join(mountAt, "known.bin")]));
        const message = expectErrorLine(result, "enospc", 1);
        expect(message).toMatch(/no space left on device/i);
        expect(files).not.toContain("known.bin");
        expect(files.every((f) => f.startsWith("known.bin.peercloud-part"))).toBe(true);
        // The downloader's own store (on the normal disk) holds only verified chunks.
        await expectStoreIntact(d.storeDir);
      },
      180_000,
    );

    it.skipIf(!available)(
      "put into a store on a full filesystem: store_full, exit 1, the store left consistent",
      async () => {
        const d = await net.addPeer({ start: false });
        const storeDir = d.storeDir;
        await mkdir(storeDir, { recursive: true });
        const copy = net.dir("tmpfs-store-copy");
        const file = join(net.dir("tmpfs-in"), "big.bin");
        await writeRandomFile(file, 5 * MiB, "tmpfs-put");
        const { result, files } = splitListing(await onTinyTmpfs(d, storeDir, copy, ["put", file]));
        const message = expectErrorLine(result, "store_full", 1);
        expect(message.length).toBeGreaterThan(10);
        expect(files.filter((f) => !/^(chunks\/[0-9a-f]{2}\/[a-z2-7]{59}|pins\/[a-z2-7]{59}|pins\/\.empty)$/.test(f))).toEqual([]);
        await expectStoreIntact(copy);
      },
      180_000,
    );
  });
});

describe("output paths", () => {
  it("an output path in a missing directory: one error line, exit 1, nothing created", async () => {
    const dir = net.dir("missing-dir");
    const out = join(dir, "no", "such", "dir", "known.bin");
    const message = expectErrorLine(await client.run(["get", known.link, "-o", out]), "enoent", 1);
    expect(message).toMatch(/no such file or directory/i);
    expect(message).toContain(join(dir, "no", "such", "dir"));
    expectJsonError(await client.run(["--json", "get", known.link, "-o", out]), "enoent", 1);
    expect(listDir(dir)).toEqual([]);
  }, 120_000);
});
