/**
 * `get`: resolves a link and writes the file or tree it names.
 *
 *   parse link → fetch + open the manifest (chunk-fetcher.ts, like any
 *   chunk) → chunk pages for very large files → per file: a part file with
 *   resume state (part-file.ts) or, with `stream`, an ordered emitter
 *   (ordered-emitter.ts) → the fetch loop (chunk-fetcher.ts, deciding with
 *   chunk-scheduler.ts) → each verified chunk decrypted and written → commit.
 *
 * Guarantees:
 * - every chunk is verified against its CID before use, and every file
 *   against the manifest's whole-file SHA-256 before it gets its name;
 * - an interrupted or failed download leaves `<out>.peercloud-part` and its
 *   state (a re-run fetches only the missing chunks), never a file under
 *   the final name; resumed chunks are re-verified by re-sealing their
 *   plaintext with the manifest's key and comparing the CID (convergent and
 *   private keys both fix the nonce, so sealing is deterministic), which
 *   costs about one AES+SHA pass over what was already there
 *   (`verifyResumed: false` trusts the state and relies on the final hash);
 * - directories are recreated under the output path; names come from
 *   validated manifests (no "/", "..", NUL), and each target is still
 *   checked to lie directly inside its parent;
 * - memory is bounded by window × the largest chunk, plus the chunk list.
 *
 * Output path: `output` (default: the manifest's name in the current
 * directory); an existing directory given as `output` receives
 * `<output>/<name>`; an existing file is replaced only when the download is
 * complete; a tree is written into an existing directory of its name. File modes are
 * applied masked with 0o755 (a publisher cannot make files group/world
 * writable or setuid here).
 * Directory files download one after another (each with full parallelism
 * across its chunks). With a swarm board (the daemon's), each file's fetch
 * joins the swarm of everyone downloading the same link (swarm.ts), so
 * concurrent downloaders trade pieces instead of all asking the publisher.
 */
import { mkdir, stat, chmod } from "node:fs/promises";
import { join, resolve, dirname } from "node:path";
import { ChunkAuthError } from "../core/chunk-cipher.js";
import { PeercloudError, ValidationError } from "../core/errors.js";
import { parseLink } from "../core/link.js";
import {
  assertChildMatchesEntry,
  assertPageMatchesRef,
  manifestKeyBytes,
  MAX_SEALED_MANIFEST_BYTES,
  openManifest,
  openManifestRef,
  type ChunkRef,
  type DirectoryManifest,
  type FileManifest,
  type ManifestRef,
} from "../core/manifest.js";
import { ChunkFetcher, type FetchDeps, type FetcherOptions, type FetchReport } from "./chunk-fetcher.js";
import { nativeCidOf, nodeChunkCipher, openNative, sealNative } from "./native-chunk-cipher.js";
import { OrderedEmitter } from "./ordered-emitter.js";
import { PartFile, type PartFileOptions } from "./part-file.js";
import type { ProgressCallback, ProgressPhase } from "./progress.js";

export interface GetOptions extends FetcherOptions, PartFileOptions {
  /** Output path; "-" streams to `writable`. Default: the manifest's name in the current directory. */
  output?: string;
  /** Emit bytes in order to `writable` as chunks arrive (files only). */
  stream?: boolean;
  /** Stream output; default process.stdout. Not ended by getLink. */
  writable?: NodeJS.WritableStream;
  /** Re-verify chunks a previous run wrote. Default true. */
  verifyResumed?: boolean;
  onProgress?: ProgressCallback;
}

export type GetDeps = FetchDeps;

export interface GetResult {
  /** Where the file or tree was written ("-" when streamed). */
  path: string;
  kind: "file" | "directory";
  manifestCid: string;
  bytes: number;
  files: number;
  /** Chunk occurrences of all files. */
  chunks: number;
  /** Objects (chunks, manifests) fetched per kind of source. */
  fromPeers: number;
  fromCold: number;
  fromLocal: number;
  /** Chunks a previous interrupted run had already written. */
  resumedChunks: number;
  /** Sources penalised for errors or corrupt data. */
  sourcesPenalised: string[];
}

