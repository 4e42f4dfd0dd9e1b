/**
 * Every CID a link stands for: the root manifest, its chunk pages, child
 * manifests and data chunks, with their sealed sizes. `unpin` needs the
 * whole set to release it locally and at the directory.
 *
 * Manifests are read from a caller-supplied fetcher (the local store for
 * unpin: the publisher's home holds every manifest it made) and verified
 * and opened exactly as a download would (manifest.ts), so a corrupt or
 * foreign manifest stops the walk with its own error instead of unpinning
 * something else. Depth and count are bounded by the manifest limits.
 */
import { assertChildMatchesEntry, assertPageMatchesRef, openManifest, openManifestRef, type ChunkRef, type DirectoryManifest, type FileManifest, type ManifestRef } from "../core/manifest.js";
import { nodeChunkCipher } from "./native-chunk-cipher.js";

export interface TreeCids {
  /** Unique CIDs, manifests first. */
  cids: string[];
  sealedSizes: number[];
  rootKind: "file" | "directory";
  name: string;
  sizeBytes: number;
}

/** Sealed bytes of a manifest by CID (unverified; opening verifies). */
export type ManifestFetcher = (cid: string) => Promise<Uint8Array>;

const MAX_DEPTH = 64;

export async function collectTreeCids(rootCid: string, rootKey: Uint8Array, fetch: ManifestFetcher): Promise<TreeCids> {
  const sizes = new Map<string, number>();
  const add = (cid: string, sealedSizeBytes: number) => {
    if (!sizes.has(cid)) sizes.set(cid, sealedSizeBytes);
  };
  const addChunks = (chunks: ChunkRef[]) => {
    for (const c of chunks) add(c.cid, c.sealedSizeBytes);
  };

  const rootSealed = await fetch(rootCid);
  const root = await openManifest(rootSealed, rootKey, rootCid, nodeChunkCipher);
  if (root.kind === "chunk-page") throw new TypeError("a link never names a chunk page");
  add(rootCid, rootSealed.length);

  const walkFile = async (file: FileManifest) => {
    addChunks(file.chunks ?? []);
    for (const ref of file.pages ?? []) {
      const page = await openManifestRef(ref, await fetch(ref.cid), "chunk-page", nodeChunkCipher);
      assertPageMatchesRef(page, ref);
      add(ref.cid, ref.sealedSizeBytes);
      addChunks(page.chunks);
    }
  };
  const walkDirectory = async (dir: DirectoryManifest, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new RangeError(`directory tree deeper than ${MAX_DEPTH} levels`);
    for (const entry of dir.entries) {
      if ("chunks" in entry) {
        addChunks(entry.chunks);
        continue;
      }
      const child = await openChild(entry.manifest, entry.kind);
      assertChildMatchesEntry(child, entry);
      add(entry.manifest.cid, entry.manifest.sealedSizeBytes);
      if (child.kind === "file") await walkFile(child);
      else if (child.kind === "directory") await walkDirectory(child, depth + 1);
    }
  };
  const openChild = (ref: ManifestRef, kind: "file" | "directory") => fetch(ref.cid).then((sealed) => openManifestRef(ref, sealed, kind, nodeChunkCipher));

  if (root.kind === "file") await walkFile(root);
  else await walkDirectory(root, 0);
  return { cids: [...sizes.keys()], sealedSizes: [...sizes.values()], rootKind: root.kind, name: root.name, sizeBytes: root.sizeBytes };
}
