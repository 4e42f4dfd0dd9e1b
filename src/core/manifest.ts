/**
 * Manifests: what a link points to. A manifest lists a file's chunks (CID,
 * sizes, key) or a directory's entries, and is itself sealed with the chunk
 * AEAD (AES-256-GCM, RFC 5116, nonce derived from the key, see
 * chunk-cipher.ts) and addressed by the CID of its sealed bytes, so storage
 * peers and the edge hold it like any chunk and learn nothing from it.
 *
 * Encoding: canonical JSON (keys sorted, no whitespace, UTF-8; see
 * canonical-json.ts). Decoding accepts only that exact form, so one manifest
 * has one byte string and one CID.
 *
 * Three kinds of manifest document (field `kind`):
 *  - "file": name, mode, encryption, sizeBytes, sha256 (hex SHA-256 of the
 *    whole plaintext), createdAtMs, and either `chunks` (the chunk list, at
 *    most MAX_CHUNKS_PER_MANIFEST) or `pages` (references to "chunk-page"
 *    manifests holding the list in order).
 *  - "chunk-page": a slice of a big file's chunk list. With 16,384 chunks per
 *    page and 16,384 pages, one file may have 2^28 chunks (about 256 TiB at
 *    the 1 MiB average); a 1 GiB file (at most 4,096 chunks of the 256 KiB
 *    minimum) never needs pages.
 *  - "directory": name, mode, encryption, sizeBytes (all plaintext bytes in
 *    the tree), createdAtMs, entries sorted by name. An entry is either a
 *    small file inline (its chunk list, at most MAX_INLINE_CHUNKS_PER_ENTRY
 *    chunks) or a reference {cid, key, sealedSizeBytes} to a child manifest
 *    (a subdirectory, or a larger file). So every directory is its own
 *    manifest and a big tree is many small objects. One directory holds at
 *    most MAX_DIRECTORY_ENTRIES entries.
 * Every manifest's encoded form is at most MAX_MANIFEST_BYTES (4 MiB, the
 * default maximum chunk), so a manifest travels and is stored like a chunk.
 *
 * Keys are base64url (RFC 4648 §5, no padding) of 32 bytes. Chunk keys are
 * recorded for both encryption modes (the mode says how they were derived).
 */
import * as v from "valibot";
import { fromBase64Url, fromUtf8, randomBytes, toBase64Url, toHex, utf8 } from "./bytes.js";
import { canonicalJson } from "./canonical-json.js";
import { CHUNK_KEY_BYTES, CHUNK_TAG_BYTES, ChunkAuthError, convergentChunkKey, webCryptoChunkCipher, type ChunkCipher, type SealedChunk } from "./chunk-cipher.js";
import { cidFromSha256, parseCid } from "./cid.js";
import { ValidationError } from "./errors.js";

export const MANIFEST_VERSION = 1;
/** Largest encoded (plaintext JSON) manifest: the default maximum chunk. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
export const MAX_SEALED_MANIFEST_BYTES = MAX_MANIFEST_BYTES + CHUNK_TAG_BYTES;
/** Chunks listed by one file manifest or one page (~2.8 MiB of JSON at worst). */
export const MAX_CHUNKS_PER_MANIFEST = 16_384;
export const MAX_PAGES_PER_MANIFEST = 16_384;
export const MAX_DIRECTORY_ENTRIES = 16_384;
/** Files with more chunks get their own manifest instead of an inline entry. */
export const MAX_INLINE_CHUNKS_PER_ENTRY = 64;
/** Largest chunk plaintext a manifest may list: sealed, it fits the network's 8 MiB maxChunkBytes. */
export const MAX_CHUNK_PLAINTEXT_BYTES = 8 * 1024 * 1024 - CHUNK_TAG_BYTES;
export const MAX_NAME_BYTES = 255;
const KEY_BASE64URL_CHARS = 43;

export type EncryptionMode = "convergent" | "private";

export interface ChunkRef {
  cid: string;
  /** Plaintext bytes. */
  sizeBytes: number;
  /** Stored bytes: sizeBytes + the 16-byte tag. */
  sealedSizeBytes: number;
  /** base64url of the 32-byte chunk key. */
  key: string;
}

/** Where a sealed manifest is and how to open it. */
export interface ManifestRef {
  cid: string;
  key: string;
  sealedSizeBytes: number;
}

export interface PageRef extends ManifestRef {
  /** Plaintext bytes of the chunks the page lists. */
  sizeBytes: number;
  chunkCount: number;
}

