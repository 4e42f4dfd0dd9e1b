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
  /**
   * TCP segments the host's stack sent again (RetransSegs of its network
   * namespace's /proc/net/snmp): the part of `txBytes` that paid for loss
   * elsewhere (the receivers' downlink shapers) rather than carried new
   * bytes. 0 where only the interface was read (the 1 s origin sampler).
   */
  tcpRetransSegs: number;
}

interface LinkStatsJson {
  stats64?: { rx: { bytes: number; packets: number }; tx: { bytes: number; packets: number } };
}

export async function readCounters(ns: string, dev: string): Promise<InterfaceCounters> {
  const parsed = JSON.parse(await run("ip", ["-n", ns, "-s", "-j", "link", "show", "dev", dev])) as LinkStatsJson[];
  const stats = parsed[0]?.stats64;
  if (!stats) throw new Error(`no stats64 for ${dev} in ${ns}`);
  return { txBytes: stats.tx.bytes, rxBytes: stats.rx.bytes, txPackets: stats.tx.packets, rxPackets: stats.rx.packets, tcpRetransSegs: 0 };
}

/**
 * Every host's traffic in one read, from the switch-side ends of their
 * veths (one process, cheap enough to run every second on a busy machine):
 * what the switch received from a host is what the host sent, and what it
 * sent to a host (after the host's download shaper) is what the host
 * received. By host name; tx/rx from the host's point of view.
 */
export async function readHostsAtSwitch(topology: Topology): Promise<Map<string, { txBytes: number; rxBytes: number }>> {
  const parsed = JSON.parse(await run("ip", ["-n", topology.switchNs, "-s", "-j", "link", "show"])) as (LinkStatsJson & { ifname?: string })[];
  const out = new Map<string, { txBytes: number; rxBytes: number }>();
  for (const host of topology.hosts) {
    const stats = parsed.find((l) => l.ifname === host.switchIf)?.stats64;
    if (!stats) throw new Error(`no stats64 for ${host.switchIf} in ${topology.switchNs}`);
    out.set(host.name, { txBytes: stats.rx.bytes, rxBytes: stats.tx.bytes });
  }
  return out;
}

/** RetransSegs of the namespace's TCP stack (a cumulative counter). */
export async function readTcpRetransSegs(ns: string): Promise<number> {
  const lines = (await run("ip", ["netns", "exec", ns, "cat", "/proc/net/snmp"])).split("\n").filter((l) => l.startsWith("Tcp:"));
  const [names, values] = lines.map((l) => l.trim().split(/\s+/));
  const at = names?.indexOf("RetransSegs") ?? -1;
  if (at < 0 || !values) throw new Error(`no Tcp RetransSegs in /proc/net/snmp of ${ns}`);
  return Number(values[at]);
}

/** Counters of every host's own interface, by host name. */
export async function snapshotHosts(topology: Topology): Promise<Map<string, InterfaceCounters>> {
  const entries = await Promise.all(
    topology.hosts.map(async (h: Host) => {
      const [counters, tcpRetransSegs] = await Promise.all([readCounters(h.ns, h.hostIf), readTcpRetransSegs(h.ns)]);
      return [h.name, { ...counters, tcpRetransSegs }] as const;
    }),
  );
  return new Map(entries);
}

export function counterDelta(before: InterfaceCounters, after: InterfaceCounters): InterfaceCounters {
  return {
    txBytes: after.txBytes - before.txBytes,
    rxBytes: after.rxBytes - before.rxBytes,
    txPackets: after.txPackets - before.txPackets,
    rxPackets: after.rxPackets - before.rxPackets,
    tcpRetransSegs: after.tcpRetransSegs - before.tcpRetransSegs,
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
