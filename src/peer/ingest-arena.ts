/**
 * The memory a large file's ingest works in (ingest-file.ts), shared with
 * the seal workers (seal-pool.ts) so that no chunk is copied on its way
 * from the file to the store:
 *
 * - **input slabs** in one shared WebAssembly.Memory (gear-scan-wasm.ts
 *   chunks it in place): each slab is `maxChunkBytes` of headroom followed
 *   by `readBytes` read from the file. The bytes of a chunk still unfinished
 *   at the end of one slab (fewer than maxChunkBytes) are copied into the
 *   next slab's headroom, just before its freshly read bytes, so every chunk
 *   is one contiguous view, which a seal worker reads directly. A slab is
 *   read into again once no chunk in it is still being sealed.
 * - a **sealed ring** (a SharedArrayBuffer used first-in first-out): a
 *   worker writes each sealed chunk (ciphertext || tag) straight into the
 *   place given to it; the main thread writes that view to the store and
 *   frees it, in file order, once the store's write has settled.
 *
 * Reused memory is the point: every fresh megabyte costs page faults, zeroing
 * and garbage collection, and those (not the crypto) were half of ingest's
 * CPU when each chunk got new buffers on its way through the workers.
 *
 * One arena serves one ingest at a time. The process keeps one for reuse
 * (a daemon puts file after file) and drops it after ARENA_IDLE_MS unused;
 * concurrent ingests get arenas of their own.
 */
import { GEAR_RESERVED_BYTES, createWasmGearMemory } from "./gear-scan-wasm.js";
import { JS_GEAR_SCANNER, type GearScanner } from "../core/chunker.js";
import { CHUNK_TAG_BYTES } from "../core/chunk-cipher.js";

const MiB = 1024 * 1024;

/** Sizes of an arena; `maxChunkBytes` comes from the chunker, the rest are tunables. */
export interface ArenaShape {
  maxChunkBytes: number;
  /** Bytes per read from the file. Default 4 MiB: few syscalls, and small slabs. */
  readBytes: number;
  /** Input slabs. Default 4: one being read, one being chunked, two whose chunks are still being sealed. */
  slabCount: number;
  /** The sealed ring. Default 4 × maxChunkBytes (chunks being sealed and being written, ~1 MiB each on average). */
  sealedRingBytes: number;
}

export const DEFAULT_READ_BYTES = 4 * MiB;
export const DEFAULT_SLAB_COUNT = 4;

export function arenaShape(maxChunkBytes: number, overrides: Partial<Omit<ArenaShape, "maxChunkBytes">> = {}): ArenaShape {
  const shape = {
    maxChunkBytes,
    readBytes: overrides.readBytes ?? DEFAULT_READ_BYTES,
    slabCount: overrides.slabCount ?? DEFAULT_SLAB_COUNT,
    sealedRingBytes: overrides.sealedRingBytes ?? 4 * maxChunkBytes,
  };
  for (const [key, value] of Object.entries(shape)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`ingest arena: ${key} must be a positive integer, got ${value}`);
  }
  if (shape.slabCount < 3) throw new RangeError("ingest arena: slabCount must be at least 3 (reading, chunking, sealing)");
  if (shape.sealedRingBytes < maxChunkBytes + CHUNK_TAG_BYTES) throw new RangeError("ingest arena: sealedRingBytes must hold a maximum sealed chunk");
  return shape;
}

export interface Slab {
  /** Index in `arena.input` of the first byte of the headroom. */
  start: number;
  /** Index of the first byte read from the file (start + maxChunkBytes). */
  dataStart: number;
  /** Chunks in this slab that are still being sealed. */
  refs: number;
}

export class IngestArena {
  /** All input memory (views of it go to the workers; indices below are into it). */
  readonly input: Uint8Array;
  readonly scanner: GearScanner;
  readonly slabs: Slab[];
  readonly sealed: SealedRing;

