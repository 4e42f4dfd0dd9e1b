/**
 * The FastCDC Gear scan (src/core/chunker.ts `scan`) as WebAssembly, over
 * a shared WebAssembly.Memory: the native ingest reads file data into that
 * memory, chunks it there with this scanner, and its seal workers read the
 * plaintext from the same memory, so no byte is copied between reading and
 * sealing.
 *
 * Why WebAssembly: the scan is a chain of `fp = (fp << 1) + GEAR[byte]`
 * steps. V8's optimised JavaScript of it, with word loads, runs at about
 * 0.9 GB/s on this project's machines; this loop (byte loads, unrolled 16
 * times, no bounds checks: wasm's guard pages do that) runs at about
 * 3.3 GB/s, which takes the chunker from a fifth of ingest's CPU to a
 * twentieth. Same boundaries, byte for byte: test/core/chunker.test.ts and
 * test/peer/gear-scan-wasm.test.ts cross-check it against the JavaScript
 * scanner and the golden vectors.
 *
 * The module is assembled here from its instructions (it is ~200 bytes)
 * rather than shipped as a binary. Its text form:
 *
 *   (import "env" "memory" (memory 1 MAX shared))   ;; GEAR at address 0, 256 × i32
 *   (global $fp (export "fp") (mut i32) (i32.const 0))
 *   (func (export "scan") (param $i i32) (param $to i32) (param $fp i32) (param $mask i32) (result i32)
 *     (block $tail (loop $unrolled
 *       (br_if $tail (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (local.get $to)))
 *       ;; for k in 0..15:
 *       (local.set $fp (i32.add (i32.shl (local.get $fp) (i32.const 1))
 *                               (i32.load (i32.shl (i32.load8_u offset=k (local.get $i)) (i32.const 2)))))
 *       (if (i32.eqz (i32.and (local.get $fp) (local.get $mask)))
 *         (then (global.set $fp (local.get $fp)) (return (i32.add (local.get $i) (i32.const k+1)))))
 *       (local.set $i (i32.add (local.get $i) (i32.const 16)))
 *       (br $unrolled)))
 *     (block $done (loop $bytes
 *       (br_if $done (i32.ge_u (local.get $i) (local.get $to)))
 *       ;; the same step for k = 0, then $i += 1
 *       (br $bytes)))
 *     (global.set $fp (local.get $fp))
 *     (i32.const -1))
 */
import { GEAR, type GearScanner } from "../core/chunker.js";

/** Where the Gear table sits in the memory; callers keep their data at or above GEAR_RESERVED_BYTES. */
const GEAR_ADDRESS = 0;
export const GEAR_RESERVED_BYTES = 1024;
const UNROLL = 16;
const WASM_PAGE_BYTES = 65536;

const enum Op {
  Block = 0x02,
  Loop = 0x03,
  If = 0x04,
  End = 0x0b,
  Br = 0x0c,
  BrIf = 0x0d,
  Return = 0x0f,
  LocalGet = 0x20,
  LocalSet = 0x21,
  LocalTee = 0x22,
  GlobalSet = 0x24,
  I32Load = 0x28,
  I32Load8U = 0x2d,
  I32Const = 0x41,
  I32Eqz = 0x45,
  I32GtU = 0x4b,
  I32GeU = 0x4f,
  I32Add = 0x6a,
  I32And = 0x71,
  I32Shl = 0x74,
}
const VOID_BLOCK = 0x40;
const I32 = 0x7f;
// Locals: the parameters.
const I = 0;
const TO = 1;
const FP = 2;
const MASK = 3;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

