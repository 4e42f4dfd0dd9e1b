/**
 * A cap on the bytes per second this peer's transfer server sends, shared
 * by every response (BitTorrent clients and Syncthing have the same knob:
 * a home peer must leave room on its uplink for everything else).
 *
 * A token bucket: tokens accrue at `bytesPerSecond` up to `burstBytes`; a
 * write of n bytes waits until n tokens are there. Waiters are served in
 * order, so one response cannot starve the others. Pieces larger than the
 * burst are passed in slices, never refused.
 */
import { Transform, type TransformCallback } from "node:stream";

export interface UploadLimiterOptions {
  bytesPerSecond: number;
  /** Default: 50 ms of the rate, at least 64 KiB. */
  burstBytes?: number;
  now?: () => number;
}

export class UploadLimiter {
  readonly bytesPerSecond: number;
  private readonly burstBytes: number;
  private readonly now: () => number;
  private tokens: number;
  private lastMs: number;
  private queue: Promise<void> = Promise.resolve();
  private waiters = 0;

  constructor(options: UploadLimiterOptions) {
    if (!(options.bytesPerSecond > 0) || !Number.isFinite(options.bytesPerSecond)) throw new RangeError(`UploadLimiter: bytesPerSecond must be a positive number, got ${options.bytesPerSecond}`);
    this.bytesPerSecond = options.bytesPerSecond;
    this.burstBytes = Math.max(options.burstBytes ?? options.bytesPerSecond / 20, 64 * 1024);
    this.now = options.now ?? (() => performance.now());
    this.tokens = this.burstBytes;
    this.lastMs = this.now();
  }

  /** Resolves when `bytes` may be sent. */
  take(bytes: number): Promise<void> {
    this.waiters++;
    const turn = this.queue.then(() => this.wait(bytes)).then(() => void this.waiters--);
    this.queue = turn;
    return turn;
  }

  /**
   * Writes waiting for their turn (a throttled response waits for one write
   * at a time, so this is the number of responses the cap holds back now):
   * part of the queue length this peer reports.
   */
  get waiting(): number {
    return this.waiters;
  }

  /** A stream stage that passes bytes through at the shared rate. */
  throttle(): Transform {
    const stream: Transform = new Transform({
      transform: (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) => {
        void (async () => {
          for (let at = 0; at < chunk.length; at += this.burstBytes) {
            const slice = chunk.subarray(at, at + this.burstBytes);
            await this.take(slice.length);
            stream.push(slice);
          }
        })().then(() => callback(), callback);
      },
    });
    return stream;
  }

  private async wait(bytes: number): Promise<void> {
    for (;;) {
      const nowMs = this.now();
      this.tokens = Math.min(this.burstBytes, this.tokens + ((nowMs - this.lastMs) * this.bytesPerSecond) / 1000);
      this.lastMs = nowMs;
      // A write larger than the burst waits for a full bucket and leaves a debt the next writes repay.
      if (this.tokens >= Math.min(bytes, this.burstBytes)) {
        this.tokens -= bytes;
        return;
      }
      const missingMs = ((Math.min(bytes, this.burstBytes) - this.tokens) * 1000) / this.bytesPerSecond;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.ceil(missingMs))));
    }
  }
}
