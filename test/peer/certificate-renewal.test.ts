/**
 * Certificate renewal scheduling (src/peer/certificate-renewal.ts) on a
 * virtual clock: renews inside the edge's window, retries failures without
 * passing expiry, stops for good once the certificate expired.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PeercloudError } from "../../src/core/errors.js";
import { CertificateRenewer, type RenewalEvent } from "../../src/peer/certificate-renewal.js";

const HOUR = 3600_000;

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

function setup(renew: () => Promise<{ certificate: string; certificateExpiresAtMs: number }>) {
  let expiresAtMs = Date.now() + 24 * HOUR;
  const events: RenewalEvent[] = [];
  const renewer = new CertificateRenewer({
    expiresAtMs: () => expiresAtMs,
    renewBeforeMs: 6 * HOUR,
    renew,
    install: async (r) => {
      expiresAtMs = r.certificateExpiresAtMs;
    },
    onEvent: (e) => events.push(e),
    random: () => 0.5,
  });
  return { renewer, events, expires: () => expiresAtMs };
}

describe("CertificateRenewer", () => {
  it("renews 15% into the renewal window (with random 0.5), then schedules the next one", async () => {
    const renew = vi.fn(async () => ({ certificate: "pc1.x.y", certificateExpiresAtMs: Date.now() + 24 * HOUR }));
    const { renewer, events } = setup(renew);
    renewer.start();
    await vi.advanceTimersByTimeAsync(18 * HOUR + 0.15 * 6 * HOUR - 1000);
    expect(renew).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(2000);
    expect(renew).toHaveBeenCalledTimes(1);
    expect(events.map((e) => e.event)).toEqual(["certificate_renewed"]);
    await vi.advanceTimersByTimeAsync(24 * HOUR);
    expect(renew).toHaveBeenCalledTimes(2);
    renewer.stop();
  });

  it("retries a failed renewal with growing delays, never waiting past half the time left", async () => {
    let calls = 0;
    const { renewer, events } = setup(async () => {
      calls++;
      if (calls < 3) throw new PeercloudError("edge_unreachable", "down", 503);
      return { certificate: "pc1.x.y", certificateExpiresAtMs: Date.now() + 24 * HOUR };
    });
    renewer.start();
    await vi.advanceTimersByTimeAsync(18.9 * HOUR + 1000);
    expect(events.map((e) => e.event)).toEqual(["certificate_renew_failed"]);
    expect(events[0].retryInMs).toBe(30_000);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(events[1]).toMatchObject({ event: "certificate_renew_failed", retryInMs: 60_000 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(events[2].event).toBe("certificate_renewed");
    renewer.stop();
  });

  it("reports an expired certificate once and stops", async () => {
    const renew = vi.fn(async () => {
      throw new PeercloudError("certificate_expired", "expired", 401);
    });
    const { renewer, events } = setup(renew);
    renewer.start();
    await vi.advanceTimersByTimeAsync(30 * HOUR);
    expect(events.map((e) => e.event)).toEqual(["certificate_expired"]);
    expect(renew).toHaveBeenCalledTimes(1);
  });
});
