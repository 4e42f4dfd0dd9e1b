/**
 * The monthly Cloudflare bill of the control plane, from the rates this
 * bench measured and the protocol intervals in force (src/core/params.ts as
 * published by GET /v1/network), for a given number of peers.
 *
 * Prices (Workers Paid plan, USD) as published in Cloudflare's docs pages
 * "Pricing" (Workers → Platform; developers.cloudflare.com/workers/platform/pricing/),
 * "Pricing" (Durable Objects → Platform; developers.cloudflare.com/durable-objects/platform/pricing/),
 * "Pricing" (KV → Platform) and "Pricing" (R2; developers.cloudflare.com/r2/pricing/).
 * Change them here when Cloudflare does.
 */

export const PRICES = {
  workersPaidBaseUsd: 5,
  workerRequests: { includedPerMonth: 10e6, usdPerMillion: 0.3 },
  workerCpuMs: { includedPerMonth: 30e6, usdPerMillion: 0.02 },
  doRequests: { includedPerMonth: 1e6, usdPerMillion: 0.15, webSocketMessagesPerRequest: 20 },
  doDuration: { includedGbS: 400_000, usdPerMillionGbS: 12.5, gbPerObject: 0.128 },
  doRowsRead: { includedPerMonth: 25e9, usdPerMillion: 0.001 },
  doRowsWritten: { includedPerMonth: 50e6, usdPerMillion: 1.0 },
  doStorage: { includedGbMonth: 5, usdPerGbMonth: 0.2 },
  kvReads: { includedPerMonth: 10e6, usdPerMillion: 0.5 },
  kvWrites: { includedPerMonth: 1e6, usdPerMillion: 5.0 },
  r2Storage: { includedGbMonth: 10, usdPerGbMonth: 0.015 },
  r2ClassA: { includedPerMonth: 1e6, usdPerMillion: 4.5 },
  r2ClassB: { includedPerMonth: 10e6, usdPerMillion: 0.36 },
} as const;

export const HOURS_PER_MONTH = 730;

/** What the bench measured on this machine. */
export interface MeasuredRates {
  /** Messages/s one region object sustained (full speed, the realistic mix). */
  sustainedMsgsPerSec: number;
  /** Object wake-ups (handler invocations) per auto-answered ping and per status report. */
  wakesPerPing: number;
  wakesPerStatus: number;
  rowsWrittenPerStatus: number;
  rowsReadPerStatus: number;
  rowsWrittenPerAnnounce: number;
  rowsReadPerAnnounce: number;
  rowsReadPerLookup: number;
  /** A reconnecting peer re-announces its whole inventory: rows and object time per CID already known. */
  rowsReadPerReannouncedCid: number;
  rowsWrittenPerReannouncedCid: number;
  reannouncedCidsPerSec: number;
  /** Rows written per WebSocket connect (directory + replay guard). */
  rowsWrittenPerConnect: number;
  /** SQLite bytes per registered peer and per (chunk, holder) replica row. */
  dbBytesPerPeer: number;
  dbBytesPerReplica: number;
  /** Alarm invocations per region object per hour, as measured. */
  alarmsPerObjectHour: number;
}

/** Usage that the protocol does not fix; stated, not measured. */
export interface Assumptions {
  regions: number;
  announcesPerPeerHour: number;
  lookupsPerPeerHour: number;
  reconnectsPerPeerDay: number;
  /** Chunks a peer holds (each is one replica row in its region's directory). */
  chunksPerPeer: number;
  /** Worker CPU per authenticated request (Ed25519 verify + JSON), ms. */
  workerCpuMsPerRequest: number;
}

export const DEFAULT_ASSUMPTIONS: Assumptions = {
  regions: 3,
  announcesPerPeerHour: 1,
  lookupsPerPeerHour: 4,
  reconnectsPerPeerDay: 1,
  chunksPerPeer: 1000,
  workerCpuMsPerRequest: 2,
};

/** A network whose peers' inventories change little: one 20-CID batch per peer per day, one lookup per hour. */
export const QUIET_ASSUMPTIONS: Assumptions = { ...DEFAULT_ASSUMPTIONS, announcesPerPeerHour: 1 / 24, lookupsPerPeerHour: 1 };

export interface Intervals {
  heartbeatIntervalMs: number;
  statusIntervalMs: number;
  snapshotIntervalMs: number;
  certificateTtlMs: number;
  certificateRenewBeforeMs: number;
}

export interface CostLine {
  item: string;
  quantity: number;
  unit: string;
  formula: string;
  included: number;
  usd: number;
}

function billed(quantity: number, included: number, usdPerUnit: number): number {
  return Math.max(0, quantity - included) * usdPerUnit;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toLocaleString("en-US", { maximumFractionDigits: 2 }));