export interface FileManifest {
  version: 1;
  kind: "file";
  name: string;
  /** Unix permission bits (0..0o7777). */
  mode: number;
  encryption: EncryptionMode;
  sizeBytes: number;
  /** Lower-case hex SHA-256 of the whole plaintext. */
  sha256: string;
  createdAtMs: number;
  chunks?: ChunkRef[];
  pages?: PageRef[];
}

export interface ChunkPageManifest {
  version: 1;
  kind: "chunk-page";
  chunks: ChunkRef[];
}

export interface InlineFileEntry {
  name: string;
  mode: number;
  kind: "file";
  sizeBytes: number;
  sha256: string;
  chunks: ChunkRef[];
}

export interface ReferenceEntry {
  name: string;
  mode: number;
  kind: "file" | "directory";
  /** Plaintext bytes under this entry, as its own manifest states. */
  sizeBytes: number;
  manifest: ManifestRef;
}

export type DirectoryEntry = InlineFileEntry | ReferenceEntry;

export interface DirectoryManifest {
  version: 1;
  kind: "directory";
  name: string;
  mode: number;
  encryption: EncryptionMode;
  sizeBytes: number;
  createdAtMs: number;
  entries: DirectoryEntry[];
}

export type Manifest = FileManifest | ChunkPageManifest | DirectoryManifest;

/** A manifest that failed to decode, verify or fit its limits. */
export class ManifestError extends ValidationError {
  constructor(message: string, code = "invalid_manifest") {
    super(message, code);
    this.name = "ManifestError";
  }
}

// ---- names -----------------------------------------------------------------

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `name` is not a safe single path component, or null if it is. */
export function nameProblem(name: unknown): string | null {
  if (typeof name !== "string") return "must be a string";
  if (name.length === 0) return "must not be empty";
  if (name === "." || name === "..") return `must not be "${name}"`;
  if (/[/\\\0]/.test(name)) return 'must not contain "/", "\\" or NUL';
  if (LONE_SURROGATE.test(name)) return "must be well-formed Unicode (no lone surrogates)";
  if (utf8(name).length > MAX_NAME_BYTES) return `must be at most ${MAX_NAME_BYTES} bytes of UTF-8`;
  return null;
}

// ---- schema ------------------------------------------------------------------

const sizeSchema = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const nameSchema = v.pipe(
  v.string(),
  v.check(
    (name) => nameProblem(name) === null,
    (issue) => `name ${nameProblem(issue.input)}`,
  ),
);
const modeSchema = v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(0o7777));
const sha256Schema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex characters"));
const keySchema = v.pipe(
  v.string(),
  v.check((key) => keyBytesOrNull(key) !== null, `must be the base64url (no padding) of ${CHUNK_KEY_BYTES} bytes`),
);
const cidSchema = v.pipe(
  v.string(),
  v.check((cid) => cidOrNull(cid) !== null, "must be a CIDv1 raw sha2-256 in base32"),
);
const encryptionSchema = v.picklist(["convergent", "private"]);

const chunkRefSchema = v.strictObject({
  cid: cidSchema,
  sizeBytes: v.pipe(sizeSchema, v.minValue(1), v.maxValue(MAX_CHUNK_PLAINTEXT_BYTES)),
  sealedSizeBytes: sizeSchema,
  key: keySchema,
});
const manifestRefFields = {
  cid: cidSchema,
  key: keySchema,
  sealedSizeBytes: v.pipe(sizeSchema, v.minValue(CHUNK_TAG_BYTES + 2), v.maxValue(MAX_SEALED_MANIFEST_BYTES)),
};
const pageRefSchema = v.strictObject({
  ...manifestRefFields,
  sizeBytes: sizeSchema,
  chunkCount: v.pipe(sizeSchema, v.minValue(1), v.maxValue(MAX_CHUNKS_PER_MANIFEST)),
});
const chunkListSchema = v.pipe(v.array(chunkRefSchema), v.maxLength(MAX_CHUNKS_PER_MANIFEST, `lists more than ${MAX_CHUNKS_PER_MANIFEST} chunks (larger files use pages)`));

