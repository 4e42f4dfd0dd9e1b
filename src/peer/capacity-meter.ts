/**
 * This peer's upload and download capacity as it reports it to its region
 * directory (issue 5, "Scores"): the configured upload cap when the
 * operator set one (`peer start --max-upload-rate`), else the peak rate its
 * transfers reached, from the byte counters the transfer server and client
 * keep as bytes stream.
 *
 * A peak, not an average: a peer moves bytes only when someone asks, so its
 * average rate says how busy it was, not how fast it can go. The rate is
 * taken over windows of at least `windowMs` (shorter windows mostly see
 * bursts into socket buffers) and the peak decays with a half-life counted
 * in busy time only: a window in which nothing moved says nothing about the
 * link, so an idle peer keeps its last known capacity, while a link that got
 * slower shows within a few half-lives of traffic. Zero means never
 * measured.
 *
 * Timestamps come from the caller (the daemon samples once a second), so
 * the meter is a pure function of its inputs.
 */

export interface ByteTotals {
  /** Bytes sent to other peers so far (only grows). */
  sentBytes: number;
  /** Bytes received from other peers so far (only grows). */
  receivedBytes: number;
}

export interface MeasuredCapacity {
  uploadBps: number;
  downloadBps: number;
}

export interface CapacityMeterOptions {
  /** The configured upload cap in bytes per second; reported as the upload capacity when set. */
  uploadLimitBps?: number;
  /** Shortest window a rate is taken over; samples closer together are merged. Default 1 s. */
  windowMs?: number;
  /** Half-life of the peak, in time during which bytes moved. Default 10 min. */
  halfLifeMs?: number;
}

export const DEFAULT_WINDOW_MS = 1000;
export const DEFAULT_HALF_LIFE_MS = 10 * 60_000;

export class CapacityMeter {
  private readonly windowMs: number;
  private readonly upload: DecayingPeak;
  private readonly download: DecayingPeak;
  private last: (ByteTotals & { atMs: number }) | null = null;

  constructor(private readonly options: CapacityMeterOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    const halfLifeMs = options.halfLifeMs ?? DEFAULT_HALF_LIFE_MS;
    if (!(this.windowMs > 0) || !(halfLifeMs > 0)) throw new RangeError("CapacityMeter: windowMs and halfLifeMs must be positive");
    if (options.uploadLimitBps !== undefined && !(options.uploadLimitBps > 0)) throw new RangeError("CapacityMeter: uploadLimitBps must be positive");
    this.upload = new DecayingPeak(halfLifeMs);
    this.download = new DecayingPeak(halfLifeMs);
  }

  /** Records the byte totals at `nowMs`; a window closes once `windowMs` passed since the previous one. */
  sample(nowMs: number, totals: ByteTotals): void {
    const last = this.last;
    if (last === null) {
      this.last = { atMs: nowMs, ...totals };
      return;
    }
    const elapsedMs = nowMs - last.atMs;
    if (elapsedMs < this.windowMs) return;
    this.upload.observe(totals.sentBytes - last.sentBytes, elapsedMs);
    this.download.observe(totals.receivedBytes - last.receivedBytes, elapsedMs);
    this.last = { atMs: nowMs, ...totals };
  }

  /** Whole bytes per second. */
  capacity(): MeasuredCapacity {
    return {
      uploadBps: this.options.uploadLimitBps !== undefined ? Math.round(this.options.uploadLimitBps) : wholeRate(this.upload.peakBps),
      downloadBps: wholeRate(this.download.peakBps),
    };
  }
}

/** The highest rate seen, fading by half every `halfLifeMs` of busy windows. */
class DecayingPeak {
  peakBps = 0;

  constructor(private readonly halfLifeMs: number) {}

  observe(bytes: number, elapsedMs: number): void {
    // Nothing moved (or a counter restarted): no evidence about the link either way.
    if (!(bytes > 0)) return;
    const rateBps = (bytes * 1000) / elapsedMs;
    const faded = this.peakBps * 2 ** (-elapsedMs / this.halfLifeMs);
    this.peakBps = Math.max(rateBps, faded);
  }
}

/** At least 1 once anything was measured: 0 is reserved for "never measured". */
function wholeRate(bps: number): number {
  return bps > 0 ? Math.max(1, Math.round(bps)) : 0;
}
