/**
 * Content-defined chunking: FastCDC (Xia et al., "FastCDC: a Fast and
 * Efficient Content-Defined Chunking Approach for Data Deduplication",
 * USENIX ATC 2016), with its three ideas:
 *
 *  1. a Gear rolling hash, `fp = (fp << 1) + GEAR[byte]`, one shift, one add
 *     and one table load per byte;
 *  2. cut-point skipping: the first `minChunkBytes` of a chunk are never
 *     hashed (only the last 32 of them, to warm the window, see below);
 *  3. normalized chunking (level 2 by default): a mask with 2 more bits than
 *     log2(avg) before the average size and one with 2 fewer bits after it,
 *     so that chunk sizes cluster around the average.
 *
 * Boundaries depend only on the bytes near them, so an insertion or deletion
 * changes the chunks around the edit and the chunker re-synchronises at the
 * next boundary: a new version of a large file re-uses most of its chunks.
 *
 * Our choices beyond the paper, fixed because they decide where boundaries
 * fall (changing any of them changes every CID, so they are versioned by the
 * chunk-boundary vectors in test/vectors/chunker.json):
 *  - a 32-bit fingerprint (V8 keeps it in a register as an int32); each byte
 *    is shifted out after 32 steps, so the fingerprint is a function of the
 *    last 32 bytes only;
 *  - hashing starts 32 bytes before the minimum size, so the first eligible
 *    cut point already sees a full 32-byte window and every boundary is a
 *    function of the 32 bytes ending there (plus the chunk start);
 *  - a cut after byte `i` (chunk length `i + 1`) when `fp & mask === 0`, the
 *    masks taking the top bits of the fingerprint (the bits that depend on
 *    the most bytes);
 *  - the Gear table is derived, at module load, from SHA-256 in counter mode:
 *    block `j` (j = 0..31) is SHA-256(utf8("peercloud/v1/fastcdc-gear") ||
 *    u32be(j)), and entry `i` is the big-endian uint32 at byte `4 * (i % 8)`
 *    of block `floor(i / 8)` (256 entries from 32 blocks).
 *
 * The chunker is incremental and portable: push() bytes as they arrive and
 * take the chunks it returns, then finish(). It keeps at most one maximum
 * chunk of unfinished bytes, whatever the stream length. FastCdcCursor finds
 * the same boundaries in bytes the caller keeps contiguous, without copying
 * them, and takes another implementation of the hot loop (GearScanner): the
 * native peer's ingest runs it as WebAssembly over shared memory
 * (src/peer/gear-scan-wasm.ts).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { utf8 } from "./bytes.js";

/** Smallest chunk except the last one of a stream. */
export const DEFAULT_MIN_CHUNK_BYTES = 256 * 1024;
/** Target ("normal") chunk size; actual mean is a little above it. */
export const DEFAULT_AVG_CHUNK_BYTES = 1024 * 1024;
/** Largest chunk: a cut is forced here. */
export const DEFAULT_MAX_CHUNK_BYTES = 4 * 1024 * 1024;
/** Normalization level of FastCDC (NC2 in the paper). */
export const DEFAULT_NORMALIZATION_LEVEL = 2;

/** Bytes hashed before the first eligible cut point, so its window is full. */
const WINDOW_BYTES = 32;
/** Smallest minimum accepted: the warm-up window must fit in front of it. */
const MIN_MIN_CHUNK_BYTES = 64;
/** Seed of the Gear table (see the opening comment). */
export const GEAR_SEED = "peercloud/v1/fastcdc-gear";

/** The 256-entry Gear table, as int32 (the loop adds it to an int32). */
export const GEAR: Int32Array = buildGearTable(GEAR_SEED);

function buildGearTable(seed: string): Int32Array {
  const table = new Int32Array(256);
  const seedBytes = utf8(seed);
  const input = new Uint8Array(seedBytes.length + 4);
  input.set(seedBytes);
  const counter = new DataView(input.buffer, seedBytes.length, 4);
  for (let block = 0; block < 32; block++) {
    counter.setUint32(0, block, false);
    const digest = new DataView(sha256(input).buffer);
    for (let k = 0; k < 8; k++) table[block * 8 + k] = digest.getInt32(k * 4, false);
  }
  return table;
}

export interface ChunkerOptions {
  minChunkBytes?: number;
  avgChunkBytes?: number;
  maxChunkBytes?: number;
  /** Bits added to (before the average) and removed from (after it) log2(avg). */
  normalizationLevel?: number;
}

export interface Chunk {
  /** Offset of the chunk's first byte in the whole stream. */
  offsetBytes: number;
  /**
   * The chunk's bytes. A chunk that lies inside one push() argument is a view
   * (subarray) of that argument, not a copy: do not overwrite that array
   * before you are done with the chunks push() returned. Bytes carried over
   * between push() calls are always copied.
   */
  bytes: Uint8Array;
}

