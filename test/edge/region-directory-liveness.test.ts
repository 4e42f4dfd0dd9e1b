/**
 * Region directory, heartbeat side: suspect → dead → revival driven by the
 * alarm with the object's clock moved forward (no real waiting), the
 * alarm re-armed to the next expiry, auto-answered pings that keep a peer
 * alive without waking the object, disconnects that do not kill, and the
 * KV snapshot the alarm writes only when the summary changed.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { RegionDirectory } from "../../durable-objects/region-directory.js";
import type { SocketAttachment } from "../../durable-objects/region-directory/connections.js";
import { PARAMS, connectPeer, directoryStub, freshRegion, peerInput, registerPeer, setClock, type DirectoryStub } from "./region-directory-support.js";

const HEARTBEAT_MS = PARAMS.heartbeatIntervalMs;
const SUSPECT_MS = HEARTBEAT_MS * PARAMS.suspectAfterMissedHeartbeats;
const DEAD_MS = HEARTBEAT_MS * PARAMS.deadAfterMissedHeartbeats;
const STATUS = { type: "status", load: { activeTransfers: 0, queueLength: 0, cpu: 0.1 }, freeBytes: 1e9 } as const;

/** The alarm as the object set it, relative to the real clock (the object carries delays over from its own clock). */
async function alarmDelayMs(stub: DirectoryStub): Promise<number | null> {
  return runInDurableObject(stub, async (_obj: RegionDirectory, state) => {
    const at = await state.storage.getAlarm();
    return at === null ? null : at - Date.now();
  });
}

