/**
 * Keeps the daemon's certificate fresh (POST /v1/certificates/renew).
 *
 * The edge accepts a renewal only in the last `renewBeforeMs` of a
 * certificate's life (earlier is 409 `too_early_to_renew`), so the renewal
 * is scheduled a little after that window opens — 10–20 % into it, jittered
 * so a fleet that joined together does not renew together, and late enough
 * that a few minutes of clock skew cannot make it "too early". A failure
 * (edge unreachable, 5xx) is retried with doubling delays (30 s up to
 * 15 min), never past expiry. Once expired, a certificate cannot renew: the
 * renewer reports `certificate_expired` and stops; the operator re-joins
 * (`peercloud init --rejoin`).
 */
import type { RenewResponse } from "../core/bootstrap.js";
import { isPeercloudError } from "../core/errors.js";

export interface RenewalEvent {
  event: "certificate_renewed" | "certificate_renew_failed" | "certificate_expired";
  message: string;
  expiresAtMs?: number;
  retryInMs?: number;
}

export interface CertificateRenewerOptions {
  /** Expiry of the certificate in force. */
  expiresAtMs: () => number;
  /** The edge's renewal window (network parameter certificateRenewBeforeMs). */
  renewBeforeMs: number;
  renew: () => Promise<RenewResponse>;
  /** Persists and installs the new certificate; a throw counts as a failed renewal. */
  install: (renewed: RenewResponse) => Promise<void>;
  onEvent: (event: RenewalEvent) => void;
  now?: () => number;
  random?: () => number;
  /** First retry delay after a failure. Default 30 s. */
  retryBaseMs?: number;
  /** Longest retry delay. Default 15 min. */
  retryMaxMs?: number;
}

/** setTimeout's limit (about 24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class CertificateRenewer {
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private running = false;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly options: CertificateRenewerOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  start(): void {
    this.running = true;
    this.schedule(this.dueInMs());
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Milliseconds until the next renewal attempt is due (0 when already inside the window's due part). */
  dueInMs(): number {
    const window = this.options.renewBeforeMs;
    const dueAtMs = this.options.expiresAtMs() - window + window * (0.1 + 0.1 * this.random());
    return Math.max(0, dueAtMs - this.now());
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    const step = Math.min(delayMs, MAX_TIMER_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (step < delayMs) return this.schedule(delayMs - step);
      void this.attempt();
    }, step);
    this.timer.unref();
  }

  private async attempt(): Promise<void> {
    if (!this.running) return;
    const leftMs = this.options.expiresAtMs() - this.now();
    if (leftMs <= 0) {
      this.options.onEvent({ event: "certificate_expired", message: "the certificate expired; re-join with `peercloud init --rejoin --edge URL --join-token TOKEN`" });
      return this.stop();
    }
    try {
      const renewed = await this.options.renew();
      await this.options.install(renewed);
      this.failures = 0;
      this.options.onEvent({ event: "certificate_renewed", message: `valid until ${new Date(renewed.certificateExpiresAtMs).toISOString()}`, expiresAtMs: renewed.certificateExpiresAtMs });
      this.schedule(this.dueInMs());
    } catch (error) {
      const code = isPeercloudError(error) ? error.code : "error";
      if (code === "certificate_expired") {
        this.options.onEvent({ event: "certificate_expired", message: "the edge says the certificate expired; re-join with `peercloud init --rejoin`" });
        return this.stop();
      }
      const backoffMs = Math.min(this.options.retryMaxMs ?? 15 * 60_000, (this.options.retryBaseMs ?? 30_000) * 2 ** this.failures++);
      // Too early (clocks disagree): try again after the backoff. Otherwise never wait past half the time left.
      const retryInMs = code === "too_early_to_renew" ? backoffMs : Math.max(1000, Math.min(backoffMs, leftMs / 2));
      this.options.onEvent({ event: "certificate_renew_failed", message: `${(error as Error).message} (${code}); retrying in ${Math.round(retryInMs / 1000)} s`, retryInMs });
      this.schedule(retryInMs);
    }
  }
}
