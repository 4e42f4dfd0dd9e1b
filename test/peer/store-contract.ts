/**
 * The chunk-store contract: behaviour every chunk store implementation must
 * show, whatever keeps the bytes (files on a peer, memory in the simulator,
 * a browser cache). Call `chunkStoreContract(name, factory)` from an
 * implementation's test file; hono's shared router suite is the model.
 *
 * Persistence cases run only when the factory can `reopen` a store over the
 * same data. Nothing here waits on time: recency is driven by the order of
 * operations, which the contract defines as the LRU order.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { cidFromSha256 } from "../../src/core/cid.js";
import type { ChunkStore, RemovalReason } from "../../src/peer/chunk-store.js";

/** The part of ChunkStore's surface the contract exercises. */
export type ContractStore = Pick<ChunkStore, "has" | "sizeBytes" | "isPinned" | "get" | "openRead" | "put" | "putTrusted" | "flush" | "pin" | "unpin" | "delete" | "list" | "stats" | "on" | "close">;

export interface ChunkStoreFactory<S extends ContractStore> {
  /** A fresh, empty store. */
  create(options: { limitBytes?: number }): Promise<S>;
  /** Closes `store` and opens another over the same data; omit if the implementation does not persist. */
  reopen?(store: S, options: { limitBytes?: number }): Promise<S>;
  /** Releases everything `create` made (called once per test, after closing). */
  destroy(): Promise<void>;
}

export interface TestChunk {
  cid: string;
  bytes: Uint8Array;
}

/** Deterministic pseudo-random chunk content for `label` (SHA-256 in counter mode). */
export function makeChunk(label: string, sizeBytes: number): TestChunk {
  const bytes = new Uint8Array(sizeBytes);
  for (let offset = 0, counter = 0; offset < sizeBytes; offset += 32, counter++) {
    const block = createHash("sha256").update(`${label}:${counter}`).digest();
    bytes.set(block.subarray(0, Math.min(32, sizeBytes - offset)), offset);
  }
  return { cid: cidFromSha256(createHash("sha256").update(bytes).digest()), bytes };
}

export function cidOf(bytes: Uint8Array): string {
  return cidFromSha256(createHash("sha256").update(bytes).digest());
}

export function recordEvents(store: ContractStore): { added: [string, number][]; removed: [string, RemovalReason][] } {
  const log = { added: [] as [string, number][], removed: [] as [string, RemovalReason][] };
  store.on("added", (cid, sizeBytes) => log.added.push([cid, sizeBytes]));
  store.on("removed", (cid, reason) => log.removed.push([cid, reason]));
  return log;
}

export async function readAll(stream: Readable): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return new Uint8Array(Buffer.concat(parts));
}

