/**
 * The serving side of bench/peer.ts's transfer measurement, in a process of
 * its own (as a remote peer would be, so server and client do not share one
 * event loop): over one chunk store directory it starts
 *
 * - the subject: a real TransferServer over a real ChunkStore, and
 * - the baseline: a plain node:http static file server over the same chunk
 *   files, written the usual way (open, fstat, stream). It answers the
 *   client's POST /v1/session with a dummy token, so the same TransferClient
 *   code path reads both; it checks nothing else.
 *
 * Prints one JSON line `{ "transferUrl", "staticUrl" }`, then serves until
 * its stdin closes.
 *
 *   tsx bench/chunk-servers.ts <storeDir> <networkPublicKey base64url>
 */
import { once } from "node:events";
import { open, readdir } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fromBase64Url } from "../src/core/bytes.js";
import { isCid } from "../src/core/cid.js";
import { ChunkStore } from "../src/peer/chunk-store.js";
import { TransferServer } from "../src/peer/transfer-server.js";

const [storeDir, networkPublicKeyB64] = process.argv.slice(2);
if (!storeDir || !networkPublicKeyB64) {
  console.error("usage: tsx bench/chunk-servers.ts <storeDir> <networkPublicKey base64url> (started by bench/peer.ts)");
  process.exit(2);
}

/** Every chunk file of the store directory, by CID: what the static server serves. */
async function chunkFiles(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const chunksDir = join(root, "chunks");
  for (const shard of await readdir(chunksDir)) {
    for (const name of await readdir(join(chunksDir, shard))) if (isCid(name)) files.set(name, join(chunksDir, shard, name));
  }
  return files;
}

const files = await chunkFiles(storeDir);
const staticServer = createServer({ keepAlive: true, noDelay: true }, async (req, res) => {
  const path = req.url ?? "/";
  if (req.method === "POST" && path === "/v1/session") {
    req.resume();
    const body = JSON.stringify({ token: "static", expiresAtMs: Date.now() + 3600_000 });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    return res.end(body);
  }
  const file = req.method === "GET" && path.startsWith("/v1/chunks/") ? files.get(path.slice("/v1/chunks/".length)) : undefined;
  if (!file) {
    res.writeHead(404, { "content-length": 0 });
    return res.end();
  }
  const handle = await open(file, "r");
  const { size } = await handle.stat();
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
  await pipeline(handle.createReadStream(), res).catch(() => {});
});
staticServer.listen(0, "127.0.0.1");
await once(staticServer, "listening");

const store = await ChunkStore.open(storeDir);
const transferServer = new TransferServer({ store, networkPublicKey: fromBase64Url(networkPublicKeyB64), host: "127.0.0.1", port: 0 });
const { url: transferUrl } = await transferServer.listen();

process.stdout.write(JSON.stringify({ transferUrl, staticUrl: `http://127.0.0.1:${(staticServer.address() as AddressInfo).port}` }) + "\n");

process.stdin.resume();
process.stdin.on("close", () => {
  staticServer.closeAllConnections();
  staticServer.close();
  void transferServer.close().then(() => store.close());
});
