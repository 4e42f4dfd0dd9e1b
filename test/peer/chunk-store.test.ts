/**
 * The file-backed ChunkStore: the shared contract, then what only real files
 * show — the on-disk layout, leftovers of a crash, bit rot, a process killed
 * at an arbitrary instant, and a filesystem that runs out of space.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseCid } from "../../src/core/cid.js";
import { cleanupTempFiles, isTempFileName, writeFileAtomic } from "../../src/peer/atomic-file.js";
import { ChunkStore, shardOf } from "../../src/peer/chunk-store.js";
import { spoolChunkSync, Writeback, WRITEBACK_CONCURRENCY, writeTempFile, type SpoolOutcome, type WritebackOutcome } from "../../src/peer/pending-files.js";
import { PIN_SOURCE_NAME } from "../../src/peer/pin-markers.js";
import { chunkStoreContract, makeChunk, readAll, recordEvents } from "./store-contract.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WRITER = fileURLToPath(new URL("./fixtures/store-writer.ts", import.meta.url));

const contractDirs: string[] = [];
chunkStoreContract("ChunkStore (files)", {
  async create(options) {
    const dir = await mkdtemp(join(tmpdir(), "peercloud-store-"));
    contractDirs.push(dir);
    return ChunkStore.open(dir, options);
  },
  async reopen(store, options) {
    await store.close();
    return ChunkStore.open(store.rootDir, options);
  },
  async destroy() {
    for (const dir of contractDirs.splice(0)) await rm(dir, { recursive: true, force: true });
  },
});

/** Every file under `dir`, recursively, as paths relative to it. */
async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await filesUnder(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

function chunkFile(root: string, cid: string): string {
  return join(root, "chunks", shardOf(parseCid(cid).digest), cid);
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "peercloud-store-test-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("writeFileAtomic", () => {
  it("creates and replaces a file, leaving no temp file", async () => {
    const target = join(dir, "config.json");
    await writeFileAtomic(target, "one");
    await writeFileAtomic(target, new Uint8Array([116, 119, 111]));
    expect(await readFile(target, "utf8")).toBe("two");
    expect(await readdir(dir)).toEqual(["config.json"]);
  });

  it("writes an async iterable of pieces", async () => {
    const target = join(dir, "download.bin");
    async function* pieces() {
      for (let i = 0; i < 100; i++) yield new Uint8Array(1000).fill(i);
      yield "end";
    }
    await writeFileAtomic(target, pieces());
    const data = await readFile(target);
    expect(data.length).toBe(100_003);
    expect(data[99_999]).toBe(99);
    expect(data.subarray(100_000).toString()).toBe("end");
  });

  it("applies an exact mode for secrets", async () => {
    const target = join(dir, "identity.key");
    await writeFileAtomic(target, "secret", { mode: 0o600 });
    expect((await stat(target)).mode & 0o777).toBe(0o600);
    await writeFileAtomic(target, "public", { mode: 0o644 });
    expect((await stat(target)).mode & 0o777).toBe(0o644);
  });

  it("leaves the old file and no temp file when the source or the commit check fails", async () => {
    const target = join(dir, "keep.txt");
    await writeFileAtomic(target, "old");
    async function* failing() {
      yield new Uint8Array(5000);
      throw new Error("source broke");
    }
    await expect(writeFileAtomic(target, failing())).rejects.toThrow("source broke");
    await expect(
      writeFileAtomic(target, "new", {
        beforeCommit: () => {
          throw new Error("digest mismatch");
        },
      }),
    ).rejects.toThrow("digest mismatch");
    expect(await readFile(target, "utf8")).toBe("old");
    expect(await readdir(dir)).toEqual(["keep.txt"]);
  });

  it("cleans up only temp files, and treats a missing directory as clean", async () => {
    await writeFile(join(dir, ".tmp-abc"), "partial");
    await writeFile(join(dir, ".tmp-def"), "");
    await writeFile(join(dir, "keep"), "x");
    expect(await cleanupTempFiles(dir)).toBe(2);
    expect(await readdir(dir)).toEqual(["keep"]);
    expect(await cleanupTempFiles(join(dir, "missing"))).toBe(0);
  });
});

