/**
 * The work issue 3 prescribes for every byte a put ingests, done part by
 * part on one thread with nothing around it: what no ingest pipeline can
 * spend less CPU on, whatever its threads, queues or language.
 *
 *  - read: the input file into memory (the kernel's copy out of the page cache);
 *  - scan: content-defined chunking, the WebAssembly Gear scan ingest uses;
 *  - file hash: the whole file's plaintext SHA-256 (the manifest's);
 *  - seal: per chunk, plaintext SHA-256 (the convergent key), AES-256-GCM,
 *    SHA-256 of ciphertext + tag (the CID), as sealChunkInto does it (with
 *    the seal addon when it is built, as ingest does);
 *  - write: per chunk, a new file written and fsynced in the store's
 *    filesystem (the kernel's copy into the page cache, and the CPU its
 *    writeback costs the writer; the wait for the disk is not CPU).
 *
 * bench/peer.ts adds them up per store filesystem (measured in a process
 * of its own, ingest-floor-child.ts): with C cores and perfect overlap an
 * ingest cannot run faster than C / (sum of CPU per byte), which, against
 * the baseline, bounds the ingest ratio this machine allows at all.
 * bench/ingest-parts.ts prints the same parts beside the pipeline's.
 * Each part is measured as the least CPU (all threads, user + system) over
 * its runs, so the sum is a lower bound, never an estimate on the high
 * side.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { CHUNK_TAG_BYTES, type ChunkKeying } from "../src/core/chunk-cipher.js";
import { FastCdcCursor, type GearScanner } from "../src/core/chunker.js";
import { createWasmGearMemory, GEAR_RESERVED_BYTES } from "../src/peer/gear-scan-wasm.js";
import { DEFAULT_READ_BYTES } from "../src/peer/ingest-arena.js";
import { defaultEncryptInto, sealChunkInto, type EncryptInto } from "../src/peer/seal-into.js";

/** What ingest reads and hashes at a time (an arena slab's new bytes). */
const PIECE_BYTES = DEFAULT_READ_BYTES;

/** CPU per byte of each part, and their sum. */
export interface IngestFloor {
  readNsPerByte: number;
  scanNsPerByte: number;
  fileHashNsPerByte: number;
  sealNsPerByte: number;
  writeNsPerByte: number;
  totalNsPerByte: number;
}

/** `data` in a WebAssembly memory above the Gear table, where the in-place scanner reads it (as ingest's slabs are). */
export interface ScanInput {
  data: Uint8Array;
  scanner: GearScanner;
}

export function scanInput(data: Uint8Array): ScanInput {
  const { memory, scanner } = createWasmGearMemory(GEAR_RESERVED_BYTES + data.length);
  const copy = new Uint8Array(memory.buffer, GEAR_RESERVED_BYTES, data.length);
  copy.set(data);
  return { data: copy, scanner };
}

/** Chunk boundaries of the whole input, by the in-place WebAssembly scan: every chunk's end offset. */
export function scanCuts({ data, scanner }: ScanInput): number[] {
  const cursor = new FastCdcCursor({}, scanner);
  const cuts: number[] = [];
  let start = 0;
  for (let cut = cursor.next(data, start, data.length); cut >= 0; cut = cursor.next(data, start, data.length)) cuts.push((start = cut));
  if (start < data.length) cuts.push(data.length);
  return cuts;
}

export function hashWholeFile(data: Uint8Array): Uint8Array {
  const hash = createHash("sha256");
  for (let at = 0; at < data.length; at += PIECE_BYTES) hash.update(data.subarray(at, at + PIECE_BYTES));
  return hash.digest();
}

/** Seals every chunk into `output` (reused: room for the largest chunk and its tag). */
export function sealEachChunk(data: Uint8Array, cuts: number[], output: Uint8Array, keying: ChunkKeying, encryptInto: EncryptInto = defaultEncryptInto): number {
  let sealedBytes = 0;
  let start = 0;
  for (const end of cuts) {
    sealedBytes += sealChunkInto(data.subarray(start, end), output, keying, encryptInto).sealedBytes;
    start = end;
  }
  return sealedBytes;
}

