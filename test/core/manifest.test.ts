/**
 * Manifests: the golden vector from an independent implementation
 * (test/vectors/manifest.json), round trips of every kind, paging of big
 * chunk lists, sealing/opening with CID verification, and every rejection.
 */
import { describe, expect, it } from "vitest";
import { fromHex, randomBytes, toBase64Url, toHex, utf8 } from "../../src/core/bytes.js";
import { canonicalJson } from "../../src/core/canonical-json.js";
import { nobleChunkCipher, sealChunkSync, webCryptoChunkCipher } from "../../src/core/chunk-cipher.js";
import { cidFromSha256, cidOfBytes } from "../../src/core/cid.js";
import { ValidationError } from "../../src/core/errors.js";
import {
  MAX_CHUNKS_PER_MANIFEST,
  MAX_DIRECTORY_ENTRIES,
  MAX_INLINE_CHUNKS_PER_ENTRY,
  MAX_MANIFEST_BYTES,
  MAX_SEALED_MANIFEST_BYTES,
  ManifestError,
  assertChildMatchesEntry,
  assertPageMatchesRef,
  buildFileManifest,
  chunkRefOf,
  convergentManifestKey,
  decodeManifest,
  encodeManifest,
  nameProblem,
  openManifest,
  openManifestRef,
  randomManifestKey,
  sealManifest,
  validateManifest,
  type ChunkRef,
  type DirectoryManifest,
  type FileManifest,
  type Manifest,
  type ReferenceEntry,
} from "../../src/core/manifest.js";
import vector from "../vectors/manifest.json";

const SHA = "ab".repeat(32);

function chunk(sizeBytes: number): ChunkRef {
  return { cid: cidFromSha256(randomBytes(32)), sizeBytes, sealedSizeBytes: sizeBytes + 16, key: toBase64Url(randomBytes(32)) };
}

function file(sizes: number[], overrides: Partial<FileManifest> = {}): FileManifest {
  return {
    version: 1,
    kind: "file",
    name: "movie.mkv",
    mode: 0o644,
    encryption: "convergent",
    sizeBytes: sizes.reduce((a, b) => a + b, 0),
    sha256: SHA,
    createdAtMs: 1_700_000_000_000,
    chunks: sizes.map(chunk),
    ...overrides,
  };
}

function ref(): ReferenceEntry["manifest"] {
  return { cid: cidFromSha256(randomBytes(32)), key: toBase64Url(randomBytes(32)), sealedSizeBytes: 500 };
}

function directory(overrides: Partial<DirectoryManifest> = {}): DirectoryManifest {
  return {
    version: 1,
    kind: "directory",
    name: "photos",
    mode: 0o755,
    encryption: "private",
    sizeBytes: 300 + 5000 + 0,
    createdAtMs: 1_700_000_000_000,
    entries: [
      { name: "a.jpg", mode: 0o644, kind: "file", sizeBytes: 300, sha256: SHA, chunks: [chunk(100), chunk(200)] },
      { name: "big.raw", mode: 0o600, kind: "file", sizeBytes: 5000, manifest: ref() },
      { name: "empty", mode: 0o755, kind: "directory", sizeBytes: 0, manifest: ref() },
    ],
    ...overrides,
  };
}

