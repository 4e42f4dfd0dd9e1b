/**
 * Single byte-range requests (RFC 9110 §14). The edge serves one range per
 * request; what it does with every other Range header is decided here:
 *
 * - no header, another unit, a syntactically invalid spec (`bytes=5-2`,
 *   `bytes=x`), or several ranges (`bytes=0-1,4-5`): the header is ignored
 *   and the whole chunk is sent with 200 — RFC 9110 §14.2 lets a server
 *   ignore Range, and a chunk is at most a few MiB, so multipart answers are
 *   not worth their complexity;
 * - a valid single range that does not overlap the chunk (`bytes=size-`,
 *   `bytes=-0`): 416 with `Content-Range: bytes *\/size` (§15.5.17);
 * - otherwise 206 with `Content-Range: bytes first-last/size`; a last
 *   position past the end is clamped, a suffix longer than the chunk means
 *   the whole chunk (§14.1.2).
 *
 * An empty chunk has no byte to range over: any Range is ignored (200).
 */
export type RangeDecision = { kind: "full" } | { kind: "unsatisfiable" } | { kind: "partial"; offset: number; length: number };

const BYTES_RANGE = /^\s*bytes\s*=\s*(.*)$/i;
const INT_RANGE = /^(\d+)\s*-\s*(\d*)$/;
const SUFFIX_RANGE = /^-\s*(\d+)$/;

export function decideRange(header: string | null | undefined, sizeBytes: number): RangeDecision {
  if (!header || sizeBytes === 0) return { kind: "full" };
  const unit = BYTES_RANGE.exec(header);
  if (!unit) return { kind: "full" };
  const specs = unit[1]
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (specs.length !== 1) return { kind: "full" };
  const spec = specs[0];

  const suffix = SUFFIX_RANGE.exec(spec);
  if (suffix) {
    const suffixBytes = Number(suffix[1]);
    if (suffixBytes === 0) return { kind: "unsatisfiable" };
    const length = Math.min(suffixBytes, sizeBytes);
    return { kind: "partial", offset: sizeBytes - length, length };
  }
  const range = INT_RANGE.exec(spec);
  if (!range) return { kind: "full" };
  const first = Number(range[1]);
  const last = range[2] === "" ? Infinity : Number(range[2]);
  if (last < first) return { kind: "full" }; // invalid range-spec (§14.1.1): ignore the header
  if (first >= sizeBytes) return { kind: "unsatisfiable" };
  const end = Math.min(last, sizeBytes - 1);
  return { kind: "partial", offset: first, length: end - first + 1 };
}

export function contentRange(offset: number, length: number, sizeBytes: number): string {
  return `bytes ${offset}-${offset + length - 1}/${sizeBytes}`;
}