/** A file to write: a file manifest, or an inline directory entry. */
interface FileJob {
  id: string;
  name: string;
  mode: number;
  sizeBytes: number;
  sha256: string;
  chunks: ChunkRef[];
}

export async function getLink(link: string, options: GetOptions, deps: GetDeps): Promise<GetResult> {
  const { cid, key } = parseLink(link);
  return new Download(options, deps).run(cid, key);
}

class Download {
  private readonly totals = { bytesDone: 0, bytesTotal: 0, chunksDone: 0, chunksTotal: 0, files: 0, resumed: 0 };
  private readonly counts = { fromPeers: 0, fromCold: 0, fromLocal: 0 };
  private readonly penalised = new Set<string>();
  private current: ChunkFetcher | null = null;
  /** The link's manifest: its holders are the swarm of every file of this download (swarm.ts). */
  private rootCid = "";

  constructor(
    private readonly options: GetOptions,
    private readonly deps: GetDeps,
  ) {}

  async run(rootCid: string, rootKey: Uint8Array): Promise<GetResult> {
    this.rootCid = rootCid;
    this.progress("manifest");
    const sealed = await this.fetchObject(rootCid, undefined);
    const manifest = await openManifest(sealed, rootKey, rootCid, nodeChunkCipher);
    if (manifest.kind === "chunk-page") throw new ValidationError("this link names a chunk page, not a file or directory", "invalid_link");
    this.totals.bytesTotal = manifest.sizeBytes;
    const streaming = this.options.stream === true || this.options.output === "-";
    let path: string;
    if (streaming) {
      if (manifest.kind !== "file") throw new ValidationError("only a file can be streamed; this link names a directory (give -o DIR instead)", "stream_needs_file");
      path = "-";
      await this.streamFile(await this.fileJob(manifest, rootCid));
    } else {
      path = await this.outputPath(manifest.name);
      if (manifest.kind === "file") await this.writeFile(await this.fileJob(manifest, rootCid), path);
      else await this.writeDirectory(manifest, rootCid, path);
    }
    this.progress("done");
    return {
      path,
      kind: manifest.kind,
      manifestCid: rootCid,
      bytes: this.totals.bytesDone,
      files: this.totals.files,
      chunks: this.totals.chunksTotal,
      ...this.counts,
      resumedChunks: this.totals.resumed,
      sourcesPenalised: [...this.penalised],
    };
  }

  /** `output`, or `<output>/<name>` when `output` is an existing directory; without `output`, `./<name>`. */
  private async outputPath(name: string): Promise<string> {
    if (this.options.output === undefined) return resolve(name);
    const output = resolve(this.options.output);
    const st = await stat(output).catch(() => null);
    return st?.isDirectory() ? join(output, name) : output;
  }

  /** Fetches one sealed object (a manifest or page) with the same sources and checks as chunks. */
  private async fetchObject(cid: string, sealedSizeBytes: number | undefined): Promise<Uint8Array> {
    let bytes: Uint8Array | null = null;
    await this.fetch(new ChunkFetcher([{ cid, sealedSizeBytes }], this.deps, this.options), async (_piece, sealed) => {
      if (sealed.length > MAX_SEALED_MANIFEST_BYTES) throw new PeercloudError("manifest_too_large", `manifest ${cid} is ${sealed.length} bytes`, 502);
      bytes = sealed;
    });
    return bytes!;
  }

  private async fetch(fetcher: ChunkFetcher, sink: Parameters<ChunkFetcher["run"]>[0]): Promise<void> {
    this.current = fetcher;
    let report: FetchReport | null = null;
    try {
      report = await fetcher.run(sink);
    } finally {
      report ??= fetcher.report();
      this.counts.fromPeers += report.fromPeers;
      this.counts.fromCold += report.fromCold;
      this.counts.fromLocal += report.fromLocal;
      for (const id of report.penalised) this.penalised.add(id);
      this.current = null;
    }
  }