const fileSchema = v.strictObject({
  version: v.literal(MANIFEST_VERSION),
  kind: v.literal("file"),
  name: nameSchema,
  mode: modeSchema,
  encryption: encryptionSchema,
  sizeBytes: sizeSchema,
  sha256: sha256Schema,
  createdAtMs: sizeSchema,
  chunks: v.optional(chunkListSchema),
  pages: v.optional(v.pipe(v.array(pageRefSchema), v.minLength(1), v.maxLength(MAX_PAGES_PER_MANIFEST, `lists more than ${MAX_PAGES_PER_MANIFEST} pages`))),
});
const pageSchema = v.strictObject({
  version: v.literal(MANIFEST_VERSION),
  kind: v.literal("chunk-page"),
  chunks: v.pipe(chunkListSchema, v.minLength(1)),
});
const inlineEntrySchema = v.strictObject({
  name: nameSchema,
  mode: modeSchema,
  kind: v.literal("file"),
  sizeBytes: sizeSchema,
  sha256: sha256Schema,
  chunks: v.pipe(v.array(chunkRefSchema), v.maxLength(MAX_INLINE_CHUNKS_PER_ENTRY, `inline files list at most ${MAX_INLINE_CHUNKS_PER_ENTRY} chunks`)),
});
const referenceEntrySchema = v.strictObject({
  name: nameSchema,
  mode: modeSchema,
  kind: v.picklist(["file", "directory"]),
  sizeBytes: sizeSchema,
  manifest: v.strictObject(manifestRefFields),
});
const entrySchema = v.union(
  [inlineEntrySchema, referenceEntrySchema],
  "entry must be an inline file {name, mode, kind, sizeBytes, sha256, chunks} or a reference {name, mode, kind, sizeBytes, manifest}",
);
const directorySchema = v.strictObject({
  version: v.literal(MANIFEST_VERSION),
  kind: v.literal("directory"),
  name: nameSchema,
  mode: modeSchema,
  encryption: encryptionSchema,
  sizeBytes: sizeSchema,
  createdAtMs: sizeSchema,
  entries: v.pipe(v.array(entrySchema), v.maxLength(MAX_DIRECTORY_ENTRIES, `a directory holds at most ${MAX_DIRECTORY_ENTRIES} entries`)),
});
const manifestSchema = v.variant("kind", [fileSchema, pageSchema, directorySchema]);

function keyBytesOrNull(key: string): Uint8Array | null {
  if (key.length !== KEY_BASE64URL_CHARS) return null;
  try {
    return fromBase64Url(key);
  } catch {
    return null;
  }
}

function cidOrNull(cid: string): string | null {
  try {
    return parseCid(cid).cid;
  } catch {
    return null;
  }
}

// ---- validation ----------------------------------------------------------------

/** Checks shape, limits and internal consistency; returns the manifest typed. Throws ManifestError. */
export function validateManifest(value: unknown): Manifest {
  const result = v.safeParse(manifestSchema, value);
  if (!result.success) {
    const issue = result.issues[0];
    const path = issue.path?.map((p) => (typeof p.key === "number" ? `[${p.key}]` : `.${String(p.key)}`)).join("") ?? "";
    throw new ManifestError(`manifest${path}: ${issue.message}`);
  }
  const manifest = result.output as Manifest;
  checkConsistency(manifest);
  return manifest;
}

function checkConsistency(manifest: Manifest): void {
  if (manifest.kind === "chunk-page") {
    sumChunks(manifest.chunks, "manifest.chunks");
    return;
  }
  if (manifest.kind === "file") {
    if ((manifest.chunks === undefined) === (manifest.pages === undefined)) {
      throw new ManifestError("manifest: a file manifest has exactly one of chunks or pages");
    }
    if (manifest.chunks) {
      expectSum(sumChunks(manifest.chunks, "manifest.chunks"), manifest.sizeBytes, "manifest.chunks");
    } else {
      let total = 0;
      manifest.pages!.forEach((page, i) => {
        if (page.sizeBytes < page.chunkCount) throw new ManifestError(`manifest.pages[${i}]: sizeBytes ${page.sizeBytes} is less than its ${page.chunkCount} chunks`);
        total = addSize(total, page.sizeBytes, "manifest.pages");
      });
      expectSum(total, manifest.sizeBytes, "manifest.pages");
    }
    return;
  }
  let total = 0;
  let previous: string | null = null;
  manifest.entries.forEach((entry, i) => {
    const where = `manifest.entries[${i}]`;
    if (previous !== null && !(previous < entry.name)) throw new ManifestError(`${where}: entries must be sorted by name without duplicates ("${entry.name}" after "${previous}")`);
    previous = entry.name;
    if ("chunks" in entry) expectSum(sumChunks(entry.chunks, `${where}.chunks`), entry.sizeBytes, `${where}.chunks`);
    total = addSize(total, entry.sizeBytes, "manifest.entries");
  });
  expectSum(total, manifest.sizeBytes, "manifest.entries");
}

