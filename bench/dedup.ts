/**
 * Dedup demonstration (issue 3, "Content"): put a 256 MiB random file, change
 * 1% of it at scattered places (64 edits of 40 KiB, in place), put it again,
 * and report what the second put had to store locally and send to replica
 * peers — against the first put of the same run as the baseline.
 *
 * Real file-backed ChunkStores in a temp dir: the publisher's, and two
 * replica peers' reached through in-process ReplicaTargets (replicas = 3),
 * so "sent" counts the bytes that would cross the network. FastCDC
 * (src/core/chunker.ts) with the default sizes (256 KiB / 1 MiB / 4 MiB)
 * re-synchronises right after each edit, and convergent keys make unchanged
 * chunks seal to the same CIDs, so only the chunks an edit touches are new.
 *
 * With 1 MiB chunks, 64 scattered edits touch about 64 chunks, so roughly
 * 64 MiB of a 256 MiB file is new; `--avg-kib 256` shows the trade-off of
 * smaller chunks (less re-stored per edit, four times the chunks to track).
 *
 *   npx tsx bench/dedup.ts [--size-mib 256] [--edits 64] [--edit-kib 40] [--avg-kib 1024]
 */
import { randomFillSync } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChunkStore } from "../src/peer/chunk-store.js";
import { putPath, type PutResult } from "../src/peer/ingest.js";
import { formatBytes } from "../src/peer/progress.js";
import type { ReplicaTargets } from "../src/peer/sources.js";

const KiB = 1024;
const MiB = 1024 * KiB;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const sizeBytes = arg("size-mib", 256) * MiB;
const edits = arg("edits", 64);
const editBytes = arg("edit-kib", 40) * KiB;
const avgChunkBytes = arg("avg-kib", 1024) * KiB;
const chunker = { minChunkBytes: avgChunkBytes / 4, avgChunkBytes, maxChunkBytes: avgChunkBytes * 4 };
const secret = new Uint8Array(32).fill(42);

function targetsOf(stores: Map<string, ChunkStore>): ReplicaTargets {
  return {
    async place(count, exclude) {
      return [...stores.entries()]
        .filter(([id]) => !exclude.includes(id))
        .slice(0, count)
        .map(([id, store]) => ({
          id,
          push: async (cid: string, sealed: Uint8Array) => void (await store.put(cid, sealed, { pin: true })),
          has: async (cid: string) => store.has(cid),
        }));
    },
    async pin() {},
  };
}

/** Writes `sizeBytes` of random data, 16 MiB at a time (never the whole file in memory). */
async function writeRandomFile(path: string): Promise<void> {
  const handle = await open(path, "w");
  const block = Buffer.alloc(16 * MiB);
  for (let done = 0; done < sizeBytes; done += block.length) {
    randomFillSync(block);
    await handle.write(block, 0, Math.min(block.length, sizeBytes - done));
  }
  await handle.close();
}

/** Overwrites `edits` ranges of `editBytes`, spread evenly (offset jittered within each stripe). */
async function editInPlace(path: string): Promise<number> {
  const handle = await open(path, "r+");
  const stripe = Math.floor(sizeBytes / edits);
  const patch = Buffer.alloc(editBytes);
  let changed = 0;
  for (let i = 0; i < edits; i++) {
    randomFillSync(patch);
    const offset = i * stripe + Math.floor(Math.random() * Math.max(1, stripe - editBytes));
    await handle.write(patch, 0, patch.length, offset);
    changed += patch.length;
  }
  await handle.close();
  return changed;
}

function pct(part: number, whole: number): string {
  return `${((100 * part) / whole).toFixed(2)}%`;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "peercloud-dedup-"));
  try {
    const file = join(dir, "data.bin");
    await writeRandomFile(file);
    const publisher = await ChunkStore.open(join(dir, "publisher"));
    const targets = targetsOf(
      new Map([
        ["replica-1", await ChunkStore.open(join(dir, "r1"))],
        ["replica-2", await ChunkStore.open(join(dir, "r2"))],
      ]),
    );
    const put = async (): Promise<{ result: PutResult; ms: number }> => {
      const start = performance.now();
      const result = await putPath(file, { replicas: 3, chunker }, { store: publisher, convergenceSecret: secret, targets });
      return { result, ms: performance.now() - start };
    };

    const first = await put();
    const changedBytes = await editInPlace(file);
    const second = await put();

    const a = first.result;
    const b = second.result;
    console.log(
      `file ${formatBytes(sizeBytes)}; changed ${formatBytes(changedBytes)} (${pct(changedBytes, sizeBytes)}) in ${edits} edits of ${formatBytes(editBytes)}; chunks ${formatBytes(chunker.minChunkBytes)}/${formatBytes(avgChunkBytes)}/${formatBytes(chunker.maxChunkBytes)}; replicas 3 (2 peers)`,
    );
    console.log("");
    console.log("                 chunks  new chunks      stored (local)              sent (to replicas)        time");
    for (const [label, r, ms] of [
      ["first put", a, first.ms],
      ["second put", b, second.ms],
    ] as const) {
      console.log(
        `${label.padEnd(14)} ${String(r.chunks).padStart(8)} ${String(r.newChunks).padStart(11)}   ${formatBytes(r.storedBytes).padStart(11)} ${pct(r.storedBytes, sizeBytes).padStart(8)} of file   ${formatBytes(r.sentBytes).padStart(11)} ${pct(r.sentBytes, a.sentBytes).padStart(8)} of 1st   ${(ms / 1000).toFixed(1).padStart(5)} s`,
      );
    }
    console.log("");
    console.log(`second put / first put: stored ${(b.storedBytes / a.storedBytes).toFixed(4)}, sent ${(b.sentBytes / a.sentBytes).toFixed(4)} (manifest ${formatBytes(b.manifestBytes)} included)`);
    console.log(`new bytes per changed byte: ${(b.storedBytes / changedBytes).toFixed(1)} (each edit re-stores the chunk(s) it touches)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
