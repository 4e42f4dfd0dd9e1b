/**
 * Region directory, WebSocket protocol: signaling between connected peers
 * (same region and across regions) and its "peer_not_connected" error,
 * error replies to garbage without crashing, closing a peer that keeps
 * sending garbage, refused connects, and a reconnect replacing the old socket.
 */
import { describe, expect, it } from "vitest";
import { CLOSE_REPLACED, MAX_MESSAGE_CHARS } from "../../src/core/messages.js";
import { MAX_INVALID_MESSAGES } from "../../durable-objects/region-directory.js";
import { connectPeer, directoryStub, freshRegion, randomNodeId, registerPeer, rpcError } from "./region-directory-support.js";

describe("signaling", () => {
  it("delivers to a connected peer and acks the sender; a peer not connected is an error", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const [a, b, c] = [await registerPeer(stub, region), await registerPeer(stub, region), await registerPeer(stub, region)];
    const peerA = await connectPeer(stub, a, region);
    const peerB = await connectPeer(stub, b, region);
    const payload = { kind: "connect-back", addresses: ["udx://198.51.100.4:7071"], nonce: 7 };

    expect(await peerA.request({ type: "signal", id: "s1", to: b, payload })).toEqual({ type: "ack", id: "s1" });
    expect(await peerB.next()).toEqual({ type: "signal", from: a, fromRegion: region, payload });

    // c is registered but has no socket; d is unknown altogether.
    expect(await peerA.request({ type: "signal", id: "s2", to: c, payload })).toMatchObject({ type: "error", id: "s2", code: "peer_not_connected" });
    expect(await peerA.request({ type: "signal", id: "s3", to: randomNodeId(), payload })).toMatchObject({ type: "error", id: "s3", code: "peer_not_connected" });
    // Oversized payloads are refused before any delivery.
    const big = { blob: "x".repeat(5000) };
    expect(await peerA.request({ type: "signal", id: "s4", to: b, payload: big })).toMatchObject({ type: "error", id: "s4", code: "invalid_request" });

    // The RPC entrance (used by other regions' directories) behaves the same.
    expect(await stub.deliverSignal(c, "ap", b, { hello: 1 })).toEqual({ delivered: true });
    expect(await peerB.next()).toEqual({ type: "signal", from: c, fromRegion: "ap", payload: { hello: 1 } });
    expect((await rpcError(() => stub.deliverSignal(a, region, c, {}))).message).toMatch(/peer_not_connected/);
    peerA.close();
    peerB.close();
  });

  it("forwards to the recipient's region through that region's directory", async () => {
    // Regions configured in wrangler.toml (REGIONS), so that forwarding accepts them.
    const [r1, r2] = ["us", "ap"];
    const s1 = directoryStub(r1);
    const s2 = directoryStub(r2);
    const a = await registerPeer(s1, r1);
    const x = await registerPeer(s2, r2);
    const peerA = await connectPeer(s1, a, r1);
    const peerX = await connectPeer(s2, x, r2);

    expect(await peerA.request({ type: "signal", id: "f1", to: x, region: r2, payload: { offer: "sdp" } })).toEqual({ type: "ack", id: "f1" });
    expect(await peerX.next()).toEqual({ type: "signal", from: a, fromRegion: r1, payload: { offer: "sdp" } });
    expect(await peerA.request({ type: "signal", id: "f2", to: randomNodeId(), region: r2, payload: 1 })).toMatchObject({
      type: "error",
      id: "f2",
      code: "peer_not_connected",
    });
    expect(await peerA.request({ type: "signal", id: "f3", to: x, region: "mars", payload: 1 })).toMatchObject({ type: "error", id: "f3", code: "unknown_region" });
    peerA.close();
    peerX.close();
  });
});

