/**
 * ingestFile's two paths against each other (src/peer/ingest-file.ts): the
 * shared-memory path (slabs, carried chunk tails, the sealed ring, seal
 * workers) must give exactly what the in-thread path gives — chunk list,
 * keys, whole-file hash, and the sealed bytes handed to the store, in the
 * same order — for every file shape, with arenas made small so that tails
 * are carried, slabs are reused and the ring runs full. Also: failures and
 * aborts end the ingest without leaving the arena in use.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChunkerOptions } from "../../src/core/chunker.js";
import { acquireIngestArena, arenaShape } from "../../src/peer/ingest-arena.js";
import { ingestFile, type FileIngestContext } from "../../src/peer/ingest-file.js";
import { nativeCidOf } from "../../src/peer/native-chunk-cipher.js";
import { isTempFileName } from "../../src/peer/atomic-file.js";
import { parseCid } from "../../src/core/cid.js";
import { shardOf } from "../../src/peer/pending-files.js";
import { acquireSealPool } from "../../src/peer/seal-pool.js";

const KiB = 1024;
const SMALL: ChunkerOptions = { minChunkBytes: 2 * KiB, avgChunkBytes: 8 * KiB, maxChunkBytes: 32 * KiB };
/** Reads smaller than a chunk, three slabs, a ring of two maximum chunks: every corner of the arena gets used. */
const TINY_ARENA = { readBytes: 5 * KiB + 3, slabCount: 3, sealedRingBytes: 2 * (32 * KiB + 16) };
const SECRET = new Uint8Array(32).fill(4);

let dir: string;
/** Held for the whole file, so the workers are up before the first test (until then the pool seals in-thread). */
let lease: ReturnType<typeof acquireSealPool>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "peercloud-ingest-file-"));
  lease = acquireSealPool();
  await lease.pool.whenStarted();
  expect(lease.pool.stats().fileHashReady).toBe(true);
});
afterAll(async () => {
  lease.release();
  await rm(dir, { recursive: true, force: true });
});

async function fileOf(name: string, data: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, data);
  return path;
}

interface Run {
  result: Awaited<ReturnType<typeof ingestFile>>;
  /** What storeSealed received, copied at the time (the bytes are lent). */
  stored: { cid: string; sealed: Buffer }[];
  progress: number[];
}

async function run(path: string, parallel: "always" | "never", extra: Partial<FileIngestContext> = {}): Promise<Run> {
  const stored: Run["stored"] = [];
  const progress: number[] = [];
  const result = await ingestFile(path, {
    convergenceSecret: SECRET,
    private: false,
    chunker: SMALL,
    parallel,
    arena: TINY_ARENA,
    storeSealed: async (cid, sealed) => {
      stored.push({ cid, sealed: Buffer.from(sealed) });
      await new Promise((resolve) => setImmediate(resolve)); // a write that takes a turn, as the store's do
    },
    onChunk: (n) => progress.push(n),
    ...extra,
  });
  return { result, stored, progress };
}

function pattern(length: number): Uint8Array {
  // Random blocks with repeats and a zero run, so that chunks repeat and cuts are forced at the maximum too.
  const block = randomBytes(20 * KiB);
  const data = new Uint8Array(length);
  for (let at = 0; at < length; at += block.length) data.set(block.subarray(0, Math.min(block.length, length - at)), at);
  data.set(randomBytes(Math.min(length, 50 * KiB)));
  if (length > 200 * KiB) data.fill(0, 120 * KiB, 200 * KiB);
  return data;
}

