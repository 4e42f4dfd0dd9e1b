/**
 * The emulated network: one namespace per host and a "switch" namespace
 * holding a bridge, each host joined to it by a veth pair.
 *
 *   <prefix>sw:   br0 ── v-origin ┐  ┌ v-pub ┐  ┌ v-p1 … v-pN
 *                                 │  │       │  │
 *   <prefix>origin  eth0 10.77.0.1   <prefix>pub eth0 10.77.0.2   <prefix>p1 eth0 10.77.0.3 …
 *
 * Every link and address lives inside namespaces this module created (the
 * root namespace gets neither an interface nor an address, and there is no
 * route out), IPv6 is off everywhere so that router solicitations and MLD
 * reports do not show up in the interface counters, and `lo` is up in each
 * host (the peers' control sockets are Unix sockets, Miniflare talks to
 * workerd over loopback).
 *
 * Names carry a per-run prefix `pcs-<pid>-`: removeStaleNamespaces() deletes
 * those of runs whose pid is gone (a run killed before its cleanup), and a
 * run never touches another live run's namespaces.
 */
import { readdirSync } from "node:fs";
import { run, tryRun } from "./command.js";

export const NAMESPACE_PREFIX = "pcs-";
const NETNS_DIR = "/run/netns";
/** Host-side interface name in every host namespace. */
export const HOST_IF = "eth0";
const BRIDGE = "br0";

export interface HostSpec {
  /** Short, unique, [a-z0-9]: "origin", "pub", "p1"… (the switch-side veth is `v-<name>`, ≤ 15 chars). */
  name: string;
  /** Shaped rates in Mbit/s of line rate (what HTB counts): upload = host → switch, download = switch → host. */
  upMbit: number;
  downMbit: number;
}

export interface Host extends HostSpec {
  ns: string;
  ip: string;
  /** The host's interface (in `ns`); its tx counter is what the host sent. */
  hostIf: string;
  /** The switch-side end of the host's veth (in the switch namespace). */
  switchIf: string;
}

export interface Topology {
  prefix: string;
  switchNs: string;
  subnet: string;
  hosts: Host[];
}

export function runPrefix(runId: string | number): string {
  return `${NAMESPACE_PREFIX}${runId}-`;
}

/** Namespaces whose name starts with `prefix`. */
export function listNamespaces(prefix = NAMESPACE_PREFIX): string[] {
  try {
    return readdirSync(NETNS_DIR)
      .filter((n) => n.startsWith(prefix))
      .sort();
  } catch {
    return [];
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Deletes `pcs-<pid>-*` namespaces whose run (pid) no longer exists, ending
 * the processes still inside them first (by their pids, as `ip netns pids`
 * lists them: leftovers of that dead run). Returns the names removed.
 */
export async function removeStaleNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = /^pcs-(\d+)-/.exec(ns);
    if (!m || pidAlive(Number(m[1]))) continue;
    const pids = ((await tryRun("ip", ["netns", "pids", ns])) ?? "").split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    if ((await tryRun("ip", ["netns", "del", ns])) !== null) removed.push(ns);
  }
  return removed;
}

async function addNamespace(ns: string, tcpCongestionControl?: string): Promise<void> {
  await run("ip", ["netns", "add", ns]);
  await run("ip", ["-n", ns, "link", "set", "lo", "up"]);
  await run("ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]);
  if (tcpCongestionControl) await run("ip", ["netns", "exec", ns, "sysctl", "-qw", `net.ipv4.tcp_congestion_control=${tcpCongestionControl}`]);
}

/**
 * Builds the switch and the hosts (addresses `<subnet>.1`, `.2`, … in the
 * order given), each host's TCP using `tcpCongestionControl` when given
 * (the switch terminates no TCP). On failure, whatever was made is removed
 * before the error propagates.
 */
export async function buildTopology(options: { prefix: string; subnet?: string; hosts: HostSpec[]; tcpCongestionControl?: string }): Promise<Topology> {
  const subnet = options.subnet ?? "10.77.0";
  if (options.hosts.length > 250) throw new RangeError(`at most 250 hosts fit in ${subnet}.0/24`);
  const names = new Set<string>();
  for (const h of options.hosts) {
    if (!/^[a-z0-9]{1,12}$/.test(h.name) || names.has(h.name)) throw new RangeError(`host name ${JSON.stringify(h.name)} must be unique, 1–12 of [a-z0-9]`);
    names.add(h.name);
  }
  const topology: Topology = { prefix: options.prefix, switchNs: `${options.prefix}sw`, subnet, hosts: [] };
  try {
    await addNamespace(topology.switchNs);
    await run("ip", ["-n", topology.switchNs, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0"]);
    await run("ip", ["-n", topology.switchNs, "link", "set", BRIDGE, "up"]);
    for (const [i, spec] of options.hosts.entries()) {
      const host: Host = { ...spec, ns: `${options.prefix}${spec.name}`, ip: `${subnet}.${i + 1}`, hostIf: HOST_IF, switchIf: `v-${spec.name}` };
      await addNamespace(host.ns, options.tcpCongestionControl);
      topology.hosts.push(host);
      // Created from inside the switch namespace with the peer end moved straight into the host's: never in the root namespace.
      await run("ip", ["-n", topology.switchNs, "link", "add", host.switchIf, "type", "veth", "peer", "name", host.hostIf, "netns", host.ns]);
      await run("ip", ["-n", topology.switchNs, "link", "set", host.switchIf, "master", BRIDGE]);
      await run("ip", ["-n", topology.switchNs, "link", "set", host.switchIf, "up"]);
      await run("ip", ["-n", host.ns, "addr", "add", `${host.ip}/24`, "dev", host.hostIf]);
      await run("ip", ["-n", host.ns, "link", "set", host.hostIf, "up"]);
    }
    return topology;
  } catch (error) {
    await destroyTopology(topology);
    throw error;
  }
}

/** Deletes every namespace of the topology (their veths go with them). Idempotent. */
export async function destroyTopology(topology: Pick<Topology, "prefix">): Promise<void> {
  await Promise.all(listNamespaces(topology.prefix).map((ns) => tryRun("ip", ["netns", "del", ns])));
}

export function hostByName(topology: Topology, name: string): Host {
  const host = topology.hosts.find((h) => h.name === name);
  if (!host) throw new Error(`no host ${name} in the topology`);
  return host;
}
