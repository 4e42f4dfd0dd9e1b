/**
 * Swarms: peers downloading the same file at the same time tell each other
 * which pieces they hold and which they are fetching, so that they trade
 * pieces among themselves and the publisher sends each piece about once.
 *
 * Why not the region directory alone: a piece fetched a moment ago reaches
 * the directory only with the next announcement batch, and a downloader asks
 * the directory once per piece; in a swarm every piece changes hands within
 * seconds. BitTorrent solves this with HAVE messages between the members of
 * a swarm; here the directory finds the members (everyone who holds the
 * file's root manifest: the publisher, replicas, and every downloader, whose
 * fetcher caches and announces the manifest first) and the members then ask
 * each other directly:
 *
 *   GET /v1/swarm/<key>?since=<seq>   (transfer server, session required)
 *   → { pieces, seq, have?: number[], bitmap?: base64, inFlight: number[], relaying?: number[], complete }
 *
 * `key` names one file of a download (the file manifest's CID, or
 * `<dir manifest CID>/<name>` for a small file inlined in a directory), and
 * pieces are numbered as chunk-scheduler.ts numbers them (distinct CIDs in
 * order of first occurrence), which every downloader derives identically
 * from the manifest. `have` lists the pieces received since `seq` (a
 * cursor into this peer's append-only log), or `bitmap` all of them when
 * the cursor is 0 or unknown; a piece is listed only once its chunk is in
 * the store, so it can be served. `relaying` lists the pieces in flight
 * whose bytes are arriving now, which this peer serves already, before they
 * are complete (arriving-chunks.ts); a member that does not relay omits it.
 * Answers are small (deltas), and a member
 * is polled every `pollMs` — a fraction of one chunk's transfer time.
 *
 * The board (this peer's side) keeps the file's progress after the download
 * ends (`complete`), for a while, so late members still learn it is a full
 * source; the directory knows it too by then.
 */
import { fromBase64Url, toBase64Url } from "../core/bytes.js";
import { ValidationError } from "../core/errors.js";

export const SWARM_PATH_PREFIX = "/v1/swarm/";
/** Longest swarm key accepted (a CID is ~59 characters; a directory entry adds a name). */
export const MAX_SWARM_KEY_LENGTH = 600;

/** What a member says of one file. */
export interface SwarmView {
  pieces: number;
  /** Cursor for the next poll. */
  seq: number;
  /** Pieces received since the cursor the poll gave (absent when `bitmap` is given). */
  have?: number[];
  /** All pieces held, one bit each, piece 0 = the lowest bit of byte 0 (base64url). */
  bitmap?: string;
  inFlight: number[];
  /** Pieces in flight that can be fetched from this member already (their bytes are arriving). */
  relaying?: number[];
  complete: boolean;
}

/** One file's progress in this peer (written by the fetcher, read by the transfer server). */
export class SwarmProgress {
  private readonly held: Uint8Array;
  private readonly log: number[] = [];
  private readonly fetching = new Map<number, number>();
  private readonly relayed = new Set<number>();
  /** Downloads of this key open now (a tree may name one file twice). */
  users = 0;
  lastUsedMs = 0;

  constructor(readonly pieces: number) {
    this.held = new Uint8Array(Math.ceil(pieces / 8));
  }

  started(piece: number): void {
    this.fetching.set(piece, (this.fetching.get(piece) ?? 0) + 1);
  }

  ended(piece: number): void {
    const n = (this.fetching.get(piece) ?? 0) - 1;
    if (n > 0) this.fetching.set(piece, n);
    else this.fetching.delete(piece);
  }

  /** The piece's bytes are arriving and served to others as they come (arriving-chunks.ts), until relayEnded. */
  relayStarted(piece: number): void {
    this.relayed.add(piece);
  }

  relayEnded(piece: number): void {
    this.relayed.delete(piece);
  }

  /** The piece's chunk is in the store: others may fetch it from here. */
  holds(piece: number): void {
    if (piece < 0 || piece >= this.pieces || this.has(piece)) return;
    this.held[piece >> 3] |= 1 << (piece & 7);
    this.log.push(piece);
  }

