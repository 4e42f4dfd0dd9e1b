/**
 * The file a run distributes: `sizeBytes` of incompressible pseudo-random
 * bytes (the AES-256-CTR keystream of a key derived from `seed`, GB/s with
 * AES-NI), written to disk; resolves with their SHA-256, the reference every
 * downloaded copy is checked against. A new seed per run gives new content,
 * hence new chunk CIDs, so nothing of an earlier run can be reused.
 */
import { createCipheriv, createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { once } from "node:events";

export async function writeRandomFile(path: string, sizeBytes: number, seed: string): Promise<string> {
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
