/**
 * End to end: the real edge (Miniflare) and three real peer daemons, driven
 * through the `peercloud` command exactly as a user would. Put on one peer,
 * get on the others, bit-exact (SHA-256 of the whole file, or of every file
 * of a tree); the `--json` output shapes; the downloader becomes a provider
 * (the directory lists it, and it alone serves a third peer once the
 * publisher is gone); `ls`, `status` and `unpin`.
 */
import { chmod, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCid } from "../../src/core/cid.js";
import { sha256File, startTestNetwork, writeRandomFile, type TestNetwork, type TestPeer } from "../helpers/peer-process.js";

const MiB = 1 << 20;
const LINK = /^peercloud:\/\/(bafkrei[a-z2-7]{52})#[A-Za-z0-9_-]{43}$/;

let net: TestNetwork;

beforeAll(async () => {
  net = await startTestNetwork({ peers: 3 });
}, 240_000);

afterAll(async () => {
  await net?.stop();
});

/** CIDs that appeared in a peer's store since `before`. */
function newChunks(peer: TestPeer, before: ReadonlySet<string>): string[] {
  return [...peer.chunkFiles().keys()].filter((cid) => !before.has(cid));
}

/** Relative path → SHA-256 (files) or "dir" of everything under `root`. */
async function treeDigest(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        out[relative(root, path)] = "dir";
        await walk(path);
      } else out[relative(root, path)] = await sha256File(path);
    }
  };
  await walk(root);
  return out;
}

