/**
 * The downloader's side of a swarm (swarm.ts): finds the other members
 * (holders of the root manifest, through the directory) and polls each for
 * its view of the file, reporting what they hold and fetch to the fetcher.
 *
 * One loop per member, each with at most one request in flight, so a slow
 * or dead member delays only its own news. A member that fails
 * `maxFailures` polls in a row is forgotten (its in-flight pieces stop
 * deferring anything) until the next membership refresh finds it again. A
 * member whose view is `complete` holds the whole file: it is not polled
 * again. Everything a member says is checked (parseSwarmView) before use.
 *
 * Membership lookups back off: often at the start, when every downloader
 * announces the manifest at about the same moment, then every `refreshMs`,
 * doubling up to `maxRefreshMs` while they find nobody new (back to
 * `refreshMs` when they do). Each lookup is a region-directory request that
 * lists every member; at 16 downloaders on 10 Mbit/s links a lookup every
 * second per downloader made the edge send 0.13 × the file's size. A
 * newcomer still finds the others at once (its own first lookups), and is
 * found by them within `maxRefreshMs`, before it holds much to trade.
 */
import type { ChunkSource, ProviderDirectory } from "./sources.js";
import { heldPieces, parseSwarmView, type SwarmView } from "./swarm.js";
import { sleep } from "../core/abort.js";

export interface SwarmWatcherOptions {
  /** The file's swarm key (see swarm.ts). */
  key: string;
  /** The root manifest whose holders are the swarm's members. */
  rootCid: string;
  pieces: number;
  providers: ProviderDirectory;
  /** A member's news: pieces it holds (new since its last view), all it fetches now, whether it holds everything, and the pieces it serves while they arrive. */
  onView(source: ChunkSource, held: number[], inFlight: number[], complete: boolean, relaying: number[]): void;
  /** A member stopped answering: forget what it was fetching. */
  onGone(sourceId: string): void;
  /** Ends the watch. */
  signal: AbortSignal;
  /** Between two polls of one member: a number, or a function asked before each wait (the fetcher's follows its pieces' transfer time). Default 250 ms. */
  pollMs?: number | (() => number);
  /** Between two membership lookups after the first few. Default 1000 ms. */
  refreshMs?: number;
  /** Longest interval the lookups back off to while they find nobody new. Default 8000 ms. */
  maxRefreshMs?: number;
  /** Failed polls in a row before a member is forgotten. Default 3. */
  maxFailures?: number;
  /** Waits between lookups and polls (tests pass a virtual one). Default: a timer, ended early by `signal`. */
  wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const EARLY_REFRESHES = 10;
const EARLY_REFRESH_MS = 200;

type Member = ChunkSource & Required<Pick<ChunkSource, "swarmView">>;

export class SwarmWatcher {
  private readonly watching = new Map<string, Promise<void>>();
  /** Members that hold the whole file: nothing more to learn from them. */
  private readonly complete = new Set<string>();
  /** Every member seen so far (a lookup that finds only these finds nobody new). */
  private readonly known = new Set<string>();
  private readonly pollMs: () => number;
  private readonly refreshMs: number;
  private readonly maxRefreshMs: number;
  private readonly maxFailures: number;
  private readonly wait: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(private readonly o: SwarmWatcherOptions) {
    const pollMs = o.pollMs ?? 250;
    this.pollMs = typeof pollMs === "number" ? () => pollMs : pollMs;
    this.refreshMs = o.refreshMs ?? 1000;
    this.maxRefreshMs = Math.max(this.refreshMs, o.maxRefreshMs ?? 8000);
    this.maxFailures = o.maxFailures ?? 3;
    this.wait = o.wait ?? idle;
  }

  /** Runs until the signal aborts; never rejects. */
  async run(): Promise<void> {
    const { signal } = this.o;
    let refreshes = 0;
    let intervalMs = this.refreshMs;
    while (!signal.aborted) {
      let found = false;
      try {
        for (const source of await this.o.providers.providers(this.o.rootCid, signal)) {
          if (!source.swarmView) continue;
          if (!this.known.has(source.id)) {
            this.known.add(source.id);
            found = true;
          }
          if (!this.watching.has(source.id) && !this.complete.has(source.id)) this.watch(source as Member);
        }
      } catch {
        // The directory is unreachable for now: the members already known keep being polled.
      }
      // Members announce the manifest as they start, all at about the same time: look often at first.
      if (++refreshes <= EARLY_REFRESHES) {
        await this.wait(Math.min(EARLY_REFRESH_MS, this.refreshMs), signal);
        continue;
      }
      intervalMs = found ? this.refreshMs : Math.min(this.maxRefreshMs, intervalMs * 2);
      await this.wait(intervalMs, signal);
    }
    await Promise.allSettled(this.watching.values());
  }

  private watch(member: Member): void {
    const done = this.poll(member).finally(() => this.watching.delete(member.id));
    this.watching.set(member.id, done);
  }

  private async poll(member: Member): Promise<void> {
    const { signal } = this.o;
    let since = 0;
    let failures = 0;
    while (!signal.aborted) {
      let view: SwarmView | null = null;
      try {
        view = parseSwarmView(await member.swarmView(this.o.key, since, signal), this.o.pieces);
      } catch {
        view = null;
      }
      if (signal.aborted) return;
      if (!view) {
        // Not (yet) downloading this file, gone, or talking nonsense.
        if (++failures >= this.maxFailures) {
          this.o.onGone(member.id);
          return;
        }
      } else {
        failures = 0;
        // A cursor ahead of the member's log means it restarted: the next answer is a full bitmap.
        since = view.seq;
        this.o.onView(member, heldPieces(view), view.complete ? [] : view.inFlight, view.complete, view.complete ? [] : (view.relaying ?? []));
        if (view.complete) {
          this.complete.add(member.id);
          return;
        }
      }
      await this.wait(this.pollMs(), signal);
    }
  }
}

/** Waits `ms`, or less if the watch ends (the loops then see the aborted signal). */
function idle(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => {});
}
