/**
 * From the runs' raw results to what the bench prints: medians across runs
 * per system, the targets, a plain-text table, and the JSON object.
 */
import type { DistributionBound } from "./bound.js";
import type { LinkCheckResult } from "./link-check.js";
import type { PhaseResult, SystemName } from "./phase.js";
import type { CongestionControlRecord, DelayRecord, LeafQueue } from "./shaping.js";

export const TARGET_RATIO_TO_TMIN = 1.15;
export const TARGET_ORIGIN_EGRESS_RATIO = 1.2;

export interface PublishInfo {
  link: string;
  chunks: number;
  cids: number;
  sealedBytes: number;
  putSeconds: number;
  announcedSeconds: number;
}

export interface RunRecord {
  index: number;
  order: SystemName[];
  publish?: PublishInfo;
  peercloud?: PhaseResult;
  http?: PhaseResult;
}

export interface PeerRow {
  name: string;
  completionSeconds: number;
  txBytes: number;
  rxBytes: number;
  /** TCP segments the host sent again (counters.ts). */
  tcpRetransSegs: number;
  /** Bytes sent / what its upload could carry over the phase. */
  uploadUtilisation: number;
}

export interface SystemSummary {
  runs: number;
  /** Medians across runs. */
  lastCompletionSeconds: number;
  ratioToTMin: number;
  originEgressRatio: number;
  originTxBytes: number;
  cpuSaturatedShare: number;
  cpuMeanBusyShare: number;
  /** Medians of the mean shares of all cores: this run's processes, kernel irq/softirq, other processes. */
  cpuRunProcessesShare: number;
  cpuKernelIrqShare: number;
  cpuOtherProcessesShare: number;
  meanCompletionSeconds: number;
  perRun: { lastCompletionSeconds: number; originEgressRatio: number; cpuSaturatedShare: number; shaperDrops: number; maxGoLagMs: number }[];
  /** The run whose last completion is the median (lower middle for an even count). */
  medianRun: number;
  /** Per downloader, from the median run. */
  perPeer: PeerRow[];
  /** Bytes sent by each non-downloader host in the median run (origin, publisher), and its upload utilisation. */
  originHosts: Record<string, { txBytes: number; tcpRetransSegs: number; uploadUtilisation: number }>;
  /** Shares of all cores used by the run's long-lived processes in the median run (edge, daemons, HTTP server). */
  cpuByGroup: Record<string, number>;
  /** Median run: origin upload per second as a share of its payload line rate (phase.ts). */
  originUploadBySecond: number[];
  /** Median run: the downloaders' receiving per second as a share of their lines' payload rate (phase.ts). */
  downloadersReceiveBySecond: number[];
}

