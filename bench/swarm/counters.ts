/**
 * Bytes each host put on and took off the wire, from the kernel's interface
 * counters (`ip -s -j link show`, the 64-bit stats): what the programs
 * claim about themselves is never used for traffic figures. A host's
 * interface tx is everything it sent (its upload), rx everything it
 * received. A veth counts skb->len once per skb, and TCP hands it GSO
 * super-packets of up to 64 KB whose headers are counted once, so the
 * counters read close to the payload (measured: 8 HTTP copies of 256 MiB =
 * 8.01 × F) — unlike HTB, which charges every future segment's headers
 * (shaping.ts).
 */
import { run } from "./command.js";
import type { Host, Topology } from "./topology.js";

export interface InterfaceCounters {
  txBytes: number;
  rxBytes: number;
  txPackets: number;
  rxPackets: number;
}

interface LinkStatsJson {
  stats64?: { rx: { bytes: number; packets: number }; tx: { bytes: number; packets: number } };
}

export async function readCounters(ns: string, dev: string): Promise<InterfaceCounters> {
  const parsed = JSON.parse(await run("ip", ["-n", ns, "-s", "-j", "link", "show", "dev", dev])) as LinkStatsJson[];
  const stats = parsed[0]?.stats64;
  if (!stats) throw new Error(`no stats64 for ${dev} in ${ns}`);
  return { txBytes: stats.tx.bytes, rxBytes: stats.rx.bytes, txPackets: stats.tx.packets, rxPackets: stats.rx.packets };
}

/** Counters of every host's own interface, by host name. */
export async function snapshotHosts(topology: Topology): Promise<Map<string, InterfaceCounters>> {
  const entries = await Promise.all(topology.hosts.map(async (h: Host) => [h.name, await readCounters(h.ns, h.hostIf)] as const));
  return new Map(entries);
}

export function counterDelta(before: InterfaceCounters, after: InterfaceCounters): InterfaceCounters {
  return {
    txBytes: after.txBytes - before.txBytes,
    rxBytes: after.rxBytes - before.rxBytes,
    txPackets: after.txPackets - before.txPackets,
    rxPackets: after.rxPackets - before.rxPackets,
  };
}

/** Per-host deltas between two snapshots. */
export function snapshotDelta(before: Map<string, InterfaceCounters>, after: Map<string, InterfaceCounters>): Map<string, InterfaceCounters> {
  const out = new Map<string, InterfaceCounters>();
  for (const [name, a] of after) {
    const b = before.get(name);
    if (b) out.set(name, counterDelta(b, a));
  }
  return out;
}