describe("pending files (group commit)", () => {
  it("writes temp files without clobbering, and fsyncs queued ones oldest first, a few at a time, skipping what is no longer wanted", async () => {
    const paths = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => writeTempFile(dir, new Uint8Array(1000).fill(i))));
    expect(paths.every((p) => isTempFileName(p))).toBe(true);
    expect((await readFile(paths[2]))[0]).toBe(3);
    await rm(paths[3]); // vanished (a flush renamed it): no outcome
    const outcomes: [number, WritebackOutcome][] = [];
    /** Which files a sync had started for (asked whether still wanted) when each outcome arrived. */
    const startedAtOutcome: number[][] = [];
    const started: number[] = [];
    const writeback = new Writeback();
    paths.forEach((path, i) =>
      writeback.add(
        path,
        () => {
          if (!outcomes.some(([j]) => j === i) && !started.includes(i)) started.push(i);
          return i !== 1;
        },
        (outcome) => {
          outcomes.push([i, outcome]);
          startedAtOutcome.push([...started]);
        },
      ),
    );
    await writeback.idle();
    expect(outcomes.sort(([a], [b]) => a - b)).toEqual([
      [0, "done"],
      [2, "done"],
      [4, "done"],
      [5, "done"],
    ]);
    // Oldest first, and several in flight: when the first fsync returned, the first WRITEBACK_CONCURRENCY files that needed
    // one had been started, and everything before them (the unwanted one and the vanished one take no slot).
    expect(WRITEBACK_CONCURRENCY).toBeGreaterThan(1);
    const needingSync = [0, 2, 4, 5];
    const lastInFlight = needingSync[Math.min(WRITEBACK_CONCURRENCY, needingSync.length) - 1];
    expect(startedAtOutcome[0]).toEqual(paths.map((_, i) => i).filter((i) => i <= lastInFlight));
    // It starts again for later files.
    writeback.add(
      paths[0],
      () => true,
      (outcome) => outcomes.push([0, outcome]),
    );
    await writeback.idle();
    expect(outcomes).toHaveLength(5);
  });

  it("spools a chunk into its shard directory (creating it), reports one already committed, and leaves nothing when it fails", async () => {
    const chunksDir = join(dir, "chunks");
    const c = makeChunk("spool", 70_000);
    const shardDir = join(chunksDir, shardOf(parseCid(c.cid).digest));
    const outcome = spoolChunkSync(chunksDir, c.cid, c.bytes);
    expect(outcome).toEqual({ spooled: expect.stringMatching(/\.tmp-[0-9a-f]{16}$/) });
    const path = (outcome as { spooled: string }).spooled;
    expect(relative(chunksDir, path).split("/")[0]).toBe(shardOf(parseCid(c.cid).digest));
    expect(new Uint8Array(await readFile(path))).toEqual(c.bytes);
    // Committed under its name already: nothing is written.
    await writeFile(join(shardDir, c.cid), c.bytes);
    expect(spoolChunkSync(chunksDir, c.cid, c.bytes)).toEqual({ present: true });
    expect((await readdir(shardDir)).sort()).toEqual([c.cid, relative(shardDir, path)].sort());
    // A chunks directory that cannot hold it: the error, and no file.
    const notADir = join(dir, "not-a-dir");
    await writeFile(notADir, "");
    const failed = spoolChunkSync(notADir, c.cid, c.bytes) as Extract<SpoolOutcome, { failed: unknown }>;
    expect(failed.failed.code).toMatch(/^(ENOTDIR|EEXIST)$/);
    expect((await readdir(dir)).sort()).toEqual(["chunks", "not-a-dir"]);
  });
});

