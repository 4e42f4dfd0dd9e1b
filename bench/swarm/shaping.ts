/**
 * Link shaping with tc HTB, one rate per direction of every host:
 *  - upload:   HTB on the host's own interface (egress host → switch);
 *  - download: HTB on the switch-side end of its veth (egress switch → host).
 * No ifb is needed because every direction has an egress of its own.
 *
 * Each HTB has one class (rate = ceil = the configured line rate) and a leaf
 * queue: fq_codel when the kernel has it, else a byte-limited FIFO (bfifo)
 * holding about QUEUE_MS of the link's rate, like a typical access link
 * (a packet-limited pfifo would hold up to 1000 GSO super-packets, i.e.
 * megabytes, and turn the queue into seconds of delay for loss-based TCP).
 *
 * What the rate means (and so what the bench's bound uses): HTB charges each
 * packet qdisc_pkt_len(skb) — skb->len, which at a veth's egress includes the
 * 14-byte Ethernet header but not the preamble, SFD, FCS or inter-frame gap
 * (those do not exist on a veth) — and for a GSO super-packet the length of
 * every segment it will become, headers included (qdisc_pkt_len_init adds
 * (gso_segs − 1) × header length). So one full TCP segment costs
 * MTU + 14 bytes of rate and carries MTU − 20 (IP) − 20 (TCP) − 12 (the
 * timestamp option, on by default) bytes of payload: 1448 / 1514 = 95.6 % of
 * the configured rate at MTU 1500 (payloadShare()). ACKs of the opposite
 * direction's traffic also cost rate (66 bytes per one or two segments,
 * ~2–4 % of a link that carries data both ways); the bound ignores them, so
 * it is slightly optimistic. The link check (link-check.ts) measures the
 * goodput one TCP stream gets and compares it with rate × payloadShare.
 *
 * Delay: this kernel may have no sch_netem. probeQdiscs() tries it once in
 * a scratch namespace; with `--delay-ms` and netem present, each host's
 * upload leaf becomes `netem delay D` (one-way delay D per host egress, so
 * the RTT between two hosts is 2 D), otherwise the run records why no delay
 * was applied.
 *
 * TCP congestion control: a new network namespace inherits the machine's
 * default, which on this VM is bbr. Tried here (see docs/operations.md),
 * BBR v1 kept 8 loss-agnostic flows pushing into each downloader's 50 ms
 * FIFO and resent ~9 % of the publisher's bytes; reno resent 0.5 %. The
 * hosts stand for people's machines, whose systems default to a loss-based
 * algorithm (cubic on Linux, Windows and macOS), so the bench gives them
 * the first of `--tcp-cc` the kernel allows a namespace (an algorithm
 * outside net.ipv4.tcp_allowed_congestion_control can only be chosen in
 * the initial namespace; here that list is "reno bbr", so cubic falls back
 * to reno, which behaves the same at these round-trip times), and records
 * the choice.
 */
import { run, tryRun } from "./command.js";
import type { Host, Topology } from "./topology.js";

/** Leaf queue length of the FIFO, in milliseconds of the link's rate. */
const QUEUE_MS = 50;
/** Smallest leaf FIFO: two full GSO super-packets. */
const MIN_QUEUE_BYTES = 2 * 65_536 + 4 * 1514;
/** HTB may send this long at line rate before it must wait for tokens, at least a few full frames. */
const BURST_MS = 2;
const MIN_BURST_BYTES = 16 * 1514;
const ETHERNET_HEADER_BYTES = 14;
const IPV4_HEADER_BYTES = 20;
const TCP_HEADER_BYTES = 20;
const TCP_TIMESTAMP_OPTION_BYTES = 12;

export type LeafQueue = "fq_codel" | "bfifo";

export interface QdiscSupport {
  netem: boolean;
  /** Why netem cannot be used (the kernel's answer), when it cannot. */
  netemError: string | null;
  leaf: LeafQueue;
}