describe("liveness sweep", () => {
  it("marks silent peers suspect, then dead, and a reconnect or re-registration brings them back", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const a = await registerPeer(stub, region);
    const b = await registerPeer(stub, region);
    const c = await registerPeer(stub, region);

    // Just short of the suspect threshold nothing changes.
    await setClock(stub, t0 + SUSPECT_MS - 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.peerState(a)).toBe("alive");

    await setClock(stub, t0 + SUSPECT_MS);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect([await stub.peerState(a), await stub.peerState(b), await stub.peerState(c)]).toEqual(["suspect", "suspect", "suspect"]);
    // Suspect peers are still in the buckets, marked as such.
    expect((await stub.findNode(a, 1))[0]).toMatchObject({ nodeId: a, state: "suspect" });

    await setClock(stub, t0 + DEAD_MS);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.peerState(a)).toBe("dead");
    expect((await stub.findNode(a, 3)).map((n) => n.nodeId)).toEqual([]);
    expect((await stub.summary()).peers).toEqual({ alive: 0, suspect: 0, dead: 3, connected: 0 });
    // Running the sweep again changes nothing (idempotent), and with everyone dead the alarm is not re-armed for liveness.
    await runDurableObjectAlarm(stub);
    expect(await stub.peerState(b)).toBe("dead");

    // A reconnect revives a, a new registration revives b; c stays dead.
    const peerA = await connectPeer(stub, a, region);
    await stub.register(region, peerInput({ nodeId: b }));
    expect([await stub.peerState(a), await stub.peerState(b), await stub.peerState(c)]).toEqual(["alive", "alive", "dead"]);
    expect(new Set((await stub.findNode(a, 3)).map((n) => n.nodeId))).toEqual(new Set([a, b]));
    peerA.close();
  });

  it("keeps a peer that sends messages alive and re-arms the alarm to the next expiry", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const a = await registerPeer(stub, region);
    const b = await registerPeer(stub, region);
    const peerA = await connectPeer(stub, a, region);

    await setClock(stub, t0 + 80_000);
    peerA.send(STATUS);
    // A request after the status: its reply proves the status was handled (one event at a time).
    await peerA.request({ type: "find_node", id: "sync", target: a });

    await setClock(stub, t0 + 150_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.peerState(a)).toBe("alive"); // last message 70 s ago
    expect(await stub.peerState(b)).toBe("suspect"); // silent for 150 s
    // Next expiry: a turns suspect at t0 + 80 s + 90 s, i.e. 20 s after the object's "now".
    expect(await alarmDelayMs(stub)).toBeGreaterThan(19_000);
    expect(await alarmDelayMs(stub)).toBeLessThanOrEqual(20_000);
    peerA.close();
  });

  it("answers pings with pong without waking the object, and counts them as heartbeats", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    // The object's clock starts 10 minutes in the past; the runtime stamps auto-answered pings with the real time.
    const past = Date.now() - 10 * 60_000;
    await setClock(stub, past);
    const a = await registerPeer(stub, region);
    const b = await registerPeer(stub, region);
    const peerA = await connectPeer(stub, a, region);
    const peerB = await connectPeer(stub, b, region);

    expect(await peerA.request("ping")).toEqual({ type: "text", text: "pong" });
    expect(await peerA.request("ping")).toEqual({ type: "text", text: "pong" });
    // webSocketMessage never ran: the attachment still shows the connect time as the last message.
    const attachments = await runInDurableObject(stub, (_obj: RegionDirectory, state) => state.getWebSockets(a).map((ws) => ws.deserializeAttachment() as SocketAttachment));
    expect(attachments).toEqual([{ nodeId: a, connectedAtMs: past, lastMessageMs: past, invalidMessages: 0 }]);

    await setClock(stub, Date.now());
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.peerState(a)).toBe("alive"); // pinged just now
    expect(await stub.peerState(b)).toBe("dead"); // connected, but silent for 10 minutes
    peerA.close();
    peerB.close();
  });

  it("records a disconnect without marking the peer dead", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const a = await registerPeer(stub, region);
    const peerA = await connectPeer(stub, a, region);
    await setClock(stub, t0 + 60_000);
    await peerA.request({ type: "find_node", id: "x", target: a });
    peerA.close();
    await peerA.closed;
    expect(await stub.peerState(a)).toBe("alive");
    expect((await stub.summary()).peers.connected).toBe(0);

    // Last heard at t0 + 60 s (the persisted sighting survives the socket): suspect 90 s later, not before.
    await setClock(stub, t0 + 60_000 + SUSPECT_MS - 1);
    await runDurableObjectAlarm(stub);
    expect(await stub.peerState(a)).toBe("alive");
    await setClock(stub, t0 + 60_000 + SUSPECT_MS);
    await runDurableObjectAlarm(stub);
    expect(await stub.peerState(a)).toBe("suspect");
  });
});

describe("KV snapshot", () => {
  it("is written by the alarm, rewritten when the summary changes, and skipped when it does not", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const t0 = Date.now();
    await setClock(stub, t0);
    const a = await registerPeer(stub, region);
    const peerA = await connectPeer(stub, a, region);
    expect(await env.DASHBOARD.get(`region:${region}`)).toBeNull();

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const first = JSON.parse((await env.DASHBOARD.get(`region:${region}`))!);
    expect(first).toMatchObject({ region, peers: { alive: 1, suspect: 0, dead: 0, connected: 1 }, r2EgressBytes: 0, updatedAtMs: t0 });

    await stub.addEgress(1234);
    const snapshotMs = PARAMS.snapshotIntervalMs;
    await setClock(stub, t0 + snapshotMs);
    peerA.send(STATUS);
    await peerA.request({ type: "find_node", id: "sync", target: a });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const second = JSON.parse((await env.DASHBOARD.get(`region:${region}`))!);
    expect(second).toMatchObject({ r2EgressBytes: 1234, updatedAtMs: t0 + snapshotMs });

    // Nothing changed since: the next snapshot is skipped (the stored one keeps its time).
    await setClock(stub, t0 + 2 * snapshotMs);
    peerA.send(STATUS);
    await peerA.request({ type: "find_node", id: "sync2", target: a });
    await runDurableObjectAlarm(stub);
    expect(JSON.parse((await env.DASHBOARD.get(`region:${region}`))!)).toEqual(second);
    peerA.close();
  });
});