export interface Report {
  benchmark: "swarm";
  date: string;
  /** The code measured: the commit and the files under src/ and workers/ that differ from it. */
  code: { commit: string | null; modified: string[] };
  fileBytes: number;
  peers: number;
  runs: number;
  tMinSeconds: number;
  bound: DistributionBound;
  payloadShare: number;
  rates: { sourceMbit: number; upMbit: number[]; downMbit: number[] };
  shaping: { discipline: "htb"; leaf: LeafQueue; delay: DelayRecord; tcpCongestionControl: CongestionControlRecord };
  linkCheck: LinkCheckResult;
  cliStartupSeconds: number | null;
  peercloud?: SystemSummary;
  http?: SystemSummary;
  targets: { name: string; limit: string; value: number | null; pass: boolean | null }[];
  chart: string | null;
  runsDetail: RunRecord[];
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarizeSystem(results: PhaseResult[], tMinSeconds: number, downloaderNames: string[]): SystemSummary {
  const order = results.map((r, i) => [r.lastCompletionSeconds, i] as const).sort((a, b) => a[0] - b[0]);
  const medianRun = order[Math.floor((order.length - 1) / 2)][1];
  const m = results[medianRun];
  const last = median(results.map((r) => r.lastCompletionSeconds));
  return {
    runs: results.length,
    lastCompletionSeconds: last,
    ratioToTMin: last / tMinSeconds,
    originEgressRatio: median(results.map((r) => r.originEgressRatio)),
    originTxBytes: median(results.map((r) => r.originTxBytes)),
    cpuSaturatedShare: median(results.map((r) => r.cpu.saturatedShare)),
    cpuMeanBusyShare: median(results.map((r) => r.cpu.meanBusyShare)),
    cpuRunProcessesShare: median(results.map((r) => r.cpu.runProcessesShare)),
    cpuKernelIrqShare: median(results.map((r) => r.cpu.kernelIrqShare)),
    cpuOtherProcessesShare: median(results.map((r) => r.cpu.otherProcessesShare)),
    meanCompletionSeconds: median(results.map((r) => r.downloaders.reduce((s, d) => s + d.completionSeconds, 0) / r.downloaders.length)),
    perRun: results.map((r) => ({
      lastCompletionSeconds: r.lastCompletionSeconds,
      originEgressRatio: r.originEgressRatio,
      cpuSaturatedShare: r.cpu.saturatedShare,
      shaperDrops: r.shaperDrops,
      maxGoLagMs: Math.max(...r.downloaders.map((d) => d.goLagMs)),
    })),
    medianRun,
    perPeer: m.downloaders.map((d) => ({
      name: d.name,
      completionSeconds: d.completionSeconds,
      txBytes: d.txBytes,
      rxBytes: d.rxBytes,
      tcpRetransSegs: d.tcpRetransSegs,
      uploadUtilisation: m.uploadUtilisation[d.name],
    })),
    originHosts: Object.fromEntries(
      Object.entries(m.hosts)
        .filter(([name]) => !downloaderNames.includes(name))
        .map(([name, c]) => [name, { txBytes: c.txBytes, tcpRetransSegs: c.tcpRetransSegs, uploadUtilisation: m.uploadUtilisation[name] }]),
    ),
    cpuByGroup: m.cpu.byGroup,
    originUploadBySecond: m.originUploadBySecond,
    downloadersReceiveBySecond: m.downloadersReceiveBySecond,
  };
}

export function targetsOf(peercloud: SystemSummary | undefined): Report["targets"] {
  return [
    { name: "peercloud last completion / T_min", limit: `≤ ${TARGET_RATIO_TO_TMIN}`, value: peercloud?.ratioToTMin ?? null, pass: peercloud ? peercloud.ratioToTMin <= TARGET_RATIO_TO_TMIN : null },
    {
      name: "peercloud origin egress / F",
      limit: `≤ ${TARGET_ORIGIN_EGRESS_RATIO}`,
      value: peercloud?.originEgressRatio ?? null,
      pass: peercloud ? peercloud.originEgressRatio <= TARGET_ORIGIN_EGRESS_RATIO : null,
    },
  ];
}

const f = (n: number | null | undefined, digits = 1) => (n === null || n === undefined || !Number.isFinite(n) ? "–" : n.toFixed(digits));
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)}`;
/** Payload of one full TCP segment here (MTU 1500, timestamps on; shaping.ts): the bytes a resent segment repeats. */
const TCP_MSS_BYTES = 1448;
const pct = (share: number) => `${(share * 100).toFixed(0)} %`;

function table(rows: string[][], align: ("l" | "r")[]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map(
    (r) =>
      "  " +
      r
        .map((cell, c) => (align[c] === "l" ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
        .join("   ")
        .trimEnd(),
  );
}

export function renderText(r: Report): string {
  const out: string[] = [];
  const b = r.bound;
  const uniform = (xs: number[]) => xs.every((x) => x === xs[0]);
  const rateText =
    uniform(r.rates.upMbit) && uniform(r.rates.downMbit)
      ? `peers ${r.rates.upMbit[0]} up / ${r.rates.downMbit[0]} down Mbit/s`
      : `peers up ${r.rates.upMbit.join(",")} / down ${r.rates.downMbit.join(",")} Mbit/s`;
  out.push(`swarm benchmark, ${r.date}: ${r.peers} peers, file ${mib(r.fileBytes)} MiB, ${rateText}, source ${r.rates.sourceMbit} Mbit/s; median of ${r.runs} run(s)`);
  out.push(`code: ${r.code.commit ?? "unknown commit"}${r.code.modified.length ? ` + uncommitted changes in ${r.code.modified.join(", ")}` : ""}`);
  out.push(`shaping: HTB + ${r.shaping.leaf} leaf on every host, both directions; delay: ${r.shaping.delay.note}; TCP congestion control: ${r.shaping.tcpCongestionControl.note}`);
  out.push(
    `T_min (Kumar–Ross) = ${f(r.tMinSeconds)} s = max(F/u_s ${f(b.terms.sourceUploadSeconds)}, F/d_min ${f(b.terms.slowestDownloadSeconds)}, N·F/(u_s+Σu_i) ${f(b.terms.aggregateUploadSeconds)}) — binding: ${b.binding}; central-server minimum ${f(b.centralServerSeconds)} s; TCP payload ${(r.payloadShare * 100).toFixed(2)} % of line rate`,
  );
  out.push("link check (one TCP stream each way; goodput measured / expected):");
  for (const m of r.linkCheck.measurements)
    out.push(`  ${m.from} → ${m.to}: ${f(m.measuredGoodputMbit, 2)} / ${f(m.expectedGoodputMbit, 2)} Mbit/s = ${f(m.ratio, 3)} ${m.ok ? "ok" : `OFF (tolerance ±${r.linkCheck.tolerance * 100} %)`}`);
  out.push("");
  const systems = (["peercloud", "http"] as const).filter((s) => r[s]);
  const rows: string[][] = [["", ...systems]];
  const row = (label: string, get: (s: SystemSummary) => string) => rows.push([label, ...systems.map((s) => get(r[s]!))]);
  row("last completion, s (median)", (s) => f(s.lastCompletionSeconds));
  row("  per run", (s) => s.perRun.map((p) => f(p.lastCompletionSeconds)).join(" / "));
  row("last completion / T_min", (s) => f(s.ratioToTMin, 2));
  row("mean completion, s", (s) => f(s.meanCompletionSeconds));
  row("origin egress / F (counters)", (s) => f(s.originEgressRatio, 2));
  row("origin bytes sent, MiB", (s) => mib(s.originTxBytes));
  row("CPU saturated seconds", (s) => pct(s.cpuSaturatedShare));
  row("CPU mean busy (all cores)", (s) => pct(s.cpuMeanBusyShare));
  row("  this run's processes", (s) => pct(s.cpuRunProcessesShare));
  row("  kernel irq/softirq", (s) => pct(s.cpuKernelIrqShare));
  row("  other processes", (s) => pct(s.cpuOtherProcessesShare));
  const groups = [...new Set(systems.flatMap((s) => Object.keys(r[s]!.cpuByGroup)))];
  for (const g of groups) row(`    of ours: ${g} (median run)`, (s) => (g in s.cpuByGroup ? pct(s.cpuByGroup[g]) : "–"));
  row("shaper drops (packets)", (s) => s.perRun.map((p) => String(p.shaperDrops)).join(" / "));
  row("max go lag, ms", (s) => f(Math.max(...s.perRun.map((p) => p.maxGoLagMs)), 1));
  out.push(...table(rows, ["l", ...systems.map(() => "r" as const)]));
  out.push("");
  out.push("per host (median run; MiB from interface counters; resent = TCP segments sent again × MSS; up = sent / what the upload could carry until the last completion):");
  const peerRows: string[][] = [["host", ...systems.flatMap((s) => [`${s} done, s`, "sent", "resent", "received", "up"])]];
  const names = r[systems[0]]!.perPeer.map((p) => p.name);
  for (const name of names) {
    peerRows.push([
      name,
      ...systems.flatMap((s) => {
        const p = r[s]!.perPeer.find((x) => x.name === name)!;
        return [f(p.completionSeconds), mib(p.txBytes), mib(p.tcpRetransSegs * TCP_MSS_BYTES), mib(p.rxBytes), pct(p.uploadUtilisation)];
      }),
    ]);
  }
  const originLabel: Record<string, string> = { origin: "origin host (edge, HTTP server)", pub: "publisher host" };
  for (const host of Object.keys(r[systems[0]]!.originHosts)) {
    peerRows.push([
      originLabel[host] ?? host,
      ...systems.flatMap((s) => {
        const o = r[s]!.originHosts[host];
        return ["", mib(o?.txBytes ?? 0), o ? mib(o.tcpRetransSegs * TCP_MSS_BYTES) : "–", "", o ? pct(o.uploadUtilisation) : "–"];
      }),
    ]);
  }
  out.push(...table(peerRows, ["l", ...systems.flatMap(() => ["r", "r", "r", "r", "r"] as const)]));
  out.push("");
  const timelines: [string, (summary: SystemSummary) => number[]][] = [
    ["origin upload over time (median run; % of its line's payload rate, mean of each 5 s):", (x) => x.originUploadBySecond],
    ["downloaders' receiving over time (median run; all together, % of their lines' payload rate, mean of each 5 s):", (x) => x.downloadersReceiveBySecond],
  ];
  for (const [title, series] of timelines) {
    out.push(title);
    for (const s of systems)
      out.push(
        `  ${s.padEnd(9)} ${fiveSecondMeans(series(r[s]!))
          .map((v) => String(Math.round(v * 100)).padStart(3))
          .join(" ")}`,
      );
  }
  out.push("");
  if (r.cliStartupSeconds !== null)
    out.push(
      `for reference: starting the CLI (\`peercloud --json status\` against a running daemon, one process alone) takes ${f(r.cliStartupSeconds, 2)} s, which \`peercloud get\` would add to each completion; the drivers above are preloaded`,
    );
  for (const t of r.targets) out.push(`target ${t.name} ${t.limit}: ${t.pass === null ? "not measured" : `${t.pass ? "PASS" : "FAIL"} (${f(t.value, 2)})`}`);
  if (r.chart) out.push(`chart: ${r.chart}`);
  return out.join("\n") + "\n";
}

function fiveSecondMeans(perSecond: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < perSecond.length; i += 5) {
    const slice = perSecond.slice(i, i + 5);
    out.push(slice.reduce((a, b) => a + b, 0) / slice.length);
  }
  return out;
}
