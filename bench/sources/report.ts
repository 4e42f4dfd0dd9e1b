/**
 * From bench:sources' phases to what it prints: per run, each source's
 * bytes sent (interface counters) against its share of the sources' total
 * rate, and the completion time against the ideal; across runs, medians; a
 * plain-text table and the `--json` object.
 *
 * Ideal time: every source's upload busy from the first instant to the
 * last, i.e. F / Σ (source rate × TCP payload share), or F / (downlink ×
 * payload share) when the downloader's own line is the narrower one. It
 * ignores the get's start-up (manifest, provider lookup) and the sealing
 * overhead (AEAD tags, manifests: reported as `sealedBytes`), so a real run
 * is always somewhat above 1.
 */
import type { PhaseResult } from "../swarm/phase.js";

/** What a run must show to count as "a slow source serves proportionally less, near the ideal time" (issue 5, "Real check"). */
export const CHECKS = {
  /** The slowest source's share of bytes stays under this multiple of its share of rate. */
  slowestShareOverRateMax: 2,
  /** The fastest source sends more than this multiple of the slowest's bytes. */
  fastestOverSlowestMin: 3,
  /** Completion / ideal at most this. */
  ratioToIdealMax: 1.3,
  /** The publisher (stopped after the put) sends less than this share of the file. */
  publisherShareMax: 0.01,
} as const;

export interface PublishInfo {
  link: string;
  bytes: number;
  chunks: number;
  cids: number;
  sealedBytes: number;
  replicaPeers: string[];
  putSeconds: number;
  announcedSeconds: number;
}

export interface SourceSpec {
  name: string;
  rateMbit: number;
}

export interface SourceRow {
  name: string;
  rateMbit: number;
  /** What the source's interface sent during the phase (kernel counters). */
  bytesSent: number;
  shareOfBytes: number;
  shareOfRate: number;
  /** bytesSent / what its upload could carry in payload over the phase. */
  uploadUtilisation: number;
}

export interface RunResult {
  index: number;
  publish: PublishInfo;
  completionSeconds: number;
  idealSeconds: number;
  ratioToIdeal: number;
  sources: SourceRow[];
  /** Σ sources' bytes sent / F: headers, the get's own requests, and endgame duplicates (cancelled losers) above the file itself. */
  sourcesSentOverFile: number;
  publisherTxBytes: number;
  originTxBytes: number;
  downloaderRxBytes: number;
  /** What the get reported about where its objects came from (informational). */
  fromPeers: number | null;
  fromCold: number | null;
  shaperDrops: number;
  cpuSaturatedShare: number;
}

export interface Check {
  name: string;
  value: number;
  limit: string;
  pass: boolean;
}