export interface DelayRecord {
  requestedMs: number;
  applied: boolean;
  /** e.g. "not applied (sch_netem missing)", "one-way 10 ms on every host's upload (RTT 20 ms)", "none requested". */
  note: string;
}

/** Tries netem and fq_codel on `lo` of a scratch namespace, then deletes it. */
export async function probeQdiscs(scratchNs: string): Promise<QdiscSupport> {
  await run("ip", ["netns", "add", scratchNs]);
  try {
    let netemError: string | null = null;
    try {
      await run("tc", ["-n", scratchNs, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]);
      await tryRun("tc", ["-n", scratchNs, "qdisc", "del", "dev", "lo", "root"]);
    } catch (error) {
      const text = (error as { stderr?: string }).stderr ?? (error as Error).message;
      netemError = /unknown/i.test(text) ? "sch_netem missing" : text.trim().split("\n")[0];
    }
    const fqCodel = (await tryRun("tc", ["-n", scratchNs, "qdisc", "add", "dev", "lo", "root", "fq_codel"])) !== null;
    return { netem: netemError === null, netemError, leaf: fqCodel ? "fq_codel" : "bfifo" };
  } finally {
    await tryRun("ip", ["netns", "del", scratchNs]);
  }
}

export interface CongestionControlRecord {
  /** What --tcp-cc asked for, in order; empty = inherit. */
  requested: string[];
  /** What every host namespace uses. */
  applied: string;
  /** The default a new namespace inherits on this machine. */
  machineDefault: string;
  note: string;
}

/** Finds the first of `wanted` a fresh namespace accepts (in a scratch namespace, deleted after). */
export async function probeCongestionControl(scratchNs: string, wanted: string[]): Promise<CongestionControlRecord> {
  await run("ip", ["netns", "add", scratchNs]);
  try {
    const key = "net.ipv4.tcp_congestion_control";
    const machineDefault = (await run("ip", ["netns", "exec", scratchNs, "sysctl", "-n", key])).trim();
    if (wanted.length === 0) return { requested: [], applied: machineDefault, machineDefault, note: `${machineDefault} (inherited from the machine)` };
    const refused: string[] = [];
    for (const name of wanted) {
      if ((await tryRun("ip", ["netns", "exec", scratchNs, "sysctl", "-qw", `${key}=${name}`])) !== null) {
        const note = `${name}${refused.length > 0 ? ` (${refused.join(", ")} not allowed in a namespace here)` : ""}; machine default ${machineDefault}`;
        return { requested: wanted, applied: name, machineDefault, note };
      }
      refused.push(name);
    }
    throw new Error(
      `none of the congestion controls ${wanted.join(", ")} can be used in a network namespace here (allowed: ${(await run("sysctl", ["-n", "net.ipv4.tcp_allowed_congestion_control"])).trim()}); pass --tcp-cc inherit or another list`,
    );
  } finally {
    await tryRun("ip", ["netns", "del", scratchNs]);
  }
}

export function delayRecord(requestedMs: number, support: QdiscSupport): DelayRecord {
  if (requestedMs <= 0) return { requestedMs: 0, applied: false, note: support.netem ? "none requested" : `none requested (sch_netem would be unavailable: ${support.netemError})` };
  if (!support.netem) return { requestedMs, applied: false, note: `not applied (${support.netemError})` };
  return { requestedMs, applied: true, note: `one-way ${requestedMs} ms on every host's upload (RTT ${2 * requestedMs} ms between hosts)` };
}

/** Payload bytes per byte HTB charges, for full-size TCP segments (see the module comment). */
export function payloadShare(mtuBytes = 1500, tcpTimestamps = true): number {
  const payload = mtuBytes - IPV4_HEADER_BYTES - TCP_HEADER_BYTES - (tcpTimestamps ? TCP_TIMESTAMP_OPTION_BYTES : 0);
  return payload / (mtuBytes + ETHERNET_HEADER_BYTES);
}

