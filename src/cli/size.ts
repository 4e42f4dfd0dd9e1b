/**
 * Human sizes on the command line (`--storage-limit 200GiB`, `500MB`).
 *
 * Parsed strictly, because a storage limit off by a factor of 1024 (or a
 * typo silently read as bytes) fills someone's disk: a non-negative number
 * (decimals allowed), optional spaces, then an optional unit — `B`, the SI
 * units `kB MB GB TB PB` (powers of 1000) or the IEC units `KiB MiB GiB TiB
 * PiB` (powers of 1024), case-insensitive. A bare number is bytes. The
 * result must be a whole number of bytes and a safe integer. Anything else
 * (`12 apples`, `1e9`, `-5G`, `0x10`, `1.5B`) is an `invalid_size` error.
 */
import { ValidationError } from "../core/errors.js";

const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  pb: 1e15,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  pib: 2 ** 50,
};

const SIZE_RE = /^(\d+)(?:\.(\d+))?\s*([a-z]+)?$/i;

/** "200GiB" → 214748364800. Throws ValidationError `invalid_size` naming what is wrong. */
export function parseSize(text: string, what = "size"): number {
  const input = String(text).trim();
  const m = SIZE_RE.exec(input);
  if (!m) throw invalidSize(what, input, "expected a number with an optional unit, e.g. 500MB or 200GiB");
  const [, whole, fraction = "", unitText] = m;
  const unit = unitText === undefined ? 1 : UNIT_BYTES[unitText.toLowerCase()];
  if (unit === undefined) throw invalidSize(what, input, `unknown unit ${JSON.stringify(unitText)} (use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB)`);
  // Exact arithmetic in BigInt: 1.1GB must be 1100000000, not 1100000000.0000002.
  const scale = 10n ** BigInt(fraction.length);
  const numerator = (BigInt(whole) * scale + BigInt(fraction || "0")) * BigInt(unit);
  if (numerator % scale !== 0n) throw invalidSize(what, input, "is not a whole number of bytes");
  const bytes = numerator / scale;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidSize(what, input, "is too large");
  return Number(bytes);
}

function invalidSize(what: string, input: string, reason: string): ValidationError {
  return new ValidationError(`${what} ${JSON.stringify(input)}: ${reason}`, "invalid_size");
}