export interface SourcesReport {
  benchmark: "sources";
  date: string;
  code: { commit: string | null; modified: string[] };
  fileBytes: number;
  runs: number;
  downMbit: number;
  payloadShare: number;
  idealSeconds: number;
  /** Medians across runs. */
  completionSeconds: number;
  ratioToIdeal: number;
  sources: SourceRow[];
  sourcesSentOverFile: number;
  publisherTxBytes: number;
  /** The run whose ratio is the median (lower middle for an even count), 1-based. */
  medianRun: number;
  checks: Check[];
  linkCheck: { from: string; to: string; expectedGoodputMbit: number; measuredGoodputMbit: number; ratio: number }[];
  runsDetail: RunResult[];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** Ideal completion time of `fileBytes` from `sources` to one downloader (see the module comment). */
export function idealSeconds(fileBytes: number, sourceRatesMbit: number[], downMbit: number, payloadShare: number): number {
  const lineMbit = Math.min(
    sourceRatesMbit.reduce((a, b) => a + b, 0),
    downMbit,
  );
  return (fileBytes * 8) / (lineMbit * 1e6 * payloadShare);
}

/** One run's figures from its phase (hosts named as in `sources`, "pub", "origin" and `downloader`). */
export function runResult(index: number, publish: PublishInfo, phase: PhaseResult, sources: SourceSpec[], downloader: string, ideal: number): RunResult {
  const sent = sources.map((s) => phase.hosts[s.name]?.txBytes ?? 0);
  const totalSent = sent.reduce((a, b) => a + b, 0);
  const totalRate = sources.reduce((a, s) => a + s.rateMbit, 0);
  const completionSeconds = phase.lastCompletionSeconds;
  const reported = phase.downloaders[0]?.reported ?? {};
  return {
    index,
    publish,
    completionSeconds,
    idealSeconds: ideal,
    ratioToIdeal: completionSeconds / ideal,
    sources: sources.map((s, i) => ({
      name: s.name,
      rateMbit: s.rateMbit,
      bytesSent: sent[i],
      shareOfBytes: totalSent > 0 ? sent[i] / totalSent : 0,
      shareOfRate: s.rateMbit / totalRate,
      uploadUtilisation: phase.uploadUtilisation[s.name] ?? 0,
    })),
    sourcesSentOverFile: totalSent / publish.bytes,
    publisherTxBytes: phase.hosts.pub?.txBytes ?? 0,
    originTxBytes: phase.hosts.origin?.txBytes ?? 0,
    downloaderRxBytes: phase.hosts[downloader]?.rxBytes ?? 0,
    fromPeers: typeof reported.fromPeers === "number" ? reported.fromPeers : null,
    fromCold: typeof reported.fromCold === "number" ? reported.fromCold : null,
    shaperDrops: phase.shaperDrops,
    cpuSaturatedShare: phase.cpu.saturatedShare,
  };
}

export function checksOf(ratioToIdeal: number, sources: SourceRow[], publisherTxBytes: number, fileBytes: number): Check[] {
  const slowest = sources.reduce((a, b) => (b.rateMbit < a.rateMbit ? b : a));
  const fastest = sources.reduce((a, b) => (b.rateMbit > a.rateMbit ? b : a));
  const slowestOverRate = slowest.shareOfBytes / slowest.shareOfRate;
  const fastestOverSlowest = slowest.bytesSent > 0 ? fastest.bytesSent / slowest.bytesSent : Infinity;
  const publisherShare = publisherTxBytes / fileBytes;
  return [
    {
      name: `slowest source (${slowest.name}) share of bytes / share of rate`,
      value: slowestOverRate,
      limit: `< ${CHECKS.slowestShareOverRateMax}`,
      pass: slowestOverRate < CHECKS.slowestShareOverRateMax,
    },
    {
      name: `fastest (${fastest.name}) bytes / slowest (${slowest.name}) bytes`,
      value: fastestOverSlowest,
      limit: `> ${CHECKS.fastestOverSlowestMin}`,
      pass: fastestOverSlowest > CHECKS.fastestOverSlowestMin,
    },
    { name: "completion / ideal", value: ratioToIdeal, limit: `≤ ${CHECKS.ratioToIdealMax}`, pass: ratioToIdeal <= CHECKS.ratioToIdealMax },
    { name: "publisher bytes sent / F (stopped after the put)", value: publisherShare, limit: `< ${CHECKS.publisherShareMax}`, pass: publisherShare < CHECKS.publisherShareMax },
  ];
}

/** Medians across runs; per source, each figure's median on its own. */
export function summarize(runs: RunResult[]): Pick<SourcesReport, "completionSeconds" | "ratioToIdeal" | "sources" | "sourcesSentOverFile" | "publisherTxBytes" | "medianRun" | "idealSeconds"> {
  const ratio = median(runs.map((r) => r.ratioToIdeal));
  const medianRun = runs.find((r) => r.ratioToIdeal === ratio)!.index;
  const sources = runs[0].sources.map((s, i) => ({
    name: s.name,
    rateMbit: s.rateMbit,
    bytesSent: median(runs.map((r) => r.sources[i].bytesSent)),
    shareOfBytes: median(runs.map((r) => r.sources[i].shareOfBytes)),
    shareOfRate: s.shareOfRate,
    uploadUtilisation: median(runs.map((r) => r.sources[i].uploadUtilisation)),
  }));
  return {
    idealSeconds: runs[0].idealSeconds,
    completionSeconds: median(runs.map((r) => r.completionSeconds)),
    ratioToIdeal: ratio,
    sources,
    sourcesSentOverFile: median(runs.map((r) => r.sourcesSentOverFile)),
    publisherTxBytes: median(runs.map((r) => r.publisherTxBytes)),
    medianRun,
  };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const pct = (share: number) => `${(share * 100).toFixed(1)} %`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  return [line(header), ...rows.map(line)].join("\n");
}

export function renderText(report: SourcesReport): string {
  const out: string[] = [];
  out.push(
    `bench:sources — ${mib(report.fileBytes)} from ${report.sources.length} sources (${report.sources.map((s) => s.rateMbit).join("/")} Mbit/s up) to one downloader (${report.downMbit} Mbit/s down); ${report.runs} run(s), medians`,
  );
  out.push(`code ${report.code.commit ?? "?"}${report.code.modified.length ? ` + ${report.code.modified.length} modified file(s) under src/workers/durable-objects` : ""}`);
  out.push(`link check (source → downloader, one TCP stream): ${report.linkCheck.map((m) => `${m.from} ${m.measuredGoodputMbit.toFixed(2)}/${m.expectedGoodputMbit.toFixed(2)} Mbit/s`).join(", ")}`);
  out.push("");
  out.push(
    table(
      ["source", "rate Mbit/s", "share of rate", "bytes sent", "share of bytes", "bytes/rate share", "upload busy"],
      report.sources.map((s) => [s.name, String(s.rateMbit), pct(s.shareOfRate), mib(s.bytesSent), pct(s.shareOfBytes), (s.shareOfBytes / s.shareOfRate).toFixed(2), pct(s.uploadUtilisation)]),
    ),
  );
  out.push(`sources sent ${report.sourcesSentOverFile.toFixed(3)} × F in all (headers, requests, endgame duplicates); publisher (daemon stopped after the put): ${mib(report.publisherTxBytes)} sent`);
  out.push("");
  out.push(
    `completion ${report.completionSeconds.toFixed(2)} s; ideal ${report.idealSeconds.toFixed(2)} s (F / Σ source rate × payload share ${report.payloadShare.toFixed(3)}); ratio ${report.ratioToIdeal.toFixed(3)}`,
  );
  out.push(
    `per run: ${report.runsDetail.map((r) => `#${r.index} ${r.completionSeconds.toFixed(2)} s = ${r.ratioToIdeal.toFixed(3)} × ideal, shares ${r.sources.map((s) => pct(s.shareOfBytes)).join("/")}, ${r.shaperDrops} drops, CPU saturated ${pct(r.cpuSaturatedShare)}`).join("; ")}`,
  );
  out.push("");
  for (const c of report.checks) out.push(`${c.pass ? "PASS" : "FAIL"}  ${c.name}: ${c.value.toFixed(3)} (${c.limit})`);
  return out.join("\n") + "\n";
}
