/**
 * ReplayGuard: first claim wins, a replay within the validity window loses,
 * an expired claim may be taken again, and the alarm purges expired keys
 * and re-arms only while keys remain. Time is the object's injectable clock.
 */
import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ReplayGuard } from "../../durable-objects/replay-guard.js";
import { rpcError } from "./region-directory-support.js";

function guard() {
  return env.REPLAY_GUARD.get(env.REPLAY_GUARD.idFromName(`replay-test-${crypto.randomUUID()}`));
}

async function setClock(stub: DurableObjectStub<ReplayGuard>, nowMs: number): Promise<void> {
  await runInDurableObject(stub, (obj: ReplayGuard) => {
    obj.clock = () => nowMs;
  });
}

async function alarmAt(stub: DurableObjectStub<ReplayGuard>): Promise<number | null> {
  return runInDurableObject(stub, (_obj: ReplayGuard, state) => state.storage.getAlarm());
}

describe("ReplayGuard", () => {
  it("lets the first claim of a key through and refuses replays until it expires", async () => {
    const stub = guard();
    const t0 = Date.now();
    await setClock(stub, t0);
    expect(await stub.claim("nonce-1", t0 + 60_000)).toBe(true);
    expect(await stub.claim("nonce-1", t0 + 60_000)).toBe(false);
    expect(await stub.claim("nonce-1", t0 + 120_000)).toBe(false); // a later expiry does not reopen it
    expect(await stub.claim("nonce-2", t0 + 60_000)).toBe(true);
    // A key whose validity has already ended is refused outright (nothing valid to protect).
    expect(await stub.claim("nonce-3", t0)).toBe(false);
    expect(await stub.size()).toBe(2);

    // After expiry the key may be used again (its signed timestamp would be stale by then anyway).
    await setClock(stub, t0 + 60_000);
    expect(await stub.claim("nonce-1", t0 + 200_000)).toBe(true);
    expect(await stub.claim("nonce-1", t0 + 200_000)).toBe(false);
  });

  it("purges expired keys in its alarm, re-armed to the next expiry and only while keys remain", async () => {
    const stub = guard();
    const t0 = Date.now();
    await setClock(stub, t0);
    expect(await alarmAt(stub)).toBeNull();
    await stub.claim("a", t0 + 10_000);
    await stub.claim("b", t0 + 20_000);
    await stub.claim("c", t0 + 5_000);
    expect(await alarmAt(stub)).toBe(t0 + 5_000);

    await setClock(stub, t0 + 15_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.size()).toBe(1); // a and c purged
    expect(await alarmAt(stub)).toBe(t0 + 20_000);
    expect(await stub.claim("b", t0 + 30_000)).toBe(false); // b still valid

    await setClock(stub, t0 + 20_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.size()).toBe(0);
    expect(await alarmAt(stub)).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it("keeps claims across a restart of the object", async () => {
    const name = `replay-test-${crypto.randomUUID()}`;
    const expiresAtMs = Date.now() + 60_000;
    expect(await env.REPLAY_GUARD.get(env.REPLAY_GUARD.idFromName(name)).claim("k", expiresAtMs)).toBe(true);
    await abortAllDurableObjects();
    expect(await env.REPLAY_GUARD.get(env.REPLAY_GUARD.idFromName(name)).claim("k", expiresAtMs)).toBe(false);
  });

  it("validates its arguments", async () => {
    const stub = guard();
    expect((await rpcError(() => stub.claim("", Date.now() + 1000))).message).toMatch(/replay key/);
    expect((await rpcError(() => stub.claim("x".repeat(257), Date.now() + 1000))).message).toMatch(/replay key/);
    expect((await rpcError(() => stub.claim("k", Number.NaN))).message).toMatch(/expiresAtMs/);
  });
});