  /** The chunk list of a file manifest, fetching its pages if it has them. */
  private async fileJob(manifest: FileManifest, id: string): Promise<FileJob> {
    let chunks = manifest.chunks;
    if (!chunks) {
      const pages = manifest.pages!;
      const lists: ChunkRef[][] = [];
      const fetcher = new ChunkFetcher(
        pages.map((p) => ({ cid: p.cid, sealedSizeBytes: p.sealedSizeBytes })),
        this.deps,
        this.options,
      );
      await this.fetch(fetcher, async (piece, sealed) => {
        // Identical pages share a CID: fill every index that names it.
        for (let i = 0; i < pages.length; i++) {
          if (pages[i].cid !== pages[piece].cid) continue;
          const page = await openManifestRef(pages[i], sealed, "chunk-page", nodeChunkCipher);
          assertPageMatchesRef(page, pages[i]);
          lists[i] = page.chunks;
        }
      });
      chunks = lists.flat();
    }
    return { id, name: manifest.name, mode: manifest.mode, sizeBytes: manifest.sizeBytes, sha256: manifest.sha256, chunks };
  }

  private async writeDirectory(manifest: DirectoryManifest, manifestCid: string, dirPath: string): Promise<void> {
    await mkdir(dirPath, { recursive: true });
    for (const entry of manifest.entries) {
      const target = join(dirPath, entry.name);
      if (dirname(target) !== dirPath) throw new ValidationError(`refusing entry name ${JSON.stringify(entry.name)}: it leaves ${dirPath}`, "unsafe_name");
      if ("chunks" in entry) {
        await this.writeFile({ id: `${manifestCid}/${entry.name}`, ...entry }, target);
        continue;
      }
      const child = await this.openChild(entry.manifest, entry.kind);
      assertChildMatchesEntry(child, entry);
      if (child.kind === "file") await this.writeFile(await this.fileJob(child, entry.manifest.cid), target);
      else if (child.kind === "directory") await this.writeDirectory(child, entry.manifest.cid, target);
    }
    await chmod(dirPath, (manifest.mode & 0o755) | 0o700);
  }

  private async openChild(ref: ManifestRef, kind: "file" | "directory"): Promise<FileManifest | DirectoryManifest> {
    this.progress("manifest");
    const sealed = await this.fetchObject(ref.cid, ref.sealedSizeBytes);
    return openManifestRef(ref, sealed, kind, nodeChunkCipher);
  }

  private async writeFile(job: FileJob, path: string): Promise<void> {
    this.totals.files++;
    this.totals.chunksTotal += job.chunks.length;
    const { pieces, positionsOf } = piecesOf(job.chunks);
    const offsets = offsetsOf(job.chunks);
    const part = await PartFile.open(path, { manifestCid: job.id, sizeBytes: job.sizeBytes, chunks: job.chunks }, this.options);
    try {
      if (part.resumed.size > 0) this.progress("resume");
      for (const index of part.resumed) {
        if (this.options.verifyResumed !== false && !(await resumedChunkValid(part, job.chunks[index], offsets[index]))) part.unmark(index);
        else this.account(job.chunks[index].sizeBytes, 1, true);
      }
      const fetcher = new ChunkFetcher(pieces, this.deps, { ...this.options, swarm: { key: job.id, rootCid: this.rootCid } });
      const partDone = (piece: number) => positionsOf[piece].every((pos) => part.isDone(pos));
      for (let piece = 0; piece < pieces.length; piece++) if (partDone(piece)) fetcher.markDone(piece);
      this.progress("fetch");
      await this.fetch(fetcher, async (piece, sealed) => {
        const plaintexts = new Map<string, Uint8Array>();
        const written: number[] = [];
        for (const pos of positionsOf[piece]) {
          if (part.isDone(pos)) continue;
          const ref = job.chunks[pos];
          let plaintext = plaintexts.get(ref.key);
          if (!plaintext) plaintexts.set(ref.key, (plaintext = decryptChunk(ref, sealed)));
          await part.writeAt(plaintext, offsets[pos]);
          written.push(pos);
          this.account(plaintext.length, 1, false);
        }
        await part.markDone(written);
        this.progress("fetch");
      });
      this.progress("verify");
      await part.commit(job.sha256, job.mode & 0o755);
    } catch (error) {
      await part.close().catch(() => {});
      throw error;
    }
  }