describe("ChunkStore on disk", () => {
  it("keeps one file per chunk in the shard named by the digest's first byte, and pins as empty markers", async () => {
    const store = await ChunkStore.open(dir);
    const a = makeChunk("layout-a", 1000);
    const b = makeChunk("layout-b", 10);
    await store.put(a.cid, a.bytes);
    await store.put(b.cid, b.bytes, { pin: true });
    const shardA = createHash("sha256").update(a.bytes).digest("hex").slice(0, 2);
    const shardB = createHash("sha256").update(b.bytes).digest("hex").slice(0, 2);
    expect(await filesUnder(dir)).toEqual([`chunks/${shardA}/${a.cid}`, `chunks/${shardB}/${b.cid}`, `pins/${PIN_SOURCE_NAME}`, `pins/${b.cid}`].sort());
    expect(new Uint8Array(await readFile(chunkFile(dir, a.cid)))).toEqual(a.bytes);
    expect((await stat(join(dir, "pins", b.cid))).size).toBe(0);
  });

  it("makes pin markers hard links to one empty file, which unpinning one of them leaves to the others", async () => {
    const store = await ChunkStore.open(dir);
    const [a, b, c] = ["a", "b", "c"].map((l) => makeChunk(`links-${l}`, 100));
    await store.put(a.cid, a.bytes, { pin: true });
    await store.putTrusted(b.cid, b.bytes, { pin: true, sync: false });
    await store.pin(c.cid); // ahead of its chunk
    await store.flush();
    const source = await stat(join(dir, "pins", PIN_SOURCE_NAME));
    for (const x of [a, b, c]) expect((await stat(join(dir, "pins", x.cid))).ino).toBe(source.ino);
    expect(source.nlink).toBe(4);
    expect(await store.unpin(a.cid)).toBe(true);
    expect((await stat(join(dir, "pins", PIN_SOURCE_NAME))).nlink).toBe(3);
    await store.close();
    const reopened = await ChunkStore.open(dir);
    expect([a, b, c].map((x) => reopened.isPinned(x.cid))).toEqual([false, true, true]);
    await reopened.close();
  });

  it("pins with an empty file of its own when the marker source cannot be linked, and renews a missing source", async () => {
    const store = await ChunkStore.open(dir);
    const [a, b] = ["a", "b"].map((l) => makeChunk(`marker-fallback-${l}`, 100));
    // A directory in the source's place: no hard link to it, and no file can be renamed over it.
    await mkdir(join(dir, "pins", PIN_SOURCE_NAME));
    await store.putTrusted(a.cid, a.bytes, { pin: true, sync: false });
    await store.flush();
    const marker = await stat(join(dir, "pins", a.cid));
    expect(marker.isFile() && marker.size === 0 && marker.nlink === 1).toBe(true);
    // Gone altogether: the next pin makes a new source and links to it.
    await rm(join(dir, "pins", PIN_SOURCE_NAME), { recursive: true });
    await store.pin(b.cid);
    expect((await stat(join(dir, "pins", b.cid))).ino).toBe((await stat(join(dir, "pins", PIN_SOURCE_NAME))).ino);
    expect((await filesUnder(join(dir, "pins"))).filter((f) => isTempFileName(f))).toEqual([]);
    await store.close();
    const reopened = await ChunkStore.open(dir);
    expect(reopened.isPinned(a.cid) && reopened.isPinned(b.cid)).toBe(true);
    await reopened.close();
  });

  it("writes nothing at all for a mismatched chunk", async () => {
    const store = await ChunkStore.open(dir);
    const { cid } = makeChunk("claimed", 5000);
    await expect(store.put(cid, makeChunk("other", 5000).bytes, { pin: true })).rejects.toMatchObject({ code: "chunk_mismatch" });
    expect(await filesUnder(dir)).toEqual([]);
  });

  it("rejects chunks above maxChunkBytes before hashing them", async () => {
    const store = await ChunkStore.open(dir, { maxChunkBytes: 1000 });
    const { cid, bytes } = makeChunk("too-big", 1001);
    await expect(store.put(cid, bytes)).rejects.toMatchObject({ code: "chunk_too_large", status: 413 });
  });

  it("restarts clean after a crash mid-write: temp files gone, index exact", async () => {
    let store = await ChunkStore.open(dir);
    const kept = makeChunk("crash-kept", 3000);
    const pinned = makeChunk("crash-pinned", 2000);
    await store.put(kept.cid, kept.bytes);
    await store.put(pinned.cid, pinned.bytes, { pin: true });
    await store.close();
    // What a writer killed between open("wx") and rename leaves: a complete temp copy and a truncated one.
    const interrupted = makeChunk("crash-interrupted", 4000);
    const shardDir = join(dir, "chunks", shardOf(parseCid(interrupted.cid).digest));
    await mkdir(shardDir, { recursive: true });
    await writeFile(join(shardDir, ".tmp-0011223344556677"), interrupted.bytes);
    await writeFile(join(shardDir, ".tmp-8899aabbccddeeff"), interrupted.bytes.subarray(0, 1234));
    await writeFile(join(dir, "chunks", shardOf(parseCid(kept.cid).digest), ".tmp-truncated"), kept.bytes.subarray(0, 10));
    await writeFile(join(dir, "pins", ".tmp-pin"), "");

    store = await ChunkStore.open(dir);
    expect((await filesUnder(dir)).filter((f) => isTempFileName(f.split("/").pop()!))).toEqual([]);
    expect([...store.list()].map(({ cid, sizeBytes, pinned }) => ({ cid, sizeBytes, pinned })).sort((x, y) => x.cid.localeCompare(y.cid))).toEqual(
      [
        { cid: kept.cid, sizeBytes: 3000, pinned: false },
        { cid: pinned.cid, sizeBytes: 2000, pinned: true },
      ].sort((x, y) => x.cid.localeCompare(y.cid)),
    );
    expect(store.has(interrupted.cid)).toBe(false);
    expect(store.stats()).toMatchObject({ chunks: 2, usedBytes: 5000, pinnedBytes: 2000 });
    expect(await store.get(kept.cid)).toEqual(kept.bytes);
    await store.close();
  });

  it("ignores foreign and misplaced files instead of serving them", async () => {
    const good = makeChunk("foreign-good", 100);
    const misplaced = makeChunk("foreign-misplaced", 100);
    let store = await ChunkStore.open(dir);
    await store.put(good.cid, good.bytes);
    await store.close();
    const wrongShard = ((parseInt(shardOf(parseCid(misplaced.cid).digest), 16) + 1) % 256).toString(16).padStart(2, "0");
    await mkdir(join(dir, "chunks", wrongShard), { recursive: true });
    await writeFile(join(dir, "chunks", wrongShard, misplaced.cid), misplaced.bytes);
    await writeFile(join(dir, "chunks", shardOf(parseCid(good.cid).digest), "README"), "not a chunk");
    await mkdir(join(dir, "chunks", "not-a-shard"));
    await writeFile(join(dir, "pins", "not-a-cid"), "");
    store = await ChunkStore.open(dir);
    expect([...store.list()].map((c) => c.cid)).toEqual([good.cid]);
    expect(store.has(misplaced.cid)).toBe(false);
    await store.close();
  });

  it("scrub finds a chunk whose bytes were flipped on disk, removes it and reports it", async () => {
    const store = await ChunkStore.open(dir);
    const events = recordEvents(store);
    const chunks = [1, 2, 3].map((i) => makeChunk(`scrub-${i}`, 300_000 + i));
    for (const c of chunks) await store.put(c.cid, c.bytes, { pin: true });
    const victim = chunks[1];
    const path = chunkFile(dir, victim.cid);
    const onDisk = await readFile(path);
    onDisk[123_456] ^= 0x01;
    await writeFile(path, onDisk);

    const reported: string[] = [];
    const result = await store.scrub({ onCorrupt: (cid) => void reported.push(cid) });
    expect(result).toEqual({ checked: 3, corrupt: [victim.cid] });
    expect(reported).toEqual([victim.cid]);
    expect(events.removed).toEqual([[victim.cid, "corrupt"]]);
    expect(store.has(victim.cid)).toBe(false);
    await expect(stat(path)).rejects.toMatchObject({ code: "ENOENT" });
    expect(store.stats()).toMatchObject({ chunks: 2, usedBytes: chunks[0].bytes.length + chunks[2].bytes.length });
    expect(await store.scrub()).toEqual({ checked: 2, corrupt: [] });
    // The chunk can be fetched again from a good source.
    expect(await store.put(victim.cid, victim.bytes)).toEqual({ added: true });
    await store.close();
  });

  it("scrub stops when its signal aborts", async () => {
    const store = await ChunkStore.open(dir);
    const c = makeChunk("abort", 10);
    await store.put(c.cid, c.bytes);
    await expect(store.scrub({ signal: AbortSignal.abort() })).rejects.toThrow();
    await store.close();
  });

  it("get with verify drops a corrupt copy instead of returning it", async () => {
    const store = await ChunkStore.open(dir);
    const events = recordEvents(store);
    const c = makeChunk("verify", 5000);
    await store.put(c.cid, c.bytes);
    expect(await store.get(c.cid, { verify: true })).toEqual(c.bytes);
    const path = chunkFile(dir, c.cid);
    await writeFile(path, c.bytes.subarray(0, 4999)); // truncated behind the store's back
    expect(await store.get(c.cid, { verify: true })).toBeNull();
    expect(store.has(c.cid)).toBe(false);
    expect(events.removed).toEqual([[c.cid, "corrupt"]]);
    await store.close();
  });

  it("keeps group-commit chunks in temp files until flush renames them, and leaves no temp file behind", async () => {
    const store = await ChunkStore.open(dir, { limitBytes: 3000 });
    const [a, b, c, d] = ["a", "b", "c", "d"].map((l) => makeChunk(`group-disk-${l}`, 1000));
    await store.putTrusted(a.cid, a.bytes, { pin: true, sync: false });
    await store.putTrusted(b.cid, b.bytes, { sync: false });
    await store.putTrusted(c.cid, c.bytes, { sync: false });
    let files = await filesUnder(dir);
    expect(files.filter((f) => f.startsWith("chunks/")).every((f) => isTempFileName(f.split("/").pop()!))).toBe(true);
    expect(files.filter((f) => f.startsWith("chunks/"))).toHaveLength(3);
    expect(files).toContain(`pins/${a.cid}`);
    await store.putTrusted(d.cid, d.bytes, { sync: false }); // evicts b while it is pending: its temp file goes
    await store.flush();
    files = await filesUnder(dir);
    expect(files.filter((f) => isTempFileName(f.split("/").pop()!))).toEqual([]);
    expect(files.filter((f) => f.startsWith("chunks/")).sort()).toEqual([a, c, d].map((x) => relative(dir, chunkFile(dir, x.cid))).sort());
    for (const x of [a, c, d]) expect(new Uint8Array(await readFile(chunkFile(dir, x.cid)))).toEqual(x.bytes);
    await store.close();
  });

  it("drops a pending chunk it cannot make durable, announces nothing of it and rejects the flush", async () => {
    const store = await ChunkStore.open(dir);
    const events = recordEvents(store);
    const lost = makeChunk("group-lost", 2000);
    const kept = makeChunk("group-kept", 2000);
    await store.putTrusted(lost.cid, lost.bytes, { pin: true, sync: false });
    await store.putTrusted(kept.cid, kept.bytes, { pin: true, sync: false });
    // The temp file disappears before the flush (as a failed fsync would leave it worthless).
    const shardDir = join(dir, "chunks", shardOf(parseCid(lost.cid).digest));
    for (const name of await readdir(shardDir)) if (isTempFileName(name) && (await readFile(join(shardDir, name))).equals(lost.bytes)) await rm(join(shardDir, name));
    await expect(store.flush()).rejects.toMatchObject({ code: "ENOENT" });
    expect(store.has(lost.cid)).toBe(false);
    expect(store.isPinned(lost.cid)).toBe(true); // a pin waiting for its chunk, as after a crash
    expect(events.added).toEqual([[kept.cid, 2000]]);
    expect(events.removed).toEqual([]);
    expect(await store.get(kept.cid)).toEqual(kept.bytes);
    await store.close();
  });

  describe("adoptTrusted (a temp file another thread wrote)", () => {
    const spool = (store: ChunkStore, c: { cid: string; bytes: Uint8Array }) => (spoolChunkSync(store.spoolDir, c.cid, c.bytes) as { spooled: string }).spooled;
    const tempFiles = async () => (await filesUnder(dir)).filter((f) => isTempFileName(f.split("/").pop()!));

    it("takes the file over as a pending chunk: readable and pinned at once, renamed into place and announced at flush, kept across a reopen", async () => {
      let store = await ChunkStore.open(dir);
      const events = recordEvents(store);
      const [a, b] = ["a", "b"].map((l) => makeChunk(`adopt-${l}`, 40_000));
      const pathA = spool(store, a);
      expect(await store.adoptTrusted(a.cid, pathA, a.bytes.length, { pin: true })).toEqual({ added: true });
      expect(await store.adoptTrusted(b.cid, spool(store, b), b.bytes.length)).toEqual({ added: true });
      expect(await store.get(a.cid)).toEqual(a.bytes);
      expect(await readAll((await store.openRead(b.cid, { start: 5 }))!.stream)).toEqual(b.bytes.slice(5));
      expect(store.isPinned(a.cid) && !store.isPinned(b.cid)).toBe(true);
      expect(store.stats()).toMatchObject({ chunks: 2, usedBytes: 80_000, pinnedBytes: 40_000 });
      expect([...store.list()]).toEqual([]);
      expect(events.added).toEqual([]);
      expect(await readFile(pathA)).toHaveLength(40_000); // still the temp file: nothing was written again

      await store.flush();
      expect(events.added).toEqual([
        [a.cid, 40_000],
        [b.cid, 40_000],
      ]);
      expect(await tempFiles()).toEqual([]);
      for (const x of [a, b]) expect(new Uint8Array(await readFile(chunkFile(dir, x.cid)))).toEqual(x.bytes);
      await store.close();
      store = await ChunkStore.open(dir);
      expect(store.isPinned(a.cid) && store.has(b.cid)).toBe(true);
      await store.close();
    });

    it("removes the file when the chunk is already there, when there is no room, and when the store is closed", async () => {
      const store = await ChunkStore.open(dir, { limitBytes: 50_000 });
      const kept = makeChunk("adopt-kept", 30_000);
      const loose = makeChunk("adopt-loose", 10_000);
      await store.put(kept.cid, kept.bytes, { pin: true });
      await store.put(loose.cid, loose.bytes);
      // Present already (a put raced the writer's existence check): not added, the file goes, the pin still applies.
      const dup = join(dirname(chunkFile(dir, loose.cid)), ".tmp-dup0dup0dup0dup0");
      await writeFile(dup, loose.bytes);
      expect(await store.adoptTrusted(loose.cid, dup, loose.bytes.length, { pin: true })).toEqual({ added: false });
      expect(store.stats()).toMatchObject({ chunks: 2, usedBytes: 40_000, pinnedBytes: 40_000 });
      // No room: pinned data fills the limit.
      const big = makeChunk("adopt-big", 30_000);
      await expect(store.adoptTrusted(big.cid, spool(store, big), big.bytes.length, { pin: true })).rejects.toMatchObject({ code: "store_full" });
      expect(store.has(big.cid) || store.isPinned(big.cid)).toBe(false);
      expect(await tempFiles()).toEqual([]);
      await store.close();
      const late = makeChunk("adopt-late", 100);
      const latePath = spool(store, late);
      await expect(store.adoptTrusted(late.cid, latePath, 100)).rejects.toMatchObject({ code: "store_closed" });
      expect(await tempFiles()).toEqual([]);
    });

    it("evicts a pending adopted chunk like any other, its file with it", async () => {
      const store = await ChunkStore.open(dir, { limitBytes: 2000 });
      const events = recordEvents(store);
      const [a, b, c] = ["a", "b", "c"].map((l) => makeChunk(`adopt-evict-${l}`, 1000));
      for (const x of [a, b, c]) await store.adoptTrusted(x.cid, spool(store, x), 1000);
      expect(store.has(a.cid)).toBe(false);
      expect(events.removed).toEqual([]); // never announced, so never withdrawn
      await store.flush();
      expect(await filesUnder(join(dir, "chunks"))).toEqual([b, c].map((x) => relative(join(dir, "chunks"), chunkFile(dir, x.cid))).sort());
      expect(events.added.map(([cid]) => cid)).toEqual([b.cid, c.cid]);
    });

    it("refuses a path that is not a temp file in a shard directory of the store, leaving it alone, and removes one in the wrong shard", async () => {
      const store = await ChunkStore.open(dir);
      const c = makeChunk("adopt-bad-path", 100);
      const outside = join(dir, ".tmp-outside0000000");
      await writeFile(outside, c.bytes);
      const notTemp = join(store.spoolDir, shardOf(parseCid(c.cid).digest), "plain-name");
      await mkdir(dirname(notTemp), { recursive: true });
      await writeFile(notTemp, c.bytes);
      for (const path of [outside, notTemp, "relative/.tmp-x"]) await expect(store.adoptTrusted(c.cid, path, 100)).rejects.toBeInstanceOf(RangeError);
      expect(await readFile(outside)).toHaveLength(100);
      expect(await readFile(notTemp)).toHaveLength(100);
      const wrongShard = ((parseInt(shardOf(parseCid(c.cid).digest), 16) + 1) % 256).toString(16).padStart(2, "0");
      await mkdir(join(store.spoolDir, wrongShard), { recursive: true });
      const misplaced = join(store.spoolDir, wrongShard, ".tmp-misplaced00000");
      await writeFile(misplaced, c.bytes);
      await expect(store.adoptTrusted(c.cid, misplaced, 100)).rejects.toThrow(/not in the shard directory/);
      await expect(stat(misplaced)).rejects.toMatchObject({ code: "ENOENT" });
      expect(store.has(c.cid)).toBe(false);
      await store.close();
    });
  });

  it("putTrusted believes its caller: a wrong CID is stored as given, and scrub is what catches it", async () => {
    const store = await ChunkStore.open(dir);
    const claimed = makeChunk("trusted-claimed", 1000);
    const actual = makeChunk("trusted-actual", 1000);
    await expect(store.put(claimed.cid, actual.bytes)).rejects.toMatchObject({ code: "chunk_mismatch" });
    expect(await store.putTrusted(claimed.cid, actual.bytes)).toEqual({ added: true });
    expect(await store.scrub()).toEqual({ checked: 1, corrupt: [claimed.cid] });
    await store.close();
  });

  it("forgets a chunk whose file vanished behind its back", async () => {
    const store = await ChunkStore.open(dir);
    const events = recordEvents(store);
    const c = makeChunk("vanish", 100);
    await store.put(c.cid, c.bytes);
    await rm(chunkFile(dir, c.cid));
    expect(await store.get(c.cid)).toBeNull();
    expect(store.has(c.cid)).toBe(false);
    expect(store.stats().usedBytes).toBe(0);
    expect(events.removed).toEqual([[c.cid, "corrupt"]]);
    await store.close();
  });
});

