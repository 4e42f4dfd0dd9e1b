/**
 * The child process of bench/peer.ts's "peak RSS of get" measurement: one
 * `get` of a link, in a process of its own so that its peak RSS is the
 * download's alone. It runs what the CLI runs for a get (getLink with a real
 * ChunkStore as the downloader's store and a real TransferClient reaching
 * the publisher's TransferServer), then prints one JSON line:
 *
 *   { "bytes", "ms", "maxRssBytes" (process.resourceUsage), "vmHwmBytes" (/proc/self/status) }
 *
 *   tsx bench/get-driver.ts '<json config>'   (see GetDriverConfig)
 *
 * With `{ "idle": true, "storeDir" }` it loads the same modules, opens a
 * store and exits: the RSS any such process has before downloading a byte.
 */
import { readFile } from "node:fs/promises";
import { fromBase64Url } from "../src/core/bytes.js";
import { ChunkStore } from "../src/peer/chunk-store.js";
import { getLink } from "../src/peer/download.js";
import type { ChunkSource } from "../src/peer/sources.js";
import { TransferClient } from "../src/peer/transfer-client.js";

export interface GetDriverConfig {
  link: string;
  /** The publisher's TransferServer. */
  serverUrl: string;
  /** This (downloading) peer's identity and certificate. */
  secretKeyB64: string;
  certificate: string;
  storeDir: string;
  output: string;
}

const config = JSON.parse(process.argv[2] ?? "null") as GetDriverConfig | { idle: true; storeDir: string } | null;
if (!config) {
  console.error("usage: tsx bench/get-driver.ts '<json config>' (started by bench/peer.ts)");
  process.exit(2);
}

const store = await ChunkStore.open(config.storeDir);
let bytes = 0;
const started = performance.now();
if (!("idle" in config)) {
  const client = new TransferClient({ secretKey: fromBase64Url(config.secretKeyB64), certificate: config.certificate });
  const publisher: ChunkSource = { id: "publisher", kind: "peer", fetch: (cid, signal) => client.getChunk(config.serverUrl, cid, { signal }) };
  bytes = (await getLink(config.link, { output: config.output }, { store, providers: { providers: async () => [publisher] } })).bytes;
  client.close();
}
const ms = performance.now() - started;
await store.close();

const status = await readFile("/proc/self/status", "utf8").catch(() => "");
const hwmKib = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
process.stdout.write(JSON.stringify({ bytes, ms, maxRssBytes: process.resourceUsage().maxRSS * 1024, vmHwmBytes: Number.isFinite(hwmKib) ? hwmKib * 1024 : null }) + "\n");
