/**
 * Load on the directory's WebSockets: the message mix, a closed-loop load
 * generator (full speed with a bounded number of units outstanding, or paced
 * at a target rate), request→answer latency probes, and the ping test.
 *
 * A *unit* is what one peer sends before it waits: a status report followed
 * by an inventory announcement (the status has no answer; the announcement's
 * `ack` comes after it on the same socket, so it also shows the status was
 * handled), or a single FIND_NODE / FIND_PROVIDERS. At most one unit per
 * socket is outstanding, and at most `window` in all: messages/s is the
 * number of messages whose units were answered, over the wall time.
 */
import { cidFromSha256 } from "../../src/core/cid.js";
import { randomBytes, toHex } from "../../src/core/bytes.js";
import type { PeerToDirectory } from "../../src/core/messages.js";
import type { Answer, PeerSocket, SocketTotals } from "./socket.js";

export const ANNOUNCE_BATCH_CIDS = 20;

/** Share of units per kind in the load mix: mostly heartbeat/inventory traffic, a few lookups. */
export const UNIT_MIX = { report: 0.9, findNode: 0.05, findProviders: 0.05 } as const;

/** `report` = status + announce; `statusBarrier` = status + find_node (calibration: isolates the status report's cost). */
export type UnitKind = "report" | "announce" | "reannounce" | "statusBarrier" | "findNode" | "findProviders";
export type MessageKind = "status" | "announce" | "find_node" | "find_providers";

/** Pre-generated canonical CIDs, handed out in order and wrapping around. */
export class CidPool {
  private readonly cids: string[];
  private cursor = 0;
  private handedOut = 0;

  constructor(size: number) {
    this.cids = Array.from({ length: size }, () => cidFromSha256(randomBytes(32)));
  }

  take(count: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      out.push(this.cids[this.cursor]);
      this.cursor = (this.cursor + 1) % this.cids.length;
    }
    this.handedOut = Math.min(this.cids.length, this.handedOut + count);
    return out;
  }

  /** A CID that has been announced (so FIND_PROVIDERS has answers), or any when none was. */
  announced(): string {
    const n = Math.max(1, this.handedOut);
    return this.cids[Math.floor(Math.random() * n)];
  }
}

export function statusFrame(): string {
  return JSON.stringify({
    type: "status",
    load: { activeTransfers: Math.floor(Math.random() * 8), queueLength: Math.floor(Math.random() * 4), cpu: Math.round(Math.random() * 100) / 100 },
    freeBytes: 500_000_000_000 + Math.floor(Math.random() * 1e9),
  } satisfies PeerToDirectory);
}

/** The last CIDs each socket announced, so that `reannounce` can repeat them (as a reconnecting peer does). */
const lastAnnounced = new WeakMap<PeerSocket, string[]>();

export function announceFrame(id: string, cids: CidPool, socket: PeerSocket): string {
  const added = cids.take(ANNOUNCE_BATCH_CIDS);
  lastAnnounced.set(socket, added);
  return JSON.stringify({ type: "announce", id, added, removed: [] } satisfies PeerToDirectory);
}

function reannounceFrame(id: string, cids: CidPool, socket: PeerSocket): string {
  const added = lastAnnounced.get(socket);
  if (!added) return announceFrame(id, cids, socket);
  return JSON.stringify({ type: "announce", id, added, removed: [] } satisfies PeerToDirectory);
}

export function findNodeFrame(id: string): string {
  return JSON.stringify({ type: "find_node", id, target: toHex(randomBytes(32)) } satisfies PeerToDirectory);
}

export function findProvidersFrame(id: string, cids: CidPool): string {
  return JSON.stringify({ type: "find_providers", id, cid: cids.announced() } satisfies PeerToDirectory);
}

export function pickUnit(): UnitKind {
  const r = Math.random();
  if (r < UNIT_MIX.report) return "report";
  return r < UNIT_MIX.report + UNIT_MIX.findNode ? "findNode" : "findProviders";
}