interface ResolvedOptions {
  minChunkBytes: number;
  avgChunkBytes: number;
  maxChunkBytes: number;
  /** Mask used while the chunk is shorter than the average (harder to hit). */
  maskSmall: number;
  /** Mask used once the chunk has reached the average (easier to hit). */
  maskLarge: number;
}

/** Mask of the top `bits` bits of a 32-bit fingerprint, as an int32. */
function topBitsMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? -1 : (~0 << (32 - bits)) | 0;
}

export function resolveChunkerOptions(options: ChunkerOptions = {}): ResolvedOptions {
  const minChunkBytes = options.minChunkBytes ?? DEFAULT_MIN_CHUNK_BYTES;
  const avgChunkBytes = options.avgChunkBytes ?? DEFAULT_AVG_CHUNK_BYTES;
  const maxChunkBytes = options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
  const level = options.normalizationLevel ?? DEFAULT_NORMALIZATION_LEVEL;
  for (const [name, value] of Object.entries({ minChunkBytes, avgChunkBytes, maxChunkBytes, normalizationLevel: level })) {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`chunker: ${name} must be a non-negative integer, got ${value}`);
  }
  if (minChunkBytes < MIN_MIN_CHUNK_BYTES) throw new RangeError(`chunker: minChunkBytes must be at least ${MIN_MIN_CHUNK_BYTES}`);
  if (!(minChunkBytes <= avgChunkBytes && avgChunkBytes <= maxChunkBytes)) {
    throw new RangeError("chunker: need minChunkBytes <= avgChunkBytes <= maxChunkBytes");
  }
  if ((avgChunkBytes & (avgChunkBytes - 1)) !== 0 || avgChunkBytes > 2 ** 30) {
    throw new RangeError(`chunker: avgChunkBytes must be a power of two up to 2^30, got ${avgChunkBytes}`);
  }
  const bits = Math.log2(avgChunkBytes);
  return {
    minChunkBytes,
    avgChunkBytes,
    maxChunkBytes,
    maskSmall: topBitsMask(bits + level),
    maskLarge: topBitsMask(bits - level),
  };
}

/**
 * Incremental FastCDC chunker. Feed it with push(), collect the returned
 * chunks, and call finish() at the end of the stream for the last chunk.
 */
export class FastCdcChunker {
  readonly minChunkBytes: number;
  readonly avgChunkBytes: number;
  readonly maxChunkBytes: number;
  private readonly params: ResolvedOptions;
  /** Bytes of the current (unfinished) chunk, copied from earlier pushes. */
  private pending: Uint8Array | null = null;
  private pendingBytes = 0;
  /** Fingerprint of the current chunk so far. */
  private fp = 0;
  /** Stream offset of the current chunk's first byte. */
  private chunkOffsetBytes = 0;

  constructor(options: ChunkerOptions = {}) {
    const resolved = resolveChunkerOptions(options);
    this.minChunkBytes = resolved.minChunkBytes;
    this.avgChunkBytes = resolved.avgChunkBytes;
    this.maxChunkBytes = resolved.maxChunkBytes;
    this.params = resolved;
  }

  /** Bytes received but not yet returned in a chunk (at most maxChunkBytes - 1). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Adds bytes and returns the chunks they complete (possibly none). */
  push(data: Uint8Array): Chunk[] {
    if (!(data instanceof Uint8Array)) throw new TypeError("FastCdcChunker.push: expected a Uint8Array");
    const chunks: Chunk[] = [];
    let start = 0;
    while (start < data.length) {
      const end = this.cutIn(data, start);
      if (end < 0) {
        this.keep(data.subarray(start));
        break;
      }
      let bytes: Uint8Array;
      if (this.pendingBytes === 0) {
        bytes = data.subarray(start, end);
      } else {
        // One exact-size copy, so the emitted chunk does not pin a max-size buffer.
        bytes = new Uint8Array(this.pendingBytes + (end - start));
        bytes.set(this.pending!.subarray(0, this.pendingBytes));
        bytes.set(data.subarray(start, end), this.pendingBytes);
        this.pendingBytes = 0;
      }
      chunks.push({ offsetBytes: this.chunkOffsetBytes, bytes });
      this.chunkOffsetBytes += bytes.length;
      this.fp = 0;
      start = end;
    }
    return chunks;
  }

