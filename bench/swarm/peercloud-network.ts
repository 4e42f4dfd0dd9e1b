/**
 * The peercloud deployment of a run: the real local edge in the origin
 * host's namespace (edge-host.ts), then a joined home and a running daemon
 * for the publisher and every downloader (peers.ts), started a few at a time
 * (each is a Node process loading tsx on a 2-core box). Also the two steps
 * around each timed phase: publishing the run's file (publish.ts, with the
 * check that the directory lists the publisher, and nobody else, for every
 * CID) and emptying the downloaders between runs.
 */
import { join } from "node:path";
import { initPeer, resetPeer, startDaemon, type PeerNode, type PeerTimeouts } from "./peers.js";
import { REPO_ROOT, runToEnd, spawnTsInNs, type NsProcess } from "./processes.js";
import type { PublishInfo } from "./report.js";
import type { Host } from "./topology.js";

const SWARM_DIR = join(REPO_ROOT, "bench", "swarm");
const EDGE_PORT = 8787;
const EDGE_READY_TIMEOUT_MS = 240_000;
const PUBLISH_ANNOUNCE_TIMEOUT_MS = 120_000;
const START_CONCURRENCY = 4;
export const PEER_TIMEOUTS: PeerTimeouts = { commandMs: 120_000, daemonReadyMs: 120_000 };

export interface PeercloudNetwork {
  edge: NsProcess;
  publisher: PeerNode;
  downloaders: PeerNode[];
  /** `peercloud --json status` against the publisher's daemon, one process alone: what starting the CLI costs. */
  cliStartupSeconds: number;
  /** The edge and every current daemon (their output tails explain failures). */
  processes(): NsProcess[];
}

export async function inBatches<T, R>(items: readonly T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

export async function startPeercloudNetwork(options: { origin: Host; pub: Host; downloaders: Host[]; homesDir: string; logDir: string; log: (line: string) => void }): Promise<PeercloudNetwork> {
  const { origin, pub, logDir, log } = options;
  log("starting the edge (bundling the Worker, Miniflare) in the origin namespace");
  const edge = spawnTsInNs({ name: "edge", ns: origin.ns, script: join(SWARM_DIR, "edge-host.ts"), args: [origin.ip, String(EDGE_PORT)], logDir, stdin: true });
  const { edgeUrl, joinToken } = await edge.waitForJson<{ edgeUrl: string; joinToken: string }>("stdout", (v) => typeof v.edgeUrl === "string", EDGE_READY_TIMEOUT_MS, "its edge URL");
  log(`edge at ${edgeUrl}; joining ${1 + options.downloaders.length} peers`);
  const all = await inBatches([pub, ...options.downloaders], START_CONCURRENCY, (h) => initPeer(h, join(options.homesDir, h.name), edgeUrl, joinToken, logDir, PEER_TIMEOUTS));
  await inBatches(all, START_CONCURRENCY, (p) => startDaemon(p, logDir, PEER_TIMEOUTS));
  log(`${all.length} daemons ready and connected to the directory`);
  const [publisher, ...downloaders] = all;
  const t0 = performance.now();
  await runToEnd({ name: "cli-startup", ns: pub.ns, command: process.execPath, args: [join("bin", "peercloud.js"), "--home", publisher.home, "--json", "status"], logDir }, PEER_TIMEOUTS.commandMs);
  const cliStartupSeconds = (performance.now() - t0) / 1000;
  return { edge, publisher, downloaders, cliStartupSeconds, processes: () => [edge, ...all.flatMap((p) => (p.daemon ? [p.daemon] : []))] };
}

/** The publisher puts `file` with one replica; resolves once the directory lists it, and only it, for every CID. */
export async function publishFile(net: PeercloudNetwork, file: string, name: string, logDir: string): Promise<PublishInfo> {
  const proc = await runToEnd(
    {
      name,
      ns: net.publisher.host.ns,
      command: process.execPath,
      args: ["--import", "tsx", join(SWARM_DIR, "publish.ts"), JSON.stringify({ home: net.publisher.home, file, timeoutMs: PUBLISH_ANNOUNCE_TIMEOUT_MS })],
      logDir,
    },
    PEER_TIMEOUTS.commandMs + PUBLISH_ANNOUNCE_TIMEOUT_MS,
  );
  const info = proc.jsonLines("stdout").find((l) => typeof l.link === "string") as (PublishInfo & { foreignProviders: string[] }) | undefined;
  if (!info) throw new Error(`the publish step printed no link\n${proc.describeTails()}`);
  if (info.foreignProviders.length) {
    throw new Error(
      `before the get, the directory lists ${info.foreignProviders.length} peer(s) other than the publisher as providers of the new file's chunks: the run would not start from the publisher alone`,
    );
  }
  const { foreignProviders: _none, ...publishInfo } = info;
  return publishInfo;
}

/** Restarts every downloader with an empty store (between runs). */
export async function emptyDownloaders(net: PeercloudNetwork, logDir: string): Promise<void> {
  await inBatches(net.downloaders, START_CONCURRENCY, (p) => resetPeer(p, logDir, PEER_TIMEOUTS));
}