export const UNIT_MESSAGES: Record<UnitKind, MessageKind[]> = {
  report: ["status", "announce"],
  announce: ["announce"],
  reannounce: ["announce"],
  statusBarrier: ["status", "find_node"],
  findNode: ["find_node"],
  findProviders: ["find_providers"],
};

/** Sends one unit on `socket`; resolves with its answer. */
export function sendUnit(socket: PeerSocket, kind: UnitKind, cids: CidPool): { id: string; answer: Promise<Answer> } {
  const id = socket.newId();
  if (kind === "report" || kind === "statusBarrier") socket.sendRaw(statusFrame());
  if (kind === "report" || kind === "announce") return { id, answer: socket.request(id, announceFrame(id, cids, socket)) };
  if (kind === "reannounce") return { id, answer: socket.request(id, reannounceFrame(id, cids, socket)) };
  if (kind === "findNode" || kind === "statusBarrier") return { id, answer: socket.request(id, findNodeFrame(id)) };
  return { id, answer: socket.request(id, findProvidersFrame(id, cids)) };
}

export interface LoadOptions {
  sockets: readonly PeerSocket[];
  durationMs: number;
  /** Most units outstanding at once. */
  window: number;
  /** Target messages per second; omit for full speed. */
  pacedMsgsPerSec?: number;
  cids: CidPool;
  /** A unit unanswered this long counts as lost and frees its slot. */
  unitTimeoutMs?: number;
  /** How long to wait for outstanding units after the last send. */
  drainTimeoutMs?: number;
  /** Unit kinds to send (default: the mix). */
  kinds?: () => UnitKind;
  /** Called when the measured interval ends (before draining), e.g. to stop latency probes. */
  onMeasuredEnd?: () => void;
}

export interface LoadResult {
  elapsedMs: number;
  /** Messages in units answered within the measured interval. */
  messagesAnswered: number;
  /** Also counting the units answered while draining after it (what the CPU measured around the run served). */
  messagesAnsweredWithDrain: number;
  msgsPerSec: number;
  byKind: Record<MessageKind, number>;
  unitsAnswered: number;
  /** Answers of type `error`, by code. */
  errors: Record<string, number>;
  lost: number;
  /** Largest WebSocket send buffer seen on one socket (client-side back-pressure). */
  maxBufferedBytes: number;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const { sockets, window } = opts;
  const unitTimeoutMs = opts.unitTimeoutMs ?? 30_000;
  const n = sockets.length;
  if (n === 0) throw new Error("runLoad: no sockets");
  const busy = new Uint8Array(n);
  const inFlight = new Map<number, { id: string; startedMs: number }>();
  const byKind: Record<MessageKind, number> = { status: 0, announce: 0, find_node: 0, find_providers: 0 };
  const errors: Record<string, number> = {};
  let cursor = 0;
  let messagesAnswered = 0;
  let messagesAnsweredWithDrain = 0;
  let unitsAnswered = 0;
  let lost = 0;
  let maxBufferedBytes = 0;
  let sending = true;
  let tokens = 0;
  const t0 = performance.now();
  let measuredEndMs = Infinity;

  const pick = opts.kinds ?? pickUnit;
  const pump = () => {
    while (sending && inFlight.size < window) {
      const kind = pick();
      const cost = UNIT_MESSAGES[kind].length;
      if (opts.pacedMsgsPerSec !== undefined && tokens < cost) return;
      let tries = 0;
      while ((busy[cursor] || sockets[cursor].closed) && tries < n) {
        cursor = (cursor + 1) % n;
        tries++;
      }
      if (tries === n) return;
      const index = cursor;
      cursor = (cursor + 1) % n;
      const socket = sockets[index];
      busy[index] = 1;
      tokens -= cost;
      const { id, answer } = sendUnit(socket, kind, opts.cids);
      inFlight.set(index, { id, startedMs: performance.now() });
      if ((index & 63) === 0) maxBufferedBytes = Math.max(maxBufferedBytes, socket.bufferedBytes);
      answer.then(
        (a) => {
          if (inFlight.get(index)?.id !== id) return; // timed out earlier
          inFlight.delete(index);
          busy[index] = 0;
          messagesAnsweredWithDrain += cost;
          if (performance.now() <= measuredEndMs) {
            unitsAnswered++;
            for (const m of UNIT_MESSAGES[kind]) byKind[m]++;
            messagesAnswered += cost;
          }
          if (a.type === "error") errors[a.code] = (errors[a.code] ?? 0) + 1;
          pump();
        },
        () => {
          if (inFlight.get(index)?.id !== id) return;
          inFlight.delete(index);
          busy[index] = 0;
          lost++;
          pump();
        },
      );
    }
  };

