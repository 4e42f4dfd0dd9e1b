/** Strict size parsing for --storage-limit and friends (src/cli/size.ts). */
import { describe, expect, it } from "vitest";
import { parseSize } from "../../src/cli/size.js";

describe("parseSize", () => {
  it.each([
    ["0", 0],
    ["1024", 1024],
    ["17B", 17],
    ["500MB", 500_000_000],
    ["500mb", 500_000_000],
    ["1kB", 1000],
    ["200GiB", 200 * 2 ** 30],
    ["1.5GiB", 1.5 * 2 ** 30],
    ["1.1GB", 1_100_000_000],
    ["2 TiB", 2 * 2 ** 40],
    [" 3MiB ", 3 * 2 ** 20],
    ["1PB", 1e15],
  ])("%s → %d bytes", (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(["", "GiB", "12 apples", "-5G", "1e9", "0x10", "1.5B", "1..5MB", "5 G B", "1,5GB", "1.0000001kB", "9999999PiB", "Infinity", "NaN"])("rejects %j", (text) => {
    expect(() => parseSize(text, "--storage-limit")).toThrow(expect.objectContaining({ code: "invalid_size" }));
  });

  it("names the option and the input in the message", () => {
    expect(() => parseSize("12 apples", "--storage-limit")).toThrow(/--storage-limit "12 apples": unknown unit "apples"/);
  });
});
