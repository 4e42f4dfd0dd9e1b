/**
 * The peercloud deployment of a bench:sources run, built from the swarm
 * bench's pieces: the real local edge in "origin", the publisher and the K
 * sources as service peers (peercloud-network.ts starts them exactly as
 * bench:swarm starts its peers), and the downloader joined with the
 * `client` role only. Client-only matters twice: placement never picks it
 * for a replica (so `put --replicas K+1` lands on exactly the K sources), and
 * it neither announces what it downloads nor receives repair jobs (so its
 * store holds nothing before each get, even after the stopped publisher's
 * replicas go missing).
 */
import { join } from "node:path";
import { PEER_TIMEOUTS, startPeercloudNetwork, type PeercloudNetwork } from "../swarm/peercloud-network.js";
import { initPeer, startDaemon, type PeerNode } from "../swarm/peers.js";
import type { Host } from "../swarm/topology.js";

export interface SourcesNetwork {
  net: PeercloudNetwork;
  /** net.downloaders, under the name they have here. */
  sources: PeerNode[];
  downloader: PeerNode;
}

export async function startSourcesNetwork(options: {
  origin: Host;
  pub: Host;
  sources: Host[];
  downloader: Host;
  homesDir: string;
  logDir: string;
  log: (line: string) => void;
}): Promise<SourcesNetwork> {
  const net = await startPeercloudNetwork({ origin: options.origin, pub: options.pub, downloaders: options.sources, homesDir: options.homesDir, logDir: options.logDir, log: options.log });
  // The edge printed its URL and a join token once; read that line again for the downloader.
  const { edgeUrl, joinToken } = await net.edge.waitForJson<{ edgeUrl: string; joinToken: string }>("stdout", (v) => typeof v.edgeUrl === "string", 1000, "its edge URL");
  const downloader = await initPeer(options.downloader, join(options.homesDir, options.downloader.name), edgeUrl, joinToken, options.logDir, PEER_TIMEOUTS, "client");
  await startDaemon(downloader, options.logDir, PEER_TIMEOUTS);
  options.log(`downloader ${options.downloader.name} joined as a client-only peer`);
  return { net, sources: net.downloaders, downloader };
}