function sumChunks(chunks: ChunkRef[], where: string): number {
  let total = 0;
  chunks.forEach((chunk, i) => {
    if (chunk.sealedSizeBytes !== chunk.sizeBytes + CHUNK_TAG_BYTES) {
      throw new ManifestError(`${where}[${i}]: sealedSizeBytes must be sizeBytes + ${CHUNK_TAG_BYTES}`);
    }
    total = addSize(total, chunk.sizeBytes, where);
  });
  return total;
}

function addSize(total: number, size: number, where: string): number {
  const sum = total + size;
  if (!Number.isSafeInteger(sum)) throw new ManifestError(`${where}: sizes add up beyond 2^53 bytes`);
  return sum;
}

function expectSum(sum: number, sizeBytes: number, where: string): void {
  if (sum !== sizeBytes) throw new ManifestError(`${where}: sizes add up to ${sum} bytes, but sizeBytes is ${sizeBytes}`);
}

// ---- encoding ------------------------------------------------------------------------

/** Canonical JSON bytes of a valid manifest; throws ManifestError if invalid or over MAX_MANIFEST_BYTES. */
export function encodeManifest(manifest: Manifest): Uint8Array {
  validateManifest(manifest);
  const bytes = utf8(canonicalJson(manifest));
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ManifestError(
      `manifest is ${bytes.length} bytes; the limit is ${MAX_MANIFEST_BYTES} bytes (${MAX_CHUNKS_PER_MANIFEST} chunks per manifest, ${MAX_DIRECTORY_ENTRIES} entries per directory)`,
      "manifest_too_large",
    );
  }
  return bytes;
}

/** Parses and validates manifest bytes; only the canonical encoding is accepted. */
export function decodeManifest(bytes: Uint8Array): Manifest {
  if (bytes.length > MAX_MANIFEST_BYTES) throw new ManifestError(`manifest is ${bytes.length} bytes; the limit is ${MAX_MANIFEST_BYTES} bytes`, "manifest_too_large");
  let text: string;
  let value: unknown;
  try {
    text = fromUtf8(bytes);
    value = JSON.parse(text);
  } catch {
    throw new ManifestError("manifest is not UTF-8 JSON");
  }
  const manifest = validateManifest(value);
  if (canonicalJson(manifest) !== text) throw new ManifestError("manifest is not in canonical form (sorted keys, no whitespace)");
  return manifest;
}

// ---- sealing -------------------------------------------------------------------------

export interface SealedManifest {
  cid: string;
  sealed: Uint8Array;
}

/** Encodes, seals under `key` (32 bytes) and names a manifest. */
export async function sealManifest(manifest: Manifest, key: Uint8Array, cipher: ChunkCipher = webCryptoChunkCipher): Promise<SealedManifest> {
  const sealed = await cipher.seal(key, encodeManifest(manifest));
  return { cid: cidFromSha256(await cipher.sha256(sealed)), sealed };
}

/** Verifies `sealed` against `expectedCid`, then decrypts, decodes and validates it. */
export async function openManifest(sealed: Uint8Array, key: Uint8Array, expectedCid: string, cipher: ChunkCipher = webCryptoChunkCipher): Promise<Manifest> {
  const expected = parseCid(expectedCid);
  if (sealed.length > MAX_SEALED_MANIFEST_BYTES) throw new ManifestError(`sealed manifest is ${sealed.length} bytes; the limit is ${MAX_SEALED_MANIFEST_BYTES}`, "manifest_too_large");
  const actual = cidFromSha256(await cipher.sha256(sealed));
  if (actual !== expected.cid) throw new ManifestError(`manifest bytes do not match their CID (expected ${expected.cid}, got ${actual})`, "manifest_cid_mismatch");
  let plaintext: Uint8Array;
  try {
    plaintext = await cipher.open(key, sealed);
  } catch (e) {
    if (e instanceof ChunkAuthError) throw new ManifestError("manifest failed to decrypt: wrong key", "manifest_auth_failed");
    throw e;
  }
  return decodeManifest(plaintext);
}

/** Opens a manifest through a reference and checks it has the expected kind. */
export async function openManifestRef<K extends Manifest["kind"]>(ref: ManifestRef, sealed: Uint8Array, kind: K, cipher?: ChunkCipher): Promise<Extract<Manifest, { kind: K }>> {
  if (sealed.length !== ref.sealedSizeBytes) throw new ManifestError(`manifest ${ref.cid} is ${sealed.length} bytes, its reference says ${ref.sealedSizeBytes}`, "manifest_cid_mismatch");
  const manifest = await openManifest(sealed, manifestKeyBytes(ref.key), ref.cid, cipher);
  if (manifest.kind !== kind) throw new ManifestError(`manifest ${ref.cid} is a ${manifest.kind}, expected a ${kind}`);
  return manifest as Extract<Manifest, { kind: K }>;
}