/** Expects `fn` to throw a ManifestError (a ValidationError) with `code` and a message matching `pattern`. */
async function expectManifestError(fn: () => unknown, pattern: RegExp, code = "invalid_manifest"): Promise<void> {
  let error: unknown = null;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${pattern}`).toBeInstanceOf(ManifestError);
  expect(error).toBeInstanceOf(ValidationError);
  expect((error as ManifestError).code).toBe(code);
  expect((error as Error).message).toMatch(pattern);
}

const invalid = (value: unknown, pattern: RegExp) => expectManifestError(() => validateManifest(value), pattern);

describe("golden vector (independent implementation)", () => {
  it("decodes and re-encodes byte for byte", () => {
    const decoded = decodeManifest(utf8(vector.canonicalJson));
    expect(decoded).toEqual(vector.manifest);
    expect(new TextDecoder().decode(encodeManifest(decoded))).toBe(vector.canonicalJson);
  });

  it("opens the sealed vector and seals to the same bytes and CID", async () => {
    const key = fromHex(vector.manifestKey);
    for (const cipher of [webCryptoChunkCipher, nobleChunkCipher]) {
      expect(await openManifest(fromHex(vector.sealed), key, vector.cid, cipher)).toEqual(vector.manifest);
      const sealed = await sealManifest(vector.manifest as Manifest, key, cipher);
      expect(toHex(sealed.sealed)).toBe(vector.sealed);
      expect(sealed.cid).toBe(vector.cid);
    }
  });
});

describe("round trips", () => {
  const cases: [string, Manifest][] = [
    ["a file", file([300_000, 1_048_576, 77])],
    ["an empty file", file([])],
    ["a directory", directory()],
    ["an empty directory", directory({ entries: [], sizeBytes: 0 })],
    ["a chunk page", { version: 1, kind: "chunk-page", chunks: [chunk(10), chunk(20)] }],
    ["a file with non-ASCII, 255-byte name", file([5], { name: "é".repeat(127) + "x" })],
  ];
  for (const [what, manifest] of cases) {
    it(what, async () => {
      const bytes = encodeManifest(manifest);
      expect(decodeManifest(bytes)).toEqual(manifest);
      const key = randomManifestKey();
      const { cid, sealed } = await sealManifest(manifest, key);
      expect(cid).toBe(await cidOfBytes(sealed));
      expect(sealed.length).toBe(bytes.length + 16);
      expect(await openManifest(sealed, key, cid)).toEqual(manifest);
    });
  }

  it("chunkRefOf describes a sealed chunk", () => {
    const key = randomBytes(32);
    const sealed = sealChunkSync(key, randomBytes(1234));
    const r = chunkRefOf({ cid: cidFromSha256(randomBytes(32)), key, sealed });
    expect(r.sizeBytes).toBe(1234);
    expect(r.sealedSizeBytes).toBe(1250);
    expect(r.key).toBe(toBase64Url(key));
  });

  it("convergent manifest keys are deterministic per secret and content", async () => {
    const m = file([10, 20]);
    const secret = randomBytes(32);
    const a = await convergentManifestKey(secret, m);
    expect(toHex(await convergentManifestKey(secret, structuredClone(m)))).toBe(toHex(a));
    expect(toHex(await convergentManifestKey(randomBytes(32), m))).not.toBe(toHex(a));
    expect((await sealManifest(m, a)).cid).toBe((await sealManifest(structuredClone(m), a)).cid);
  });
});

describe("size limits and paging", () => {
  it("a 1 GiB file of minimum-size chunks (4,096 × 256 KiB) fits one manifest", async () => {
    const sizes = new Array(4096).fill(256 * 1024);
    const { manifest, pages } = await buildFileManifest({ name: "1gib.bin", mode: 0o644, encryption: "convergent", sizeBytes: 2 ** 30, sha256: randomBytes(32), createdAtMs: 0 }, sizes.map(chunk));
    expect(pages).toEqual([]);
    expect(manifest.chunks).toHaveLength(4096);
    expect(encodeManifest(manifest).length).toBeLessThan(MAX_MANIFEST_BYTES);
  });

  it("a file with more chunks than one manifest holds is split into sealed pages", async () => {
    const chunks = Array.from({ length: MAX_CHUNKS_PER_MANIFEST * 2 + 5 }, (_, i) => chunk(1 + (i % 1000)));
    const sizeBytes = chunks.reduce((a, c) => a + c.sizeBytes, 0);
    const { manifest, pages } = await buildFileManifest({ name: "huge.bin", mode: 0o644, encryption: "private", sizeBytes, sha256: SHA, createdAtMs: 1 }, chunks);
    expect(manifest.chunks).toBeUndefined();
    expect(manifest.pages).toHaveLength(3);
    expect(pages).toHaveLength(3);
    const reassembled: ChunkRef[] = [];
    for (const [i, pageRef] of manifest.pages!.entries()) {
      const page = await openManifestRef(pageRef, pages[i].sealed, "chunk-page");
      assertPageMatchesRef(page, pageRef);
      reassembled.push(...page.chunks);
    }
    expect(reassembled).toEqual(chunks);
    const root = await sealManifest(manifest, randomManifestKey());
    expect(root.sealed.length).toBeLessThan(10_000);
  });

  it("refuses a chunk list over the limit, naming it", async () => {
    const m = file(new Array(MAX_CHUNKS_PER_MANIFEST + 1).fill(1));
    await invalid(m, new RegExp(`more than ${MAX_CHUNKS_PER_MANIFEST} chunks`));
    await expectManifestError(() => encodeManifest(m), /16384 chunks/);
  });

  it("refuses to encode a manifest over MAX_MANIFEST_BYTES, naming the limit", async () => {
    const entries = Array.from({ length: 400 }, (_, i) => {
      const chunks = Array.from({ length: MAX_INLINE_CHUNKS_PER_ENTRY }, () => chunk(1000));
      return { name: `f${String(i).padStart(4, "0")}`, mode: 0o644, kind: "file" as const, sizeBytes: 64_000, sha256: SHA, chunks };
    });
    const big = directory({ entries, sizeBytes: 400 * 64_000 });
    await expectManifestError(() => encodeManifest(big), new RegExp(`limit is ${MAX_MANIFEST_BYTES} bytes`), "manifest_too_large");
  });

  it("refuses too many directory entries", async () => {
    const entries = Array.from({ length: MAX_DIRECTORY_ENTRIES + 1 }, (_, i) => ({
      name: `e${String(i).padStart(6, "0")}`,
      mode: 0o644,
      kind: "file" as const,
      sizeBytes: 0,
      sha256: SHA,
      chunks: [],
    }));
    await invalid(directory({ entries, sizeBytes: 0 }), /at most 16384 entries/);
  });
});

describe("validation rejects", () => {
  it("non-objects, unknown kinds and versions, unknown fields", async () => {
    await invalid(null, /manifest/);
    await invalid([], /manifest/);
    await invalid({ ...file([1]), kind: "symlink" }, /kind/);
    await invalid({ ...file([1]), version: 2 }, /version/);
    await invalid({ ...file([1]), extra: true }, /extra/);
    await invalid({ ...file([1]), chunks: [{ ...chunk(1), extra: 1 }] }, /chunks\[0\]\.extra/);
    const { name: _name, ...nameless } = file([1]);
    await invalid(nameless, /name/);
  });

  it("unsafe names", async () => {
    for (const name of ["", ".", "..", "a/b", "/", "a\\b", "a\0b", "x".repeat(256), "é".repeat(128), "\ud800x", "x\udc00"]) {
      expect(nameProblem(name)).not.toBeNull();
      await invalid(file([1], { name }), /name/);
      await invalid(directory({ entries: [{ name, mode: 0o644, kind: "file", sizeBytes: 0, sha256: SHA, chunks: [] }], sizeBytes: 0 }), /entries\[0\]\.name/);
    }
    expect(nameProblem("..a")).toBeNull();
    expect(nameProblem("x".repeat(255))).toBeNull();
  });

  it("bad modes, sizes, times and hashes", async () => {
    for (const mode of [-1, 0o10000, 1.5, "644"]) await invalid(file([1], { mode: mode as number }), /mode/);
    for (const sizeBytes of [-1, 0.5, 2 ** 53, "1"]) await invalid(file([], { sizeBytes: sizeBytes as number }), /sizeBytes/);
    await invalid(file([1], { createdAtMs: -5 }), /createdAtMs/);
    for (const sha256 of ["AB".repeat(32), "ab".repeat(31), "zz".repeat(32)]) await invalid(file([1], { sha256 }), /sha256/);
    await invalid(file([1], { encryption: "none" as "private" }), /encryption/);
  });

  it("bad chunk references", async () => {
    const base = file([10]);
    const withChunk = (patch: Partial<ChunkRef>) => ({ ...base, chunks: [{ ...base.chunks![0], ...patch }] });
    await invalid(withChunk({ cid: "bafy" }), /chunks\[0\]\.cid/);
    await invalid(withChunk({ cid: "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o" }), /chunks\[0\]\.cid/);
    await invalid(withChunk({ key: toBase64Url(randomBytes(16)) }), /chunks\[0\]\.key/);
    await invalid(withChunk({ key: "!".repeat(43) }), /chunks\[0\]\.key/);
    await invalid(withChunk({ sealedSizeBytes: 11 }), /sealedSizeBytes must be sizeBytes \+ 16/);
    await invalid({ ...file([]), chunks: [{ ...chunk(1), sizeBytes: 0, sealedSizeBytes: 16 }], sizeBytes: 0 }, /sizeBytes/);
    await invalid(file([8 * 1024 * 1024]), /sizeBytes/);
  });

  it("sizes that do not add up", async () => {
    await invalid(file([10, 20], { sizeBytes: 31 }), /add up to 30 bytes, but sizeBytes is 31/);
    await invalid(directory({ sizeBytes: 1 }), /entries: sizes add up to 5300/);
    const d = directory();
    (d.entries[0] as { sizeBytes: number }).sizeBytes = 301;
    await invalid({ ...d, sizeBytes: 5301 }, /entries\[0\]\.chunks: sizes add up to 300/);
  });

  it("files with both or neither of chunks and pages, and bad page references", async () => {
    const pageRef = { ...ref(), sizeBytes: 10, chunkCount: 2 };
    await invalid({ ...file([10]), pages: [pageRef] }, /exactly one of chunks or pages/);
    const { chunks: _c, ...neither } = file([10]);
    await invalid(neither, /exactly one of chunks or pages/);
    await invalid({ ...neither, pages: [pageRef], sizeBytes: 11 }, /pages: sizes add up to 10/);
    await invalid({ ...neither, pages: [{ ...pageRef, chunkCount: 11 }] }, /less than its 11 chunks/);
    await invalid({ ...neither, pages: [] }, /pages/);
    await invalid({ ...neither, pages: [{ ...pageRef, chunkCount: MAX_CHUNKS_PER_MANIFEST + 1 }] }, /chunkCount/);
    await invalid({ ...neither, pages: [{ ...pageRef, sealedSizeBytes: MAX_SEALED_MANIFEST_BYTES + 1 }] }, /sealedSizeBytes/);
  });

  it("directories with unsorted or duplicate entries, oversize inline files, bad references", async () => {
    const d = directory();
    await invalid({ ...d, entries: [d.entries[1], d.entries[0], d.entries[2]] }, /sorted by name/);
    await invalid({ ...d, entries: [d.entries[0], d.entries[0], d.entries[1], d.entries[2]], sizeBytes: 5600 }, /without duplicates/);
    const many = Array.from({ length: MAX_INLINE_CHUNKS_PER_ENTRY + 1 }, () => chunk(1));
    await invalid(directory({ entries: [{ name: "x", mode: 0o644, kind: "file", sizeBytes: many.length, sha256: SHA, chunks: many }], sizeBytes: many.length }), /at most 64 chunks/);
    const bad = { ...d.entries[1], manifest: { ...ref(), key: "short" } };
    await invalid({ ...d, entries: [d.entries[0], bad, d.entries[2]] }, /entries\[1\]\.manifest\.key/);
    await invalid({ ...d, entries: [d.entries[0], { ...d.entries[1], kind: "symlink" }, d.entries[2]] }, /entry must be/);
  });

  it("empty chunk pages", async () => {
    await invalid({ version: 1, kind: "chunk-page", chunks: [] }, /chunks/);
  });
});

describe("decoding rejects", () => {
  const m = file([1, 2]);
  const text = canonicalJson(m);
  it("non-canonical JSON: whitespace, key order, number spelling, escapes", async () => {
    await expectManifestError(() => decodeManifest(utf8(JSON.stringify(m, null, 1))), /canonical/);
    await expectManifestError(() => decodeManifest(utf8(JSON.stringify(m))), /canonical/); // insertion order, not sorted
    await expectManifestError(() => decodeManifest(utf8(text.replace('"mode":420', '"mode":4.2e2'))), /canonical/);
    await expectManifestError(() => decodeManifest(utf8(text.replace('"movie.mkv"', '"movi\\u0065.mkv"'))), /canonical/);
    expect(decodeManifest(utf8(text))).toEqual(m);
  });

  it("bytes that are not UTF-8 JSON", async () => {
    await expectManifestError(() => decodeManifest(new Uint8Array([0xff, 0xfe])), /not UTF-8 JSON/);
    await expectManifestError(() => decodeManifest(utf8(text.slice(0, -1))), /not UTF-8 JSON/);
  });

  it("oversize input before parsing", async () => {
    await expectManifestError(() => decodeManifest(new Uint8Array(MAX_MANIFEST_BYTES + 1)), /limit/, "manifest_too_large");
  });
});

describe("openManifest", () => {
  const manifest = file([100, 200]);
  const key = randomManifestKey();

  it("verifies the CID before decrypting", async () => {
    const { cid, sealed } = await sealManifest(manifest, key);
    const tampered = sealed.slice();
    tampered[3] ^= 1;
    await expectManifestError(() => openManifest(tampered, key, cid), /do not match their CID/, "manifest_cid_mismatch");
    const other = await sealManifest(file([5]), key);
    await expectManifestError(() => openManifest(sealed, key, other.cid), /do not match/, "manifest_cid_mismatch");
  });

  it("reports a wrong key", async () => {
    const { cid, sealed } = await sealManifest(manifest, key);
    await expectManifestError(() => openManifest(sealed, randomManifestKey(), cid), /wrong key/, "manifest_auth_failed");
  });

  it("rejects a bad expected CID and oversize input", async () => {
    const { sealed } = await sealManifest(manifest, key);
    await expect(openManifest(sealed, key, "nope")).rejects.toMatchObject({ code: "invalid_cid" });
    const huge = new Uint8Array(MAX_SEALED_MANIFEST_BYTES + 1);
    await expectManifestError(() => openManifest(huge, key, cidFromSha256(randomBytes(32))), /limit/, "manifest_too_large");
  });

  it("validates what it decrypts (authentic but invalid content is still rejected)", async () => {
    const sealed = sealChunkSync(key, utf8(canonicalJson({ ...manifest, sizeBytes: 1 })));
    await expectManifestError(async () => openManifest(sealed, key, await cidOfBytes(sealed)), /sizeBytes is 1/);
  });

  it("through a reference: checks size and kind, and children against their entries", async () => {
    const { cid, sealed } = await sealManifest(manifest, key);
    const r = { cid, key: toBase64Url(key), sealedSizeBytes: sealed.length };
    expect(await openManifestRef(r, sealed, "file")).toEqual(manifest);
    await expectManifestError(() => openManifestRef(r, sealed, "directory"), /is a file, expected a directory/);
    await expectManifestError(() => openManifestRef({ ...r, sealedSizeBytes: sealed.length + 1 }, sealed, "file"), /reference says/, "manifest_cid_mismatch");
    const entry: ReferenceEntry = { name: "movie.mkv", mode: 0o644, kind: "file", sizeBytes: 300, manifest: r };
    assertChildMatchesEntry(manifest, entry);
    await expectManifestError(() => assertChildMatchesEntry(manifest, { ...entry, sizeBytes: 301 }), /promises a file of 301 bytes/);
    await expectManifestError(() => assertChildMatchesEntry(manifest, { ...entry, kind: "directory" }), /promises a directory/);
    const page = { version: 1 as const, kind: "chunk-page" as const, chunks: manifest.chunks! };
    await expectManifestError(() => assertPageMatchesRef(page, { ...r, sizeBytes: 300, chunkCount: 3 }), /reference says 3/);
  });
});
