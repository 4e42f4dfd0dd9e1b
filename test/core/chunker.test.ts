/**
 * FastCDC chunker: golden boundaries from an independent implementation
 * (test/vectors/chunker.json), a plain byte-at-a-time reference of the same
 * spec, and the properties dedup relies on (sizes, determinism, independence
 * from how input is split, shift resistance).
 */
import { createCipheriv, createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_AVG_CHUNK_BYTES,
  DEFAULT_MAX_CHUNK_BYTES,
  DEFAULT_MIN_CHUNK_BYTES,
  FastCdcChunker,
  FastCdcCursor,
  GEAR,
  JS_GEAR_SCANNER,
  chunkBytes,
  chunkStream,
  resolveChunkerOptions,
  type Chunk,
  type ChunkerOptions,
  type GearScanner,
} from "../../src/core/chunker.js";
import vectors from "../vectors/chunker.json";

/** Deterministic pseudo-random bytes: the AES-256-CTR keystream under SHA-256(seed). */
function streamBytes(seed: string, length: number): Uint8Array {
  const key = createHash("sha256").update(seed).digest();
  return new Uint8Array(createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(length)));
}

/** The vectors' input: AES-256-CTR keystream with a zero key and counter. */
function zeroKeyStream(length: number): Uint8Array {
  return new Uint8Array(createCipheriv("aes-256-ctr", Buffer.alloc(32), Buffer.alloc(16)).update(Buffer.alloc(length)));
}

const sizesOf = (chunks: Chunk[]) => chunks.map((c) => c.bytes.length);
const digest = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** The spec in the module comment, one byte at a time, no cleverness. */
function referenceSizes(data: Uint8Array, options: ChunkerOptions = {}): number[] {
  const { minChunkBytes: min, avgChunkBytes: avg, maxChunkBytes: max, maskSmall, maskLarge } = resolveChunkerOptions(options);
  const sizes: number[] = [];
  let s = 0;
  while (s < data.length) {
    let end = -1;
    let fp = 0;
    for (let p = min - 32; p < max - 1; p++) {
      if (s + p >= data.length) {
        end = data.length;
        break;
      }
      fp = ((fp << 1) + GEAR[data[s + p]]) | 0;
      if (p >= min - 1 && (fp & (p < avg - 1 ? maskSmall : maskLarge)) === 0) {
        end = s + p + 1;
        break;
      }
    }
    if (end < 0) end = Math.min(s + max, data.length);
    sizes.push(end - s);
    s = end;
  }
  return sizes;
}

/** Pushes `data` in pieces of the given sizes (cycled), returns all chunks. */
function chunkInPieces(data: Uint8Array, pieceSizes: number[], options?: ChunkerOptions): Chunk[] {
  const chunker = new FastCdcChunker(options);
  const out: Chunk[] = [];
  let k = 0;
  for (let i = 0; i < data.length;) {
    const n = Math.max(1, pieceSizes[k++ % pieceSizes.length]);
    out.push(...chunker.push(data.subarray(i, i + n)));
    expect(chunker.bufferedBytes).toBeLessThan(chunker.maxChunkBytes);
    i += n;
  }
  out.push(...chunker.finish());
  return out;
}

/**
 * Chunk sizes through a FastCdcCursor the way the native ingest drives it:
 * `data` arrives in pieces of `pieceBytes` appended to a work area; when a
 * piece would not fit, the unfinished chunk's bytes move to the start of a
 * fresh area (new offsets, same chunk), then the piece is appended.
 */
function cursorSizes(data: Uint8Array, options: ChunkerOptions, pieceBytes: number, scanner: GearScanner = JS_GEAR_SCANNER, area?: Uint8Array): number[] {
  const cursor = new FastCdcCursor(options, scanner);
  const work = area ?? new Uint8Array(cursor.maxChunkBytes + pieceBytes + 64);
  const sizes: number[] = [];
  let chunkStart = 0;
  let end = 0;
  for (let at = 0; at < data.length; at += pieceBytes) {
    const piece = data.subarray(at, at + pieceBytes);
    if (end + piece.length > work.length) {
      // Move the unfinished chunk somewhere else (an odd offset, to vary alignment).
      const carried = end - chunkStart;
      const to = 1 + (at % 7);
      work.copyWithin(to, chunkStart, end);
      chunkStart = to;
      end = to + carried;
    }
    work.set(piece, end);
    end += piece.length;
    for (let cut = cursor.next(work, chunkStart, end); cut >= 0; cut = cursor.next(work, chunkStart, end)) {
      sizes.push(cut - chunkStart);
      chunkStart = cut;
    }
  }
  if (end > chunkStart) sizes.push(end - chunkStart);
  return sizes;
}