/** Checks an opened page against the reference that led to it (count and size). */
export function assertPageMatchesRef(page: ChunkPageManifest, ref: PageRef): void {
  const size = page.chunks.reduce((sum, c) => sum + c.sizeBytes, 0);
  if (page.chunks.length !== ref.chunkCount || size !== ref.sizeBytes) {
    throw new ManifestError(`page ${ref.cid} lists ${page.chunks.length} chunks / ${size} bytes, its reference says ${ref.chunkCount} / ${ref.sizeBytes}`);
  }
}

/** Checks an opened child manifest against the directory entry that led to it. */
export function assertChildMatchesEntry(child: Manifest, entry: ReferenceEntry): void {
  if (child.kind !== entry.kind || child.sizeBytes !== entry.sizeBytes) {
    const got = child.kind === "chunk-page" ? "chunk-page" : `${child.kind} of ${child.sizeBytes} bytes`;
    throw new ManifestError(`entry "${entry.name}" promises a ${entry.kind} of ${entry.sizeBytes} bytes, its manifest is a ${got}`);
  }
}

export function manifestKeyBytes(key: string): Uint8Array {
  const bytes = keyBytesOrNull(key);
  if (bytes === null) throw new ManifestError(`key must be the base64url of ${CHUNK_KEY_BYTES} bytes`);
  return bytes;
}

/** A fresh random manifest key (the default). */
export function randomManifestKey(): Uint8Array {
  return randomBytes(CHUNK_KEY_BYTES);
}

/** A convergent manifest key: identical manifests under one secret seal identically. */
export async function convergentManifestKey(convergenceSecret: Uint8Array, manifest: Manifest, cipher: ChunkCipher = webCryptoChunkCipher): Promise<Uint8Array> {
  return convergentChunkKey(convergenceSecret, await cipher.sha256(encodeManifest(manifest)));
}

// ---- building ------------------------------------------------------------------------

/** The manifest entry for a sealed chunk. */
export function chunkRefOf(chunk: Pick<SealedChunk, "cid" | "key" | "sealed">): ChunkRef {
  return { cid: chunk.cid, sizeBytes: chunk.sealed.length - CHUNK_TAG_BYTES, sealedSizeBytes: chunk.sealed.length, key: toBase64Url(chunk.key) };
}

export interface FileManifestFields {
  name: string;
  mode: number;
  encryption: EncryptionMode;
  sizeBytes: number;
  /** Hex, or the raw 32-byte digest. */
  sha256: string | Uint8Array;
  createdAtMs: number;
}

export interface SealedPage extends SealedManifest {
  key: Uint8Array;
}

/**
 * Builds a file manifest from its chunk list, splitting the list into sealed
 * "chunk-page" manifests when it is longer than MAX_CHUNKS_PER_MANIFEST.
 * Store the returned pages like chunks before publishing the manifest.
 */
export async function buildFileManifest(
  fields: FileManifestFields,
  chunks: ChunkRef[],
  options: { pageKey?: (pageIndex: number) => Uint8Array; cipher?: ChunkCipher } = {},
): Promise<{ manifest: FileManifest; pages: SealedPage[] }> {
  const sha256 = typeof fields.sha256 === "string" ? fields.sha256 : toHex(fields.sha256);
  const base = { version: MANIFEST_VERSION, kind: "file", ...fields, sha256 } as const;
  if (chunks.length <= MAX_CHUNKS_PER_MANIFEST) return { manifest: validateFile({ ...base, chunks }), pages: [] };
  const pageKey = options.pageKey ?? randomManifestKey;
  const pages: SealedPage[] = [];
  const refs: PageRef[] = [];
  for (let start = 0; start < chunks.length; start += MAX_CHUNKS_PER_MANIFEST) {
    const slice = chunks.slice(start, start + MAX_CHUNKS_PER_MANIFEST);
    const key = pageKey(pages.length);
    const sealedPage = await sealManifest({ version: MANIFEST_VERSION, kind: "chunk-page", chunks: slice }, key, options.cipher);
    pages.push({ ...sealedPage, key });
    refs.push({
      cid: sealedPage.cid,
      key: toBase64Url(key),
      sealedSizeBytes: sealedPage.sealed.length,
      sizeBytes: slice.reduce((sum, c) => sum + c.sizeBytes, 0),
      chunkCount: slice.length,
    });
  }
  return { manifest: validateFile({ ...base, pages: refs }), pages };
}

function validateFile(manifest: FileManifest): FileManifest {
  validateManifest(manifest);
  return manifest;
}
