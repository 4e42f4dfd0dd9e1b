/**
 * Micro-measurement of the ingest path's parts over the same random data,
 * each against the baseline the ingest target is defined by: raw
 * node:crypto AES-256-GCM + SHA-256 of the ciphertext, in 4 MiB buffers,
 * one thread (bench/peer.ts).
 *
 *   npx tsx bench/ingest-parts.ts [MiB]      (default 256)
 *
 * Prints, per part, MB/s (10^6 bytes per second, best of three runs) and
 * CPU ns per byte (all threads, the run with the least), and the ratio of
 * the baseline's CPU per byte to the part's. The parts add up to ingest's
 * CPU per byte except for the store's writes (see `npm run bench`, whose
 * "CPU per byte" line includes them): the last line runs the real
 * ingestFile on a temp file with a store that keeps nothing. Timings are
 * printed, never asserted.
 */
import { createCipheriv, createHash, randomBytes, randomFillSync } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FastCdcChunker, type Chunk } from "../src/core/chunker.js";
import { ingestFile } from "../src/peer/ingest-file.js";
import { nativeSha256, sealChunkNative } from "../src/peer/native-chunk-cipher.js";
import { sealAddon, sealAddonAbsence } from "../src/peer/seal-addon.js";
import { encryptIntoWithNodeCrypto } from "../src/peer/seal-into.js";
import { acquireSealPool } from "../src/peer/seal-pool.js";
import { hashWholeFile, scanCuts, scanInput, sealEachChunk } from "./ingest-floor.js";

const MiB = 1024 * 1024;
const TOTAL_MIB = Number(process.argv[2] ?? 256);
const TOTAL_BYTES = TOTAL_MIB * MiB;
const READ_BYTES = 4 * MiB; // what ingest reads at a time
const BASELINE_BUFFER_BYTES = 4 * MiB;
const RUNS = 3;

// The data lives in a shared WebAssembly memory, as ingest's slabs do, so every part reads the same memory.
const random = new Uint8Array(TOTAL_BYTES);
for (let i = 0; i < TOTAL_BYTES; i += 65_536) randomFillSync(random.subarray(i, i + 65_536));
const input = scanInput(random);
const data = input.data;
const cuts = scanCuts(input);

interface Measure {
  mbps: number;
  cpuNsPerByte: number;
}

const results: { label: string; m: Measure }[] = [];
let sink = 0;

async function measure(label: string, run: () => unknown): Promise<Measure> {
  const mbps: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const cpuStart = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const ms = performance.now() - t0;
    const used = process.cpuUsage(cpuStart);
    mbps.push(TOTAL_BYTES / 1e3 / ms);
    cpu.push(((used.user + used.system) * 1e3) / TOTAL_BYTES);
  }
  const m = { mbps: Math.max(...mbps), cpuNsPerByte: Math.min(...cpu) };
  results.push({ label, m });
  const ratio = results.length > 1 ? (results[0].m.cpuNsPerByte / m.cpuNsPerByte).toFixed(2) : "1.00";
  console.log(`${label.padEnd(52)} ${m.mbps.toFixed(0).padStart(6)} MB/s  ${m.cpuNsPerByte.toFixed(2).padStart(5)} CPU ns/B  (baseline/part ${ratio})`);
  return m;
}

function chunkAll(): Chunk[] {
  const chunker = new FastCdcChunker();
  const chunks: Chunk[] = [];
  for (let i = 0; i < TOTAL_BYTES; i += READ_BYTES) chunks.push(...chunker.push(data.subarray(i, i + READ_BYTES)));
  chunks.push(...chunker.finish());
  return chunks;
}

const chunks = chunkAll();
const convergent = { mode: "convergent", convergenceSecret: randomBytes(32) } as const;
const output = new Uint8Array(new SharedArrayBuffer(4 * MiB + 16));

