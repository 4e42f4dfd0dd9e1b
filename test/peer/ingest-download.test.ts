/**
 * put and get against real ChunkStores in temp dirs: the publisher's store,
 * the downloader's store, replica peers' stores and an "R2" store are all
 * real file-backed stores; the sources between them are in-process
 * ChunkSources (the `local` kind) plus adversarial ones — wrong bytes, an
 * error, a hang until aborted. Network clients are tested elsewhere; here
 * the subject is the scheduling, verification, resume and dedup logic.
 */
import { randomBytes } from "node:crypto";
import { access, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ChunkerOptions } from "../../src/core/chunker.js";
import { isPeercloudError } from "../../src/core/errors.js";
import { parseLink } from "../../src/core/link.js";
import { openManifest, type FileManifest } from "../../src/core/manifest.js";
import { ChunkStore } from "../../src/peer/chunk-store.js";
import { getLink, type GetOptions } from "../../src/peer/download.js";
import { putPath, type PutOptions } from "../../src/peer/ingest.js";
import type { ProgressEvent } from "../../src/peer/progress.js";
import type { ChunkSource, ColdStore, ProviderDirectory, ReplicaTargets } from "../../src/peer/sources.js";
import type { SourceStats } from "../../src/peer/source-scores.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small chunks keep the tests fast while giving files dozens of chunks. */
const SMALL: ChunkerOptions = { minChunkBytes: 16 * KiB, avgChunkBytes: 64 * KiB, maxChunkBytes: 256 * KiB };
const SECRET = new Uint8Array(32).fill(9);

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "peercloud-ingest-"));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function openStore(name: string): Promise<ChunkStore> {
  return ChunkStore.open(join(root, "stores", name));
}

async function inputFile(name: string, data: Uint8Array): Promise<string> {
  const path = join(root, "in", name);
  await mkdir(join(root, "in"), { recursive: true });
  await writeFile(path, data);
  return path;
}

/** A source reading another real store, counting what it is asked for. */
class StoreSource implements ChunkSource {
  fetches = 0;
  readonly asked: string[] = [];
  constructor(
    readonly id: string,
    private readonly store: ChunkStore,
    readonly kind: ChunkSource["kind"] = "local",
    private readonly beforeAnswer?: () => void,
  ) {}
  has(cid: string): boolean {
    return this.store.has(cid);
  }
  async fetch(cid: string, signal: AbortSignal): Promise<Uint8Array> {
    this.fetches++;
    this.asked.push(cid);
    signal.throwIfAborted();
    const bytes = await this.store.get(cid);
    if (!bytes) throw Object.assign(new Error(`${this.id}: no ${cid}`), { code: "chunk_not_found", status: 404 });
    this.beforeAnswer?.();
    return bytes;
  }
}

/** Answers every request with the right length but one flipped byte. */
class CorruptSource extends StoreSource {
  override async fetch(cid: string, signal: AbortSignal): Promise<Uint8Array> {
    const bytes = new Uint8Array(await super.fetch(cid, signal));
    bytes[bytes.length >> 1] ^= 0x40;
    return bytes;
  }
  override has(): boolean {
    return true;
  }
}

class ThrowingSource implements ChunkSource {
  readonly kind = "peer" as const;
  fetches = 0;
  constructor(readonly id: string) {}
  has(): boolean {
    return true;
  }
  async fetch(): Promise<Uint8Array> {
    this.fetches++;
    throw new Error("connection reset by peer");
  }
}