function expectConcatenation(chunks: Chunk[], data: Uint8Array): void {
  let offset = 0;
  for (const chunk of chunks) {
    expect(chunk.offsetBytes).toBe(offset);
    expect(Buffer.from(chunk.bytes).equals(Buffer.from(data.subarray(offset, offset + chunk.bytes.length)))).toBe(true);
    offset += chunk.bytes.length;
  }
  expect(offset).toBe(data.length);
}

describe("gear table", () => {
  it("is the documented SHA-256 counter-mode table", () => {
    const bytes = new Uint8Array(1024);
    const view = new DataView(bytes.buffer);
    GEAR.forEach((g, i) => view.setInt32(i * 4, g, false));
    expect(digest(bytes)).toBe(vectors.gearTableSha256);
    expect(Array.from(GEAR.subarray(0, 8), (g) => (g >>> 0).toString(16).padStart(8, "0"))).toEqual(vectors.gearFirst8);
    expect((GEAR[255] >>> 0).toString(16).padStart(8, "0")).toBe(vectors.gearLast);
  });
});

describe("FastCDC boundaries", () => {
  it("defaults are 256 KiB / 1 MiB / 4 MiB", () => {
    expect([DEFAULT_MIN_CHUNK_BYTES, DEFAULT_AVG_CHUNK_BYTES, DEFAULT_MAX_CHUNK_BYTES]).toEqual([262_144, 1_048_576, 4_194_304]);
  });

  for (const v of vectors.cases) {
    it(`match the independent vectors (min ${v.minChunkBytes}, avg ${v.avgChunkBytes}, max ${v.maxChunkBytes})`, () => {
      const data = zeroKeyStream(v.inputBytes);
      const options = { minChunkBytes: v.minChunkBytes, avgChunkBytes: v.avgChunkBytes, maxChunkBytes: v.maxChunkBytes };
      expect(sizesOf(chunkBytes(data, options))).toEqual(v.chunkSizes);
      expect(referenceSizes(data, options)).toEqual(v.chunkSizes);
    });
  }

  it("force a cut at the maximum on input with no boundaries", () => {
    const v = vectors.zeros;
    const options = { minChunkBytes: v.minChunkBytes, avgChunkBytes: v.avgChunkBytes, maxChunkBytes: v.maxChunkBytes };
    expect(sizesOf(chunkBytes(new Uint8Array(v.inputBytes), options))).toEqual(v.chunkSizes);
  });

  it("equal the byte-at-a-time reference on many inputs, sizes and alignments", () => {
    const options = { minChunkBytes: 64, avgChunkBytes: 256, maxChunkBytes: 1024 };
    for (let trial = 0; trial < 40; trial++) {
      const buffer = streamBytes(`ref ${trial}`, 20_000 + trial * 997);
      const data = buffer.subarray(trial % 7); // exercise every byteOffset & 3
      expect(sizesOf(chunkBytes(data, options))).toEqual(referenceSizes(data, options));
    }
    const big = streamBytes("ref default", 24 * 1024 * 1024 + 3);
    expect(sizesOf(chunkBytes(big.subarray(3)))).toEqual(referenceSizes(big.subarray(3)));
  });
});

