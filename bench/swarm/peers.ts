/**
 * The peercloud side of the emulated network: one home and one real
 * `peercloud peer start` daemon per host (the publisher and every
 * downloader), each inside its host's namespace, listening on the host's own
 * address and advertising it. Synchronisation is on the daemon's own JSON
 * event lines (`ready`, `directory_connected`), never on sleeps.
 *
 * Every peer joins with the service role (so the directory lists it as a
 * provider once it holds chunks — downloaders must be able to serve each
 * other) and a host ID of its own (its own failure domain).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { runToEnd, spawnPeercloudInNs, type NsProcess } from "./processes.js";
import type { Host } from "./topology.js";

export const TRANSFER_PORT = 7070;
const ROLES = "service,client,publisher";

export interface PeerNode {
  host: Host;
  home: string;
  nodeId: string;
  daemon: NsProcess | null;
  transferUrl: string;
}

export interface PeerTimeouts {
  commandMs: number;
  daemonReadyMs: number;
}

/** `peercloud init` in the host's namespace (it reaches the edge over the emulated network). */
export async function initPeer(host: Host, home: string, edgeUrl: string, joinToken: string, logDir: string, timeouts: PeerTimeouts, roles: string = ROLES): Promise<PeerNode> {
  const proc = await runToEnd(
    {
      name: `init-${host.name}`,
      ns: host.ns,
      command: process.execPath,
      args: [
        join("bin", "peercloud.js"),
        "--home",
        home,
        "--json",
        "init",
        "--edge",
        edgeUrl,
        "--join-token",
        joinToken,
        "--host-id",
        `bench-${host.name}`,
        "--roles",
        roles,
        "--port",
        String(TRANSFER_PORT),
        "--advertise",
        `http://${host.ip}:${TRANSFER_PORT}`,
      ],
      logDir,
    },
    timeouts.commandMs,
  );
  const joined = proc.jsonLines("stdout").find((l) => typeof l.nodeId === "string");
  if (!joined) throw new Error(`init of ${host.name} printed no node ID\n${proc.describeTails()}`);
  return { host, home, nodeId: joined.nodeId as string, daemon: null, transferUrl: "" };
}

/** Starts the daemon and resolves once it serves and the directory has welcomed it. */
export async function startDaemon(peer: PeerNode, logDir: string, timeouts: PeerTimeouts): Promise<void> {
  if (peer.daemon?.running) throw new Error(`${peer.host.name}'s daemon already runs`);
  const daemon = spawnPeercloudInNs({ name: `daemon-${peer.host.name}`, ns: peer.host.ns, args: ["--home", peer.home, "--json", "peer", "start", "--host", peer.host.ip], logDir, stdin: false });
  peer.daemon = daemon;
  try {
    const [ready] = await Promise.all([
      daemon.waitForJson<{ transferUrl: string }>("stdout", (e) => e.event === "ready", timeouts.daemonReadyMs, "its ready event"),
      daemon.waitForJson("stdout", (e) => e.event === "directory_connected", timeouts.daemonReadyMs, "its directory_connected event"),
    ]);
    peer.transferUrl = ready.transferUrl;
  } catch (error) {
    await daemon.stop(2000);
    peer.daemon = null;
    throw error;
  }
}

export async function stopDaemon(peer: PeerNode): Promise<void> {
  const daemon = peer.daemon;
  peer.daemon = null;
  await daemon?.stop(15_000);
}

/**
 * Empties a downloader between runs: stops its daemon, deletes its chunk
 * store and what it downloaded, starts it again (the daemon re-announces its
 * now empty inventory on connect).
 */
export async function resetPeer(peer: PeerNode, logDir: string, timeouts: PeerTimeouts): Promise<void> {
  await stopDaemon(peer);
  await rm(join(peer.home, "store"), { recursive: true, force: true });
  await startDaemon(peer, logDir, timeouts);
}

/** A daemon that exited on its own: its error, for the run's failure message. */
export function deadDaemons(peers: readonly PeerNode[]): string[] {
  return peers.filter((p) => p.daemon && !p.daemon.running).map((p) => `${p.host.name}'s daemon exited\n${p.daemon!.describeTails()}`);
}