/** One month of the control plane for `peers` peers spread over `a.regions` region objects. */
export function monthlyBill(peers: number, m: MeasuredRates, iv: Intervals, a: Assumptions = DEFAULT_ASSUMPTIONS): { lines: CostLine[]; totalUsd: number } {
  const H = HOURS_PER_MONTH;
  const days = H / 24;
  const pingsPerPeerHour = 3_600_000 / iv.heartbeatIntervalMs;
  const statusPerPeerHour = 3_600_000 / iv.statusIntervalMs;
  const renewalsPerPeerDay = (24 * 3_600_000) / (iv.certificateTtlMs - iv.certificateRenewBeforeMs / 2);
  const messagesPerPeerHour = statusPerPeerHour + a.announcesPerPeerHour + a.lookupsPerPeerHour;
  const connects = peers * a.reconnectsPerPeerDay * days;
  // After each connect the peer re-announces its full inventory, in batches of up to 1,000 CIDs.
  const reannounceMessages = connects * Math.ceil(a.chunksPerPeer / 1000);
  const reannouncedCids = connects * a.chunksPerPeer;
  const messages = peers * messagesPerPeerHour * H + reannounceMessages;
  const renewals = peers * renewalsPerPeerDay * days;
  const alarms = a.regions * m.alarmsPerObjectHour * H;
  const snapshots = a.regions * (3_600_000 / iv.snapshotIntervalMs) * H;
  const pingWakes = peers * pingsPerPeerHour * H * m.wakesPerPing;

  const workerRequests = connects + renewals;
  // Per connect: the Worker's ReplayGuard claim (RPC) + the upgrade fetch to the region object.
  // Per renewal: ReplayGuard claim + peerState (RPC).
  const doRequests = messages / PRICES.doRequests.webSocketMessagesPerRequest + pingWakes / PRICES.doRequests.webSocketMessagesPerRequest + connects * 2 + renewals * 2 + alarms;
  // Billed duration: time in handlers. Locally one message occupies the object 1/sustained s at most.
  const activeSeconds = (messages - reannounceMessages + pingWakes) / m.sustainedMsgsPerSec + reannouncedCids / m.reannouncedCidsPerSec + alarms * 0.05;
  const gbS = activeSeconds * PRICES.doDuration.gbPerObject;
  const rowsWritten =
    peers * (statusPerPeerHour * m.rowsWrittenPerStatus + a.announcesPerPeerHour * m.rowsWrittenPerAnnounce) * H +
    connects * (m.rowsWrittenPerConnect + a.chunksPerPeer * m.rowsWrittenPerReannouncedCid) +
    renewals * 2 +
    alarms;
  const rowsRead =
    peers * (statusPerPeerHour * m.rowsReadPerStatus + a.announcesPerPeerHour * m.rowsReadPerAnnounce + a.lookupsPerPeerHour * m.rowsReadPerLookup) * H + reannouncedCids * m.rowsReadPerReannouncedCid;
  const storageGb = (peers * m.dbBytesPerPeer + peers * a.chunksPerPeer * m.dbBytesPerReplica) / 1e9;
  const P = PRICES;
  const lines: CostLine[] = [
    { item: "Workers Paid plan", quantity: 1, unit: "month", formula: "minimum charge", included: 0, usd: P.workersPaidBaseUsd },
    {
      item: "Worker requests",
      quantity: workerRequests,
      unit: "requests",
      formula: `${peers} peers × (${a.reconnectsPerPeerDay} reconnect + ${renewalsPerPeerDay.toFixed(2)} renewals)/day × ${days.toFixed(1)} d`,
      included: P.workerRequests.includedPerMonth,
      usd: billed(workerRequests, P.workerRequests.includedPerMonth, P.workerRequests.usdPerMillion / 1e6),
    },
    {
      item: "Worker CPU",
      quantity: workerRequests * a.workerCpuMsPerRequest,
      unit: "CPU ms",
      formula: `requests × ${a.workerCpuMsPerRequest} ms (assumed)`,
      included: P.workerCpuMs.includedPerMonth,
      usd: billed(workerRequests * a.workerCpuMsPerRequest, P.workerCpuMs.includedPerMonth, P.workerCpuMs.usdPerMillion / 1e6),
    },
    {
      item: "DO requests",
      quantity: doRequests,
      unit: "requests",
      formula: `${fmt(messages)} WS msgs (${fmt(messagesPerPeerHour)}/peer-h + 1 inventory per connect) ÷ 20 + ${fmt(pingWakes)} ping wakes + 2 × (${fmt(connects)} connects + ${fmt(renewals)} renewals) + ${fmt(alarms)} alarms`,
      included: P.doRequests.includedPerMonth,
      usd: billed(doRequests, P.doRequests.includedPerMonth, P.doRequests.usdPerMillion / 1e6),
    },
    {
      item: "DO duration",
      quantity: gbS,
      unit: "GB-s",
      formula: `${fmt(activeSeconds)} s active (msgs ÷ ${fmt(m.sustainedMsgsPerSec)}/s + inventories ÷ ${fmt(m.reannouncedCidsPerSec)} CIDs/s + 50 ms/alarm) × 0.128 GB`,
      included: P.doDuration.includedGbS,
      usd: billed(gbS, P.doDuration.includedGbS, P.doDuration.usdPerMillionGbS / 1e6),
    },
    {
      item: "DO SQLite rows written",
      quantity: rowsWritten,
      unit: "rows",
      formula: `peers × (${statusPerPeerHour} status × ${m.rowsWrittenPerStatus.toFixed(2)} + ${fmt(a.announcesPerPeerHour)} announce × ${m.rowsWrittenPerAnnounce.toFixed(1)})/h × ${H} h + connects × (${m.rowsWrittenPerConnect.toFixed(1)} + ${a.chunksPerPeer} × ${m.rowsWrittenPerReannouncedCid.toFixed(2)}) + renewals × 2 + alarms`,
      included: P.doRowsWritten.includedPerMonth,
      usd: billed(rowsWritten, P.doRowsWritten.includedPerMonth, P.doRowsWritten.usdPerMillion / 1e6),
    },
    {
      item: "DO SQLite rows read",
      quantity: rowsRead,
      unit: "rows",
      formula: `peers × (${statusPerPeerHour} × ${m.rowsReadPerStatus.toFixed(1)} + ${fmt(a.announcesPerPeerHour)} × ${m.rowsReadPerAnnounce.toFixed(1)} + ${a.lookupsPerPeerHour} × ${m.rowsReadPerLookup.toFixed(1)})/h × ${H} h + inventory CIDs × ${m.rowsReadPerReannouncedCid.toFixed(1)}`,
      included: P.doRowsRead.includedPerMonth,
      usd: billed(rowsRead, P.doRowsRead.includedPerMonth, P.doRowsRead.usdPerMillion / 1e6),
    },
    {
      item: "DO SQLite storage",
      quantity: storageGb,
      unit: "GB-month",
      formula: `peers × (${fmt(m.dbBytesPerPeer)} B + ${a.chunksPerPeer} chunks × ${fmt(m.dbBytesPerReplica)} B)`,
      included: P.doStorage.includedGbMonth,
      usd: billed(storageGb, P.doStorage.includedGbMonth, P.doStorage.usdPerGbMonth),
    },
    {
      item: "KV writes",
      quantity: snapshots,
      unit: "writes",
      formula: `${a.regions} regions × ${3_600_000 / iv.snapshotIntervalMs} snapshots/h × ${H} h`,
      included: P.kvWrites.includedPerMonth,
      usd: billed(snapshots, P.kvWrites.includedPerMonth, P.kvWrites.usdPerMillion / 1e6),
    },
  ];
  const totalUsd = lines.reduce((s, l) => s + l.usd, 0);
  return { lines, totalUsd };
}