/** MTU of the host's interface and whether TCP timestamps are on in its namespace: the inputs of payloadShare(). */
export async function linkFraming(host: Host): Promise<{ mtuBytes: number; tcpTimestamps: boolean }> {
  const info = JSON.parse(await run("ip", ["-n", host.ns, "-j", "link", "show", "dev", host.hostIf])) as { mtu: number }[];
  const ts = (await run("ip", ["netns", "exec", host.ns, "sysctl", "-n", "net.ipv4.tcp_timestamps"])).trim();
  return { mtuBytes: info[0].mtu, tcpTimestamps: ts !== "0" };
}

async function shapeInterface(ns: string, dev: string, mbit: number, leaf: LeafQueue, delayMs: number): Promise<void> {
  const rateBits = Math.round(mbit * 1e6);
  const rateBytesPerS = rateBits / 8;
  const burst = Math.max(MIN_BURST_BYTES, Math.round((rateBytesPerS * BURST_MS) / 1000));
  // One class only, so the quantum only has to be in the range HTB accepts without a warning.
  const quantum = 20 * 1514;
  await run("tc", ["-n", ns, "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "1"]);
  await run("tc", [
    "-n",
    ns,
    "class",
    "add",
    "dev",
    dev,
    "parent",
    "1:",
    "classid",
    "1:1",
    "htb",
    "rate",
    `${rateBits}bit`,
    "ceil",
    `${rateBits}bit`,
    "burst",
    `${burst}b`,
    "cburst",
    `${burst}b`,
    "quantum",
    String(quantum),
  ]);
  const leafArgs =
    delayMs > 0
      ? ["netem", "delay", `${delayMs}ms`, "limit", "10000"]
      : leaf === "fq_codel"
        ? ["fq_codel"]
        : ["bfifo", "limit", String(Math.max(MIN_QUEUE_BYTES, Math.round((rateBytesPerS * QUEUE_MS) / 1000)))];
  await run("tc", ["-n", ns, "qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:", ...leafArgs]);
}

/** Shapes both directions of every host; `delay.applied` puts netem on every host's upload. */
export async function shapeTopology(topology: Topology, support: QdiscSupport, delay: DelayRecord): Promise<void> {
  for (const host of topology.hosts) {
    await shapeInterface(host.ns, host.hostIf, host.upMbit, support.leaf, delay.applied ? delay.requestedMs : 0);
    await shapeInterface(topology.switchNs, host.switchIf, host.downMbit, support.leaf, 0);
  }
}

/** Removes the shaping (the interfaces fall back to the kernel's default queue). */
export async function unshapeTopology(topology: Topology): Promise<void> {
  for (const host of topology.hosts) {
    await tryRun("tc", ["-n", host.ns, "qdisc", "del", "dev", host.hostIf, "root"]);
    await tryRun("tc", ["-n", topology.switchNs, "qdisc", "del", "dev", host.switchIf, "root"]);
  }
}

export interface ShaperStats {
  /** Packets the shaper dropped (queue full), and how often HTB had to hold traffic back. */
  drops: number;
  overlimits: number;
}

/** Drop and overlimit counts of the root HTB of one interface (0 when unshaped). */
export async function shaperStats(ns: string, dev: string): Promise<ShaperStats> {
  const out = await tryRun("tc", ["-n", ns, "-s", "-j", "qdisc", "show", "dev", dev]);
  if (!out) return { drops: 0, overlimits: 0 };
  const qdiscs = JSON.parse(out) as { kind: string; handle?: string; drops?: number; overlimits?: number }[];
  let drops = 0;
  let overlimits = 0;
  // The root HTB counts its leaf's drops as its own too: read the root only.
  for (const q of qdiscs) {
    if (q.kind !== "htb") continue;
    drops += q.drops ?? 0;
    overlimits += q.overlimits ?? 0;
  }
  return { drops, overlimits };
}
