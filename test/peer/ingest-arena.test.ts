/**
 * The ingest arena (src/peer/ingest-arena.ts): the sealed ring hands out
 * non-overlapping views first-in first-out, wraps around only into freed
 * room, and refuses out-of-order frees; arena shapes are checked; the
 * process keeps one arena for reuse and gives a concurrent ingest its own.
 */
import { describe, expect, it } from "vitest";
import { acquireIngestArena, arenaShape, SealedRing } from "../../src/peer/ingest-arena.js";

const KiB = 1024;

function range(ring: SealedRing, view: Uint8Array): [number, number] {
  const start = view.byteOffset - ring.bytes.byteOffset;
  return [start, start + view.length];
}

describe("SealedRing", () => {
  it("allocates in order, waits for room, and wraps into freed space", () => {
    const ring = new SealedRing(new Uint8Array(new SharedArrayBuffer(100)));
    const a = ring.alloc(40)!;
    const b = ring.alloc(40)!;
    expect(range(ring, a)).toEqual([0, 40]);
    expect(range(ring, b)).toEqual([40, 80]);
    expect(ring.alloc(30)).toBeNull(); // 20 left at the end, nothing free at the start yet
    ring.free(a);
    const c = ring.alloc(30)!; // wraps to the freed start
    expect(range(ring, c)).toEqual([0, 30]);
    expect(ring.alloc(11)).toBeNull(); // between c's end (30) and b (40) only 10 are free
    const d = ring.alloc(10)!;
    expect(range(ring, d)).toEqual([30, 40]);
    ring.free(b);
    const e = ring.alloc(60)!; // b's room and the unused tail: 40..100
    expect(range(ring, e)).toEqual([40, 100]);
    ring.free(c);
    ring.free(d);
    ring.free(e);
    expect(ring.inUse).toBe(0);
    expect(range(ring, ring.alloc(100)!)).toEqual([0, 100]); // empty: starts over at 0
  });

  it("never hands out overlapping live views (random sizes, FIFO frees)", () => {
    const ring = new SealedRing(new Uint8Array(new SharedArrayBuffer(10 * KiB)));
    const live: Uint8Array[] = [];
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let step = 0; step < 5000; step++) {
      const view = random() < 0.6 ? ring.alloc(1 + Math.floor(random() * 3 * KiB)) : null;
      if (view) {
        view.fill(step & 255);
        live.push(view);
      } else if (live.length > 0) {
        ring.free(live.shift()!);
      }
      const ranges = live.map((v) => range(ring, v)).sort((x, y) => x[0] - y[0]);
      for (let i = 1; i < ranges.length; i++) expect(ranges[i][0]).toBeGreaterThanOrEqual(ranges[i - 1][1]);
    }
  });

  it("refuses frees out of order and sizes it can never hold", () => {
    const ring = new SealedRing(new Uint8Array(new SharedArrayBuffer(100)));
    const a = ring.alloc(10)!;
    const b = ring.alloc(10)!;
    expect(() => ring.free(b)).toThrow(RangeError);
    ring.free(a);
    ring.free(b);
    expect(() => ring.alloc(101)).toThrow(RangeError);
    expect(() => ring.alloc(0)).toThrow(RangeError);
  });
});

describe("ingest arenas", () => {
  it("checks shapes", () => {
    expect(() => arenaShape(1024, { slabCount: 2 })).toThrow(RangeError);
    expect(() => arenaShape(1024, { sealedRingBytes: 1024 })).toThrow(RangeError); // no room for the tag
    expect(() => arenaShape(1024, { readBytes: 0 })).toThrow(RangeError);
    expect(arenaShape(4096)).toMatchObject({ maxChunkBytes: 4096, slabCount: 4, sealedRingBytes: 4 * 4096 });
  });

  it("lays slabs out with maxChunkBytes of headroom, in shared memory, and is reused once released", () => {
    const shape = arenaShape(64 * KiB, { readBytes: 32 * KiB, slabCount: 3, sealedRingBytes: 256 * KiB });
    const first = acquireIngestArena(shape);
    const { arena } = first;
    expect(arena.input.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(arena.sealed.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    for (const [i, slab] of arena.slabs.entries()) {
      expect(slab.dataStart - slab.start).toBe(64 * KiB);
      if (i > 0) expect(slab.start).toBe(arena.slabs[i - 1].dataStart + 32 * KiB);
    }
    expect(arena.slabs.at(-1)!.dataStart + 32 * KiB).toBeLessThanOrEqual(arena.input.length);
    // A concurrent ingest gets an arena of its own.
    const second = acquireIngestArena(shape);
    expect(second.arena).not.toBe(arena);
    second.release();
    arena.slabs[0].refs = 2;
    arena.sealed.alloc(100);
    first.release();
    const again = acquireIngestArena(shape);
    expect(again.arena).toBe(arena);
    expect(arena.slabs[0].refs).toBe(0);
    expect(arena.sealed.inUse).toBe(0);
    again.release();
  });
});