/** Each chunk's size plus its tag written to a new file in `dir` (created), fsynced, closed. The bytes are `data`'s: the kernel's cost does not depend on them. */
export function writeChunkFiles(dir: string, data: Uint8Array, cuts: number[]): void {
  mkdirSync(dir);
  let start = 0;
  for (let i = 0; i < cuts.length; i++) {
    const bytes = data.subarray(start, Math.min(data.length, cuts[i] + CHUNK_TAG_BYTES));
    const fd = openSync(join(dir, String(i)), "wx");
    try {
      for (let offset = 0; offset < bytes.length;) offset += writeSync(fd, bytes, offset, bytes.length - offset);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    start = cuts[i];
  }
}

/** Reads `path` into `into`, PIECE_BYTES at a time, on this thread. */
export function readWholeFile(path: string, into: Uint8Array): void {
  const fd = openSync(path, "r");
  try {
    for (let at = 0; at < into.length;) {
      const n = readSync(fd, into, at, Math.min(PIECE_BYTES, into.length - at), at);
      if (n === 0) throw new Error(`${path}: ended at ${at} of ${into.length} bytes`);
      at += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Least CPU per byte (all threads) of `work` over `runs` runs; `after` (untimed) undoes what a run left, such as files. */
export function leastCpuNsPerByte(bytes: number, runs: number, work: () => unknown, after: () => void = () => {}): number {
  let least = Infinity;
  for (let run = 0; run < runs; run++) {
    const started = process.cpuUsage();
    work();
    const used = process.cpuUsage(started);
    after();
    least = Math.min(least, ((used.user + used.system) * 1e3) / bytes);
  }
  return least;
}

/** What bench/peer.ts asks of ingest-floor-child.ts: the input file, the directory the chunk files go under, and runs per part. */
export interface FloorConfig {
  inputPath: string;
  storeParent: string;
  runs: number;
}

/**
 * The floor for ingesting `inputPath` into a store under `storeParent`,
 * each part the least over `runs` runs (the first also touches fresh
 * buffers and warms the JIT, so ask for two or more).
 */
export function measureIngestFloor({ inputPath, storeParent, runs }: FloorConfig): IngestFloor {
  const input = scanInput(new Uint8Array(readFileSync(inputPath)));
  const bytes = input.data.length;
  const cuts = scanCuts(input);
  const largest = Math.max(...cuts.map((end, i) => end - (i === 0 ? 0 : cuts[i - 1])));
  const output = new Uint8Array(largest + CHUNK_TAG_BYTES);
  const readInto = new Uint8Array(bytes);
  const keying: ChunkKeying = { mode: "convergent", convergenceSecret: randomBytes(32) };
  const writeDir = join(storeParent, "floor-write-probe");
  let sink = 0;
  const floor = {
    readNsPerByte: leastCpuNsPerByte(bytes, runs, () => readWholeFile(inputPath, readInto)),
    scanNsPerByte: leastCpuNsPerByte(bytes, runs, () => (sink ^= scanCuts(input).length)),
    fileHashNsPerByte: leastCpuNsPerByte(bytes, runs, () => (sink ^= hashWholeFile(input.data)[0])),
    sealNsPerByte: leastCpuNsPerByte(bytes, runs, () => (sink ^= sealEachChunk(input.data, cuts, output, keying))),
    writeNsPerByte: leastCpuNsPerByte(
      bytes,
      runs,
      () => writeChunkFiles(writeDir, input.data, cuts),
      () => rmSync(writeDir, { recursive: true, force: true }),
    ),
  };
  if (sink === 0.5) throw new Error("unreachable"); // keeps the work observable
  return withTotal(floor);
}

/**
 * Each part's lowest cost over two measurements: bench/peer.ts measures
 * between its other work, and a machine busy with other things (a
 * neighbour, the kernel writing back dirty pages) only ever raises a cost.
 */
export function lowestFloor(a: IngestFloor | undefined, b: IngestFloor): IngestFloor {
  if (!a) return b;
  return withTotal({
    readNsPerByte: Math.min(a.readNsPerByte, b.readNsPerByte),
    scanNsPerByte: Math.min(a.scanNsPerByte, b.scanNsPerByte),
    fileHashNsPerByte: Math.min(a.fileHashNsPerByte, b.fileHashNsPerByte),
    sealNsPerByte: Math.min(a.sealNsPerByte, b.sealNsPerByte),
    writeNsPerByte: Math.min(a.writeNsPerByte, b.writeNsPerByte),
  });
}

function withTotal(parts: Omit<IngestFloor, "totalNsPerByte">): IngestFloor {
  return { ...parts, totalNsPerByte: parts.readNsPerByte + parts.scanNsPerByte + parts.fileHashNsPerByte + parts.sealNsPerByte + parts.writeNsPerByte };
}