const name = (s: string) => [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vector = (items: number[][]) => [...uleb(items.length), ...items.flat()];

/** One Gear step on the byte at $i + k; returns $i + k + 1 (and sets $fp) if it is a cut. */
function step(k: number): number[] {
  // prettier-ignore
  return [
    Op.LocalGet, FP, Op.I32Const, 1, Op.I32Shl,
    Op.LocalGet, I, Op.I32Load8U, 0, ...uleb(k), Op.I32Const, 2, Op.I32Shl,
    Op.I32Load, 2, ...uleb(GEAR_ADDRESS), Op.I32Add, Op.LocalTee, FP,
    Op.LocalGet, MASK, Op.I32And, Op.I32Eqz,
    Op.If, VOID_BLOCK, Op.LocalGet, FP, Op.GlobalSet, 0, Op.LocalGet, I, Op.I32Const, ...sleb(k + 1), Op.I32Add, Op.Return, Op.End,
  ];
}

function scanBody(): number[] {
  const code: number[] = [Op.Block, VOID_BLOCK, Op.Loop, VOID_BLOCK];
  code.push(Op.LocalGet, I, Op.I32Const, ...sleb(UNROLL), Op.I32Add, Op.LocalGet, TO, Op.I32GtU, Op.BrIf, 1);
  for (let k = 0; k < UNROLL; k++) code.push(...step(k));
  code.push(Op.LocalGet, I, Op.I32Const, ...sleb(UNROLL), Op.I32Add, Op.LocalSet, I, Op.Br, 0, Op.End, Op.End);
  code.push(Op.Block, VOID_BLOCK, Op.Loop, VOID_BLOCK, Op.LocalGet, I, Op.LocalGet, TO, Op.I32GeU, Op.BrIf, 1);
  code.push(...step(0));
  code.push(Op.LocalGet, I, Op.I32Const, 1, Op.I32Add, Op.LocalSet, I, Op.Br, 0, Op.End, Op.End);
  code.push(Op.LocalGet, FP, Op.GlobalSet, 0, Op.I32Const, ...sleb(-1), Op.End);
  return code;
}

/** The module's bytes, importing a shared memory of up to `maximumPages` pages. */
function moduleBytes(maximumPages: number): Uint8Array<ArrayBuffer> {
  const types = section(1, vector([[0x60, ...vector([[I32], [I32], [I32], [I32]]), ...vector([[I32]])]]));
  // Memory limits flag 0x03: shared, with a maximum.
  const imports = section(2, vector([[...name("env"), ...name("memory"), 0x02, 0x03, ...uleb(1), ...uleb(maximumPages)]]));
  const functions = section(3, vector([[0]]));
  const globals = section(6, vector([[I32, 1, Op.I32Const, 0, Op.End]]));
  const exports = section(
    7,
    vector([
      [...name("scan"), 0x00, 0],
      [...name("fp"), 0x03, 0],
    ]),
  );
  const body = [...vector([]), ...scanBody()];
  const code = section(10, vector([[...uleb(body.length), ...body]]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ...types, ...imports, ...functions, ...globals, ...exports, ...code]);
}

/**
 * A shared memory of at least `bytes` (whole pages, fixed size) with the
 * Gear table at its start, and a scanner over views of it. Data goes at
 * GEAR_RESERVED_BYTES and above. Throws where shared WebAssembly memory is
 * unavailable (callers fall back to JS_GEAR_SCANNER over a
 * SharedArrayBuffer).
 */
export function createWasmGearMemory(bytes: number): { memory: WebAssembly.Memory; scanner: GearScanner } {
  const pages = Math.ceil(Math.max(bytes, GEAR_RESERVED_BYTES) / WASM_PAGE_BYTES);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  new Int32Array(memory.buffer, GEAR_ADDRESS, 256).set(GEAR);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes(pages)), { env: { memory } });
  const exported = instance.exports as { scan: (from: number, to: number, fp: number, mask: number) => number; fp: WebAssembly.Global };
  const buffer = memory.buffer;
  const scanner: GearScanner = {
    scan(data, from, to, fp, mask) {
      if (data.buffer !== buffer) throw new RangeError("wasm Gear scanner: data must be a view of its own memory");
      if (!(0 <= from && from <= to && to <= data.length)) throw new RangeError("wasm Gear scanner: range outside the data");
      const base = data.byteOffset;
      if (base + from < GEAR_RESERVED_BYTES) throw new RangeError("wasm Gear scanner: data overlaps the Gear table");
      const cut = exported.scan(base + from, base + to, fp, mask);
      return cut < 0 ? -1 : cut - base;
    },
    get fp() {
      return exported.fp.value as number;
    },
  };
  return { memory, scanner };
}