console.log(`ingest parts over ${TOTAL_MIB} MiB of random data, ${chunks.length} chunks (mean ${(TOTAL_BYTES / chunks.length / 1024).toFixed(0)} KiB), node ${process.version}`);

await measure("baseline: node:crypto AES-256-GCM + SHA-256", () => {
  const key = randomBytes(32);
  for (let i = 0; i < TOTAL_BYTES; i += BASELINE_BUFFER_BYTES) {
    const cipher = createCipheriv("aes-256-gcm", key, randomBytes(12));
    const ciphertext = cipher.update(data.subarray(i, i + BASELINE_BUFFER_BYTES));
    cipher.final();
    sink ^= createHash("sha256").update(ciphertext).update(cipher.getAuthTag()).digest()[0];
  }
});
await measure("chunker, JavaScript (FastCdcChunker)", () => {
  sink ^= chunkAll().length;
});
await measure("chunker, WebAssembly in place (FastCdcCursor)", () => {
  sink ^= scanCuts(input).length;
});
await measure("whole-file plaintext SHA-256 (manifest)", () => {
  sink ^= hashWholeFile(data)[0];
});
await measure("per-chunk plaintext SHA-256 (convergent key)", () => {
  for (const chunk of chunks) sink ^= nativeSha256(chunk.bytes)[0];
});
await measure("seal, new buffers (sealChunkNative)", () => {
  for (const chunk of chunks) sink ^= sealChunkNative(chunk.bytes, convergent).sealed[0];
});
await measure(`seal into shared memory (sealChunkInto, ${sealAddon ? "seal addon" : `addon ${sealAddonAbsence}`})`, () => {
  sink ^= sealEachChunk(data, cuts, output, convergent);
});
if (sealAddon) {
  await measure("seal into shared memory (sealChunkInto, node:crypto pieces)", () => {
    sink ^= sealEachChunk(data, cuts, output, convergent, encryptIntoWithNodeCrypto);
  });
}
await measure("one thread: JS chunker + file hash + sealChunkNative", () => {
  const chunker = new FastCdcChunker();
  const hash = createHash("sha256");
  const seal = (c: Chunk) => (sink ^= sealChunkNative(c.bytes, convergent).sealed[0]);
  for (let i = 0; i < TOTAL_BYTES; i += READ_BYTES) {
    const piece = data.subarray(i, i + READ_BYTES);
    hash.update(piece);
    chunker.push(piece).forEach(seal);
  }
  chunker.finish().forEach(seal);
  sink ^= hash.digest()[0];
});

// The real pipeline minus the store: file reads, in-place chunking, whole-file hash, seal workers, sealed ring.
const dir = await mkdtemp(join(tmpdir(), "peercloud-ingest-parts-"));
try {
  const path = join(dir, "input.bin");
  const handle = await open(path, "w");
  await handle.write(data);
  await handle.close();
  const lease = acquireSealPool();
  await lease.pool.whenStarted();
  const ctx = { convergenceSecret: convergent.convergenceSecret, private: false, parallel: "always" as const, storeSealed: async () => {}, onChunk: () => {} };
  await ingestFile(path, ctx); // warm-up: JIT, arena
  await measure(`ingestFile (${lease.pool.size} seal + 1 hash worker), no store`, () => ingestFile(path, ctx));
  lease.release();
} finally {
  await rm(dir, { recursive: true, force: true });
}

const cpu = (label: string) => results.find((r) => r.label.startsWith(label))!.m.cpuNsPerByte;
const parts = cpu("chunker, WebAssembly") + cpu("whole-file") + cpu("seal into");
console.log("");
console.log(`sum of the shared path's parts (WebAssembly chunker + file hash + sealChunkInto): ${parts.toFixed(2)} CPU ns/B`);
console.log(`=> with 2 cores and nothing else, at most ${((2 * cpu("baseline")) / parts).toFixed(2)} of the baseline (before file reads and store writes; npm run bench adds those)`);
if (sink === 0.5) console.log(""); // keep the work observable