describe("ChunkStore across processes", () => {
  const children = new Set<ReturnType<typeof spawn>>();
  afterEach(() => {
    // A failed or timed-out test must not leave a writer running.
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    children.clear();
  });

  /** Everything a reopened store must satisfy after any crash. */
  async function checkStoreOnDisk(root: string, mustHavePinned: Set<string>): Promise<void> {
    const store = await ChunkStore.open(root);
    const files = await filesUnder(root);
    expect(files.filter((f) => isTempFileName(f.split("/").pop()!))).toEqual([]);
    let fileBytes = 0;
    for (const rel of files.filter((f) => f.startsWith("chunks/"))) {
      const [, shard, name] = rel.split("/");
      const parsed = parseCid(name);
      expect(shardOf(parsed.digest)).toBe(shard);
      const bytes = await readFile(join(root, rel));
      expect(createHash("sha256").update(bytes).digest().equals(parsed.digest), `${rel} must hash to its name`).toBe(true);
      expect(store.sizeBytes(name)).toBe(bytes.length);
      fileBytes += bytes.length;
    }
    expect(store.stats().usedBytes).toBe(fileBytes);
    for (const cid of mustHavePinned) {
      expect(store.has(cid), `pinned ${cid} reported stored before the kill`).toBe(true);
      expect(store.isPinned(cid)).toBe(true);
    }
    expect((await store.scrub()).corrupt).toEqual([]);
    await store.close();
  }

  /** Runs the churn writer and SIGKILLs it after `killAfterLines` protocol lines, updating the set of chunks that must survive. */
  async function churnThenKill(root: string, limitBytes: number, killAfterLines: number, mustHavePinned: Set<string>): Promise<void> {
    const child = spawn(process.execPath, ["--import", "tsx", WRITER, "churn", root, String(limitBytes)], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
    let ready = false;
    let seen = 0;
    // Lines keep arriving after the kill until the pipe drains; each one still describes a completed step.
    for await (const line of createInterface({ input: child.stdout })) {
      const [word, cid] = line.split(" ");
      if (word === "ready") ready = true;
      else if (word === "pinned") mustHavePinned.add(cid);
      else if (word === "unpinning") mustHavePinned.delete(cid);
      if (ready && seen++ === killAfterLines) child.kill("SIGKILL");
    }
    const { signal } = await closed;
    expect(signal, `writer should be killed by the test, not exit by itself; stderr:\n${stderr}`).toBe("SIGKILL");
  }

  it("leaves only verified chunks, pins intact and no temp files when a writer is SIGKILLed at random instants", async () => {
    const root = join(dir, "store");
    const mustHavePinned = new Set<string>();
    const killPoints = Array.from({ length: 5 }, () => Math.floor(Math.random() * 60));
    for (const killAfterLines of killPoints) {
      await churnThenKill(root, 6 * 1024 * 1024, killAfterLines, mustHavePinned);
      await checkStoreOnDisk(root, mustHavePinned);
    }
  });

  it("loses only unflushed chunks, cleanly, when a group-committing writer is SIGKILLed at random instants", async () => {
    const root = join(dir, "group-store");
    const flushed = new Set<string>();
    for (let round = 0; round < 4; round++) {
      const killAfterLines = Math.floor(Math.random() * 40);
      const child = spawn(process.execPath, ["--import", "tsx", WRITER, "group", root], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
      children.add(child);
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
      const closed = new Promise<NodeJS.Signals | null>((resolve) => child.on("close", (_code, signal) => resolve(signal)));
      let seen = 0;
      let ready = false;
      for await (const line of createInterface({ input: child.stdout })) {
        const [word, cid] = line.split(" ");
        if (word === "ready") ready = true;
        else if (word === "flushed") flushed.add(cid);
        if (ready && seen++ === killAfterLines) child.kill("SIGKILL");
      }
      expect(await closed, `writer should be killed by the test; stderr:\n${stderr}`).toBe("SIGKILL");
      await checkStoreOnDisk(root, flushed);
    }
  });

  const canMountTmpfs = spawnSync("unshare", ["--mount", "--map-root-user", "true"]).status === 0;
  it.skipIf(!canMountTmpfs)("turns ENOSPC into store_full with nothing partial left, and recovers when space frees up (needs unshare for a private tmpfs)", async () => {
    const mountPoint = join(dir, "small-fs");
    await mkdir(mountPoint);
    const script = 'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" --import tsx "$3" fill "$1/store"';
    const { stdout } = await promisify(execFile)("unshare", ["--mount", "--map-root-user", "sh", "-c", script, "sh", mountPoint, process.execPath, WRITER], {
      cwd: REPO_ROOT,
      timeout: 50_000,
      killSignal: "SIGKILL",
    });
    const result = JSON.parse(stdout.trim().split("\n").pop()!);
    expect(result.error).toMatchObject({ code: "store_full" });
    expect(result.error.message).toMatch(/ENOSPC/);
    expect(result.stored).toBeGreaterThan(4);
    expect(result.tempFilesAfterFailure).toEqual([]);
    expect(result.spoolWhenFull).toEqual({ failed: expect.objectContaining({ code: "ENOSPC" }) });
    expect(result.tempFilesAfterSpool).toEqual([]);
    expect(result.putAfterDelete).toEqual({ added: true });
    expect(result.reopened).toBe(result.stored - 4 + 1);
    expect(result.scrub).toEqual({ checked: result.reopened, corrupt: [] });
  });
});