/** A valid CID in every way except the one each case breaks. */
export const INVALID_CIDS: [string, string][] = [
  ["path traversal", "../../etc/passwd"],
  ["traversal padded to CID length", "b" + "../".repeat(19) + "a"],
  ["upper case", makeChunk("upper", 10).cid.toUpperCase()],
  ["CIDv0", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"],
  ["CIDv1 dag-pb instead of raw", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"],
  ["trailing slash", makeChunk("slash", 10).cid + "/"],
  ["empty", ""],
];

const KIB = 1024;

export function chunkStoreContract<S extends ContractStore>(name: string, factory: ChunkStoreFactory<S>): void {
  describe(`chunk store contract: ${name}`, () => {
    let current: S | undefined;
    const open = async (options: { limitBytes?: number } = {}) => (current = await factory.create(options));
    const reopen = async (store: S, options: { limitBytes?: number } = {}) => (current = await factory.reopen!(store, options));

    afterEach(async () => {
      await current?.close();
      current = undefined;
      await factory.destroy();
    });

    it("round-trips a chunk and reports it in has, sizeBytes, list, stats and an added event", async () => {
      const store = await open();
      const events = recordEvents(store);
      const { cid, bytes } = makeChunk("round-trip", 10 * KIB + 7);
      expect(await store.put(cid, bytes)).toEqual({ added: true });
      expect(store.has(cid)).toBe(true);
      expect(store.sizeBytes(cid)).toBe(bytes.length);
      expect(await store.get(cid)).toEqual(bytes);
      expect([...store.list()].map(({ cid, sizeBytes, pinned }) => ({ cid, sizeBytes, pinned }))).toEqual([{ cid, sizeBytes: bytes.length, pinned: false }]);
      expect(store.stats()).toMatchObject({ chunks: 1, usedBytes: bytes.length, pinnedBytes: 0, limitBytes: Infinity, freeBytes: Infinity });
      expect(events.added).toEqual([[cid, bytes.length]]);
    });

    it("stores the empty chunk", async () => {
      const store = await open();
      const { cid, bytes } = makeChunk("empty", 0);
      expect(await store.put(cid, bytes)).toEqual({ added: true });
      expect(await store.get(cid)).toEqual(new Uint8Array(0));
    });

    it("answers null for absent chunks", async () => {
      const store = await open();
      const { cid } = makeChunk("absent", 100);
      expect(store.has(cid)).toBe(false);
      expect(store.sizeBytes(cid)).toBeNull();
      expect(await store.get(cid)).toBeNull();
      expect(await store.openRead(cid)).toBeNull();
      expect(await store.delete(cid)).toBe(false);
    });

    it("rejects bytes that do not hash to the CID and stores nothing", async () => {
      const store = await open();
      const events = recordEvents(store);
      const { cid } = makeChunk("claimed", 4 * KIB);
      const other = makeChunk("actual", 4 * KIB);
      await expect(store.put(cid, other.bytes)).rejects.toMatchObject({ code: "chunk_mismatch", status: 422 });
      await expect(store.put(cid, other.bytes, { pin: true })).rejects.toMatchObject({ code: "chunk_mismatch" });
      expect(store.has(cid)).toBe(false);
      expect(store.has(other.cid)).toBe(false);
      expect(store.isPinned(cid)).toBe(false);
      expect(store.stats()).toMatchObject({ chunks: 0, usedBytes: 0 });
      expect(events.added).toEqual([]);
    });

    it("treats a second put of a chunk as a no-op", async () => {
      const store = await open();
      const events = recordEvents(store);
      const { cid, bytes } = makeChunk("twice", 3 * KIB);
      expect(await store.put(cid, bytes)).toEqual({ added: true });
      expect(await store.put(cid, bytes)).toEqual({ added: false });
      expect(store.stats()).toMatchObject({ chunks: 1, usedBytes: bytes.length });
      expect(events.added).toHaveLength(1);
    });

    it.each(INVALID_CIDS)("rejects an invalid CID (%s) with invalid_cid in every operation", async (_label, bad) => {
      const store = await open();
      const { bytes } = makeChunk("payload", 10);
      for (const call of [() => store.has(bad), () => store.sizeBytes(bad), () => store.isPinned(bad)]) {
        expect(call).toThrow(expect.objectContaining({ code: "invalid_cid" }));
      }
      for (const call of [() => store.get(bad), () => store.openRead(bad), () => store.put(bad, bytes), () => store.pin(bad), () => store.unpin(bad), () => store.delete(bad)]) {
        await expect(call()).rejects.toMatchObject({ code: "invalid_cid", status: 400 });
      }
      expect(store.stats().chunks).toBe(0);
    });

    it("rejects non-canonical text of a stored CID rather than aliasing it", async () => {
      const store = await open();
      const { cid, bytes } = makeChunk("alias", 10);
      await store.put(cid, bytes);
      expect(() => store.has(cid.toUpperCase())).toThrow(expect.objectContaining({ code: "invalid_cid" }));
      expect(() => store.has(`./${cid}`)).toThrow(expect.objectContaining({ code: "invalid_cid" }));
    });

    it("serves byte ranges with an exclusive end clamped to the chunk", async () => {
      const store = await open();
      const { cid, bytes } = makeChunk("ranges", 100 * KIB + 3);
      await store.put(cid, bytes);
      const read = async (range?: { start?: number; end?: number }) => {
        const r = (await store.openRead(cid, range))!;
        return { data: await readAll(r.stream), sizeBytes: r.sizeBytes, start: r.start, end: r.end };
      };
      expect(await read()).toEqual({ data: bytes, sizeBytes: bytes.length, start: 0, end: bytes.length });
      expect((await read({ start: 10, end: 20 })).data).toEqual(bytes.slice(10, 20));
      expect((await read({ start: 70 * KIB })).data).toEqual(bytes.slice(70 * KIB));
      expect((await read({ end: 1 })).data).toEqual(bytes.slice(0, 1));
      expect(await read({ start: 5, end: bytes.length + 1000 })).toMatchObject({ data: bytes.slice(5), end: bytes.length });
      expect((await read({ start: bytes.length })).data).toEqual(new Uint8Array(0));
      expect((await read({ start: 7, end: 7 })).data).toEqual(new Uint8Array(0));
      for (const bad of [{ start: bytes.length + 1 }, { start: -1 }, { start: 20, end: 10 }, { start: 1.5 }]) {
        await expect(store.openRead(cid, bad)).rejects.toMatchObject({ code: "range_not_satisfiable", status: 416 });
      }
    });

    it("pins and unpins, counting pinned bytes, also when pinned ahead of the put", async () => {
      const store = await open();
      const a = makeChunk("pin-a", 1000);
      const b = makeChunk("pin-b", 2000);
      await store.put(a.cid, a.bytes, { pin: true });
      expect(store.isPinned(a.cid)).toBe(true);
      await store.pin(b.cid);
      expect(store.stats().pinnedBytes).toBe(1000);
      await store.put(b.cid, b.bytes);
      expect(store.stats().pinnedBytes).toBe(3000);
      expect([...store.list()].every((c) => c.pinned)).toBe(true);
      expect(await store.unpin(a.cid)).toBe(true);
      expect(await store.unpin(a.cid)).toBe(false);
      expect(store.isPinned(a.cid)).toBe(false);
      expect(store.stats().pinnedBytes).toBe(2000);
      // A put of a present chunk can still pin it.
      expect(await store.put(a.cid, a.bytes, { pin: true })).toEqual({ added: false });
      expect(store.stats().pinnedBytes).toBe(3000);
    });

    it("deletes a chunk and its pin, with a removed(deleted) event", async () => {
      const store = await open();
      const events = recordEvents(store);
      const { cid, bytes } = makeChunk("delete", 500);
      await store.put(cid, bytes, { pin: true });
      expect(await store.delete(cid)).toBe(true);
      expect(await store.delete(cid)).toBe(false);
      expect(store.has(cid)).toBe(false);
      expect(store.isPinned(cid)).toBe(false);
      expect(await store.get(cid)).toBeNull();
      expect(store.stats()).toMatchObject({ chunks: 0, usedBytes: 0, pinnedBytes: 0 });
      expect(events.removed).toEqual([[cid, "deleted"]]);
    });

    it("evicts unpinned chunks least recently used first, never pinned ones", async () => {
      const store = await open({ limitBytes: 3000 });
      const events = recordEvents(store);
      const [a, b, c, d, e, f] = ["a", "b", "c", "d", "e", "f"].map((l) => makeChunk(`lru-${l}`, 1000));
      await store.put(a.cid, a.bytes, { pin: true }); // oldest, but pinned
      await store.put(b.cid, b.bytes);
      await store.put(c.cid, c.bytes);
      await store.get(b.cid); // b is now more recent than c
      await store.put(d.cid, d.bytes); // evicts c
      expect(events.removed).toEqual([[c.cid, "evicted"]]);
      await store.openRead(b.cid).then((r) => r?.stream.destroy()); // streaming counts as use too
      await store.put(e.cid, e.bytes); // evicts d
      await store.put(f.cid, f.bytes); // evicts b
      expect(events.removed).toEqual([
        [c.cid, "evicted"],
        [d.cid, "evicted"],
        [b.cid, "evicted"],
      ]);
      expect(new Set([...store.list()].map((x) => x.cid))).toEqual(new Set([a.cid, e.cid, f.cid]));
      expect(store.stats()).toMatchObject({ chunks: 3, usedBytes: 3000, pinnedBytes: 1000, limitBytes: 3000, freeBytes: 0 });
      for (const gone of [b, c, d]) expect(await store.get(gone.cid)).toBeNull();
      expect(await store.get(a.cid)).toEqual(a.bytes);
    });

    it("evicts several small chunks to fit one large chunk", async () => {
      const store = await open({ limitBytes: 4000 });
      const smalls = [1, 2, 3, 4].map((i) => makeChunk(`small-${i}`, 1000));
      for (const s of smalls) await store.put(s.cid, s.bytes);
      const big = makeChunk("big", 2500);
      await store.put(big.cid, big.bytes);
      expect([...store.list()].map((x) => x.cid).sort()).toEqual([smalls[3].cid, big.cid].sort());
    });

    it("throws store_full when pinned data leaves no room, evicting nothing", async () => {
      const store = await open({ limitBytes: 2500 });
      const events = recordEvents(store);
      const pinned = makeChunk("full-pinned", 1000);
      const loose = makeChunk("full-loose", 1000);
      await store.put(pinned.cid, pinned.bytes, { pin: true });
      await store.put(loose.cid, loose.bytes);
      const big = makeChunk("full-big", 2000);
      const error = await store.put(big.cid, big.bytes).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store_full", status: 507, name: "StoreFullError" });
      expect((error as Error).message).toMatch(/2000 bytes used .*2500-byte limit/);
      expect(store.has(loose.cid)).toBe(true);
      expect(store.has(big.cid)).toBe(false);
      expect(events.removed).toEqual([]);
      // Pinning with a failed put does not leave the pin behind.
      await expect(store.put(big.cid, big.bytes, { pin: true })).rejects.toMatchObject({ code: "store_full" });
      expect(store.isPinned(big.cid)).toBe(false);
      // A chunk larger than the whole limit never fits.
      const huge = makeChunk("full-huge", 3000);
      await expect(store.put(huge.cid, huge.bytes)).rejects.toMatchObject({ code: "store_full" });
    });

    it("stores one copy when the same chunk is put many times concurrently", async () => {
      const store = await open();
      const events = recordEvents(store);
      const { cid, bytes } = makeChunk("same", 64 * KIB);
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => store.put(cid, bytes, { pin: i % 5 === 0 })));
      expect(results.filter((r) => r.added)).toHaveLength(1);
      expect(events.added).toEqual([[cid, bytes.length]]);
      expect(store.stats()).toMatchObject({ chunks: 1, usedBytes: bytes.length, pinnedBytes: bytes.length });
      expect(await store.get(cid)).toEqual(bytes);
    });

    it("keeps its accounting exact under many concurrent puts that evict, with reads that see all bytes or none", async () => {
      const limitBytes = 40 * KIB;
      const store = await open({ limitBytes });
      const chunks = Array.from({ length: 60 }, (_, i) => makeChunk(`parallel-${i}`, (i % 7) * KIB + 512));
      const reads: Promise<void>[] = [];
      const puts = chunks.flatMap((c, i) => {
        const p = [store.put(c.cid, c.bytes), store.put(c.cid, c.bytes)];
        // Reads of earlier chunks race their eviction.
        for (const earlier of chunks.slice(Math.max(0, i - 5), i)) {
          reads.push(
            store.get(earlier.cid).then((got) => {
              if (got !== null) expect(got).toEqual(earlier.bytes);
            }),
          );
        }
        return p;
      });
      const settled = await Promise.allSettled(puts);
      expect(settled.filter((s) => s.status === "rejected")).toEqual([]);
      await Promise.all(reads);
      const listed = [...store.list()];
      const stats = store.stats();
      expect(stats.usedBytes).toBeLessThanOrEqual(limitBytes);
      expect(stats.usedBytes).toBe(listed.reduce((sum, c) => sum + c.sizeBytes, 0));
      expect(stats.chunks).toBe(listed.length);
      for (const { cid } of listed) expect(cidOf((await store.get(cid))!)).toBe(cid);
    });

    it("runs concurrent puts, pins, deletes and gets of one chunk without breaking it", async () => {
      const store = await open();
      const { cid, bytes } = makeChunk("mixed", 8 * KIB);
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 30; i++) {
        ops.push(store.put(cid, bytes));
        if (i % 3 === 0) ops.push(store.delete(cid));
        if (i % 4 === 0) ops.push(store.pin(cid));
        if (i % 5 === 0) ops.push(store.unpin(cid));
        ops.push(store.get(cid).then((got) => got === null || expect(got).toEqual(bytes)));
      }
      await Promise.all(ops);
      await store.put(cid, bytes);
      expect(await store.get(cid)).toEqual(bytes);
      expect(store.stats().usedBytes).toBe(bytes.length);
    });

    it("refuses changes after close", async () => {
      const store = await open();
      const { cid, bytes } = makeChunk("closed", 10);
      await store.close();
      await expect(store.put(cid, bytes)).rejects.toMatchObject({ code: "store_closed" });
      await expect(store.putTrusted(cid, bytes)).rejects.toMatchObject({ code: "store_closed" });
      await expect(store.flush()).rejects.toMatchObject({ code: "store_closed" });
    });

    describe("trusted puts and group commit", () => {
      it("putTrusted stores and pins like put, still checking the CID's form and the size limit", async () => {
        const store = await open();
        const events = recordEvents(store);
        const { cid, bytes } = makeChunk("trusted", 5 * KIB);
        expect(await store.putTrusted(cid, bytes, { pin: true })).toEqual({ added: true });
        expect(await store.putTrusted(cid, bytes)).toEqual({ added: false });
        expect(await store.get(cid)).toEqual(bytes);
        expect(store.isPinned(cid)).toBe(true);
        expect(events.added).toEqual([[cid, bytes.length]]);
        for (const [, bad] of INVALID_CIDS) await expect(store.putTrusted(bad, bytes)).rejects.toMatchObject({ code: "invalid_cid" });
      });

      it("makes { sync: false } puts readable at once but announces them (added, list) only when flushed", async () => {
        const store = await open();
        const events = recordEvents(store);
        const chunks = [1, 2, 3].map((i) => makeChunk(`group-${i}`, i * 3 * KIB));
        for (const c of chunks) expect(await store.putTrusted(c.cid, c.bytes, { pin: true, sync: false })).toEqual({ added: true });
        expect(await store.putTrusted(chunks[0].cid, chunks[0].bytes, { sync: false })).toEqual({ added: false });
        for (const c of chunks) {
          expect(store.has(c.cid)).toBe(true);
          expect(store.isPinned(c.cid)).toBe(true);
          expect(await store.get(c.cid)).toEqual(c.bytes);
          expect(await readAll((await store.openRead(c.cid, { start: 1 }))!.stream)).toEqual(c.bytes.slice(1));
        }
        expect(store.stats()).toMatchObject({ chunks: 3, usedBytes: 18 * KIB, pinnedBytes: 18 * KIB });
        expect([...store.list()]).toEqual([]);
        expect(events.added).toEqual([]);

        await store.flush();
        expect(events.added).toEqual(chunks.map((c) => [c.cid, c.bytes.length]));
        expect(new Set([...store.list()].map((c) => c.cid))).toEqual(new Set(chunks.map((c) => c.cid)));
        for (const c of chunks) expect(await store.get(c.cid)).toEqual(c.bytes);
        await store.flush(); // nothing pending: a no-op
        expect(events.added).toHaveLength(3);
      });

      it("lets a durable put of a pending chunk make it durable at once", async () => {
        const store = await open();
        const events = recordEvents(store);
        const { cid, bytes } = makeChunk("pending-then-sync", 2 * KIB);
        await store.putTrusted(cid, bytes, { sync: false });
        expect(events.added).toEqual([]);
        expect(await store.put(cid, bytes)).toEqual({ added: false });
        expect(events.added).toEqual([[cid, bytes.length]]);
        expect([...store.list()].map((c) => c.cid)).toEqual([cid]);
        await store.flush();
        expect(events.added).toHaveLength(1);
      });

      it("deletes and evicts pending chunks without announcing their removal", async () => {
        const store = await open({ limitBytes: 3 * KIB });
        const events = recordEvents(store);
        const [a, b, c, d] = ["a", "b", "c", "d"].map((l) => makeChunk(`pending-gone-${l}`, KIB));
        await store.putTrusted(a.cid, a.bytes, { sync: false });
        await store.putTrusted(b.cid, b.bytes, { sync: false });
        expect(await store.delete(a.cid)).toBe(true);
        await store.putTrusted(c.cid, c.bytes, { sync: false });
        await store.putTrusted(d.cid, d.bytes, { sync: false });
        await store.putTrusted(a.cid, a.bytes, { sync: false }); // evicts b, the least recently used
        expect(store.has(b.cid)).toBe(false);
        expect(events.removed).toEqual([]);
        await store.flush();
        expect(new Set(events.added.map(([cid]) => cid))).toEqual(new Set([a.cid, c.cid, d.cid]));
        expect(store.stats()).toMatchObject({ chunks: 3, usedBytes: 3 * KIB });
        for (const x of [a, c, d]) expect(await store.get(x.cid)).toEqual(x.bytes);
      });

      it("serves every pending chunk while a flush commits them", async () => {
        const store = await open();
        const chunks = Array.from({ length: 24 }, (_, i) => makeChunk(`flush-race-${i}`, 20 * KIB + i));
        for (const c of chunks) await store.putTrusted(c.cid, c.bytes, { sync: false });
        const reads = chunks.flatMap((c) => [store.get(c.cid), store.openRead(c.cid).then((r) => (r ? readAll(r.stream) : null))]);
        await store.flush();
        const results = await Promise.all(reads);
        results.forEach((got, i) => expect(got).toEqual(chunks[i >> 1].bytes));
      });

      describe.runIf(factory.reopen !== undefined)("persistence", () => {
        it("keeps flushed chunks across a reopen, and close() flushes what is pending", async () => {
          let store = await open();
          const flushed = makeChunk("group-flushed", 4 * KIB);
          const atClose = makeChunk("group-at-close", 5 * KIB);
          await store.putTrusted(flushed.cid, flushed.bytes, { pin: true, sync: false });
          await store.flush();
          await store.putTrusted(atClose.cid, atClose.bytes, { pin: true, sync: false });
          store = await reopen(store);
          expect(await store.get(flushed.cid)).toEqual(flushed.bytes);
          expect(await store.get(atClose.cid)).toEqual(atClose.bytes);
          expect(store.isPinned(atClose.cid)).toBe(true);
          expect(store.stats()).toMatchObject({ chunks: 2, usedBytes: 9 * KIB, pinnedBytes: 9 * KIB });
        });
      });
    });

    describe.runIf(factory.reopen !== undefined)("persistence", () => {
      it("keeps chunks and pins across a reopen, and forgets deleted and unpinned state", async () => {
        let store = await open();
        const kept = makeChunk("persist-kept", 2000);
        const pinned = makeChunk("persist-pinned", 3000);
        const unpinned = makeChunk("persist-unpinned", 1000);
        const deleted = makeChunk("persist-deleted", 1000);
        const pinnedAhead = makeChunk("persist-ahead", 10);
        await store.put(kept.cid, kept.bytes);
        await store.put(pinned.cid, pinned.bytes, { pin: true });
        await store.put(unpinned.cid, unpinned.bytes, { pin: true });
        await store.unpin(unpinned.cid);
        await store.put(deleted.cid, deleted.bytes, { pin: true });
        await store.delete(deleted.cid);
        await store.pin(pinnedAhead.cid);

        store = await reopen(store);
        expect(await store.get(kept.cid)).toEqual(kept.bytes);
        expect(await store.get(pinned.cid)).toEqual(pinned.bytes);
        expect(store.isPinned(pinned.cid)).toBe(true);
        expect(store.isPinned(unpinned.cid)).toBe(false);
        expect(store.has(deleted.cid)).toBe(false);
        expect(store.isPinned(deleted.cid)).toBe(false);
        expect(store.isPinned(pinnedAhead.cid)).toBe(true);
        expect(store.stats()).toMatchObject({ chunks: 3, usedBytes: 6000, pinnedBytes: 3000 });
      });

      it("sheds unpinned chunks when reopened under a lower limit, keeping pinned ones", async () => {
        let store = await open();
        const pinned = makeChunk("lower-pinned", 2000);
        const loose = [1, 2, 3].map((i) => makeChunk(`lower-${i}`, 1000));
        await store.put(pinned.cid, pinned.bytes, { pin: true });
        for (const c of loose) await store.put(c.cid, c.bytes);
        store = await reopen(store, { limitBytes: 3000 });
        expect(store.stats()).toMatchObject({ usedBytes: 3000, pinnedBytes: 2000 });
        expect(store.has(pinned.cid)).toBe(true);
        expect(loose.filter((c) => store.has(c.cid))).toHaveLength(1);
      });
    });
  });
}
