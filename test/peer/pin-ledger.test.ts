/**
 * Pins of content that shares chunks (src/peer/pin-ledger.ts), through the
 * real put/pin/unpin of LocalOperations over a real chunk store and
 * library: a directory keeps one pin per chunk and publisher, so setting one
 * content's pins must never lower (or withdraw) what other content of the
 * same home still asks of a chunk they share.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { toBase64Url } from "../../src/core/bytes.js";
import { ChunkStore } from "../../src/peer/chunk-store.js";
import { collectTreeCids } from "../../src/peer/content-tree.js";
import type { PeerConfig, PeerHome } from "../../src/peer/home.js";
import { Library } from "../../src/peer/library.js";
import { LocalOperations } from "../../src/peer/operations.js";
import { parseLink } from "../../src/core/link.js";
import type { ReplicaTargets } from "../../src/peer/sources.js";

let root: string;
let store: ChunkStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "peercloud-pin-ledger-"));
  store = await ChunkStore.open(join(root, "store"));
});

afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

/** A directory per region keeping this publisher's one pin per chunk, as replica-store.ts does (0 withdraws). */
function directories(regions: string[]) {
  const pins = new Map<string, Map<string, number>>(regions.map((r) => [r, new Map()]));
  const targetsIn = (region: string): ReplicaTargets => ({
    place: async () => [],
    pin: async (cids, replicas) => {
      for (const cid of cids) {
        if (replicas === 0) pins.get(region)!.delete(cid);
        else pins.get(region)!.set(cid, replicas);
      }
    },
  });
  const asked = { otherRegions: 0 };
  const targets: ReplicaTargets = {
    ...targetsIn(regions[0]),
    otherRegions: async () => {
      asked.otherRegions++;
      return regions.slice(1);
    },
    inRegion: targetsIn,
  };
  return { pins, targets, asked };
}

function operations(targets: ReplicaTargets) {
  const config = { convergenceSecret: toBase64Url(new Uint8Array(32).fill(7)) } as unknown as PeerConfig;
  return new LocalOperations({ home: { dir: root } as PeerHome, config: () => config, store, library: new Library(root), network: { targets } });
}

async function cidsOf(link: string): Promise<string[]> {
  const { cid, key } = parseLink(link);
  return (await collectTreeCids(cid, key, async (c) => (await store.get(c))!)).cids;
}

describe("pins of content sharing chunks", () => {
  it("keeps shared chunks at the larger factor on put, pin and unpin, per region, and unpins locally only what nothing else keeps", async () => {
    const { pins, targets, asked } = directories(["eu", "us"]);
    const ops = operations(targets);
    const shared = randomBytes(700 * 1024);
    // Two files with the same bytes under different names: convergent keys give the same chunks, different manifests.
    await writeFile(join(root, "a.bin"), shared);
    await writeFile(join(root, "b.bin"), shared);
    const a = await ops.put({ path: join(root, "a.bin"), replicas: 5, minRegions: 2 });
    const b = await ops.put({ path: join(root, "b.bin"), replicas: 2 });
    const aCids = await cidsOf(a.link);
    const bCids = await cidsOf(b.link);
    const common = aCids.filter((c) => bCids.includes(c));
    expect(common.length).toBeGreaterThan(0);
    const eu = pins.get("eu")!;
    const us = pins.get("us")!;
    // b's put (2 replicas, home only) did not lower what a asks: 3 at home, 2 in us.
    for (const cid of common) expect([eu.get(cid), us.get(cid)], cid).toEqual([3, 2]);
    expect(us.get(b.cid)).toBeUndefined();

    // Raising b to 5 at home raises the shared chunks there; lowering it to 1 puts them back at a's share, not below.
    // Planning, withdrawing and weighing a's shares all need the other regions: asked of the edge once per command.
    asked.otherRegions = 0;
    await ops.pin({ link: b.link, replicas: 5 });
    expect(asked.otherRegions).toBe(1);
    for (const cid of common) expect(eu.get(cid)).toBe(5);
    await ops.pin({ link: b.link, replicas: 1 });
    for (const cid of common) expect(eu.get(cid)).toBe(3);
    expect(eu.get(b.cid)).toBe(1);

    // Unpinning a withdraws a's own manifest everywhere, but b still keeps the shared chunks at home, pinned locally too.
    await ops.unpin(a.link);
    expect(eu.has(a.cid)).toBe(false);
    for (const cid of common) {
      expect(eu.get(cid)).toBe(1);
      expect(us.has(cid)).toBe(false);
      expect(store.isPinned(cid)).toBe(true);
    }
    expect(store.isPinned(a.cid)).toBe(false);

    // With b gone as well nothing keeps them.
    await ops.unpin(b.link);
    for (const cid of common) {
      expect(eu.has(cid)).toBe(false);
      expect(store.isPinned(cid)).toBe(false);
    }
  });
});