describe("FastCDC properties", () => {
  const data = streamBytes("properties", 40 * 1024 * 1024 + 12_345);
  const whole = chunkBytes(data);

  it("chunks concatenate to the input, all within [min, max] but the last", () => {
    expectConcatenation(whole, data);
    for (const size of sizesOf(whole).slice(0, -1)) {
      expect(size).toBeGreaterThanOrEqual(DEFAULT_MIN_CHUNK_BYTES);
      expect(size).toBeLessThanOrEqual(DEFAULT_MAX_CHUNK_BYTES);
    }
    expect(whole.at(-1)!.bytes.length).toBeLessThanOrEqual(DEFAULT_MAX_CHUNK_BYTES);
    // Normalized chunking keeps the mean near the target.
    const mean = data.length / whole.length;
    expect(mean).toBeGreaterThan(DEFAULT_AVG_CHUNK_BYTES * 0.75);
    expect(mean).toBeLessThan(DEFAULT_AVG_CHUNK_BYTES * 1.6);
  });

  it("are deterministic", () => {
    expect(sizesOf(chunkBytes(data))).toEqual(sizesOf(whole));
    expect(sizesOf(chunkBytes(data.slice()))).toEqual(sizesOf(whole));
  });

  it("do not depend on how the input is split across push() calls", () => {
    const expected = sizesOf(whole);
    for (const pieces of [[65_536], [1_000_003], [7, 4096, 1, 300_000, 13], [DEFAULT_MAX_CHUNK_BYTES + 1], [data.length]]) {
      const chunks = chunkInPieces(data, pieces);
      expect(sizesOf(chunks)).toEqual(expected);
      expectConcatenation(chunks, data);
    }
  });

  it("do not depend on the split even one byte at a time (small sizes)", () => {
    const options = { minChunkBytes: 64, avgChunkBytes: 256, maxChunkBytes: 1024 };
    const small = streamBytes("one byte at a time", 50_000);
    const expected = sizesOf(chunkBytes(small, options));
    expect(sizesOf(chunkInPieces(small, [1], options))).toEqual(expected);
    expect(sizesOf(chunkInPieces(small, [3, 1, 2, 5], options))).toEqual(expected);
  });

  it("resist shifts: an insertion or deletion in the middle changes only nearby chunks", () => {
    const original = new Set(whole.map((c) => digest(c.bytes)));
    const middle = Math.floor(data.length / 2) + 12_345;
    const inserted = new Uint8Array(data.length + 5);
    inserted.set(data.subarray(0, middle));
    inserted.set([1, 2, 3, 4, 5], middle);
    inserted.set(data.subarray(middle), middle + 5);
    const deleted = new Uint8Array(data.length - 3);
    deleted.set(data.subarray(0, middle));
    deleted.set(data.subarray(middle + 3), middle);
    for (const edited of [inserted, deleted]) {
      const chunks = chunkBytes(edited);
      const fresh = chunks.filter((c) => !original.has(digest(c.bytes)));
      expect(fresh.length).toBeLessThanOrEqual(2);
      expect(chunks.length - fresh.length).toBeGreaterThanOrEqual(whole.length - 3);
      // The new chunks sit where the edit is.
      for (const c of fresh) {
        expect(c.offsetBytes).toBeLessThanOrEqual(middle);
        expect(c.offsetBytes + c.bytes.length).toBeGreaterThanOrEqual(middle);
      }
    }
  });

  it("resist scattered edits: 8 one-byte changes leave most chunks shared", () => {
    const edited = data.slice();
    for (let k = 1; k <= 8; k++) edited[Math.floor((data.length * k) / 9)] ^= 0xff;
    const original = new Set(whole.map((c) => digest(c.bytes)));
    const chunks = chunkBytes(edited);
    const shared = chunks.filter((c) => original.has(digest(c.bytes))).length;
    expect(chunks.length - shared).toBeLessThanOrEqual(16);
    expect(shared).toBeGreaterThanOrEqual(whole.length - 16);
  });
});

