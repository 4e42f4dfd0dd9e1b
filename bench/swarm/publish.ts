/**
 * The publisher's step of a run, inside the publisher's namespace: `put` the
 * run's file through the publisher's running daemon (the library API, as
 * `peercloud put` would) with one replica — the publisher's own, so no other
 * peer is given a copy — then wait until the region directory lists the
 * publisher as a provider of every CID of the link (announcements are
 * batched), and report whether anyone else is listed for any of them. Prints
 * one JSON line:
 *
 *   { "link", "cid", "bytes", "chunks", "cids", "sealedBytes",
 *     "putSeconds", "announcedSeconds", "foreignProviders" }
 *
 *   publish.ts '<json: { home, file, timeoutMs }>'
 */
import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseLink } from "../../src/core/link.js";
import { PeercloudClient } from "../../src/index.js";
import { collectTreeCids } from "../../src/peer/content-tree.js";
import { EdgeClient } from "../../src/peer/edge-client.js";
import { PeerHome } from "../../src/peer/home.js";

interface PublishConfig {
  home: string;
  file: string;
  timeoutMs: number;
}

const MAX_BATCH = 256;
const config = JSON.parse(process.argv[2] ?? "null") as PublishConfig | null;
if (!config) {
  process.stderr.write("usage: publish.ts '<json config>' (started by bench/swarm.ts)\n");
  process.exit(2);
}

/** CID → path of every chunk file in a store (chunks/<shard>/<cid>). */
function storeFiles(storeDir: string): Map<string, string> {
  const root = join(storeDir, "chunks");
  const found = new Map<string, string>();
  for (const shard of readdirSync(root)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const name of readdirSync(join(root, shard))) if (!name.startsWith(".")) found.set(name, join(root, shard, name));
  }
  return found;
}

const started = performance.now();
const client = await PeercloudClient.open({ home: config.home, via: "daemon" });
const put = await client.put(config.file, { replicas: 1 });
await client.close();
const putSeconds = (performance.now() - started) / 1000;

const { cid, key } = parseLink(put.link);
const files = storeFiles(join(config.home, "store"));
const tree = await collectTreeCids(cid, key, async (c) => {
  const path = files.get(c);
  if (!path) throw new Error(`manifest ${c} is not in the publisher's store`);
  return new Uint8Array(await readFile(path));
});

const { config: peerConfig, identity } = await new PeerHome(config.home).load();
const edge = new EdgeClient({ edgeUrl: peerConfig.edgeUrl, identity, certificate: peerConfig.certificate });
const deadline = Date.now() + config.timeoutMs;
let foreign = new Set<string>();
for (let attempt = 0; ; attempt++) {
  let missing = 0;
  foreign = new Set();
  for (let i = 0; i < tree.cids.length; i += MAX_BATCH) {
    const answer = await edge.findProvidersBatch(peerConfig.region, tree.cids.slice(i, i + MAX_BATCH), { scope: "all" });
    for (const c of tree.cids.slice(i, i + MAX_BATCH)) {
      const providers = answer[c] ?? [];
      if (!providers.some((p) => p.nodeId === peerConfig.nodeId)) missing++;
      for (const p of providers) if (p.nodeId !== peerConfig.nodeId) foreign.add(p.nodeId);
    }
  }
  if (missing === 0) break;
  if (Date.now() > deadline) {
    process.stderr.write(`publish: the directory still lacks the publisher for ${missing} of ${tree.cids.length} CIDs after ${config.timeoutMs / 1000} s\n`);
    process.exit(1);
  }
  // Nothing to await: announcements are batched inside the daemon; re-ask with a short pause.
  await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 1000)));
}

process.stdout.write(
  JSON.stringify({
    link: put.link,
    cid: put.cid,
    bytes: put.bytes,
    chunks: put.chunks,
    cids: tree.cids.length,
    sealedBytes: tree.sealedSizes.reduce((a, b) => a + b, 0),
    putSeconds,
    announcedSeconds: (performance.now() - started) / 1000,
    foreignProviders: [...foreign],
  }) + "\n",
);
// undici's keep-alive sockets to the edge would hold the process open for a while.
process.exit(0);