  let lastRefillMs = t0;
  const ticker = setInterval(() => {
    const now = performance.now();
    // Open loop: messages fall due at the target rate whether or not the directory keeps up (peers do not
    // wait for it); what cannot be sent while `window` units are outstanding waits, up to 5 s worth.
    if (opts.pacedMsgsPerSec !== undefined) tokens = Math.min(tokens + (opts.pacedMsgsPerSec * (now - lastRefillMs)) / 1000, opts.pacedMsgsPerSec * 5);
    lastRefillMs = now;
    for (const [index, u] of inFlight) {
      if (now - u.startedMs > unitTimeoutMs) {
        sockets[index].forget(u.id);
        inFlight.delete(index);
        busy[index] = 0;
        lost++;
      }
    }
    pump();
  }, 10);
  try {
    pump();
    await new Promise((r) => setTimeout(r, opts.durationMs));
    measuredEndMs = performance.now();
    sending = false;
    opts.onMeasuredEnd?.();
    const drainUntil = performance.now() + (opts.drainTimeoutMs ?? 15_000);
    while (inFlight.size > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 20));
    lost += inFlight.size;
    for (const [index, u] of inFlight) sockets[index].forget(u.id);
  } finally {
    clearInterval(ticker);
  }
  const elapsedMs = measuredEndMs - t0;
  return { elapsedMs, messagesAnswered, messagesAnsweredWithDrain, msgsPerSec: (messagesAnswered * 1000) / elapsedMs, byKind, unitsAnswered, errors, lost, maxBufferedBytes };
}

// ---- latency ---------------------------------------------------------------

export interface LatencySamples {
  find_node: number[];
  find_providers: number[];
  errors: number;
}

/**
 * Request → answer times of FIND_NODE and FIND_PROVIDERS, alternating, one
 * outstanding per probe socket, until `count` of each or `stop()` says so.
 */
export async function probeLatency(sockets: readonly PeerSocket[], cids: CidPool, opts: { count?: number; stop?: () => boolean; timeoutMs?: number }): Promise<LatencySamples> {
  const out: LatencySamples = { find_node: [], find_providers: [], errors: 0 };
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const enough = () => (opts.count !== undefined && out.find_node.length >= opts.count && out.find_providers.length >= opts.count) || (opts.stop?.() ?? false);
  await Promise.all(
    sockets.map(async (socket, i) => {
      let turn = i % 2;
      while (!enough() && !socket.closed) {
        const kind = turn++ % 2 === 0 ? "find_node" : "find_providers";
        const id = socket.newId();
        const frame = kind === "find_node" ? findNodeFrame(id) : findProvidersFrame(id, cids);
        const t0 = performance.now();
        let timer: NodeJS.Timeout | undefined;
        try {
          const answer = await Promise.race([socket.request(id, frame), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), timeoutMs)))]);
          const ms = performance.now() - t0;
          if (answer.type === "error") out.errors++;
          else out[kind].push(ms);
        } catch {
          socket.forget(id);
          out.errors++;
        } finally {
          clearTimeout(timer);
        }
      }
    }),
  );
  return out;
}

export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

// ---- one unit per socket (calibration) and pings -----------------------------