describe("ingestFile: shared-memory path", () => {
  const shapes: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["one byte", randomBytes(1)],
    ["under the minimum chunk", randomBytes(2 * KiB - 1)],
    ["one read exactly", randomBytes(5 * KiB + 3)],
    ["zeros: only forced cuts", new Uint8Array(3 * 32 * KiB + 1)],
    ["random, many slabs", randomBytes(700 * KiB + 17)],
    ["repeats and zero runs", pattern(600 * KiB)],
  ];
  for (const [label, data] of shapes) {
    it(`gives exactly the in-thread result: ${label}`, async () => {
      const path = await fileOf(label.replace(/\W+/g, "-"), data);
      const inThread = await run(path, "never");
      const shared = await run(path, "always");
      expect(shared.result).toEqual(inThread.result);
      expect(shared.stored.map((s) => s.cid)).toEqual(inThread.stored.map((s) => s.cid));
      shared.stored.forEach((s, i) => {
        expect(s.sealed.equals(inThread.stored[i].sealed)).toBe(true);
        expect(nativeCidOf(s.sealed)).toBe(s.cid);
      });
      expect(shared.progress).toEqual(inThread.progress);
      expect(shared.result.sizeBytes).toBe(data.length);
      // On the pool's file-hash worker, slab by slab, while the slabs are reused.
      expect(Buffer.from(shared.result.sha256).toString("hex")).toBe(createHash("sha256").update(data).digest("hex"));
    });
  }

  it("reads into a slab only once the whole-file hash has taken its bytes, however far the hash lags", async () => {
    const data = randomBytes(700 * KiB + 17);
    const path = await fileOf("hash-lag", data);
    // A stream of 64 MiB ahead of the ingest's keeps the file-hash worker busy while the ingest reads all its slabs (three, reused over and over).
    const ahead = lease.pool.openFileHash();
    const busy = ahead.update(new Uint8Array(new SharedArrayBuffer(64 * 1024 * KiB)));
    const { result } = await run(path, "always");
    await busy;
    ahead.discard();
    expect(Buffer.from(result.sha256).toString("hex")).toBe(createHash("sha256").update(data).digest("hex"));
  });

  it("private keys: the same structure, fresh keys per file", async () => {
    const path = await fileOf("private", randomBytes(300 * KiB));
    const a = await run(path, "always", { private: true });
    const b = await run(path, "never", { private: true });
    expect(a.result.chunks.map((c) => c.sizeBytes)).toEqual(b.result.chunks.map((c) => c.sizeBytes));
    expect(a.result.sha256).toEqual(b.result.sha256);
    expect(a.result.chunks.map((c) => c.cid)).not.toEqual(b.result.chunks.map((c) => c.cid));
    for (const s of a.stored) expect(nativeCidOf(s.sealed)).toBe(s.cid);
  });

  it("with the default arena and chunk sizes (a 24 MiB file)", async () => {
    const path = await fileOf("defaults", randomBytes(24 * 1024 * KiB));
    const options = { chunker: undefined, arena: undefined };
    const before = lease.pool.stats().sealedInWorkers;
    const shared = await run(path, "always", options);
    expect(lease.pool.stats().sealedInWorkers - before).toBe(shared.result.chunks.length);
    const inThread = await run(path, "never", options);
    expect(shared.result).toEqual(inThread.result);
    expect(shared.stored.every((s, i) => s.sealed.equals(inThread.stored[i].sealed))).toBe(true);
  });

  it("fails with the store's error, and leaves the arena free for the next ingest", async () => {
    const path = await fileOf("store-fails", randomBytes(400 * KiB));
    let calls = 0;
    const failing = run(path, "always", {
      storeSealed: async () => {
        if (++calls === 5) throw new Error("disk on fire");
      },
    });
    await expect(failing).rejects.toThrow("disk on fire");
    const { arena, release } = acquireIngestArena(arenaShape(SMALL.maxChunkBytes!, TINY_ARENA));
    try {
      expect(arena.sealed.inUse).toBe(0);
      expect(arena.slabs.every((s) => s.refs === 0)).toBe(true);
    } finally {
      release();
    }
    // And the same shape works again.
    expect((await run(path, "always")).result).toEqual((await run(path, "never")).result);
  });

  it("stops at an abort with the abort's reason", async () => {
    const path = await fileOf("abort", randomBytes(400 * KiB));
    const controller = new AbortController();
    let chunks = 0;
    const aborted = run(path, "always", {
      signal: controller.signal,
      onChunk: () => {
        if (++chunks === 3) controller.abort(new Error("user cancelled"));
      },
    });
    await expect(aborted).rejects.toThrow("user cancelled");
    expect(chunks).toBeLessThan(30);
  });
});

