/**
 * Files put at a replication factor on a test network, for the tests that
 * then take a holder away (repair, drain): each file's link, SHA-256, size
 * and every CID it consists of (manifest and chunks), returned once the
 * directory lists `replicas` providers for every one of them — so what
 * goes missing afterwards is the victim's share only.
 */
import { join } from "node:path";
import { expect } from "vitest";
import { sha256File, waitUntil, writeRandomFile, type TestNetwork, type TestPeer } from "./peer-process.js";

export interface ReplicatedFile {
  link: string;
  sha: string;
  size: number;
  cids: string[];
}

export async function putReplicated(
  net: TestNetwork,
  publisher: TestPeer,
  dir: string,
  sizes: readonly number[],
  replicas: number,
  label: string,
): Promise<{ files: ReplicatedFile[]; cids: string[] }> {
  const files: ReplicatedFile[] = [];
  for (const [i, size] of sizes.entries()) {
    const path = join(dir, `file-${i}.bin`);
    const sha = await writeRandomFile(path, size, `${label}-${i}`);
    const put = await publisher.put(path, ["--replicas", String(replicas)]);
    expect(put.replicasAchieved).toBe(replicas);
    const chunks = await publisher.fileChunks(put.link);
    files.push({ link: put.link, sha, size, cids: [put.cid, ...chunks.map((c) => c.cid)] });
  }
  const cids = [...new Set(files.flatMap((f) => f.cids))];
  await waitUntil(`every chunk has ${replicas} live providers`, 60_000, async () => {
    for (const cid of cids) if ((await net.providersOf(cid)).length < replicas) return false;
    return true;
  });
  return { files, cids };
}

/** The peer other than `publisher` that holds the most of `cids`. */
export function heaviestHolder(net: TestNetwork, publisher: TestPeer, cids: readonly string[]): TestPeer {
  const others = net.peers.filter((p) => p !== publisher);
  return others.map((p) => ({ p, n: cids.filter((c) => p.holds(c)).length })).sort((a, b) => b.n - a.n)[0].p;
}

/** Every file downloads bit-exact into `dir` in a fresh home that holds nothing (so from the surviving peers alone). */
export async function expectAllDownload(net: TestNetwork, files: readonly ReplicatedFile[], dir: string): Promise<void> {
  const downloader = await net.addPeer({ start: false });
  for (const [i, file] of files.entries()) {
    const out = join(dir, `file-${i}.bin`);
    const got = await downloader.get(file.link, out);
    expect(got.bytes).toBe(file.size);
    expect(await sha256File(out)).toBe(file.sha);
  }
}
