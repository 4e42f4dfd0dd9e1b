/**
 * KBucketTree (src/core/k-bucket-tree.ts) against brute force: for random ID
 * sets of many sizes (seeded, so failures reproduce) and many k, closest()
 * must return exactly the n stored contacts nearest in XOR order. Also the
 * two split policies, refresh order, removal, filters and the degenerate
 * shapes (empty tree, IDs sharing 255 bits).
 */
import { describe, expect, it } from "vitest";
import { toHex } from "../../src/core/bytes.js";
import { KBucketTree, type Contact } from "../../src/core/k-bucket-tree.js";
import { compareDistance, nodeIdBytes } from "../../src/core/node-id.js";
import { mulberry32 as prng } from "../../src/core/random.js";

function randomId(rand: () => number): string {
  const b = new Uint8Array(32);
  for (let i = 0; i < 32; i++) b[i] = Math.floor(rand() * 256);
  return toHex(b);
}

/** All of `ids` sorted by XOR distance to `target` (a plain sort: the reference the tree must match). */
function bruteSorted(ids: readonly string[], target: string): string[] {
  const t = nodeIdBytes(target);
  const withBytes = ids.map((id) => ({ id, bytes: nodeIdBytes(id) }));
  return withBytes.sort((a, b) => compareDistance(t, a.bytes, b.bytes)).map((e) => e.id);
}

function bruteClosest(ids: readonly string[], target: string, n: number): string[] {
  return bruteSorted(ids, target).slice(0, n);
}

const contact = (nodeId: string): Contact => ({ nodeId });

describe("KBucketTree with split policy 'always'", () => {
  const sizes = [0, 1, 2, 7, 20, 21, 64, 300, 1500];
  const ks = [1, 2, 3, 8, 20];
  for (const size of sizes) {
    for (const k of ks) {
      it(`closest() equals brute force for ${size} IDs, k=${k}`, () => {
        const rand = prng(size * 1000 + k);
        const ids = Array.from({ length: size }, () => randomId(rand));
        const tree = new KBucketTree<Contact>({ k, splitPolicy: "always" });
        for (const id of ids) expect(tree.add(contact(id)).status).toBe("added");
        expect(tree.size).toBe(size);
        for (let q = 0; q < 25; q++) {
          // Targets: random points, and stored IDs themselves (distance 0 must come first).
          const target = q % 5 === 0 && size > 0 ? ids[Math.floor(rand() * size)] : randomId(rand);
          const sorted = bruteSorted(ids, target);
          for (const n of [1, k, k + 3, size + 1]) {
            expect(tree.closest(target, n).map((c) => c.nodeId)).toEqual(sorted.slice(0, n));
          }
        }
      });
    }
  }

  it("keeps every contact and never lets a bucket exceed k", () => {
    const rand = prng(42);
    const ids = Array.from({ length: 500 }, () => randomId(rand));
    const tree = new KBucketTree<Contact>({ k: 4, splitPolicy: "always" });
    for (const id of ids) tree.add(contact(id));
    expect(new Set([...tree].map((c) => c.nodeId))).toEqual(new Set(ids));
    // 500 contacts in buckets of at most 4 need at least 125 leaves.
    expect(tree.bucketCount()).toBeGreaterThanOrEqual(125);
  });

  it("separates IDs that share 255 leading bits", () => {
    const base = "ab".repeat(31) + "cd";
    const twin = "ab".repeat(31) + "cc"; // differs from base only in the last bit
    const far = "00".repeat(32);
    const tree = new KBucketTree<Contact>({ k: 1, splitPolicy: "always" });
    for (const id of [base, twin, far]) expect(tree.add(contact(id)).status).toBe("added");
    expect(tree.closest(base, 3).map((c) => c.nodeId)).toEqual([base, twin, far]);
    expect(tree.closest(twin, 2).map((c) => c.nodeId)).toEqual([twin, base]);
  });

  it("accepts the target as bytes and applies a filter without losing exactness", () => {
    const rand = prng(7);
    const ids = Array.from({ length: 200 }, () => randomId(rand));
    const tree = new KBucketTree<Contact>({ k: 5, splitPolicy: "always" });
    for (const id of ids) tree.add(contact(id));
    const target = randomId(rand);
    const even = (id: string) => parseInt(id.slice(-1), 16) % 2 === 0;
    expect(tree.closest(nodeIdBytes(target), 10).map((c) => c.nodeId)).toEqual(bruteClosest(ids, target, 10));
    expect(tree.closest(target, 10, (c) => even(c.nodeId)).map((c) => c.nodeId)).toEqual(bruteClosest(ids.filter(even), target, 10));
  });

  it("removes contacts, and refreshes an existing one in place", () => {
    const rand = prng(99);
    const ids = Array.from({ length: 100 }, () => randomId(rand));
    const tree = new KBucketTree<Contact & { v: number }>({ k: 3, splitPolicy: "always" });
    for (const id of ids) tree.add({ nodeId: id, v: 1 });
    expect(tree.add({ nodeId: ids[0], v: 2 }).status).toBe("updated");
    expect(tree.size).toBe(100);
    expect(tree.get(ids[0])?.v).toBe(2);

    const removed = ids.filter((_, i) => i % 3 === 0);
    for (const id of removed) expect(tree.remove(id)?.nodeId).toBe(id);
    expect(tree.remove(removed[0])).toBeUndefined();
    expect(tree.has(removed[1])).toBe(false);
    const kept = ids.filter((_, i) => i % 3 !== 0);
    expect(tree.size).toBe(kept.length);
    const target = randomId(rand);
    expect(tree.closest(target, 15).map((c) => c.nodeId)).toEqual(bruteClosest(kept, target, 15));
  });

  it("returns nothing from an empty tree", () => {
    const tree = new KBucketTree<Contact>({ splitPolicy: "always" });
    expect(tree.closest("00".repeat(32), 20)).toEqual([]);
    expect(tree.size).toBe(0);
  });
});

