/**
 * The publisher's step of a run, inside the publisher's namespace: `put` the
 * run's file through the publisher's running daemon (the library API, as
 * `peercloud put` would), then wait until the region directory lists the
 * expected holders as providers of every CID of the link (announcements are
 * batched). Two uses:
 *  - bench:swarm (no `holders`): one replica, the publisher's own, so no
 *    other peer is given a copy; the publisher must be listed, and anyone
 *    else listed is reported as `foreignProviders`;
 *  - bench:sources (`holders`: the K sources' node IDs): K + 1 replicas.
 *    Placement gives the others to distinct live service peers on hosts
 *    other than the publisher's (src/core/placement.ts) and the downloader
 *    is client-only, so placement must pick exactly the sources (else exit
 *    1), and every source must be listed for every CID.
 * Prints one JSON line:
 *
 *   { "link", "cid", "bytes", "chunks", "cids", "sealedBytes", "replicaPeers",
 *     "putSeconds", "announcedSeconds", "foreignProviders" }
 *
 *   publish.ts '<json: { home, file, timeoutMs, holders? }>'
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
  /** Node IDs that must receive the replicas (bench:sources); absent = the publisher's copy only. */
  holders?: string[];
}

const MAX_BATCH = 256;
const config = JSON.parse(process.argv[2] ?? "null") as PublishConfig | null;
if (!config) {
  process.stderr.write("usage: publish.ts '<json config>' (started by bench/swarm.ts and bench/sources.ts)\n");
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
const put = await client.put(config.file, { replicas: (config.holders?.length ?? 0) + 1 });
await client.close();
const putSeconds = (performance.now() - started) / 1000;
if (config.holders) {
  const placed = [...put.replicaPeers].sort();
  if (placed.join() !== [...config.holders].sort().join()) fail(`placement gave the file to [${placed.join(", ")}], not to exactly [${config.holders.join(", ")}]`);
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
const expected = config.holders ?? [peerConfig.nodeId];
let foreign = new Set<string>();
for (let attempt = 0; ; attempt++) {
  let missing = 0;
  foreign = new Set();
  for (let i = 0; i < tree.cids.length; i += MAX_BATCH) {
    const batch = tree.cids.slice(i, i + MAX_BATCH);
    const answer = await edge.findProvidersBatch(peerConfig.region, batch, { scope: "all" });
    for (const c of batch) {
      const listed = new Set((answer[c] ?? []).map((p) => p.nodeId));
      missing += expected.filter((id) => !listed.has(id)).length;
      for (const id of listed) if (id !== peerConfig.nodeId && !expected.includes(id)) foreign.add(id);
    }
  }
  if (missing === 0) break;
  if (Date.now() > deadline) fail(`the directory still lacks ${missing} (holder, CID) pairs of ${tree.cids.length * expected.length} after ${config.timeoutMs / 1000} s`);
  // Nothing to await: announcements are batched inside the daemons; re-ask with a short pause.
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
    replicaPeers: put.replicaPeers,
    putSeconds,
    announcedSeconds: (performance.now() - started) / 1000,
    foreignProviders: [...foreign],
  }) + "\n",
);
// undici's keep-alive sockets to the edge would hold the process open for a while.
process.exit(0);
