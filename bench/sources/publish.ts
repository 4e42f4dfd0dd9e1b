/**
 * The publisher's step of a bench:sources run, inside the publisher's
 * namespace: `put` the run's file through the publisher's daemon (the
 * library API, as `peercloud put --replicas N` would) with one replica more
 * than there are sources. Placement gives the other replicas to distinct
 * live service peers on hosts other than the publisher's (src/core/
 * placement.ts), and the downloader is client-only, so with N = K + 1 every
 * source receives every chunk and manifest. Then it waits until the region
 * directory lists every source as a provider of every CID of the link
 * (announcements are batched). Prints one JSON line:
 *
 *   { "link", "bytes", "chunks", "cids", "sealedBytes", "replicaPeers",
 *     "putSeconds", "announcedSeconds" }
 *
 * and exits 1 with a message on stderr when placement did not pick exactly
 * the sources or the directory never lists them all.
 *
 *   publish.ts '<json: { home, file, sources: nodeId[], timeoutMs }>'
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
  sources: string[];
  timeoutMs: number;
}

const MAX_BATCH = 256;
const config = JSON.parse(process.argv[2] ?? "null") as PublishConfig | null;
if (!config) {
  process.stderr.write("usage: publish.ts '<json config>' (started by bench/sources.ts)\n");
  process.exit(2);
}
const fail = (message: string): never => {
  process.stderr.write(`publish: ${message}\n`);
  process.exit(1);
};

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
const put = await client.put(config.file, { replicas: config.sources.length + 1 });
await client.close();
const putSeconds = (performance.now() - started) / 1000;
const placed = [...put.replicaPeers].sort();
if (placed.join() !== [...config.sources].sort().join()) {
  fail(`placement gave the file to [${placed.join(", ")}], not to exactly the ${config.sources.length} sources [${config.sources.join(", ")}]`);
}

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
for (let attempt = 0; ; attempt++) {
  let missing = 0;
  for (let i = 0; i < tree.cids.length; i += MAX_BATCH) {
    const batch = tree.cids.slice(i, i + MAX_BATCH);
    const answer = await edge.findProvidersBatch(peerConfig.region, batch, { scope: "all" });
    for (const c of batch) {
      const listed = new Set((answer[c] ?? []).map((p) => p.nodeId));
      missing += config.sources.filter((s) => !listed.has(s)).length;
    }
  }
  if (missing === 0) break;
  if (Date.now() > deadline) fail(`the directory still lacks ${missing} (source, CID) pairs of ${tree.cids.length * config.sources.length} after ${config.timeoutMs / 1000} s`);
  // Nothing to await: announcements are batched inside the sources' daemons; re-ask with a short pause.
  await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 1000)));
}

process.stdout.write(
  JSON.stringify({
    link: put.link,
    bytes: put.bytes,
    chunks: put.chunks,
    cids: tree.cids.length,
    sealedBytes: tree.sealedSizes.reduce((a, b) => a + b, 0),
    replicaPeers: put.replicaPeers,
    putSeconds,
    announcedSeconds: (performance.now() - started) / 1000,
  }) + "\n",
);
// undici's keep-alive sockets to the edge would hold the process open for a while.
process.exit(0);