describe("FastCdcCursor (contiguous, caller-managed bytes)", () => {
  it("matches the independent vectors and the zero-input forced cuts", () => {
    for (const v of vectors.cases) {
      const options = { minChunkBytes: v.minChunkBytes, avgChunkBytes: v.avgChunkBytes, maxChunkBytes: v.maxChunkBytes };
      const data = zeroKeyStream(v.inputBytes);
      for (const pieceBytes of [v.inputBytes, 4096, 65_537]) expect(cursorSizes(data, options, pieceBytes)).toEqual(v.chunkSizes);
    }
    const z = vectors.zeros;
    expect(cursorSizes(new Uint8Array(z.inputBytes), { minChunkBytes: z.minChunkBytes, avgChunkBytes: z.avgChunkBytes, maxChunkBytes: z.maxChunkBytes }, 100_000)).toEqual(z.chunkSizes);
  });

  it("equals the reference whatever the piece size, including chunks moved between pieces", () => {
    const options = { minChunkBytes: 64, avgChunkBytes: 256, maxChunkBytes: 1024 };
    for (let trial = 0; trial < 30; trial++) {
      const data = streamBytes(`cursor ${trial}`, 30_000 + trial * 389);
      const expected = referenceSizes(data, options);
      for (const pieceBytes of [1, 31, 32, 33, 255, 1023, 1024, 1025, 5000]) expect(cursorSizes(data, options, pieceBytes)).toEqual(expected);
    }
    const big = streamBytes("cursor default", 20 * 1024 * 1024 + 5);
    expect(cursorSizes(big, {}, 4 * 1024 * 1024)).toEqual(sizesOf(chunkBytes(big)));
    expect(cursorSizes(big, {}, 1_000_003)).toEqual(sizesOf(chunkBytes(big)));
  });

  it("rejects ranges outside the data or shorter than what the chunk already had", () => {
    const cursor = new FastCdcCursor({ minChunkBytes: 64, avgChunkBytes: 256, maxChunkBytes: 1024 });
    const data = streamBytes("cursor errors", 100);
    expect(() => cursor.next(data, 10, 101)).toThrow(RangeError);
    expect(() => cursor.next(data, 50, 40)).toThrow(RangeError);
    expect(cursor.next(data, 0, 100)).toBe(-1); // a 100-byte chunk so far, no cut before the 64-byte minimum + window
    expect(() => cursor.next(data, 10, 100)).toThrow(RangeError); // only 90 bytes: fewer than it had
    cursor.reset();
    expect(cursor.next(data, 10, 100)).toBe(-1);
  });
});

describe("FastCdcChunker API", () => {
  it("returns nothing for empty input and a short last chunk as is", () => {
    const chunker = new FastCdcChunker();
    expect(chunker.push(new Uint8Array(0))).toEqual([]);
    expect(chunker.finish()).toEqual([]);
    const tiny = streamBytes("tiny", 100);
    const chunks = chunkBytes(tiny);
    expect(chunks).toHaveLength(1);
    expect(Buffer.from(chunks[0].bytes).equals(Buffer.from(tiny))).toBe(true);
  });

  it("returns views of the pushed array when a chunk lies inside it, copies otherwise", () => {
    const data = streamBytes("views", 8 * 1024 * 1024);
    const chunks = chunkBytes(data);
    expect(chunks[0].bytes.buffer).toBe(data.buffer);
    const chunker = new FastCdcChunker();
    const first = chunker.push(data.subarray(0, 100_000));
    expect(first).toEqual([]);
    const rest = chunker.push(data.subarray(100_000));
    expect(rest[0].bytes.buffer).not.toBe(data.buffer);
    expect(rest[0].bytes.byteLength).toBe(rest[0].bytes.buffer.byteLength); // exact-size copy
  });

  it("is reusable after finish()", () => {
    const data = streamBytes("reuse", 3 * 1024 * 1024);
    const chunker = new FastCdcChunker();
    const a = [...chunker.push(data), ...chunker.finish()];
    const b = [...chunker.push(data), ...chunker.finish()];
    expect(sizesOf(b)).toEqual(sizesOf(a));
    expect(b[0].offsetBytes).toBe(data.length);
  });

  it("chunks an async stream", async () => {
    const data = streamBytes("stream", 6 * 1024 * 1024);
    async function* source() {
      for (let i = 0; i < data.length; i += 100_000) yield data.subarray(i, i + 100_000);
    }
    const chunks: Chunk[] = [];
    for await (const chunk of chunkStream(source())) chunks.push(chunk);
    expect(sizesOf(chunks)).toEqual(sizesOf(chunkBytes(data)));
  });

  it("rejects bad options and non-bytes", () => {
    expect(() => new FastCdcChunker({ minChunkBytes: 32 })).toThrow(RangeError);
    expect(() => new FastCdcChunker({ minChunkBytes: 64, avgChunkBytes: 1000 })).toThrow(/power of two/);
    expect(() => new FastCdcChunker({ minChunkBytes: 2 ** 20, avgChunkBytes: 2 ** 19 })).toThrow(/min/);
    expect(() => new FastCdcChunker({ maxChunkBytes: 1.5 })).toThrow(RangeError);
    expect(() => new FastCdcChunker().push("abc" as unknown as Uint8Array)).toThrow(TypeError);
  });
});