/** Every socket sends exactly one unit of `kind`; waits for all answers (bounded by `window` and a timeout). */
export async function oneUnitEach(sockets: readonly PeerSocket[], kind: UnitKind, cids: CidPool, window: number): Promise<{ answered: number; errors: Record<string, number>; elapsedMs: number }> {
  const t0 = performance.now();
  let next = 0;
  let answered = 0;
  const errors: Record<string, number> = {};
  const worker = async () => {
    while (next < sockets.length) {
      const socket = sockets[next++];
      if (socket.closed) continue;
      const { id, answer } = sendUnit(socket, kind, cids);
      let timer: NodeJS.Timeout | undefined;
      try {
        const a = await Promise.race([answer, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("timeout")), 30_000)))]);
        answered++;
        if (a.type === "error") errors[a.code] = (errors[a.code] ?? 0) + 1;
      } catch {
        socket.forget(id);
        errors.lost = (errors.lost ?? 0) + 1;
      } finally {
        clearTimeout(timer);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, sockets.length) }, worker));
  return { answered, errors, elapsedMs: performance.now() - t0 };
}

/** Sends "ping" `perSocket` times on every socket and waits for the pongs. */
export async function pingAll(sockets: readonly PeerSocket[], totals: SocketTotals, perSocket: number, timeoutMs: number): Promise<{ sent: number; pongs: number; elapsedMs: number }> {
  const before = totals.pongs;
  const t0 = performance.now();
  let sent = 0;
  for (let round = 0; round < perSocket; round++) {
    for (const s of sockets) {
      if (s.closed) continue;
      s.sendRaw("ping");
      sent++;
    }
  }
  const deadline = performance.now() + timeoutMs;
  while (totals.pongs - before < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return { sent, pongs: totals.pongs - before, elapsedMs: performance.now() - t0 };
}

/**
 * The peers' background heartbeat: every socket sends "ping" once per
 * `intervalMs`, spread evenly over the interval (as real peers' timers
 * drift apart). Without it, peers idle in a phase would look dead to the
 * directory's liveness sweep and the run would measure a death storm.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private cursor = 0;
  private carry = 0;
  private lastMs = 0;
  sent = 0;

  /** `frame` is what each socket sends once per interval: "ping" by default, a status report for the steady-state phase. */
  constructor(
    private readonly sockets: readonly PeerSocket[],
    private readonly intervalMs: number,
    private readonly frame: () => string = () => "ping",
  ) {}

  start(): void {
    if (this.timer) return;
    this.lastMs = performance.now();
    this.timer = setInterval(() => this.tick(), 100);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = performance.now();
    const n = this.sockets.length;
    this.carry += ((now - this.lastMs) * n) / this.intervalMs;
    this.lastMs = now;
    const due = Math.min(n, Math.floor(this.carry));
    this.carry -= due;
    for (let i = 0; i < due; i++) {
      const s = this.sockets[this.cursor];
      this.cursor = (this.cursor + 1) % n;
      if (!s.closed) {
        s.sendRaw(this.frame());
        this.sent++;
      }
    }
  }
}

/** One result from several slices of the same load (alternated with a baseline so both see the same machine). */
export function mergeLoads(parts: readonly LoadResult[]): LoadResult {
  const byKind: Record<MessageKind, number> = { status: 0, announce: 0, find_node: 0, find_providers: 0 };
  const errors: Record<string, number> = {};
  let elapsedMs = 0;
  let messagesAnswered = 0;
  let messagesAnsweredWithDrain = 0;
  let unitsAnswered = 0;
  let lost = 0;
  let maxBufferedBytes = 0;
  for (const p of parts) {
    elapsedMs += p.elapsedMs;
    messagesAnswered += p.messagesAnswered;
    messagesAnsweredWithDrain += p.messagesAnsweredWithDrain;
    unitsAnswered += p.unitsAnswered;
    lost += p.lost;
    maxBufferedBytes = Math.max(maxBufferedBytes, p.maxBufferedBytes);
    for (const k of Object.keys(byKind) as MessageKind[]) byKind[k] += p.byKind[k];
    for (const [code, n] of Object.entries(p.errors)) errors[code] = (errors[code] ?? 0) + n;
  }
  return { elapsedMs, messagesAnswered, messagesAnsweredWithDrain, msgsPerSec: elapsedMs > 0 ? (messagesAnswered * 1000) / elapsedMs : 0, byKind, unitsAnswered, errors, lost, maxBufferedBytes };
}
