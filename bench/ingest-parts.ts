/**
 * Micro-measurement of the ingest path's parts over the same 256 MiB of
 * random data, each against the baseline the ingest target is defined by:
 * raw node:crypto AES-256-GCM + SHA-256 of the ciphertext, in 4 MiB buffers.
 *
 *   npx tsx bench/ingest-parts.ts [MiB]
 *
 * Prints MB/s (10^6 bytes per second), best of three runs, and the ratio to
 * the baseline measured in the same run. Timings are printed, never asserted.
 */
import { createCipheriv, createHash, randomBytes, randomFillSync } from "node:crypto";
import { FastCdcChunker, type Chunk } from "../src/core/chunker.js";
import { sealChunkNative } from "../src/peer/native-chunk-cipher.js";

const TOTAL_MIB = Number(process.argv[2] ?? 256);
const TOTAL_BYTES = TOTAL_MIB * 1024 * 1024;
const READ_BYTES = 8 * 1024 * 1024; // what a file reader would hand the chunker
const BASELINE_BUFFER_BYTES = 4 * 1024 * 1024;
const RUNS = 3;

const data = new Uint8Array(TOTAL_BYTES);
for (let i = 0; i < TOTAL_BYTES; i += 65_536) randomFillSync(data.subarray(i, i + 65_536));

function mbPerS(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

function best(label: string, run: () => void): number {
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    run();
    rates.push(mbPerS(TOTAL_BYTES, performance.now() - t0));
  }
  const top = Math.max(...rates);
  console.log(`${label.padEnd(44)} ${top.toFixed(0).padStart(6)} MB/s   (runs: ${rates.map((r) => r.toFixed(0)).join(", ")})`);
  return top;
}

function chunkAll(): Chunk[] {
  const chunker = new FastCdcChunker();
  const chunks: Chunk[] = [];
  for (let i = 0; i < TOTAL_BYTES; i += READ_BYTES) chunks.push(...chunker.push(data.subarray(i, i + READ_BYTES)));
  chunks.push(...chunker.finish());
  return chunks;
}

const chunks = chunkAll();
const secret = randomBytes(32);
let sink = 0;

console.log(`ingest parts over ${TOTAL_MIB} MiB of random data, ${chunks.length} chunks (mean ${(TOTAL_BYTES / chunks.length / 1024).toFixed(0)} KiB), node ${process.version}`);

const baseline = best("baseline: node:crypto AES-256-GCM + SHA-256", () => {
  const key = randomBytes(32);
  for (let i = 0; i < TOTAL_BYTES; i += BASELINE_BUFFER_BYTES) {
    const cipher = createCipheriv("aes-256-gcm", key, randomBytes(12));
    const ciphertext = cipher.update(data.subarray(i, i + BASELINE_BUFFER_BYTES));
    cipher.final();
    sink ^= createHash("sha256").update(ciphertext).update(cipher.getAuthTag()).digest()[0];
  }
});

const chunking = best("chunker alone (FastCDC, pure JS)", () => {
  sink ^= chunkAll().length;
});

const sealing = best("native seal (hash + key + encrypt + CID)", () => {
  for (const chunk of chunks) sink ^= sealChunkNative(chunk.bytes, { mode: "convergent", convergenceSecret: secret }).sealed[0];
});

const fileHash = best("whole-file plaintext SHA-256 (manifest)", () => {
  const hash = createHash("sha256");
  for (let i = 0; i < TOTAL_BYTES; i += READ_BYTES) hash.update(data.subarray(i, i + READ_BYTES));
  sink ^= hash.digest()[0];
});

const oneThread = best("chunk + seal + file hash, one thread", () => {
  const chunker = new FastCdcChunker();
  const hash = createHash("sha256");
  const seal = (c: Chunk) => (sink ^= sealChunkNative(c.bytes, { mode: "convergent", convergenceSecret: secret }).sealed[0]);
  for (let i = 0; i < TOTAL_BYTES; i += READ_BYTES) {
    const piece = data.subarray(i, i + READ_BYTES);
    hash.update(piece);
    chunker.push(piece).forEach(seal);
  }
  chunker.finish().forEach(seal);
  sink ^= hash.digest()[0];
});

const ratio = (x: number) => (x / baseline).toFixed(2);
const twoCoreBound = Math.min(1 / (1 / chunking + 1 / fileHash), sealing);
console.log("");
console.log(`ratio to baseline: chunker ${ratio(chunking)}, native seal ${ratio(sealing)}, file hash ${ratio(fileHash)}, one thread all ${ratio(oneThread)}`);
console.log(`two-core pipeline bound (chunk + file hash | seal): ${twoCoreBound.toFixed(0)} MB/s = ${ratio(twoCoreBound)} of baseline (ingest target >= 0.6)`);
if (sink === 0.5) console.log(""); // keep the work observable