describe("ingestFile: seal workers writing the store's temp files (spoolDir)", () => {
  /** Every temp file left under `spoolDir`. */
  async function tempFilesIn(spoolDir: string): Promise<string[]> {
    const found: string[] = [];
    for (const shard of await readdir(spoolDir)) for (const name of await readdir(join(spoolDir, shard))) if (isTempFileName(name)) found.push(join(spoolDir, shard, name));
    return found;
  }

  async function freshSpool(name: string): Promise<string> {
    const spoolDir = join(dir, `spool-dir-${name}`);
    await mkdir(spoolDir);
    return spoolDir;
  }

  it("hands each chunk's temp file, holding exactly its sealed bytes, to storeSealed, with the in-thread result", async () => {
    const path = await fileOf("spool", pattern(600 * KiB));
    const spoolDir = await freshSpool("ok");
    const handed: { cid: string; spooled?: string }[] = [];
    const spooledRun = await run(path, "always", {
      spoolDir,
      storeSealed: async (cid, sealed, _isData, spooled) => {
        handed.push({ cid, spooled });
        if (spooled === undefined) return;
        // What a store adopting it would find there: the very bytes lent alongside, in the chunk's shard directory.
        expect((await readFile(spooled)).equals(sealed)).toBe(true);
        expect(dirname(spooled)).toBe(join(spoolDir, shardOf(parseCid(cid).digest)));
        await rm(spooled);
      },
    });
    const inThread = await run(path, "never");
    expect(spooledRun.result).toEqual(inThread.result);
    expect(handed.map((h) => h.cid)).toEqual(inThread.stored.map((s) => s.cid));
    // Every chunk was written by a worker (the file repeats chunks: each occurrence gets its file, the store keeps one).
    expect(handed.every((h) => h.spooled !== undefined)).toBe(true);
    expect(await tempFilesIn(spoolDir)).toEqual([]);
  });

  it("hands over the ring's bytes alone when a worker cannot write the file (the store then writes them and reports its own errors)", async () => {
    const path = await fileOf("spool-unwritable", randomBytes(200 * KiB));
    const spoolDir = join(dir, "spool-dir-is-a-file");
    await writeFile(spoolDir, "");
    const handed: (string | undefined)[] = [];
    const unwritable = await run(path, "always", { spoolDir, storeSealed: async (_cid, _sealed, _isData, spooled) => void handed.push(spooled) });
    expect(handed.length).toBe(unwritable.result.chunks.length);
    expect(handed.every((spooled) => spooled === undefined)).toBe(true);
    expect(unwritable.result).toEqual((await run(path, "never")).result);
  });

  it("removes the temp files of chunks that never reached the store when the store fails or the ingest is aborted", async () => {
    const path = await fileOf("spool-fail", randomBytes(400 * KiB));
    // Slabs and a ring with room for many chunks, so that 2 × workers + 1 are still being sealed (and spooled) when the ingest stops.
    const arena = { readBytes: 128 * KiB, slabCount: 3, sealedRingBytes: 16 * (32 * KiB + 16) };
    const failDir = await freshSpool("fail");
    let calls = 0;
    const failing = run(path, "always", {
      arena,
      spoolDir: failDir,
      storeSealed: async (_cid, _sealed, _isData, spooled) => {
        if (spooled !== undefined) await rm(spooled); // storeSealed owns what it is given
        if (++calls === 1) throw new Error("disk on fire");
      },
    });
    await expect(failing).rejects.toThrow("disk on fire");
    expect(await tempFilesIn(failDir)).toEqual([]);

    const abortDir = await freshSpool("abort");
    const controller = new AbortController();
    const aborted = run(path, "always", {
      arena,
      spoolDir: abortDir,
      signal: controller.signal,
      storeSealed: async (_cid, _sealed, _isData, spooled) => {
        if (spooled !== undefined) await rm(spooled);
      },
      onChunk: () => controller.abort(new Error("user cancelled")),
    });
    await expect(aborted).rejects.toThrow("user cancelled");
    expect(await tempFilesIn(abortDir)).toEqual([]);
  });
});