describe("put on one peer, get on the others", () => {
  it("a random multi-MiB file round-trips bit-exact, and the downloader becomes a provider that serves it on", async () => {
    const [p1, p2, p3] = net.peers;
    const dir = net.dir("file");
    const source = join(dir, "random.bin");
    const sizeBytes = 12 * MiB + 12_345;
    const sha = await writeRandomFile(source, sizeBytes, "put-get-file");

    const before = new Set(p1.chunkFiles().keys());
    // One replica: only the publisher holds the data, so every later get crosses the network.
    const put = await p1.put(source, ["--replicas", "1"]);
    expect(Object.keys(put).slice(0, 3)).toEqual(["link", "cid", "bytes"]);
    expect(put.link).toMatch(LINK);
    expect(LINK.exec(put.link)![1]).toBe(put.cid);
    expect(put.bytes).toBe(sizeBytes);
    expect(put.chunks).toBeGreaterThan(3);
    expect(put.replicasAchieved).toBe(1);
    expect(put.coldChunks).toBe(0);
    const cids = newChunks(p1, before);
    expect(cids).toContain(put.cid);
    expect(cids.length).toBeGreaterThanOrEqual(put.chunks + 1);
    for (const cid of cids) {
      expect(isCid(cid)).toBe(true);
      expect(p2.holds(cid) || p3.holds(cid), `${cid} was replicated although --replicas 1`).toBe(false);
    }

    // Peer 2 downloads from peer 1.
    const out2 = join(dir, "on-peer-2.bin");
    const got2 = await p2.get(put.link, out2);
    expect(got2).toMatchObject({ path: out2, kind: "file", manifestCid: put.cid, bytes: sizeBytes, files: 1, chunks: put.chunks, fromCold: 0, fromLocal: 0, resumedChunks: 0, sourcesPenalised: [] });
    expect(got2.fromPeers).toBeGreaterThanOrEqual(put.chunks);
    expect(await sha256File(out2)).toBe(sha);
    expect((await readdir(dir)).sort()).toEqual(["on-peer-2.bin", "random.bin"]);

    // The downloader keeps what it fetched and the directory learns it (announcements are batched: wait for them).
    for (const cid of cids) expect(p2.holds(cid), `peer 2 should keep ${cid}`).toBe(true);
    await net.waitForProvider(p2, cids);

    // With the publisher gone, peer 3 can only be served by peer 2.
    await p1.stop();
    try {
      const out3 = join(dir, "on-peer-3.bin");
      const got3 = await p3.get(put.link, out3);
      expect(got3).toMatchObject({ bytes: sizeBytes, fromCold: 0, fromLocal: 0 });
      expect(got3.fromPeers).toBeGreaterThanOrEqual(put.chunks);
      expect(got3.sourcesPenalised).not.toContain(p2.nodeId);
      expect(await sha256File(out3)).toBe(sha);
      const status2 = JSON.parse((await p2.run(["--json", "status"])).stdout) as { daemon: { transfer: { chunksServed: number; bytesServed: number } } };
      expect(status2.daemon.transfer.chunksServed).toBeGreaterThanOrEqual(put.chunks);
      expect(status2.daemon.transfer.bytesServed).toBeGreaterThanOrEqual(sizeBytes);
    } finally {
      await p1.start();
      await net.waitUntilPlaceable(net.peers);
    }
  }, 240_000);

  it("a directory tree round-trips: names, nesting, empty files and contents", async () => {
    const [p1, p2, p3] = net.peers;
    const dir = net.dir("tree");
    const tree = join(dir, "photos");
    await mkdir(join(tree, "2024", "summer"), { recursive: true });
    await mkdir(join(tree, "empty-dir"), { recursive: true });
    await writeFile(join(tree, "readme.txt"), "hello peercloud\n");
    await writeFile(join(tree, "empty.txt"), "");
    await writeRandomFile(join(tree, "2024", "big.bin"), 3 * MiB + 7, "tree-big");
    await writeRandomFile(join(tree, "2024", "summer", "beach.jpg"), 700_000, "tree-beach");
    await writeFile(join(tree, "2024", "summer", "notes é ü.md"), "non-ASCII name\n");
    await chmod(join(tree, "readme.txt"), 0o640);
    const expected = await treeDigest(tree);

    const put = await p1.put(tree, ["--replicas", "2"]);
    expect(put.link).toMatch(LINK);
    expect(put.bytes).toBe(3 * MiB + 7 + 700_000 + "hello peercloud\n".length + "non-ASCII name\n".length);

    // Peer 2: into an existing directory given with -o (receives <dir>/photos).
    const into2 = join(dir, "on-peer-2");
    await mkdir(into2);
    const got2 = await p2.get(put.link, into2);
    expect(got2).toMatchObject({ kind: "directory", path: join(into2, "photos"), bytes: put.bytes, files: 5 });
    expect(await treeDigest(join(into2, "photos"))).toEqual(expected);

    // Peer 3: no -o, so the tree lands in the command's working directory under its own name.
    const cwd3 = join(dir, "on-peer-3");
    await mkdir(cwd3);
    const res3 = await p3.run(["get", put.link], { cwd: cwd3 });
    expect(res3.code, res3.stderr).toBe(0);
    expect(res3.stdout.trim()).toBe(join(cwd3, "photos"));
    expect(await treeDigest(join(cwd3, "photos"))).toEqual(expected);
    // Modes travel masked (never group/world writable).
    expect((await stat(join(cwd3, "photos", "readme.txt"))).mode & 0o777).toBe(0o640);
  }, 240_000);

  it("human output: put prints the link alone on stdout; get prints the path; both accept the https link form", async () => {
    const [p1, p2] = net.peers;
    const dir = net.dir("human");
    const source = join(dir, "small.txt");
    await writeFile(source, "a small file, one chunk\n");
    const put = await p1.run(["put", source]);
    expect(put.code, put.stderr).toBe(0);
    const link = put.stdout.trim();
    expect(link).toMatch(LINK);
    expect(put.stdout).toBe(`${link}\n`);
    expect(put.stderr).toMatch(/^put /m);

    const [, cid, key] = /^peercloud:\/\/([^#]+)#(.+)$/.exec(link)!;
    const httpsLink = `${net.edgeUrl}/d/${cid}#${key}`;
    const out = join(dir, "copy.txt");
    const got = await p2.run(["get", httpsLink, "-o", out]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toBe(`${out}\n`);
    expect(await readFile(out, "utf8")).toBe("a small file, one chunk\n");
  }, 120_000);

  it("ls and status show what a home holds; unpin releases it locally and at the directory", async () => {
    const [p1, p2] = net.peers;
    const dir = net.dir("ls");
    const source = join(dir, "listed.bin");
    const sha = await writeRandomFile(source, 2 * MiB + 99, "ls-status");
    const put = await p1.put(source, ["--replicas", "1"]);
    const out = join(dir, "listed-copy.bin");
    await p2.get(put.link, out);
    expect(await sha256File(out)).toBe(sha);

    // ls on the publisher: the put, with its link; on the downloader: the get, with its path.
    const ls1 = JSON.parse((await p1.run(["--json", "ls"])).stdout) as { entries: { op: string; cid: string; link: string; name: string; bytes: number; replicas?: number; path?: string }[] };
    expect(ls1.entries).toContainEqual(expect.objectContaining({ op: "put", cid: put.cid, link: put.link, name: "listed.bin", bytes: put.bytes, replicas: 1 }));
    const ls2 = JSON.parse((await p2.run(["--json", "ls"])).stdout) as typeof ls1;
    expect(ls2.entries).toContainEqual(expect.objectContaining({ op: "get", cid: put.cid, path: out, bytes: put.bytes }));
    const lsText = await p1.run(["ls"]);
    expect(lsText.code).toBe(0);
    expect(lsText.stdout).toContain(put.link);

    // status: identity, the running daemon, the store.
    const status = JSON.parse((await p1.run(["--json", "status"])).stdout) as {
      nodeId: string;
      hostId: string;
      edgeUrl: string;
      daemon: { pid: number; transferUrl: string; directory: string } | null;
      store: { chunks: number; usedBytes: number; pinnedBytes: number };
    };
    expect(status).toMatchObject({ nodeId: p1.nodeId, hostId: p1.hostId, edgeUrl: net.edgeUrl });
    expect(status.daemon).toMatchObject({ pid: p1.daemon!.pid, transferUrl: p1.ready!.transferUrl, directory: "open" });
    expect(status.store.chunks).toBeGreaterThanOrEqual(put.chunks + 1);
    expect(status.store.pinnedBytes).toBeGreaterThanOrEqual(put.bytes);
    const statusText = await p1.run(["status"]);
    expect(statusText.code).toBe(0);
    expect(statusText.stdout).toContain(p1.nodeId);
    expect(statusText.stdout).toMatch(/daemon\s+running/);

    // unpin: every object of the link released (pin markers gone), the directory told, ls shows it.
    const unpin = await p1.run(["--json", "unpin", put.link]);
    expect(unpin.code, unpin.stderr).toBe(0);
    const unpinned = JSON.parse(unpin.stdout) as { cid: string; name: string; cids: number; directoryUnpinned: boolean };
    expect(unpinned).toMatchObject({ cid: put.cid, name: "listed.bin", directoryUnpinned: true });
    expect(unpinned.cids).toBe(put.chunks + 1);
    const after = JSON.parse((await p1.run(["--json", "status"])).stdout) as typeof status;
    expect(after.store.pinnedBytes).toBeLessThanOrEqual(status.store.pinnedBytes - put.bytes);
    const ls1After = JSON.parse((await p1.run(["--json", "ls"])).stdout) as typeof ls1;
    expect(ls1After.entries.find((e) => e.op === "put" && e.cid === put.cid)?.replicas).toBe(0);
    // Unpinned is not deleted: the chunks stay readable until the store needs room.
    expect(p1.holds(put.cid)).toBe(true);
  }, 240_000);
});