describe("KBucketTree with split policy 'own-id'", () => {
  it("splits only towards its own ID and reports the least recently seen contact of a full bucket", () => {
    const localId = "00".repeat(32);
    const tree = new KBucketTree<Contact>({ k: 2, localId });
    // Three IDs whose first bit is 1: they share the far half of the ID space, which may not split.
    const far = ["80" + "00".repeat(31), "c0" + "00".repeat(31), "e0" + "00".repeat(31)];
    expect(tree.add(contact(far[0])).status).toBe("added");
    expect(tree.add(contact(far[1])).status).toBe("added");
    expect(tree.add(contact(far[2]))).toEqual({ status: "full", oldest: contact(far[0]) });
    // Seeing far[0] again moves it to the most recently seen end: far[1] becomes the eviction candidate.
    expect(tree.add(contact(far[0])).status).toBe("updated");
    expect(tree.add(contact(far[2]))).toEqual({ status: "full", oldest: contact(far[1]) });
    // Near IDs (first bit 0, like the local ID) keep splitting the local side.
    const near = ["01" + "00".repeat(31), "02" + "00".repeat(31), "40" + "00".repeat(31), "20" + "00".repeat(31)];
    for (const id of near) expect(tree.add(contact(id)).status).toBe("added");
    expect(tree.size).toBe(6);
  });

  it("answers closest() exactly over what it stored", () => {
    const rand = prng(2024);
    const localId = randomId(rand);
    for (const k of [1, 4, 20]) {
      const tree = new KBucketTree<Contact>({ k, localId });
      for (let i = 0; i < 2000; i++) tree.add(contact(randomId(rand)));
      const stored = [...tree].map((c) => c.nodeId);
      expect(stored.length).toBe(tree.size);
      expect(stored.length).toBeLessThan(2000); // far buckets refused contacts
      for (let q = 0; q < 20; q++) {
        const target = q === 0 ? localId : randomId(rand);
        expect(tree.closest(target, k).map((c) => c.nodeId)).toEqual(bruteClosest(stored, target, k));
      }
    }
  });

  it("rejects bad options", () => {
    expect(() => new KBucketTree({ k: 0, splitPolicy: "always" })).toThrow(RangeError);
    expect(() => new KBucketTree({ k: 2.5, splitPolicy: "always" })).toThrow(RangeError);
    expect(() => new KBucketTree({ splitPolicy: "own-id" })).toThrow(TypeError);
    expect(() => new KBucketTree({ splitPolicy: "always" }).add(contact("not-hex"))).toThrow(TypeError);
  });
});