  private async streamFile(job: FileJob): Promise<void> {
    this.totals.files++;
    this.totals.chunksTotal += job.chunks.length;
    const { pieces, pieceOf } = piecesOf(job.chunks);
    const fetcher = new ChunkFetcher(pieces, this.deps, { ...this.options, ordered: true });
    const emitter = new OrderedEmitter(
      this.options.writable ?? process.stdout,
      job.chunks.map((c, i) => ({ cid: c.cid, piece: pieceOf[i] })),
      (cid) => fetcher.readCached(cid),
      (position, sealed) => decryptChunk(job.chunks[position], sealed),
      (_position, bytes) => {
        this.account(bytes, 1, false);
        this.progress("fetch");
      },
    );
    this.progress("fetch");
    try {
      await this.fetch(fetcher, (piece, sealed, _source, signal) => emitter.deliver(piece, sealed, signal));
      await emitter.finish(job.sha256);
    } finally {
      emitter.close();
    }
  }

  private account(bytes: number, chunks: number, resumed: boolean): void {
    this.totals.bytesDone += bytes;
    this.totals.chunksDone += chunks;
    if (resumed) this.totals.resumed += chunks;
  }

  private progress(phase: ProgressPhase): void {
    if (!this.options.onProgress) return;
    const { bytesDone, bytesTotal, chunksDone, chunksTotal } = this.totals;
    this.options.onProgress({ op: "get", phase, bytesDone, bytesTotal, chunksDone, chunksTotal, sources: this.current?.report().sources });
  }
}

/** Distinct CIDs in order of first occurrence, and where each occurs. */
function piecesOf(chunks: readonly ChunkRef[]) {
  const index = new Map<string, number>();
  const pieces: { cid: string; sealedSizeBytes: number }[] = [];
  const positionsOf: number[][] = [];
  const pieceOf = chunks.map((chunk, pos) => {
    let piece = index.get(chunk.cid);
    if (piece === undefined) {
      piece = pieces.length;
      index.set(chunk.cid, piece);
      pieces.push({ cid: chunk.cid, sealedSizeBytes: chunk.sealedSizeBytes });
      positionsOf.push([]);
    }
    positionsOf[piece].push(pos);
    return piece;
  });
  return { pieces, pieceOf, positionsOf };
}

function offsetsOf(chunks: readonly ChunkRef[]): number[] {
  const offsets: number[] = [];
  let offset = 0;
  for (const chunk of chunks) {
    offsets.push(offset);
    offset += chunk.sizeBytes;
  }
  return offsets;
}

/** Decrypts a verified chunk; bytes that match their CID but not the manifest's key mean a wrong manifest, not a bad source. */
function decryptChunk(ref: ChunkRef, sealed: Uint8Array): Uint8Array {
  try {
    return openNative(manifestKeyBytes(ref.key), sealed);
  } catch (error) {
    if (error instanceof ChunkAuthError)
      throw new PeercloudError("chunk_decrypt_failed", `chunk ${ref.cid} matches its CID but does not decrypt with the manifest's key: the link or manifest is wrong`, 422, { cid: ref.cid });
    throw error;
  }
}

/** Re-seals the plaintext found at the chunk's offset and compares the CID (sealing is deterministic for a given key). */
async function resumedChunkValid(part: PartFile, ref: ChunkRef, offsetBytes: number): Promise<boolean> {
  const plaintext = await part.readAt(offsetBytes, ref.sizeBytes);
  if (plaintext.length !== ref.sizeBytes) return false;
  return nativeCidOf(sealNative(manifestKeyBytes(ref.key), plaintext)) === ref.cid;
}