  constructor(readonly shape: ArenaShape) {
    const slabBytes = shape.maxChunkBytes + shape.readBytes;
    // Slabs start on a 4 KiB boundary after the Gear table.
    const first = Math.ceil(GEAR_RESERVED_BYTES / 4096) * 4096;
    const totalBytes = first + shape.slabCount * slabBytes;
    let input: Uint8Array;
    let scanner: GearScanner;
    try {
      const wasm = createWasmGearMemory(totalBytes);
      input = new Uint8Array(wasm.memory.buffer);
      scanner = wasm.scanner;
    } catch {
      // No shared WebAssembly memory here: the same layout in a SharedArrayBuffer, chunked in JavaScript.
      input = new Uint8Array(new SharedArrayBuffer(totalBytes));
      scanner = JS_GEAR_SCANNER;
    }
    this.input = input;
    this.scanner = scanner;
    this.slabs = Array.from({ length: shape.slabCount }, (_, i) => {
      const start = first + i * slabBytes;
      return { start, dataStart: start + shape.maxChunkBytes, refs: 0 };
    });
    this.sealed = new SealedRing(new Uint8Array(new SharedArrayBuffer(shape.sealedRingBytes)));
  }

  fits(shape: ArenaShape): boolean {
    return (Object.keys(shape) as (keyof ArenaShape)[]).every((k) => shape[k] === this.shape[k]);
  }

  /** Ready for the next ingest: nothing in use (an ingest that failed settles everything before it releases). */
  reset(): void {
    for (const slab of this.slabs) slab.refs = 0;
    this.sealed.reset();
  }
}

/**
 * First-in first-out allocation of variable-size views in one buffer: views
 * are freed in the order they were allocated, which is how ingest stores
 * sealed chunks (in file order). `alloc` returns null while there is no
 * room; the caller frees the oldest view and asks again.
 */
export class SealedRing {
  /** Live allocations, oldest first, as [start, end) pairs. */
  private live: number[] = [];
  private head = 0;

  constructor(readonly bytes: Uint8Array) {}

  get inUse(): number {
    return this.live.length / 2;
  }

  /** A view of `n` bytes, or null if the live views leave no room for it now. */
  alloc(n: number): Uint8Array | null {
    if (!Number.isSafeInteger(n) || n <= 0 || n > this.bytes.length) throw new RangeError(`SealedRing.alloc: ${n} bytes do not fit a ring of ${this.bytes.length}`);
    let at: number;
    if (this.live.length === 0) at = 0;
    else {
      const oldest = this.live[0];
      const newest = this.live[this.live.length - 2];
      const wrapped = newest < oldest;
      if (wrapped) at = oldest - this.head >= n ? this.head : -1;
      else if (this.bytes.length - this.head >= n) at = this.head;
      else at = oldest >= n ? 0 : -1;
    }
    if (at < 0) return null;
    this.live.push(at, at + n);
    this.head = at + n;
    return this.bytes.subarray(at, at + n);
  }

  /** Frees `view`, which must be the oldest live one. */
  free(view: Uint8Array): void {
    if (this.live.length === 0 || view.byteOffset - this.bytes.byteOffset !== this.live[0] || view.length !== this.live[1] - this.live[0]) {
      throw new RangeError("SealedRing.free: not the oldest live view");
    }
    this.live.splice(0, 2);
    if (this.live.length === 0) this.head = 0;
  }

  reset(): void {
    this.live = [];
    this.head = 0;
  }
}

/** How long an unused arena is kept for the next ingest. */
const ARENA_IDLE_MS = 30_000;
let cached: { arena: IngestArena; busy: boolean; idleTimer: NodeJS.Timeout | null } | null = null;

/** An arena of this shape for one ingest, and the `release` to call once everything using it has settled. */
export function acquireIngestArena(shape: ArenaShape): { arena: IngestArena; release: () => void } {
  if (cached && !cached.busy && !cached.arena.fits(shape)) {
    if (cached.idleTimer) clearTimeout(cached.idleTimer);
    cached = null;
  }
  if (cached && cached.busy) return { arena: new IngestArena(shape), release: () => {} };
  const entry = (cached ??= { arena: new IngestArena(shape), busy: false, idleTimer: null });
  entry.busy = true;
  if (entry.idleTimer) clearTimeout(entry.idleTimer);
  entry.idleTimer = null;
  let released = false;
  return {
    arena: entry.arena,
    release: () => {
      if (released) return;
      released = true;
      entry.busy = false;
      entry.arena.reset();
      entry.idleTimer = setTimeout(() => {
        if (cached === entry && !entry.busy) cached = null;
      }, ARENA_IDLE_MS);
      entry.idleTimer.unref();
    },
  };
}
