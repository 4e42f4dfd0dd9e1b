/**
 * Test and benchmark data files: incompressible, deterministic content and
 * its digest. Shared by the end-to-end tests (peer-process.ts) and
 * bench:swarm, which both check every copy bit-exact against the source.
 */
import { createCipheriv, createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";

/**
 * Writes `sizeBytes` of pseudo-random bytes (the AES-256-CTR keystream of a
 * key derived from `seed`: incompressible, GB/s with AES-NI; a new seed
 * gives new content, hence new chunk CIDs) and resolves with their SHA-256
 * (hex).
 */
export async function writeRandomFile(path: string, sizeBytes: number, seed = "peercloud-e2e"): Promise<string> {
  const key = createHash("sha256").update(`key:${seed}`).digest();
  const iv = createHash("sha256").update(`iv:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-256-ctr", key, iv);
  const hash = createHash("sha256");
  const zeros = Buffer.alloc(4 << 20);
  const out = createWriteStream(path);
  const finished = new Promise<void>((resolveWrite, rejectWrite) => {
    out.once("error", rejectWrite);
    out.once("finish", resolveWrite);
  });
  for (let written = 0; written < sizeBytes;) {
    const n = Math.min(zeros.length, sizeBytes - written);
    const piece = cipher.update(zeros.subarray(0, n));
    hash.update(piece);
    written += n;
    if (!out.write(piece)) await once(out, "drain");
  }
  out.end();
  await finished;
  return hash.digest("hex");
}

/** SHA-256 (hex) of a file, streamed. */
export function sha256File(path: string): Promise<string> {
  return new Promise((resolveHash, rejectHash) => {
    const hash = createHash("sha256");
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (piece) => hash.update(piece))
      .on("error", rejectHash)
      .on("end", () => resolveHash(hash.digest("hex")));
  });
}
