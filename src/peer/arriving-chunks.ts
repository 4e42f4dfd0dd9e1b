/**
 * Cut-through relaying: a downloader serves a chunk to the other members of
 * its swarm while the chunk's bytes are still arriving, instead of only
 * once the whole chunk is in its store.
 *
 * Why: in a swarm every piece crosses the network one hop after another
 * (publisher → first downloader → the others). Store-and-forward makes each
 * hop last a whole chunk's transfer time, and a sender shares its uplink
 * among several sends: 1 MiB at an eighth of 50 Mbit/s is 1.4 s, at an
 * eighth of 10 Mbit/s 6.7 s. At the start of a swarm nobody has anything
 * to trade for that long, and at the end the publisher's last pieces still
 * need that long to spread — the two gaps the swarm benchmark measured
 * between peercloud and the minimum distribution time (docs/operations.md).
 * Relaying the bytes as they land makes a hop cost a round trip instead.
 * (BitTorrent trades only whole pieces; Dragonfly and Kraken likewise. A
 * chunk here is verified as a whole against its CID, so relaying must not
 * weaken that.)
 *
 * Trust: the relayed bytes are unverified when they leave, so the last byte
 * is held back until this peer has checked the whole chunk against its CID
 * (`verified`). A recipient therefore never completes a chunk from a relay
 * that got wrong bytes: the relay cuts the stream instead (`fail`), the
 * recipient sees a truncated answer — an error, not corruption — and asks
 * elsewhere, and every recipient still hashes what it got as it does for
 * any source.
 *
 * The bytes live in the buffer the transfer client is filling anyway (one
 * per request, chunk-sized), so relaying copies nothing; a relayed stream
 * keeps that buffer alive until it ends.
 */
import { Readable } from "node:stream";

/** What the transfer server needs to stream a chunk (the shape of ChunkStore.openRead's answer, whole chunk). */
export interface ArrivingRead {
  stream: Readable;
  sizeBytes: number;
  start: number;
  end: number;
}

/** This peer's chunks arriving now, by CID (shared by the daemon's fetchers and its transfer server). */
export class ArrivingChunks {
  private readonly arrivals = new Map<string, Arrival>();

  /**
   * Offers `cid` for relaying while a fetch fills `body` (the chunk's full
   * size); null when another fetch of the same chunk is offered already
   * (an endgame duplicate), which then stays the one relayed.
   */
  begin(cid: string, body: Uint8Array): Arrival | null {
    if (this.arrivals.has(cid)) return null;
    const arrival = new Arrival(body, () => {
      if (this.arrivals.get(cid) === arrival) this.arrivals.delete(cid);
    });
    this.arrivals.set(cid, arrival);
    return arrival;
  }

  /** A stream of `cid`'s bytes — those arrived so far, then the rest as they arrive — or null when none is arriving. */
  open(cid: string): ArrivingRead | null {
    const arrival = this.arrivals.get(cid);
    if (!arrival) return null;
    const sizeBytes = arrival.sizeBytes;
    return { stream: arrival.reader(), sizeBytes, start: 0, end: sizeBytes };
  }

  /**
   * One fetch's offer of `cid` to the swarm, driven by the fetch itself: it
   * begins with the first bytes (`onBody`, the transfer client's body
   * progress), unless another fetch of the chunk is offered already, and
   * ends with `withdraw`. `offered`/`withdrawn` tell the swarm view.
   */
  tap(cid: string, hooks: { offered(): void; withdrawn(): void }): RelayTap {
    return new RelayTap(this, cid, hooks);
  }

  has(cid: string): boolean {
    return this.arrivals.has(cid);
  }

  /** Chunks offered now. */
  get size(): number {
    return this.arrivals.size;
  }
}

/** A fetch's side of relaying its chunk (ArrivingChunks.tap). */
export class RelayTap {
  private arrival: Arrival | null = null;
  private closed = false;

  constructor(
    private readonly arrivals: ArrivingChunks,
    private readonly cid: string,
    private readonly hooks: { offered(): void; withdrawn(): void },
  ) {}