  /** Ends the stream: returns the last chunk (shorter than the minimum, possibly) or nothing. */
  finish(): Chunk[] {
    if (this.pendingBytes === 0) return [];
    const bytes = this.pending!.slice(0, this.pendingBytes);
    const chunk = { offsetBytes: this.chunkOffsetBytes, bytes };
    this.chunkOffsetBytes += bytes.length;
    this.pendingBytes = 0;
    this.pending = null;
    this.fp = 0;
    return [chunk];
  }

  private keep(rest: Uint8Array): void {
    if (this.pending === null) this.pending = new Uint8Array(this.maxChunkBytes);
    this.pending.set(rest, this.pendingBytes);
    this.pendingBytes += rest.length;
  }

  /**
   * Scans `data` from `start`, continuing the current chunk (whose first
   * `pendingBytes` bytes came earlier). Returns the index in `data` just past
   * the chunk's last byte, or -1 if the chunk continues past `data`; in that
   * case `this.fp` holds the fingerprint to resume from.
   */
  private cutIn(data: Uint8Array, start: number): number {
    const cut = findCut(data, start - this.pendingBytes, start, data.length, this.fp, this.params, JS_GEAR_SCANNER);
    if (cut < 0) this.fp = resumeFp;
    return cut;
  }
}

/**
 * The Gear hash's hot loop, behind an interface so that a native peer can
 * run it as WebAssembly over shared memory (src/peer/gear-scan-wasm.ts)
 * while the portable core keeps the plain-JavaScript one. Every
 * implementation must give the same answers (test/core/chunker.test.ts
 * cross-checks them).
 */
export interface GearScanner {
  /**
   * Rolls the Gear hash over data[from, to) starting from `fp` and returns
   * the index just past the first byte where `fp & mask === 0`, or -1, after
   * which `fp` holds the fingerprint at `to`.
   */
  scan(data: Uint8Array, from: number, to: number, fp: number, mask: number): number;
  readonly fp: number;
}

/** Fingerprint to resume from after findCut() returned -1 (an out-parameter, to avoid allocating). */
let resumeFp = 0;

/**
 * The cut search, shared by FastCdcChunker and FastCdcCursor. The current
 * chunk starts at `data` index `base` (negative when its first bytes are
 * held elsewhere, as FastCdcChunker's carried-over bytes are), bytes before
 * `start` were already hashed into `fp`, and data[start, end) are new.
 * Returns the index just past the chunk's last byte, or -1 if the chunk
 * continues past `end`; then `resumeFp` holds the fingerprint to resume
 * from.
 *
 * A byte at chunk position `p` is at data index `base + p`. The positions
 * fall in four phases: skipped [0, min-32), warm-up [min-32, min-1), small
 * mask [min-1, avg-1), large mask [avg-1, max-1); a cut is forced at max.
 */
function findCut(data: Uint8Array, base: number, start: number, end: number, fp: number, params: ResolvedOptions, scanner: GearScanner): number {
  const minAt = base + params.minChunkBytes;

  // Warm-up: hash without testing (at most 31 bytes, a plain byte loop).
  let i = Math.max(start, minAt - WINDOW_BYTES);
  let stop = Math.min(end, minAt - 1);
  for (; i < stop; i++) fp = ((fp << 1) + GEAR[data[i]]) | 0;

  // Before the average: the harder mask; after it: the easier one.
  i = Math.max(i, minAt - 1);
  stop = Math.min(end, base + params.avgChunkBytes - 1);
  if (i < stop) {
    const cut = scanner.scan(data, i, stop, fp, params.maskSmall);
    if (cut >= 0) return cut;
    fp = scanner.fp;
    i = stop;
  }
  i = Math.max(i, base + params.avgChunkBytes - 1);
  stop = Math.min(end, base + params.maxChunkBytes - 1);
  if (i < stop) {
    const cut = scanner.scan(data, i, stop, fp, params.maskLarge);
    if (cut >= 0) return cut;
    fp = scanner.fp;
  }

  if (base + params.maxChunkBytes <= end) return base + params.maxChunkBytes;
  resumeFp = fp;
  return -1;
}

/**
 * FastCDC over bytes the caller keeps contiguous, with no copies: the
 * current chunk's bytes so far are data[chunkStart, end), all in one array.
 * When a chunk continues past `end`, the caller brings more bytes right
 * after them (moving the unfinished chunk's bytes elsewhere first if it
 * must, and passing their new `chunkStart`). The boundaries are exactly
 * FastCdcChunker's. The native ingest (src/peer/ingest-file.ts) uses it to
 * chunk file data in place, in memory that seal workers read directly.
 */
export class FastCdcCursor {
  readonly minChunkBytes: number;
  readonly avgChunkBytes: number;
  readonly maxChunkBytes: number;
  private readonly params: ResolvedOptions;
  /** Bytes of the current chunk already hashed or skipped (chunk-relative, so it survives a move). */
  private seenBytes = 0;
  private fp = 0;