describe("bad input on the socket", () => {
  it("answers every kind of garbage with an error and keeps serving", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const a = await registerPeer(stub, region);
    const peer = await connectPeer(stub, a, region);

    expect(await peer.request("{not json")).toMatchObject({ type: "error", code: "invalid_request" });
    expect(await peer.request(JSON.stringify({ type: "teleport", id: "t1" }))).toMatchObject({ type: "error", id: "t1", code: "invalid_request" });
    expect(await peer.request(JSON.stringify({ type: "find_node", id: "t2", target: "zz" }))).toMatchObject({ type: "error", id: "t2", code: "invalid_request" });
    expect(await peer.request(JSON.stringify({ type: "announce", id: "t3", added: Array(1001).fill("b"), removed: [] }))).toMatchObject({ type: "error", id: "t3" });
    // A valid message in between resets the count of invalid ones.
    expect(await peer.request({ type: "find_node", id: "ok", target: a })).toMatchObject({ type: "nodes", id: "ok" });
    expect(await peer.request("x".repeat(MAX_MESSAGE_CHARS + 1))).toMatchObject({ type: "error", code: "too_large" });
    peer.ws.send(new Uint8Array([1, 2, 3]));
    expect(await peer.next()).toMatchObject({ type: "error", code: "unsupported_frame" });
    expect(await peer.request("null")).toMatchObject({ type: "error", code: "invalid_request" });
    expect(await peer.request({ type: "find_node", id: "still", target: a })).toMatchObject({ type: "nodes", id: "still" });
    expect(await stub.peerState(a)).toBe("alive");
    peer.close();
  });

  it(`closes a socket with 1008 after ${MAX_INVALID_MESSAGES} invalid messages in a row`, async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const a = await registerPeer(stub, region);
    const b = await registerPeer(stub, region);
    const peer = await connectPeer(stub, a, region);
    for (let i = 0; i < MAX_INVALID_MESSAGES; i++) expect(await peer.request(`garbage ${i}`)).toMatchObject({ type: "error", code: "invalid_request" });
    expect((await peer.closed).code).toBe(1008);
    // The object is unharmed: another peer is served, and the offender may reconnect.
    const other = await connectPeer(stub, b, region);
    expect(await other.request({ type: "find_node", id: "1", target: a })).toMatchObject({ type: "nodes", id: "1" });
    const again = await connectPeer(stub, a, region);
    expect(await again.request({ type: "find_node", id: "2", target: a })).toMatchObject({ type: "nodes", id: "2" });
    other.close();
    again.close();
  });
});

describe("connect", () => {
  it("refuses requests that are not a registered peer's WebSocket upgrade", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const a = await registerPeer(stub, region);
    const headers = (id: string, r = region) => ({ Upgrade: "websocket", "x-peercloud-node-id": id, "x-peercloud-region": r });
    const code = async (res: Response) => ({ status: res.status, code: ((await res.json()) as { error: { code: string } }).error.code });

    expect(await code(await stub.fetch("https://directory/connect", { headers: { "x-peercloud-node-id": a, "x-peercloud-region": region } }))).toEqual({
      status: 426,
      code: "upgrade_required",
    });
    expect(await code(await stub.fetch("https://directory/connect", { headers: headers("nope") }))).toEqual({ status: 400, code: "invalid_request" });
    expect(await code(await stub.fetch("https://directory/connect", { headers: headers(randomNodeId()) }))).toEqual({ status: 404, code: "peer_not_registered" });
    expect(await code(await stub.fetch("https://directory/connect", { headers: headers(a, "elsewhere") }))).toEqual({ status: 400, code: "region_mismatch" });
    expect((await stub.fetch("https://directory/other")).status).toBe(404);
  });

  it("replaces an older socket of the same peer, and signals go to the new one", async () => {
    const region = freshRegion();
    const stub = directoryStub(region);
    const a = await registerPeer(stub, region);
    const b = await registerPeer(stub, region);
    const first = await connectPeer(stub, a, region);
    const second = await connectPeer(stub, a, region);
    expect((await first.closed).code).toBe(CLOSE_REPLACED);
    const peerB = await connectPeer(stub, b, region);
    expect(await peerB.request({ type: "signal", id: "s", to: a, payload: "hi" })).toEqual({ type: "ack", id: "s" });
    expect(await second.next()).toEqual({ type: "signal", from: b, fromRegion: region, payload: "hi" });
    expect((await stub.summary()).peers.connected).toBe(2);
    second.close();
    peerB.close();
  });
});
