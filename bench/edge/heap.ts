/**
 * JS heap per peer of the region directory's in-memory view, measured in
 * V8 here (workerd exposes no heap statistics): the same structures the
 * object keeps for every peer that is not dead — a Map of PeerRecord
 * (durable-objects/region-directory/peer-store.ts) and a KBucketTree with
 * split policy "always" (src/core/k-bucket-tree.ts) — filled with records
 * shaped like real ones. A production isolate has 128 MB, so this is what
 * bounds the peers one object can hold in memory.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { randomBytes, toBase64Url, toHex } from "../../src/core/bytes.js";
import { KBucketTree } from "../../src/core/k-bucket-tree.js";
import type { PeerRecord } from "../../durable-objects/region-directory/peer-store.js";

function collectGarbage(): () => void {
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

function record(i: number): PeerRecord {
  const nodeId = toHex(randomBytes(32));
  return {
    nodeId,
    publicKey: toBase64Url(randomBytes(32)),
    hostId: nodeId,
    addresses: [`http://198.51.${(i >> 8) & 255}.${i & 255}:7070`],
    roles: ["service"],
    capacity: { storageBytes: 1_000_000_000_000, uploadBps: 100_000_000, downloadBps: 100_000_000 },
    load: { activeTransfers: i % 8, queueLength: i % 4, cpu: (i % 100) / 100 },
    freeBytes: 500_000_000_000 + i,
    state: "alive",
    lastSeenMs: Date.now(),
    registeredMs: Date.now(),
    certExpiresMs: Date.now() + 86_400_000,
  };
}

/** Heap bytes per peer of the directory's in-memory view, from `peers` records. */
export function directoryHeapBytesPerPeer(peers = 20_000, k = 20): number {
  const gc = collectGarbage();
  gc();
  const before = process.memoryUsage().heapUsed;
  const live = new Map<string, PeerRecord>();
  const tree = new KBucketTree<PeerRecord>({ k, splitPolicy: "always" });
  for (let i = 0; i < peers; i++) {
    const r = record(i);
    live.set(r.nodeId, r);
    tree.add(r);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  const perPeer = (after - before) / peers;
  live.clear();
  return perPeer;
}