  constructor(
    options: ChunkerOptions = {},
    private readonly scanner: GearScanner = JS_GEAR_SCANNER,
  ) {
    const resolved = resolveChunkerOptions(options);
    this.minChunkBytes = resolved.minChunkBytes;
    this.avgChunkBytes = resolved.avgChunkBytes;
    this.maxChunkBytes = resolved.maxChunkBytes;
    this.params = resolved;
  }

  /**
   * The end (exclusive index) of the chunk that starts at `chunkStart`, whose
   * bytes so far are data[chunkStart, end); the next chunk starts there. Or
   * -1 when the chunk continues past `end` (it is then shorter than
   * maxChunkBytes). At the end of the stream, data[chunkStart, end) is the
   * last chunk, if not empty.
   */
  next(data: Uint8Array, chunkStart: number, end: number): number {
    if (!(chunkStart >= 0 && chunkStart <= end && end <= data.length)) throw new RangeError(`FastCdcCursor.next: need 0 <= chunkStart <= end <= data.length`);
    const seen = chunkStart + this.seenBytes;
    if (seen > end) throw new RangeError("FastCdcCursor.next: fewer bytes than the chunk already had");
    const cut = findCut(data, chunkStart, seen, end, this.fp, this.params, this.scanner);
    if (cut >= 0) {
      this.seenBytes = 0;
      this.fp = 0;
    } else {
      this.seenBytes = end - chunkStart;
      this.fp = resumeFp;
    }
    return cut;
  }

  /** Forgets the current chunk (the next call starts a new stream). */
  reset(): void {
    this.seenBytes = 0;
    this.fp = 0;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Fingerprint after a scan() that found no cut (an out-parameter, to avoid allocating). */
let jsScanFp = 0;

/**
 * The hot loop: rolls the Gear hash over data[from, to) starting from `fp`
 * and returns the index just past the first byte where `fp & mask === 0`,
 * or -1 (leaving the fingerprint in `jsScanFp`). The aligned middle is read
 * four bytes per load through a Uint32Array view: on V8 per-element loads and
 * their bounds checks, not the hash arithmetic, dominate a byte loop, so this
 * is ~2x faster than indexing the Uint8Array. Little-endian word order gives
 * the bytes in stream order; other platforms take the byte loop.
 */
function scan(data: Uint8Array, from: number, to: number, fp: number, mask: number): number {
  const gear = GEAR;
  const byteOffset = data.byteOffset;
  let i = from;
  const wordsStart = Math.min(to, from + ((4 - ((byteOffset + from) & 3)) & 3));
  for (; i < wordsStart; i++) {
    fp = ((fp << 1) + gear[data[i]]) | 0;
    if ((fp & mask) === 0) return i + 1;
  }
  const wordCount = (to - i) >> 2;
  if (LITTLE_ENDIAN && wordCount > 0) {
    const words = new Uint32Array(data.buffer, byteOffset + i, wordCount);
    for (let k = 0; k < wordCount; k++) {
      const w = words[k];
      fp = ((fp << 1) + gear[w & 255]) | 0;
      if ((fp & mask) === 0) return i + (k << 2) + 1;
      fp = ((fp << 1) + gear[(w >>> 8) & 255]) | 0;
      if ((fp & mask) === 0) return i + (k << 2) + 2;
      fp = ((fp << 1) + gear[(w >>> 16) & 255]) | 0;
      if ((fp & mask) === 0) return i + (k << 2) + 3;
      fp = ((fp << 1) + gear[w >>> 24]) | 0;
      if ((fp & mask) === 0) return i + (k << 2) + 4;
    }
    i += wordCount << 2;
  }
  for (; i < to; i++) {
    fp = ((fp << 1) + gear[data[i]]) | 0;
    if ((fp & mask) === 0) return i + 1;
  }
  jsScanFp = fp;
  return -1;
}

/** The portable Gear scanner (plain JavaScript). */
export const JS_GEAR_SCANNER: GearScanner = {
  scan,
  get fp() {
    return jsScanFp;
  },
};

/** Chunks a whole in-memory buffer; chunks are views of `data`. */
export function chunkBytes(data: Uint8Array, options?: ChunkerOptions): Chunk[] {
  const chunker = new FastCdcChunker(options);
  return [...chunker.push(data), ...chunker.finish()];
}

/** Chunks an async stream of byte arrays (e.g. a Node ReadStream or a web ReadableStream). */
export async function* chunkStream(source: AsyncIterable<Uint8Array>, options?: ChunkerOptions): AsyncGenerator<Chunk> {
  const chunker = new FastCdcChunker(options);
  for await (const data of source) yield* chunker.push(data);
  yield* chunker.finish();
}
