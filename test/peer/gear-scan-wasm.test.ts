/**
 * The WebAssembly Gear scan (src/peer/gear-scan-wasm.ts) against the
 * portable JavaScript one it stands in for: the same cut, or the same
 * fingerprint when there is none, for every range, alignment and mask; the
 * same chunk boundaries as the golden vectors through FastCdcCursor; and
 * refusal of data outside its own memory.
 */
import { createCipheriv, createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FastCdcCursor, JS_GEAR_SCANNER, chunkBytes, type ChunkerOptions, type GearScanner } from "../../src/core/chunker.js";
import { createWasmGearMemory, GEAR_RESERVED_BYTES } from "../../src/peer/gear-scan-wasm.js";
import vectors from "../vectors/chunker.json";

const { memory, scanner } = createWasmGearMemory(32 * 1024 * 1024);
const wasmBytes = new Uint8Array(memory.buffer);
/** Where test data goes in the wasm memory: past the Gear table, at an odd address. */
const DATA_AT = GEAR_RESERVED_BYTES + 4099;

function keystream(seed: string, length: number): Uint8Array {
  const key = createHash("sha256").update(seed).digest();
  return new Uint8Array(createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(length)));
}

/** Copies `data` into the wasm memory and returns the view there. */
function inWasm(data: Uint8Array, at = DATA_AT): Uint8Array {
  const view = wasmBytes.subarray(at, at + data.length);
  view.set(data);
  return view;
}

function scanBoth(js: Uint8Array, wasm: Uint8Array, from: number, to: number, fp: number, mask: number): void {
  const expected = JS_GEAR_SCANNER.scan(js, from, to, fp, mask);
  const expectedFp = JS_GEAR_SCANNER.fp;
  const actual = scanner.scan(wasm, from, to, fp, mask);
  expect(actual).toBe(expected);
  if (expected < 0) expect(scanner.fp).toBe(expectedFp);
}

function cursorSizes(data: Uint8Array, options: ChunkerOptions, scan: GearScanner): number[] {
  const cursor = new FastCdcCursor(options, scan);
  const sizes: number[] = [];
  let start = 0;
  for (let cut = cursor.next(data, start, data.length); cut >= 0; cut = cursor.next(data, start, data.length)) {
    sizes.push(cut - start);
    start = cut;
  }
  if (start < data.length) sizes.push(data.length - start);
  return sizes;
}

describe("WebAssembly Gear scan", () => {
  it("finds the same cut, or leaves the same fingerprint, as the JavaScript scan", () => {
    const data = keystream("gear scan", 200_000);
    const wasm = inWasm(data);
    // Masks from "cut almost everywhere" to "never" (fp & -1 is 0 only for fp 0).
    const masks = [0x80000000 | 0, ~0 << 26, ~0 << 20, ~0 << 14, ~0 << 8, -1];
    let trial = 0;
    for (const mask of masks) {
      for (const [from, to] of [
        [0, 0],
        [0, 1],
        [3, 18],
        [5, 21],
        [7, 200_000],
        [1000, 1015],
        [1000, 1016],
        [1000, 1017],
        [123_457, 199_999],
      ]) {
        scanBoth(data, wasm, from, to, (trial++ * 0x9e3779b9) | 0, mask);
      }
    }
  });

  it("continues a scan across calls exactly as one long scan would", () => {
    const data = keystream("gear continue", 100_000);
    const wasm = inWasm(data);
    let fp = 0;
    for (let at = 0; at < data.length; at += 997) {
      const to = Math.min(data.length, at + 997);
      expect(scanner.scan(wasm, at, to, fp, -1)).toBe(-1);
      fp = scanner.fp;
    }
    expect(JS_GEAR_SCANNER.scan(data, 0, data.length, 0, -1)).toBe(-1);
    expect(fp).toBe(JS_GEAR_SCANNER.fp);
  });

  it("gives FastCdcCursor the golden vectors' boundaries", () => {
    for (const v of vectors.cases) {
      const options = { minChunkBytes: v.minChunkBytes, avgChunkBytes: v.avgChunkBytes, maxChunkBytes: v.maxChunkBytes };
      const data = new Uint8Array(createCipheriv("aes-256-ctr", Buffer.alloc(32), Buffer.alloc(16)).update(Buffer.alloc(v.inputBytes)));
      expect(cursorSizes(inWasm(data), options, scanner)).toEqual(v.chunkSizes);
    }
    const big = keystream("gear defaults", 24 * 1024 * 1024 + 11);
    expect(cursorSizes(inWasm(big, GEAR_RESERVED_BYTES + 1), {}, scanner)).toEqual(chunkBytes(big).map((c) => c.bytes.length));
  });

  it("refuses data outside its memory, ranges outside the data, and the Gear table's own bytes", () => {
    expect(() => scanner.scan(new Uint8Array(100), 0, 10, 0, -1)).toThrow(RangeError);
    expect(() => scanner.scan(wasmBytes.subarray(DATA_AT, DATA_AT + 10), 0, 11, 0, -1)).toThrow(RangeError);
    expect(() => scanner.scan(wasmBytes, 0, 10, 0, -1)).toThrow(RangeError);
  });
});
