/**
 * One downloader of the HTTP baseline (the central-server model), started
 * inside its peer's namespace ahead of time like peercloud-driver.ts: it
 * waits for "go" on stdin, then downloads the whole file with one plain
 * HTTP/1.1 GET (node:http) to disk, hashing as the bytes arrive, and prints
 *
 *   {"ready":true}
 *   {"done":true,"goAtMs","doneAtMs","bytes","sha256"}     or {"error":{code,message}}
 *
 *   http-driver.ts '<json: { url, output }>'
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { get } from "node:http";
import { createInterface } from "node:readline";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

interface DriverConfig {
  url: string;
  output: string;
}

const config = JSON.parse(process.argv[2] ?? "null") as DriverConfig | null;
if (!config) {
  process.stderr.write("usage: http-driver.ts '<json config>' (started by bench/swarm.ts)\n");
  process.exit(2);
}

const wallMs = () => performance.timeOrigin + performance.now();
const print = (value: unknown) => process.stdout.write(JSON.stringify(value) + "\n");

async function download(url: string, output: string): Promise<{ bytes: number; sha256: string }> {
  const res = await new Promise<import("node:http").IncomingMessage>((resolveRes, rejectRes) => get(url, resolveRes).on("error", rejectRes));
  if (res.statusCode !== 200) throw Object.assign(new Error(`HTTP ${res.statusCode} for ${url}`), { code: "http_status" });
  const hash = createHash("sha256");
  let bytes = 0;
  const tap = new Transform({
    transform(piece: Buffer, _enc, callback) {
      hash.update(piece);
      bytes += piece.length;
      callback(null, piece);
    },
  });
  await pipeline(res, tap, createWriteStream(output, { highWaterMark: 1 << 20 }));
  const expected = Number(res.headers["content-length"]);
  if (bytes !== expected) throw Object.assign(new Error(`got ${bytes} of ${expected} bytes`), { code: "short_body" });
  return { bytes, sha256: hash.digest("hex") };
}

try {
  print({ ready: true });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() !== "go") continue;
    const goAtMs = wallMs();
    const { bytes, sha256 } = await download(config.url, config.output);
    const doneAtMs = wallMs();
    print({ done: true, goAtMs, doneAtMs, bytes, sha256 });
    break;
  }
  process.exit(0);
} catch (error) {
  const e = error as { code?: string; message?: string };
  print({ error: { code: e.code ?? "driver_failed", message: e.message ?? String(error) } });
  process.exit(1);
}