  has(piece: number): boolean {
    return (this.held[piece >> 3] & (1 << (piece & 7))) !== 0;
  }

  view(since: number): SwarmView {
    const complete = this.log.length === this.pieces;
    const inFlight = [...this.fetching.keys()];
    const relaying = [...this.relayed].filter((piece) => !this.has(piece));
    const base = { pieces: this.pieces, seq: this.log.length, inFlight, relaying, complete };
    if (since > 0 && since <= this.log.length) return { ...base, have: this.log.slice(since) };
    return { ...base, bitmap: toBase64Url(this.held) };
  }
}

export interface SwarmBoardOptions {
  /** Finished files remembered (least recently used forgotten first). Default 64. */
  maxFinished?: number;
  now?: () => number;
}

/** This peer's downloads in progress (and recently finished), by swarm key. */
export class SwarmBoard {
  private readonly entries = new Map<string, SwarmProgress>();
  private readonly maxFinished: number;
  private readonly now: () => number;

  constructor(options: SwarmBoardOptions = {}) {
    this.maxFinished = options.maxFinished ?? 64;
    this.now = options.now ?? Date.now;
  }

  /** Starts (or joins) the progress of `key`; call `release` when the download of it ends. */
  open(key: string, pieces: number): SwarmProgress {
    let entry = this.entries.get(key);
    if (!entry || entry.pieces !== pieces) {
      entry = new SwarmProgress(pieces);
      this.entries.set(key, entry);
    }
    entry.users++;
    entry.lastUsedMs = this.now();
    return entry;
  }

  release(entry: SwarmProgress): void {
    entry.users = Math.max(0, entry.users - 1);
    entry.lastUsedMs = this.now();
    const idle = [...this.entries].filter(([, e]) => e.users === 0).sort((a, b) => a[1].lastUsedMs - b[1].lastUsedMs);
    for (const [key] of idle.slice(0, Math.max(0, idle.length - this.maxFinished))) this.entries.delete(key);
  }

  view(key: string, since: number): SwarmView | null {
    return this.entries.get(key)?.view(since) ?? null;
  }
}

/** Checks a view from an untrusted member against the piece count this peer expects; null if it is about another file. */
export function parseSwarmView(value: unknown, pieces: number): SwarmView | null {
  const v = value as Partial<SwarmView> | null;
  if (typeof v !== "object" || v === null || v.pieces !== pieces) return null;
  const isPieceList = (list: unknown): list is number[] => Array.isArray(list) && list.length <= pieces && list.every((p) => Number.isSafeInteger(p) && p >= 0 && p < pieces);
  if (!Number.isSafeInteger(v.seq) || v.seq! < 0 || v.seq! > pieces || !isPieceList(v.inFlight) || typeof v.complete !== "boolean") return null;
  if (v.have !== undefined && !isPieceList(v.have)) return null;
  if (v.relaying !== undefined && !isPieceList(v.relaying)) return null;
  if (v.bitmap !== undefined && typeof v.bitmap !== "string") return null;
  if ((v.have === undefined) === (v.bitmap === undefined)) return null;
  return v as SwarmView;
}

/** The pieces a view says its member holds (from `have`, or decoded from `bitmap`). */
export function heldPieces(view: SwarmView): number[] {
  if (view.have) return view.have;
  const bits = fromBase64Url(view.bitmap!);
  const out: number[] = [];
  for (let piece = 0; piece < view.pieces && piece >> 3 < bits.length; piece++) if (bits[piece >> 3] & (1 << (piece & 7))) out.push(piece);
  return out;
}

/** Validates a swarm key from a URL path (already percent-decoded). */
export function checkSwarmKey(key: string): string {
  const control = [...key].some((ch) => ch.charCodeAt(0) < 0x20);
  if (key.length === 0 || key.length > MAX_SWARM_KEY_LENGTH || control) {
    throw new ValidationError(`swarm key must be 1 to ${MAX_SWARM_KEY_LENGTH} printable characters`, "bad_swarm_key");
  }
  return key;
}