/** Never answers; rejects only when the request is aborted. */
class HangingSource implements ChunkSource {
  readonly kind = "peer" as const;
  fetches = 0;
  aborted = 0;
  constructor(readonly id: string) {}
  has(): boolean {
    return true;
  }
  fetch(_cid: string, signal: AbortSignal): Promise<Uint8Array> {
    this.fetches++;
    return new Promise((_resolve, reject) => {
      signal.addEventListener(
        "abort",
        () => {
          this.aborted++;
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }
}

/** The directory: every listed source that claims the chunk, in the given order. */
function directoryOf(sources: (ChunkSource & { has(cid: string): boolean })[]): ProviderDirectory & { lookups: number } {
  const dir = {
    lookups: 0,
    async providers(cid: string) {
      dir.lookups++;
      return sources.filter((s) => s.has(cid));
    },
  };
  return dir;
}

function coldOf(store: ChunkStore): ColdStore & { puts: number } {
  const cold = {
    puts: 0,
    async put(cid: string, sealed: Uint8Array) {
      cold.puts++;
      await store.put(cid, sealed, { pin: true });
    },
    async get(cid: string) {
      return store.get(cid);
    },
    async has(cid: string) {
      return store.has(cid);
    },
  };
  return cold;
}

/** Replica placement over real stores; `failing` ids refuse every push. */
function targetsOf(stores: Map<string, ChunkStore>, failing: string[] = []): ReplicaTargets & { pins: { cids: string[]; replicas: number }[]; pushes: number } {
  const t = {
    pins: [] as { cids: string[]; replicas: number }[],
    pushes: 0,
    async place(count: number, exclude: string[]) {
      return [...stores.entries()]
        .filter(([id]) => !exclude.includes(id))
        .slice(0, count)
        .map(([id, store]) => ({
          id,
          async push(cid: string, sealed: Uint8Array) {
            if (failing.includes(id)) throw new Error(`${id} is down`);
            t.pushes++;
            await store.put(cid, sealed, { pin: true });
          },
          async has(cid: string) {
            return store.has(cid);
          },
        }));
    },
    async pin(cids: string[], replicas: number) {
      t.pins.push({ cids, replicas });
    },
  };
  return t;
}

/** Home-region targets whose other regions (nearest first as listed) each place on their own stores. */
function regionTargetsOf(home: ReturnType<typeof targetsOf>, others: [string, ReturnType<typeof targetsOf>][]): ReplicaTargets {
  const byRegion = new Map(others);
  return {
    place: home.place,
    pin: home.pin,
    otherRegions: async () => others.map(([r]) => r),
    inRegion: (region) => {
      const t = byRegion.get(region)!;
      return { place: async (count, exclude, size) => (await t.place(count, exclude, size)).map((target) => ({ ...target, region })), pin: t.pin };
    },
  };
}

async function put(path: string, store: ChunkStore, options: PutOptions = {}, extra: Partial<Parameters<typeof putPath>[2]> = {}) {
  return putPath(path, { chunker: SMALL, ...options }, { store, convergenceSecret: SECRET, ...extra });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

async function manifestOf(link: string, store: ChunkStore): Promise<FileManifest> {
  const { cid, key } = parseLink(link);
  return (await openManifest((await store.get(cid))!, key, cid)) as FileManifest;
}

describe("put → get round trip", () => {
  it.each([
    ["empty", 0],
    ["one byte", 1],
    ["several MiB", 5 * MiB + 123],
  ])("is bit-exact for a %s file", async (_label, size) => {
    const data = randomBytes(size);
    const publisher = await openStore("publisher");
    const downloader = await openStore("downloader");
    const put1 = await put(await inputFile("f.bin", data), publisher);
    expect(put1).toMatchObject({ bytes: size, files: 1, newChunks: put1.chunks, replicasAchieved: 1, sentBytes: 0 });
    expect(put1.link).toMatch(/^peercloud:\/\/b[a-z2-7]{58}#[A-Za-z0-9_-]{43}$/);
    const source = new StoreSource("publisher", publisher);
    const out = join(root, "out", "f.bin");
    await mkdir(join(root, "out"));
    const got = await getLink(put1.link, { output: out }, { store: downloader, providers: directoryOf([source]) });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(got).toMatchObject({ path: out, kind: "file", bytes: size, chunks: put1.chunks, fromLocal: put1.chunks + 1, sourcesPenalised: [] });
    expect(await exists(out + ".peercloud-part")).toBe(false);
    expect(await exists(out + ".peercloud-part.state")).toBe(false);
    // The downloader now holds (unpinned) every chunk: it can serve them.
    for (const c of (await manifestOf(put1.link, publisher)).chunks!) expect(downloader.has(c.cid) && !downloader.isPinned(c.cid)).toBe(true);
  });

  it("handles a file that is an exact multiple of the maximum chunk, with repeated chunks fetched once", async () => {
    const data = new Uint8Array(3 * SMALL.maxChunkBytes!); // zeros: every cut is forced at the maximum
    const publisher = await openStore("publisher");
    const r = await put(await inputFile("zeros.bin", data), publisher);
    expect(r).toMatchObject({ chunks: 3, newChunks: 1 });
    const manifest = await manifestOf(r.link, publisher);
    expect(manifest.chunks!.map((c) => c.sizeBytes)).toEqual([SMALL.maxChunkBytes, SMALL.maxChunkBytes, SMALL.maxChunkBytes]);
    const source = new StoreSource("publisher", publisher);
    const out = join(root, "zeros.out");
    const got = await getLink(r.link, { output: out }, { store: await openStore("downloader"), providers: directoryOf([source]) });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(source.fetches).toBe(2); // the manifest and one distinct chunk
    expect(got.chunks).toBe(3);
  });

  it("recreates a directory tree (nested, empty file, empty dir, large file by reference; symlinks skipped)", async () => {
    const tree = join(root, "in", "tree");
    await mkdir(join(tree, "sub", "deep"), { recursive: true });
    await mkdir(join(tree, "emptydir"));
    const files: Record<string, Uint8Array> = {
      "a.txt": Buffer.from("hello\n"),
      empty: new Uint8Array(0),
      "sub/deep/b.bin": randomBytes(300 * KiB),
      "big.bin": randomBytes(6 * MiB), // > 64 chunks: its own manifest
    };
    for (const [rel, data] of Object.entries(files)) await writeFile(join(tree, rel), data);
    await symlink(join(tree, "a.txt"), join(tree, "link"));
    const publisher = await openStore("publisher");
    const warnings: string[] = [];
    const r = await put(tree, publisher, { onWarning: (w) => warnings.push(w) });
    expect(r.files).toBe(4);
    expect(warnings).toEqual([expect.stringContaining("skipped symlink link")]);
    const out = join(root, "out");
    await mkdir(out);
    const got = await getLink(r.link, { output: out }, { store: await openStore("downloader"), providers: directoryOf([new StoreSource("publisher", publisher)]) });
    expect(got).toMatchObject({ kind: "directory", path: join(out, "tree"), files: 4 });
    for (const [rel, data] of Object.entries(files)) expect(Buffer.compare(await readFile(join(out, "tree", rel)), data), rel).toBe(0);
    expect((await lstat(join(out, "tree", "emptydir"))).isDirectory()).toBe(true);
    expect(await exists(join(out, "tree", "link"))).toBe(false);
    expect((await readdir(join(out, "tree"))).sort()).toEqual(["a.txt", "big.bin", "empty", "emptydir", "sub"]);
  });
});

describe("put durability", () => {
  it("announces and pins only chunks already durable, and returns with nothing pending", async () => {
    const data = randomBytes(20 * MiB + 7); // large enough for the seal workers
    const publisher = await openStore("publisher");
    const durableWhenAnnounced: boolean[] = [];
    const durableWhenPinned: boolean[] = [];
    const isDurable = (cid: string) => [...publisher.list()].some((c) => c.cid === cid);
    const announcer = { announce: (cids: string[]) => cids.forEach((cid) => durableWhenAnnounced.push(isDurable(cid))) };
    const targets: ReplicaTargets = {
      place: async () => [],
      pin: async (cids) => void cids.forEach((cid) => durableWhenPinned.push(isDurable(cid))),
    };
    const r = await put(await inputFile("f.bin", data), publisher, { replicas: 2 }, { announcer, targets });
    expect(durableWhenAnnounced).toHaveLength(r.chunks + 1);
    expect(durableWhenPinned).toHaveLength(r.chunks + 1);
    expect(durableWhenAnnounced.every(Boolean) && durableWhenPinned.every(Boolean)).toBe(true);
    expect([...publisher.list()]).toHaveLength(publisher.stats().chunks);
    // The seal workers wrote the chunks' temp files (ChunkStore.adoptTrusted): every one renamed into place, pinned, none left over.
    const onDisk: string[] = [];
    for (const shard of await readdir(join(publisher.rootDir, "chunks"))) onDisk.push(...(await readdir(join(publisher.rootDir, "chunks", shard))));
    expect(onDisk.sort()).toEqual([...publisher.list()].map((c) => c.cid).sort());
    expect([...publisher.list()].every((c) => c.pinned)).toBe(true);
    // A re-put finds every data chunk stored (the workers write nothing) and adds only its new manifest.
    const again = await put(await inputFile("f.bin", data), publisher);
    expect(again).toMatchObject({ chunks: r.chunks, newChunks: 0 });
    expect(publisher.stats().chunks).toBe(r.chunks + 2);
    // And what was stored reads back as the same file; the downloader's cache copies (group-committed)
    // are announced only once durable, every one of them, and none is left pending after the get.
    const out = join(root, "f.out");
    const downloader = await openStore("downloader");
    const cachedWhenAnnounced: boolean[] = [];
    const cacheAnnouncer = { announce: (cids: string[]) => cids.forEach((cid) => cachedWhenAnnounced.push(downloader.isDurable(cid))) };
    await getLink(r.link, { output: out }, { store: downloader, providers: directoryOf([new StoreSource("p", publisher)]), announcer: cacheAnnouncer });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(cachedWhenAnnounced).toHaveLength(downloader.stats().chunks);
    expect(cachedWhenAnnounced.every(Boolean)).toBe(true);
    expect([...downloader.list()]).toHaveLength(downloader.stats().chunks);
  });
});

describe("put options and bad input", () => {
  it("private keys: round-trips, and nothing de-duplicates across puts", async () => {
    const data = randomBytes(600 * KiB);
    const publisher = await openStore("publisher");
    const path = await inputFile("f.bin", data);
    const a = await put(path, publisher, { private: true });
    const b = await put(path, publisher, { private: true });
    expect(b.newChunks).toBe(b.chunks);
    expect((await manifestOf(a.link, publisher)).encryption).toBe("private");
    const out = join(root, "f.out");
    await getLink(b.link, { output: out }, { store: await openStore("downloader"), providers: directoryOf([new StoreSource("p", publisher)]) });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    // Convergent puts of the same bytes, by contrast, store nothing new.
    await put(path, publisher);
    expect((await put(path, publisher)).newChunks).toBe(0);
  });

  it("rejects a missing path and --cold without a cold store with named errors", async () => {
    const publisher = await openStore("publisher");
    await expect(put(join(root, "nope"), publisher)).rejects.toMatchObject({ code: "path_not_found" });
    await expect(put(await inputFile("f", new Uint8Array(1)), publisher, { cold: true })).rejects.toMatchObject({ code: "cold_unavailable" });
    await expect(put(await inputFile("f", new Uint8Array(1)), publisher, { replicas: 0 })).rejects.toMatchObject({ code: "invalid_replicas" });
  });

  it("rejects a malformed link before touching anything", async () => {
    await expect(getLink("peercloud://nope", { output: join(root, "x") }, { store: await openStore("d") })).rejects.toMatchObject({ code: "invalid_link" });
  });
});

describe("bad sources", () => {
  it("detects corrupt data, re-fetches it elsewhere and penalises (then bans) the source", async () => {
    const data = randomBytes(2 * MiB);
    const publisher = await openStore("publisher");
    const downloader = await openStore("downloader");
    const r = await put(await inputFile("f.bin", data), publisher);
    const bad = new CorruptSource("bad", publisher, "peer");
    const good = new StoreSource("good", publisher, "peer");
    const out = join(root, "f.out");
    const warnings: string[] = [];
    let stats: SourceStats[] = [];
    const got = await getLink(r.link, { output: out, onWarning: (w) => warnings.push(w), onProgress: (e) => (stats = e.sources ?? stats) }, { store: downloader, providers: directoryOf([bad, good]) });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(bad.fetches).toBeGreaterThan(0);
    expect(got.sourcesPenalised).toEqual(["bad"]);
    expect(got.fromPeers).toBe(r.chunks + 1);
    expect(warnings.some((w) => w.includes("bad") && w.includes("corrupt"))).toBe(true);
    expect(stats.find((s) => s.id === "bad")).toMatchObject({ banned: true, chunks: 0 });
    expect(stats.find((s) => s.id === "good")!.chunks).toBe(r.chunks);
    // Nothing corrupt reached the downloader's store.
    expect((await downloader.scrub()).corrupt).toEqual([]);
  });

  it("survives a source that errors and one that hangs; the hung requests are cancelled", async () => {
    const data = randomBytes(2 * MiB);
    const publisher = await openStore("publisher");
    const r = await put(await inputFile("f.bin", data), publisher);
    const hang = new HangingSource("hang");
    const thrower = new ThrowingSource("thrower");
    const good = new StoreSource("good", publisher, "peer");
    const out = join(root, "f.out");
    const got = await getLink(r.link, { output: out }, { store: await openStore("downloader"), providers: directoryOf([hang, thrower, good]) });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(hang.fetches).toBeGreaterThan(0);
    expect(hang.aborted).toBe(hang.fetches); // every hung request was cancelled, none left dangling
    expect(got.sourcesPenalised).toContain("thrower");
    expect(got.sourcesPenalised).not.toContain("hang"); // cancelled by endgame, not timed out
  });

  it("times out a hung sole provider and falls back to the cold store", async () => {
    const data = randomBytes(300 * KiB);
    const publisher = await openStore("publisher");
    const r2 = await openStore("r2");
    const r = await put(await inputFile("f.bin", data), publisher, { cold: true }, { cold: coldOf(r2) });
    expect(r.coldChunks).toBe(r.chunks + 1);
    const hang = new HangingSource("hang");
    const out = join(root, "f.out");
    // A short timeout keeps the test quick; a loaded machine may also time out an R2 read, which is retried.
    const got = await getLink(r.link, { output: out, requestTimeoutMs: 250 }, { store: await openStore("downloader"), providers: directoryOf([hang]), cold: coldOf(r2) });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(got.fromCold).toBe(r.chunks + 1);
    expect(got.sourcesPenalised).toContain("hang");
    expect(hang.aborted).toBe(hang.fetches);
  });
});

describe("cold fallback and failure", () => {
  it("fetches everything from the cold store when no peer provides it", async () => {
    const data = randomBytes(1 * MiB + 7);
    const publisher = await openStore("publisher");
    const r2 = await openStore("r2");
    const cold = coldOf(r2);
    const r = await put(await inputFile("f.bin", data), publisher, { cold: true }, { cold });
    expect(cold.puts).toBe(r.chunks + 1);
    expect(r.sentBytes).toBe(r.storedBytes);
    const out = join(root, "f.out");
    const got = await getLink(r.link, { output: out }, { store: await openStore("downloader"), providers: directoryOf([]), cold });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(got).toMatchObject({ fromCold: r.chunks + 1, fromPeers: 0 });
    // A re-put with --cold uploads nothing R2 already holds (but the new manifest).
    const again = await put(await inputFile("f.bin", data), publisher, { cold: true }, { cold });
    expect(cold.puts).toBe(r.chunks + 2);
    expect(again.newChunks).toBe(0);
  });

  it("fails with a clear error when nothing has a chunk, leaving no file under the final name but the part file for resume", async () => {
    const data = randomBytes(1 * MiB);
    const publisher = await openStore("publisher");
    const r = await put(await inputFile("f.bin", data), publisher);
    const chunks = (await manifestOf(r.link, publisher)).chunks!;
    const lost = chunks[chunks.length - 1].cid;
    await publisher.delete(lost);
    const out = join(root, "f.out");
    const error = await getLink(
      r.link,
      { output: out },
      { store: await openStore("downloader"), providers: directoryOf([new StoreSource("publisher", publisher)]), cold: coldOf(await openStore("r2")) },
    ).catch((e) => e);
    expect(isPeercloudError(error)).toBe(true);
    expect(error.code).toBe("chunk_unavailable");
    expect(error.message).toBe(`chunk ${lost} unavailable: no provider and not in cold storage`);
    expect(await exists(out)).toBe(false);
    expect(await exists(out + ".peercloud-part")).toBe(true);
    const state = JSON.parse(await readFile(out + ".peercloud-part.state", "utf8"));
    expect(state.done.reduce((n: number, [a, b]: [number, number]) => n + b - a, 0)).toBe(chunks.length - 1);
  });

  it("names the provider failure when providers exist but all fail", async () => {
    const publisher = await openStore("publisher");
    const r = await put(await inputFile("f.bin", randomBytes(100 * KiB)), publisher);
    const error = await getLink(r.link, { output: join(root, "x") }, { store: await openStore("downloader"), providers: directoryOf([new ThrowingSource("t")]) }).catch((e) => e);
    expect(error.code).toBe("chunk_unavailable");
    expect(error.message).toMatch(/unavailable: every provider failed \(last: t: connection reset by peer\) and no cold storage configured$/);
  });
});

describe("resume", () => {
  it("after an interruption fetches only what is missing, re-verifying what was there", async () => {
    const data = randomBytes(4 * MiB);
    const publisher = await openStore("publisher");
    const downloader = await openStore("downloader");
    const r = await put(await inputFile("f.bin", data), publisher);
    const out = join(root, "f.out");
    const stop = new AbortController();
    const first = new StoreSource("publisher", publisher, "peer");
    const options: GetOptions = { output: out, windowChunks: 4, signal: stop.signal, onProgress: (e: ProgressEvent) => e.chunksDone >= 20 && stop.abort(new Error("interrupted")) };
    await expect(getLink(r.link, options, { store: downloader, providers: directoryOf([first]) })).rejects.toThrow("interrupted");
    expect(await exists(out)).toBe(false);
    const state = JSON.parse(await readFile(out + ".peercloud-part.state", "utf8"));
    const claimed: number = state.done.reduce((n: number, [a, b]: [number, number]) => n + b - a, 0);
    expect(claimed).toBeGreaterThanOrEqual(20);
    expect(claimed).toBeLessThan(r.chunks);

    // Damage one claimed chunk in the part file: re-verification must catch it.
    const [firstDone] = state.done[0];
    const offset = (await manifestOf(r.link, publisher)).chunks!.slice(0, firstDone).reduce((n, c) => n + c.sizeBytes, 0);
    const handle = await open(out + ".peercloud-part", "r+");
    await handle.write(Buffer.from("tampered"), 0, 8, offset);
    await handle.close();

    const second = new StoreSource("publisher", publisher, "peer");
    const got = await getLink(r.link, { output: out }, { store: downloader, providers: directoryOf([second]) });
    expect(Buffer.compare(await readFile(out), data)).toBe(0);
    expect(got.resumedChunks).toBe(claimed - 1);
    // Fetched again: exactly the chunks not resumed (from the peer, or from the local cache the first run filled).
    const dataFetches = second.asked.filter((cid) => cid !== got.manifestCid).length;
    const manifestFromPeer = second.asked.includes(got.manifestCid) ? 1 : 0;
    expect(dataFetches + (got.fromLocal - (1 - manifestFromPeer))).toBe(r.chunks - got.resumedChunks);
    expect(second.fetches).toBeLessThan(r.chunks);
    expect(await exists(out + ".peercloud-part.state")).toBe(false);
  });
});

describe("streaming", () => {
  /** Answers requests out of order: each new request releases the one before it, the rest at the next macrotask. */
  class ShufflingSource extends StoreSource {
    private held: (() => void)[] = [];
    outOfOrder = 0;
    override async fetch(cid: string, signal: AbortSignal): Promise<Uint8Array> {
      const bytes = await super.fetch(cid, signal);
      await new Promise<void>((resolve) => {
        this.held.push(resolve);
        if (this.held.length > 1) {
          this.outOfOrder++;
          this.held.splice(this.held.length - 1, 1)[0]();
        }
        setImmediate(() => this.held.splice(0).forEach((r) => r()));
      });
      return bytes;
    }
  }

  function collector(highWaterMark: number): Writable & { parts: Buffer[] } {
    const parts: Buffer[] = [];
    const w = new Writable({
      highWaterMark,
      write(chunk, _enc, cb) {
        parts.push(Buffer.from(chunk));
        setImmediate(cb); // a consumer slower than the producer: backpressure
      },
    });
    return Object.assign(w, { parts });
  }

  it("emits bytes strictly in order as chunks arrive out of order", async () => {
    const data = randomBytes(3 * MiB + 5);
    const publisher = await openStore("publisher");
    const r = await put(await inputFile("f.bin", data), publisher);
    const source = new ShufflingSource("publisher", publisher, "peer");
    const sink = collector(64 * KiB);
    const got = await getLink(r.link, { stream: true, writable: sink, windowChunks: 8 }, { store: await openStore("downloader"), providers: directoryOf([source]) });
    expect(got.path).toBe("-");
    expect(Buffer.compare(Buffer.concat(sink.parts), data)).toBe(0);
    expect(source.outOfOrder).toBeGreaterThan(0);
  });

  it("streams a file whose chunks repeat", async () => {
    const data = Buffer.concat([randomBytes(100 * KiB), new Uint8Array(4 * SMALL.maxChunkBytes!), randomBytes(50 * KiB)]);
    const publisher = await openStore("publisher");
    const r = await put(await inputFile("f.bin", data), publisher);
    const sink = collector(16 * KiB);
    await getLink(r.link, { output: "-", writable: sink }, { store: await openStore("downloader"), providers: directoryOf([new StoreSource("p", publisher)]) });
    expect(Buffer.compare(Buffer.concat(sink.parts), data)).toBe(0);
  });

  it("fails cleanly (no hang) when a chunk in the middle of a stream is unavailable", async () => {
    const data = randomBytes(2 * MiB);
    const publisher = await openStore("publisher");
    const r = await put(await inputFile("f.bin", data), publisher);
    const chunks = (await manifestOf(r.link, publisher)).chunks!;
    await publisher.delete(chunks[3].cid);
    const sink = collector(64 * KiB);
    const error = await getLink(r.link, { stream: true, writable: sink, windowChunks: 8 }, { store: await openStore("downloader"), providers: directoryOf([new StoreSource("p", publisher)]) }).catch(
      (e) => e,
    );
    expect(error.code).toBe("chunk_unavailable");
    expect(error.message).toContain(chunks[3].cid);
    // Everything before the hole was emitted, in order, and nothing after it.
    const before = chunks.slice(0, 3).reduce((n, c) => n + c.sizeBytes, 0);
    expect(Buffer.compare(Buffer.concat(sink.parts), data.subarray(0, before))).toBe(0);
  });

  it("refuses to stream a directory", async () => {
    await mkdir(join(root, "in", "d"), { recursive: true });
    await writeFile(join(root, "in", "d", "x"), "x");
    const publisher = await openStore("publisher");
    const r = await put(join(root, "in", "d"), publisher);
    await expect(getLink(r.link, { stream: true, writable: collector(1024) }, { store: await openStore("dl"), providers: directoryOf([new StoreSource("p", publisher)]) })).rejects.toMatchObject({
      code: "stream_needs_file",
    });
  });
});

describe("replication and dedup", () => {
  it("places replicas on other peers, pins at the directory, and replaces a failed peer", async () => {
    const data = randomBytes(1 * MiB);
    const publisher = await openStore("publisher");
    const peers = new Map([
      ["p1", await openStore("p1")],
      ["p2", await openStore("p2")],
      ["p3", await openStore("p3")],
    ]);
    const targets = targetsOf(peers, ["p1"]);
    const warnings: string[] = [];
    const r = await put(await inputFile("f.bin", data), publisher, { replicas: 3, onWarning: (w) => warnings.push(w) }, { targets });
    expect(r.replicasAchieved).toBe(3);
    expect(r.replicaPeers.sort()).toEqual(["p2", "p3"]);
    const all = [...publisher.list()].map((c) => c.cid);
    for (const id of ["p2", "p3"]) for (const cid of all) expect(peers.get(id)!.isPinned(cid), `${id} ${cid}`).toBe(true);
    expect(targets.pins.flatMap((p) => p.cids).sort()).toEqual(all.sort());
    expect(targets.pins.every((p) => p.replicas === 3)).toBe(true);
    expect(warnings).toEqual([expect.stringContaining("p1 failed")]);
  });

  it("reports honestly when fewer peers exist than replicas asked", async () => {
    const publisher = await openStore("publisher");
    const warnings: string[] = [];
    const r = await put(
      await inputFile("f.bin", randomBytes(100 * KiB)),
      publisher,
      { replicas: 3, onWarning: (w) => warnings.push(w) },
      { targets: targetsOf(new Map([["p1", await openStore("p1")]])) },
    );
    expect(r.replicasAchieved).toBe(2);
    expect(warnings).toEqual([expect.stringContaining("only 2 of 3 replicas")]);
  });

  it("a re-put of a file changed in ~1% at scattered places stores and sends only the changed chunks", async () => {
    // 64 MiB holds ~64 chunks, so the at most 2 chunks each edit can touch
    // (16) stay well under half whatever cut points the random data gives.
    const size = 64 * MiB;
    const v1 = randomBytes(size);
    const v2 = Buffer.from(v1);
    const edits = 8;
    for (let i = 0; i < edits; i++) randomBytes(80 * KiB).copy(v2, Math.floor(((i + 0.5) * size) / edits));
    const publisher = await openStore("publisher");
    const targets = targetsOf(
      new Map([
        ["p1", await openStore("p1")],
        ["p2", await openStore("p2")],
      ]),
    );
    const deps = { targets };
    const first = await putPath(await inputFile("v1.bin", v1), { replicas: 3 }, { store: publisher, convergenceSecret: SECRET, ...deps });
    const second = await putPath(await inputFile("v2.bin", v2), { replicas: 3 }, { store: publisher, convergenceSecret: SECRET, ...deps });
    expect(first.newChunks).toBe(first.chunks);
    expect(second.newChunks).toBeGreaterThan(0);
    expect(second.newChunks).toBeLessThanOrEqual(2 * edits);
    expect(second.newChunks).toBeLessThan(second.chunks / 2);
    expect(second.storedBytes).toBeLessThan(size * 0.5);
    expect(second.sentBytes).toBeLessThan(first.sentBytes * 0.5);
    // What was sent is what was new, to each of the two replica peers.
    expect(second.sentBytes).toBe(2 * second.storedBytes);
  });

  it("spreads replicas over the nearest regions a minimum-regions policy asks for, pinned per region", async () => {
    const data = randomBytes(300 * KiB);
    const publisher = await openStore("publisher");
    const home = targetsOf(
      new Map([
        ["h1", await openStore("h1")],
        ["h2", await openStore("h2")],
      ]),
    );
    const ap = targetsOf(
      new Map([
        ["a1", await openStore("a1")],
        ["a2", await openStore("a2")],
      ]),
      ["a1"],
    );
    const us = targetsOf(new Map([["u1", await openStore("u1")]]));
    const targets = regionTargetsOf(home, [
      ["ap", ap],
      ["us", us],
    ]);
    const r = await put(await inputFile("f.bin", data), publisher, { replicas: 4, minRegions: 2 }, { targets });
    // 4 over 2 regions: 2 at home (the publisher's copy and one peer), 2 in the nearest other region (ap), none in us.
    expect(r.regions).toEqual([
      { region: null, replicas: 2, achieved: 2 },
      { region: "ap", replicas: 2, achieved: 1 },
    ]);
    // a1 failed; a replacement is sought in ap only (never home's spare h2), and ap has none left: 1 of 2, said so.
    expect(r.replicaPeers.sort()).toEqual(["a2", "h1"]);
    expect(r.warnings).toEqual(expect.arrayContaining([expect.stringContaining("region ap: only 1 of 2")]));
    const all = [...publisher.list()].map((c) => c.cid).sort();
    expect(home.pins.every((p) => p.replicas === 2)).toBe(true);
    expect(home.pins.flatMap((p) => p.cids).sort()).toEqual(all);
    expect(ap.pins.every((p) => p.replicas === 2)).toBe(true);
    expect(ap.pins.flatMap((p) => p.cids).sort()).toEqual(all);
    expect(us.pins).toEqual([]);
    expect(us.pushes).toBe(0);
  });

  it("rejects a minimum-regions policy the network cannot meet before storing anything", async () => {
    const publisher = await openStore("publisher");
    const home = targetsOf(new Map([["h1", await openStore("h1")]]));
    const targets = regionTargetsOf(home, [["us", targetsOf(new Map())]]);
    const path = await inputFile("f.bin", randomBytes(100 * KiB));
    const tooMany = await put(path, publisher, { replicas: 3, minRegions: 3 }, { targets }).catch((e: unknown) => e);
    expect(isPeercloudError(tooMany) && tooMany.code).toBe("min_regions_unavailable");
    expect((tooMany as Error).message).toContain("the network has 2");
    const overReplicas = await put(path, publisher, { replicas: 2, minRegions: 3 }, { targets }).catch((e: unknown) => e);
    expect(isPeercloudError(overReplicas) && overReplicas.code).toBe("invalid_min_regions");
    const noDirectories = await put(path, publisher, { replicas: 2, minRegions: 2 }, { targets: targetsOf(new Map()) }).catch((e: unknown) => e);
    expect(isPeercloudError(noDirectories) && noDirectories.code).toBe("min_regions_unavailable");
    expect([...publisher.list()]).toEqual([]);
    expect(home.pushes + home.pins.length).toBe(0);
  });
});