/** R2 cold tier, per TiB of sealed chunks kept there (usage-driven, not per peer). */
export function r2PerTib(chunkBytes: number, fallbackReadsPerMonthTib: number): CostLine[] {
  const gb = 1024 ** 4 / 1e9;
  const objects = 1024 ** 4 / chunkBytes;
  const reads = (fallbackReadsPerMonthTib * 1024 ** 4) / chunkBytes;
  return [
    {
      item: "R2 storage",
      quantity: gb,
      unit: "GB-month",
      formula: "1 TiB",
      included: PRICES.r2Storage.includedGbMonth,
      usd: billed(gb, PRICES.r2Storage.includedGbMonth, PRICES.r2Storage.usdPerGbMonth),
    },
    {
      item: "R2 Class A (PUT, once)",
      quantity: objects,
      unit: "operations",
      formula: `1 TiB ÷ ${chunkBytes / 2 ** 20} MiB chunks`,
      included: PRICES.r2ClassA.includedPerMonth,
      usd: billed(objects, PRICES.r2ClassA.includedPerMonth, PRICES.r2ClassA.usdPerMillion / 1e6),
    },
    {
      item: "R2 Class B (GET)",
      quantity: reads,
      unit: "operations",
      formula: `${fallbackReadsPerMonthTib} TiB/month served from R2 ÷ chunk size`,
      included: PRICES.r2ClassB.includedPerMonth,
      usd: billed(reads, PRICES.r2ClassB.includedPerMonth, PRICES.r2ClassB.usdPerMillion / 1e6),
    },
  ];
}
