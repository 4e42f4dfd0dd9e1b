/**
 * Links: both forms round-trip; every malformed link fails with
 * "invalid_link" and a reason, and no error message repeats the key.
 */
import { describe, expect, it } from "vitest";
import { fromHex, randomBytes, toBase64Url } from "../../src/core/bytes.js";
import { ValidationError } from "../../src/core/errors.js";
import { formatLink, parseLink, type LinkProblem } from "../../src/core/link.js";
import manifestVector from "../vectors/manifest.json";

const CID = manifestVector.cid;
const KEY = fromHex(manifestVector.manifestKey);
const KEY_TEXT = toBase64Url(KEY);

function expectProblem(input: unknown, reason: LinkProblem): void {
  let error: unknown = null;
  try {
    parseLink(input);
  } catch (e) {
    error = e;
  }
  expect(error, `parseLink(${JSON.stringify(input)}) should throw`).toBeInstanceOf(ValidationError);
  const v = error as ValidationError;
  expect(v.code).toBe("invalid_link");
  expect(v.details).toEqual({ reason });
  expect(v.message).not.toContain(KEY_TEXT);
}

describe("formatLink / parseLink", () => {
  it("matches the vector's peercloud:// link", () => {
    expect(formatLink({ cid: CID, key: KEY })).toBe(manifestVector.link);
    const parsed = parseLink(manifestVector.link);
    expect(parsed.cid).toBe(CID);
    expect(parsed.key).toEqual(KEY);
    expect(parsed.edgeOrigin).toBeUndefined();
  });

  it("round-trips the https form, the key staying in the fragment", () => {
    const link = formatLink({ cid: CID, key: KEY }, "https://edge.example.com");
    expect(link).toBe(`https://edge.example.com/d/${CID}#${KEY_TEXT}`);
    expect(new URL(link).pathname + new URL(link).search).not.toContain(KEY_TEXT);
    expect(parseLink(link)).toEqual({ cid: CID, key: KEY, edgeOrigin: "https://edge.example.com" });
  });

  it("keeps the port of a local http edge and normalises a trailing slash", () => {
    const link = formatLink({ cid: CID, key: KEY }, "http://127.0.0.1:8787/");
    expect(link).toBe(`http://127.0.0.1:8787/d/${CID}#${KEY_TEXT}`);
    expect(parseLink(link).edgeOrigin).toBe("http://127.0.0.1:8787");
  });

  it("round-trips random keys", () => {
    for (let i = 0; i < 50; i++) {
      const key = randomBytes(32);
      expect(parseLink(formatLink({ cid: CID, key })).key).toEqual(key);
    }
  });

  it("tolerates surrounding whitespace, an upper-case scheme and a slash before the fragment", () => {
    expect(parseLink(`  ${manifestVector.link}\n`).cid).toBe(CID);
    expect(parseLink(`PEERCLOUD://${CID}#${KEY_TEXT}`).cid).toBe(CID);
    expect(parseLink(`peercloud://${CID}/#${KEY_TEXT}`).cid).toBe(CID);
    expect(parseLink(`HTTPS://Edge.Example.com/d/${CID}#${KEY_TEXT}`).edgeOrigin).toBe("https://edge.example.com");
  });

  it("refuses to format bad input", () => {
    expect(() => formatLink({ cid: "nope", key: KEY })).toThrow(ValidationError);
    expect(() => formatLink({ cid: CID, key: new Uint8Array(16) })).toThrow(RangeError);
    expect(() => formatLink({ cid: CID, key: KEY }, "ftp://edge")).toThrow(TypeError);
    expect(() => formatLink({ cid: CID, key: KEY }, "https://edge/some/path")).toThrow(TypeError);
    expect(() => formatLink({ cid: CID, key: KEY }, "not a url")).toThrow(TypeError);
  });
});

describe("parseLink rejects", () => {
  it("non-strings and junk as malformed", () => {
    for (const value of [undefined, null, 7, {}, new Uint8Array(3)]) expectProblem(value, "malformed");
    for (const text of ["", "hello", CID, `${CID}#${KEY_TEXT}`, `ipfs://${CID}#${KEY_TEXT}`, `ftp://edge/d/${CID}#${KEY_TEXT}`, "x".repeat(3000)]) {
      expectProblem(text, "malformed");
    }
  });

  it("peercloud links with extra parts as malformed", () => {
    for (const text of [`peercloud:${CID}#${KEY_TEXT}`, `peercloud:///${CID}#${KEY_TEXT}`, `peercloud://${CID}/x#${KEY_TEXT}`, `peercloud://${CID}?k=1#${KEY_TEXT}`]) {
      expectProblem(text, "malformed");
    }
  });

  it("https links with the wrong path, a query or credentials as malformed", () => {
    for (const text of [
      `https://edge.example/${CID}#${KEY_TEXT}`,
      `https://edge.example/x/${CID}#${KEY_TEXT}`,
      `https://edge.example/d/${CID}/#${KEY_TEXT}`,
      `https://edge.example/d/${CID}?a=b#${KEY_TEXT}`,
      `https://user:pw@edge.example/d/${CID}#${KEY_TEXT}`,
      `https://[bad/d/${CID}#${KEY_TEXT}`,
    ]) {
      expectProblem(text, "malformed");
    }
  });

  it("a missing key", () => {
    for (const text of [`peercloud://${CID}`, `peercloud://${CID}#`, `https://edge.example/d/${CID}`, `https://edge.example/d/${CID}#`]) {
      expectProblem(text, "missing_key");
    }
  });

  it("a bad CID", () => {
    for (const cid of ["", "bafy", CID.toUpperCase(), CID.slice(0, -1), "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"]) {
      expectProblem(`peercloud://${cid}#${KEY_TEXT}`, "bad_cid");
    }
    expectProblem(`https://edge.example/d/${CID.slice(1)}#${KEY_TEXT}`, "bad_cid");
  });

  it("a key that is not base64url", () => {
    for (const key of [KEY_TEXT + "=", KEY_TEXT.slice(0, 40) + "+/A", "%%%", KEY_TEXT + "#x", KEY_TEXT.slice(0, 42) + "B"]) {
      expectProblem(`peercloud://${CID}#${key}`, "bad_key");
    }
  });

  it("a key of the wrong length", () => {
    for (const bytes of [16, 31, 33, 64]) {
      expectProblem(`peercloud://${CID}#${toBase64Url(randomBytes(bytes))}`, "bad_key_length");
      expectProblem(`https://edge.example/d/${CID}#${toBase64Url(randomBytes(bytes))}`, "bad_key_length");
    }
  });
});
