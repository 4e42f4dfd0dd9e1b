/**
 * Chunk CIDs (src/core/cid.ts): the strings IPFS produces for raw blocks
 * (test/vectors/cid.json), and rejection of every other CID shape.
 */
import { CID } from "multiformats/cid";
import { base36 } from "multiformats/bases/base36";
import { base58btc } from "multiformats/bases/base58";
import { create as createDigest } from "multiformats/hashes/digest";
import { describe, expect, it } from "vitest";
import { fromHex, toHex, utf8 } from "../../src/core/bytes.js";
import { CID_STRING_LENGTH, cidDigestHex, cidFromSha256, cidMatchesDigest, cidOfBytes, isCid, parseCid, sha256 } from "../../src/core/cid.js";
import { ValidationError } from "../../src/core/errors.js";
import vectors from "../vectors/cid.json";

const DIGEST = fromHex("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");

function expectInvalid(input: unknown): void {
  let error: unknown = null;
  try {
    parseCid(input);
  } catch (e) {
    error = e;
  }
  expect(error, `parseCid(${String(input)}) should throw`).toBeInstanceOf(ValidationError);
  expect((error as ValidationError).code).toBe("invalid_cid");
  expect(isCid(input)).toBe(false);
}

describe("CID vectors (IPFS raw blocks)", () => {
  for (const v of vectors.cases) {
    it(`${v.name} → ${v.cid}`, async () => {
      const bytes = utf8(v.utf8);
      expect(toHex(await sha256(bytes))).toBe(v.sha256);
      expect(await cidOfBytes(bytes)).toBe(v.cid);
      expect(cidFromSha256(fromHex(v.sha256))).toBe(v.cid);
      expect(v.cid).toHaveLength(CID_STRING_LENGTH);
      const parsed = parseCid(v.cid);
      expect(parsed.cid).toBe(v.cid);
      expect(toHex(parsed.digest)).toBe(v.sha256);
      expect(cidDigestHex(v.cid)).toBe(v.sha256);
      expect(cidMatchesDigest(v.cid, fromHex(v.sha256))).toBe(true);
      expect(isCid(v.cid)).toBe(true);
    });
  }

  it("agrees with multiformats' own encoder", () => {
    expect(cidFromSha256(DIGEST)).toBe(CID.createV1(0x55, createDigest(0x12, DIGEST)).toString());
  });

  it("a different digest does not match", () => {
    const other = DIGEST.slice();
    other[0] ^= 1;
    expect(cidMatchesDigest(vectors.cases[0].cid, other)).toBe(false);
  });

  it("cidFromSha256 takes exactly 32 bytes", () => {
    expect(() => cidFromSha256(new Uint8Array(31))).toThrow(RangeError);
    expect(() => cidFromSha256(new Uint8Array(33))).toThrow(RangeError);
  });
});

describe("parseCid rejects", () => {
  const good = vectors.cases[0].cid;

  it("CIDv0", () => {
    expectInvalid(CID.createV0(createDigest(0x12, DIGEST)).toString()); // Qm…
    expectInvalid("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o");
  });

  it("a codec other than raw (dag-pb, same length)", () => {
    const dagPb = CID.createV1(0x70, createDigest(0x12, DIGEST)).toString();
    expect(dagPb).toHaveLength(CID_STRING_LENGTH);
    expectInvalid(dagPb);
  });

  it("a hash other than sha2-256 (sha3-256 and identity, same length; blake2b-256)", () => {
    for (const code of [0x16, 0x00]) {
      const text = CID.createV1(0x55, createDigest(code, DIGEST)).toString();
      expect(text).toHaveLength(CID_STRING_LENGTH);
      expectInvalid(text);
    }
    expectInvalid(CID.createV1(0x55, createDigest(0xb220, DIGEST)).toString());
  });

  it("upper-case and other non-canonical encodings of a valid CID", () => {
    expectInvalid(good.toUpperCase());
    expectInvalid(good.slice(0, 20) + good.slice(20, 21).toUpperCase() + good.slice(21));
    const cid = CID.parse(good);
    expectInvalid(cid.toString(base58btc)); // z…
    expectInvalid(cid.toString(base36)); // k…
    expectInvalid(` ${good}`);
    expectInvalid(`${good}\n`);
  });

  it("wrong lengths and junk", () => {
    expectInvalid(good.slice(0, -1));
    expectInvalid(good + "a");
    expectInvalid("");
    expectInvalid("b" + "a".repeat(CID_STRING_LENGTH - 1));
    expectInvalid(good.slice(0, -1) + "1"); // '1' is not base32
    expectInvalid(good.slice(0, -1) + "5"); // non-zero trailing bits
    expectInvalid("../../../etc/passwd".padEnd(CID_STRING_LENGTH, "a"));
  });

  it("non-strings", () => {
    for (const value of [undefined, null, 42, {}, [], DIGEST, new String(good)]) expectInvalid(value);
  });
});