  /** The fetch's body progress: offers the chunk at its first bytes, then lets readers have what arrived. */
  readonly onBody = (body: Uint8Array, receivedBytes: number): void => {
    if (this.closed) return;
    if (!this.arrival) {
      this.arrival = this.arrivals.begin(this.cid, body);
      if (!this.arrival) {
        // Another fetch of this chunk is the one offered.
        this.closed = true;
        return;
      }
      this.hooks.offered();
    }
    this.arrival.advance(receivedBytes);
  };

  /** The whole chunk matched its CID: relayed streams may finish. */
  verified(): void {
    this.arrival?.verified();
  }

  /** Ends the offer (the store serves the chunk now, or the fetch is over); with a reason the fetch failed, and streams are cut. Once only; later calls do nothing. */
  withdraw(reason?: Error): void {
    this.closed = true;
    const arrival = this.arrival;
    if (!arrival) return;
    this.arrival = null;
    if (reason) arrival.fail(reason);
    arrival.end();
    this.hooks.withdrawn();
  }
}

/** One chunk arriving, written by its fetch and read by any number of relayed streams. */
export class Arrival {
  private received = 0;
  private state: "arriving" | "verified" | "failed" = "arriving";
  private failure: Error | null = null;
  private readonly waiting = new Set<ArrivalReader>();

  constructor(
    private readonly body: Uint8Array,
    private readonly withdraw: () => void,
  ) {}

  get sizeBytes(): number {
    return this.body.length;
  }

  /** The first `received` bytes of the body are final. */
  advance(received: number): void {
    if (this.state !== "arriving" || received <= this.received) return;
    this.received = Math.min(received, this.body.length);
    this.wakeReaders();
  }

  /** The whole chunk matches its CID: the held-back tail may go. */
  verified(): void {
    if (this.state !== "arriving") return;
    this.received = this.body.length;
    this.state = "verified";
    this.wakeReaders();
  }

  /** The fetch failed (an error, wrong bytes, cancelled): every relayed stream is cut, and nobody new is offered it. */
  fail(reason: Error): void {
    if (this.state !== "arriving") return;
    this.state = "failed";
    this.failure = reason;
    this.withdraw();
    this.wakeReaders();
  }

  /** No longer offered (the store serves the chunk now, or the fetch is over); streams already open run to their end. */
  end(): void {
    this.withdraw();
  }

  /** How far a reader may read: everything once verified, otherwise all that arrived but the last byte. */
  readableBytes(): number {
    return this.state === "verified" ? this.body.length : Math.min(this.received, this.body.length - 1);
  }

  get error(): Error | null {
    return this.failure;
  }

  slice(from: number, to: number): Buffer {
    return Buffer.from(this.body.buffer, this.body.byteOffset + from, to - from);
  }

  reader(): ArrivalReader {
    return new ArrivalReader(this, this.waiting);
  }

  private wakeReaders(): void {
    // Called for every piece of the body the socket delivers; most chunks have nobody reading them.
    if (this.waiting.size === 0) return;
    for (const reader of [...this.waiting]) reader.pump();
  }
}

class ArrivalReader extends Readable {
  private sent = 0;

  constructor(
    private readonly arrival: Arrival,
    private readonly waiting: Set<ArrivalReader>,
  ) {
    super();
  }

  override _read(): void {
    this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.waiting.delete(this);
    callback(error);
  }

  /** Pushes what may be read; waits for the arrival's next step when caught up or when the consumer wants no more for now. */
  pump(): void {
    this.waiting.delete(this);
    if (this.destroyed) return;
    const failure = this.arrival.error;
    if (failure) {
      this.destroy(failure);
      return;
    }
    const total = this.arrival.sizeBytes;
    for (;;) {
      const until = this.arrival.readableBytes();
      if (this.sent === total) {
        this.push(null);
        return;
      }
      if (until <= this.sent) {
        this.waiting.add(this);
        return;
      }
      const piece = this.arrival.slice(this.sent, until);
      this.sent = until;
      if (!this.push(piece)) return;
    }
  }
}
