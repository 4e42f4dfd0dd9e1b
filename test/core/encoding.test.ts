import { describe, expect, it } from "vitest";
import { bytesEqual, constantTimeEqual, fromBase64Url, fromHex, toBase64Url, toHex } from "../../src/core/bytes.js";
import { canonicalJson } from "../../src/core/canonical-json.js";

describe("byte encodings", () => {
  it("base64url matches Node's encoder for every length 0..64 and round-trips", () => {
    for (let n = 0; n <= 64; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      const text = toBase64Url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString("base64url"));
      expect(bytesEqual(fromBase64Url(text), bytes)).toBe(true);
    }
  });

  it("base64url rejects foreign characters, impossible lengths and non-canonical tails", () => {
    expect(() => fromBase64Url("ab+c")).toThrow(TypeError);
    expect(() => fromBase64Url("abcde")).toThrow(TypeError);
    expect(() => fromBase64Url("AB")).toThrow(/non-canonical/); // "AB" has non-zero trailing bits; "AA" is canonical
    expect(fromBase64Url("AA")).toEqual(new Uint8Array([0]));
  });

  it("hex round-trips and rejects odd or non-hex input", () => {
    const bytes = crypto.getRandomValues(new Uint8Array(33));
    expect(toHex(bytes)).toBe(Buffer.from(bytes).toString("hex"));
    expect(bytesEqual(fromHex(toHex(bytes)), bytes)).toBe(true);
    expect(() => fromHex("abc")).toThrow(TypeError);
    expect(() => fromHex("zz")).toThrow(TypeError);
  });

  it("constant-time comparison agrees with plain comparison", () => {
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 2]))).toBe(false);
  });
});

describe("canonical JSON", () => {
  it("sorts keys at every depth, drops undefined, keeps array order", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: "x" }, u: undefined })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });
  it("gives one form for objects built in different key orders", () => {
    expect(canonicalJson({ x: 1, y: 2 })).toBe(canonicalJson({ y: 2, x: 1 }));
  });
  it("refuses values JSON cannot carry faithfully", () => {
    expect(() => canonicalJson({ a: NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ a: () => 1 })).toThrow(TypeError);
  });
});
