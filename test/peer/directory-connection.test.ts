/**
 * DirectoryConnection against the real edge (Worker + RegionDirectory in
 * workerd via Miniflare): welcome, status, requests, inventory announcements
 * reaching the directory, signals between peers, refused upgrades, and
 * reconnection through a TCP proxy the test can cut or freeze. Then against
 * a scripted WebSocket directory, for what the real one never does: garbage
 * frames, silence, and dropping the socket at chosen moments.
 */
import { once } from "node:events";
import { createServer, Socket, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket as WsSocket } from "ws";
import { issueCertificate } from "../../src/core/certificate.js";
import { cidOfBytes } from "../../src/core/cid.js";
import { generateIdentity, type Identity } from "../../src/core/identity.js";
import { nodeIdFromPublicKey } from "../../src/core/node-id.js";
import type { Role } from "../../src/core/roles.js";
import { DirectoryConnection, type DirectoryConnectionOptions } from "../../src/peer/directory-connection.js";
import { EdgeClient } from "../../src/peer/edge-client.js";
import { startLocalEdge, type LocalEdge } from "../helpers/local-edge.js";

const STATUS = { load: { activeTransfers: 1, queueLength: 2, cpu: 0.25 }, freeBytes: 12_345 };

const open: DirectoryConnection[] = [];
function track(conn: DirectoryConnection): DirectoryConnection {
  open.push(conn);
  conn.on("warning", () => {}); // collected by tests that care
  return conn;
}
afterEach(() => {
  for (const conn of open.splice(0)) conn.close();
});

function nextEvent<T extends unknown[]>(conn: DirectoryConnection, event: "welcome" | "signal" | "rejected" | "disconnected" | "warning", filter: (...args: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (...args: unknown[]) => {
      if (!filter(...(args as T))) return;
      conn.off(event, listener as never);
      resolve(args as T);
    };
    conn.on(event, listener as never);
  });
}

async function randomCid(): Promise<string> {
  return cidOfBytes(new Uint8Array(randomBytes(64)));
}

/** A TCP relay to the edge whose connections the test can cut or freeze. */
class Relay {
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  url = "";

  constructor(private readonly targetPort: number) {
    this.server = createServer((client) => {
      const upstream = new Socket().connect(this.targetPort, "127.0.0.1");
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream).pipe(client);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Closes every relayed connection (both sides see a reset). */
  cut(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Stops moving bytes on every current connection without closing it (a dead path). */
  freeze(): void {
    for (const [a, b] of this.pairs) {
      a.unpipe();
      b.unpipe();
      a.pause();
      b.pause();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe("DirectoryConnection with the real edge", () => {
  let edge: LocalEdge;
  let edgePort: number;

  beforeAll(async () => {
    edge = await startLocalEdge();
    edgePort = Number(new URL(edge.url).port);
  });
  afterAll(async () => {
    await edge?.stop();
  });

  interface Peer {
    identity: Identity;
    certificate: string;
    http: EdgeClient;
  }

  async function join(roles: Role[] = ["service", "publisher"]): Promise<Peer> {
    const identity = await generateIdentity();
    const http = new EdgeClient({ edgeUrl: edge.url, identity });
    const answer = await http.bootstrap({
      publicKey: Buffer.from(identity.publicKey).toString("base64url"),
      addresses: ["http://127.0.0.1:7070"],
      roles,
      capacity: { storageBytes: 1e9, uploadBps: 1e8, downloadBps: 1e8 },
      region: "eu",
      joinToken: await edge.createJoinToken(),
    });
    return { identity, certificate: answer.certificate, http };
  }

  function connect(peer: Peer, extra: Partial<DirectoryConnectionOptions> = {}): DirectoryConnection {
    return track(
      new DirectoryConnection({
        edgeUrl: edge.url,
        region: "eu",
        secretKey: peer.identity.secretKey,
        certificate: peer.certificate,
        getStatus: () => STATUS,
        initialBackoffMs: 20,
        maxBackoffMs: 200,
        ...extra,
      }),
    );
  }

  it("is welcomed, answers lookups, and its announcements and status reach the directory", async () => {
    const peer = await join();
    const inventoryCid = await randomCid();
    const conn = connect(peer, { getInventory: () => [inventoryCid] });
    const states: string[] = [];
    conn.on("state", (s) => states.push(s));
    const welcomed = nextEvent<[{ nodeId: string; region: string }]>(conn, "welcome");
    conn.start();
    const [welcome] = await welcomed;
    expect(welcome).toMatchObject({ nodeId: peer.identity.nodeId, region: "eu" });
    expect(conn.state).toBe("open");
    expect(states).toEqual(["connecting", "open"]);

    const added = await randomCid();
    conn.announce([added]);
    await conn.whenAnnounced();
    for (const cid of [added, inventoryCid]) {
      const providers = await peer.http.findProviders("eu", cid);
      expect(providers.map((p) => p.nodeId)).toEqual([peer.identity.nodeId]);
      expect(providers[0]).toMatchObject({ freeBytes: STATUS.freeBytes, load: STATUS.load });
    }
    expect((await conn.findProviders(added)).map((p) => p.nodeId)).toEqual([peer.identity.nodeId]);
    expect((await conn.findNode(peer.identity.nodeId, 5))[0].nodeId).toBe(peer.identity.nodeId);

    conn.announce([], [added]);
    await conn.whenAnnounced();
    expect(await peer.http.findProviders("eu", added)).toEqual([]);
  });

  it("pins, places, and carries signals between peers", async () => {
    const a = await join();
    const b = await join();
    const connA = connect(a);
    const connB = connect(b);
    const welcomes = Promise.all([nextEvent(connA, "welcome"), nextEvent(connB, "welcome")]);
    connA.start();
    connB.start();
    await welcomes;

    await connA.pin([await randomCid()], 2, [10]);
    const placed = await connA.place(4, [a.identity.nodeId]);
    expect(placed.map((n) => n.nodeId)).toContain(b.identity.nodeId);
    expect(placed.map((n) => n.nodeId)).not.toContain(a.identity.nodeId);

    const received = nextEvent<[{ from: string; fromRegion: string; payload: unknown }]>(connB, "signal");
    await connA.signal(b.identity.nodeId, { offer: "hello" });
    expect((await received)[0]).toEqual({ from: a.identity.nodeId, fromRegion: "eu", payload: { offer: "hello" } });

    const stranger = (await generateIdentity()).nodeId;
    await expect(connA.signal(stranger, { x: 1 })).rejects.toMatchObject({ code: "peer_not_connected", status: 404 });
  });

  it("reports a refused upgrade and keeps trying", async () => {
    const peer = await join();
    const otherNetwork = await generateIdentity();
    const foreign = await issueCertificate(otherNetwork.secretKey, {
      v: 1,
      network: await nodeIdFromPublicKey(otherNetwork.publicKey),
      nodeId: peer.identity.nodeId,
      publicKey: Buffer.from(peer.identity.publicKey).toString("base64url"),
      region: "eu",
      roles: ["service"],
      issuedAtMs: Date.now() - 1000,
      expiresAtMs: Date.now() + 3600_000,
      serial: "x",
    });
    let certificate = foreign;
    const conn = connect(peer, { certificate: () => certificate });
    const rejected = nextEvent<[{ status: number; code: string }]>(conn, "rejected");
    conn.start();
    expect((await rejected)[0]).toMatchObject({ status: 401, code: "certificate_bad_signature" });
    // The daemon fixes its certificate; the next attempt gets in.
    certificate = peer.certificate;
    await nextEvent(conn, "welcome");
    expect(conn.state).toBe("open");
  });

  it("refuses to connect to another region", async () => {
    const peer = await join();
    const conn = connect(peer, { region: "us" });
    const rejected = nextEvent<[{ status: number; code: string }]>(conn, "rejected");
    conn.start();
    expect((await rejected)[0]).toMatchObject({ status: 403, code: "wrong_region" });
  });

  describe("through a relay", () => {
    let relay: Relay;
    beforeAll(async () => {
      relay = new Relay(edgePort);
      await relay.listen();
    });
    afterAll(async () => {
      await relay.close();
    });

    it("reconnects after a drop, re-announces the inventory, and loses no change or request", async () => {
      const peer = await join();
      const deletedWhileDown = await randomCid();
      const inventory = new Set([await randomCid(), deletedWhileDown]);
      let inventoryCalls = 0;
      const conn = connect(peer, {
        edgeUrl: relay.url,
        getInventory: () => {
          inventoryCalls++;
          return inventory;
        },
      });
      const first = nextEvent(conn, "welcome");
      conn.start();
      await first;
      await conn.whenAnnounced();

      const disconnected = nextEvent(conn, "disconnected");
      relay.cut();
      await disconnected;
      expect(conn.state).toBe("connecting");
      expect((await peer.http.findProviders("eu", deletedWhileDown)).map((p) => p.nodeId)).toEqual([peer.identity.nodeId]);
      // Gone from the store with no announcement (e.g. deleted while the daemon was down): the resync drops it.
      inventory.delete(deletedWhileDown);
      // Made while disconnected: both wait for the next connection.
      const whileDown = await randomCid();
      inventory.add(whileDown);
      conn.announce([whileDown]);
      const lookup = conn.findNode(peer.identity.nodeId, 3);
      expect((await lookup)[0].nodeId).toBe(peer.identity.nodeId);
      expect(conn.state).toBe("open");
      await conn.whenAnnounced();
      expect(inventoryCalls).toBe(2);
      for (const cid of inventory) expect((await peer.http.findProviders("eu", cid)).map((p) => p.nodeId)).toEqual([peer.identity.nodeId]);
      expect(await peer.http.findProviders("eu", deletedWhileDown)).toEqual([]);
    });

    it("replaces a connection that stops answering pings", async () => {
      const peer = await join();
      const conn = connect(peer, { edgeUrl: relay.url, heartbeatIntervalMs: 50 });
      const first = nextEvent(conn, "welcome");
      conn.start();
      await first;
      const lost = nextEvent<[{ code: string }]>(conn, "warning", (w) => w.code === "heartbeat_lost");
      const again = nextEvent(conn, "welcome");
      relay.freeze();
      await lost;
      await again;
      expect(conn.state).toBe("open");
    });
  });
});

describe("DirectoryConnection with a scripted directory", () => {
  let wss: WebSocketServer;
  let url: string;
  let onConnection: (socket: WsSocket, index: number) => void;
  let connections = 0;
  const identityPromise = generateIdentity();

  beforeAll(async () => {
    wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await once(wss, "listening");
    url = `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    wss.on("connection", (socket) => onConnection(socket, connections++));
  });
  afterAll(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });

  const welcome = (nodeId = "a".repeat(64)) => JSON.stringify({ type: "welcome", nodeId, region: "eu", heartbeatIntervalMs: 60_000, statusIntervalMs: 60_000, serverTimeMs: Date.now() });

  async function scripted(extra: Partial<DirectoryConnectionOptions> = {}): Promise<DirectoryConnection> {
    const identity = await identityPromise;
    connections = 0;
    return track(
      new DirectoryConnection({ edgeUrl: url, region: "eu", secretKey: identity.secretKey, certificate: "pc1.x.y", initialBackoffMs: 10, maxBackoffMs: 50, announceDebounceMs: 1, ...extra }),
    );
  }

  it("survives garbage frames and still answers requests", async () => {
    const warnings: string[] = [];
    onConnection = (socket) => {
      socket.send(welcome());
      socket.on("message", (data) => {
        const msg = JSON.parse(String(data));
        if (msg.type !== "find_node") return;
        for (const junk of ["not json", "{}", '{"type":"nodes"}', '{"type":"nodes","id":"zzz","nodes":[]}', '{"type":"nope"}', "[1,2]", "null", '{"type":"signal","from":"x","fromRegion":"eu"}'])
          socket.send(junk);
        socket.send(Buffer.from([1, 2, 3]), { binary: true });
        socket.send(JSON.stringify({ type: "nodes", id: msg.id, nodes: [{ nodeId: "b".repeat(64), hostId: "h", region: "eu", addresses: [], roles: ["service"], state: "alive" }] }));
      });
    };
    const conn = await scripted();
    conn.on("warning", (w) => warnings.push(w.code));
    conn.start();
    const nodes = await conn.findNode("c".repeat(64));
    expect(nodes.map((n) => n.nodeId)).toEqual(["b".repeat(64)]);
    expect(warnings.filter((w) => w === "bad_message").length).toBeGreaterThanOrEqual(7);
    expect(warnings).toContain("unexpected_reply");
    expect(conn.state).toBe("open");
  });

  it("times out requests nobody answers and turns error replies into coded errors", async () => {
    onConnection = (socket) => {
      socket.send(welcome());
      socket.on("message", (data) => {
        const msg = JSON.parse(String(data));
        if (msg.type === "place") socket.send(JSON.stringify({ type: "error", id: msg.id, code: "role_required", message: "no" }));
      });
    };
    const conn = await scripted({ requestTimeoutMs: 100 });
    conn.start();
    await expect(conn.findProviders(await randomCid())).rejects.toMatchObject({ code: "directory_timeout" });
    await expect(conn.place(1)).rejects.toMatchObject({ code: "role_required", status: 403 });
  });

  it("re-sends unacknowledged announcements and in-flight lookups after a drop, but not signals", async () => {
    const cid = await randomCid();
    const seen: { connection: number; type: string; added?: string[] }[] = [];
    onConnection = (socket, index) => {
      socket.send(welcome());
      socket.on("message", (data) => {
        const msg = JSON.parse(String(data));
        seen.push({ connection: index, type: msg.type, added: msg.added });
        if (index === 0 && msg.type === "announce" && msg.added.includes(cid)) socket.terminate(); // never acknowledged
        if (index === 0 && msg.type === "signal") return;
        if (index === 1 && msg.type === "announce") socket.send(JSON.stringify({ type: "ack", id: msg.id }));
        if (index === 1 && msg.type === "find_node") socket.send(JSON.stringify({ type: "nodes", id: msg.id, nodes: [] }));
      });
    };
    const conn = await scripted();
    conn.start();
    await nextEvent(conn, "welcome");
    const signal = conn.signal("d".repeat(64), { x: 1 });
    const lookup = conn.findNode("e".repeat(64));
    conn.announce([cid]);
    await expect(signal).rejects.toMatchObject({ code: "directory_disconnected" });
    expect(await lookup).toEqual([]);
    await conn.whenAnnounced();
    const announcedAgain = seen.filter((s) => s.connection === 1 && s.type === "announce" && s.added?.includes(cid));
    expect(announcedAgain).toHaveLength(1);
    expect(seen.filter((s) => s.connection === 1 && s.type === "signal")).toHaveLength(0);
  });

  it("splits announcements into batches of at most maxAnnounceBatch", async () => {
    const sizes: number[] = [];
    onConnection = (socket) => {
      socket.send(welcome());
      socket.on("message", (data) => {
        const msg = JSON.parse(String(data));
        if (msg.type !== "announce") return;
        sizes.push(msg.added.length + msg.removed.length);
        socket.send(JSON.stringify({ type: "ack", id: msg.id }));
      });
    };
    const cids = await Promise.all(Array.from({ length: 25 }, () => randomCid()));
    const conn = await scripted({ maxAnnounceBatch: 10, getInventory: () => cids.slice(0, 12) });
    conn.start();
    await nextEvent(conn, "welcome");
    conn.announce(cids.slice(0, 20), cids.slice(20));
    await conn.whenAnnounced();
    expect(sizes).toEqual([10, 2, 10, 10, 5]);
  });

  it("sends the inventory as a sync on every connect: batches under one fresh epoch, done on the last", async () => {
    type Announce = { connection: number; added: string[]; removed: string[]; sync?: { epoch: string; done: boolean } };
    const seen: Announce[] = [];
    onConnection = (socket, index) => {
      socket.send(welcome());
      socket.on("message", (data) => {
        const msg = JSON.parse(String(data));
        if (msg.type !== "announce") return;
        seen.push({ connection: index, added: msg.added, removed: msg.removed, sync: msg.sync });
        socket.send(JSON.stringify({ type: "ack", id: msg.id }));
        // The first connection drops once its sync is complete, so the second shows a fresh epoch.
        if (index === 0 && msg.sync?.done) socket.terminate();
      });
    };
    const cids = await Promise.all(Array.from({ length: 25 }, () => randomCid()));
    const conn = await scripted({ maxAnnounceBatch: 10, getInventory: () => cids });
    conn.start();
    await nextEvent(conn, "welcome");
    await nextEvent(conn, "welcome"); // the second connection
    await conn.whenAnnounced();

    const first = seen.filter((a) => a.connection === 0);
    expect(first.map((a) => [a.added.length, a.removed.length, a.sync?.done])).toEqual([
      [10, 0, false],
      [10, 0, false],
      [5, 0, true],
    ]);
    expect(first.flatMap((a) => a.added)).toEqual(cids);
    expect(new Set(first.map((a) => a.sync?.epoch)).size).toBe(1);
    const second = seen.filter((a) => a.connection === 1);
    expect(second.map((a) => a.sync?.done)).toEqual([false, false, true]);
    expect(new Set(second.map((a) => a.sync?.epoch)).size).toBe(1);
    expect(second[0].sync!.epoch).not.toBe(first[0].sync!.epoch);
    expect(second[0].sync!.epoch).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
  });

  it("sends an empty inventory as one empty done batch, and holds changes made while listing until the sync is out", async () => {
    const seen: { added: string[]; sync?: { epoch: string; done: boolean } }[] = [];
    onConnection = (socket) => {
      socket.send(welcome());
      socket.on("message", (data) => {
        const msg = JSON.parse(String(data));
        if (msg.type !== "announce") return;
        seen.push({ added: msg.added, sync: msg.sync });
        socket.send(JSON.stringify({ type: "ack", id: msg.id }));
      });
    };
    const added = await randomCid();
    // The announce debounce (3 ms, a delay no other timer here uses) firing is the signal that the change had its chance to go out.
    let debounceFired!: () => void;
    const fired = new Promise<void>((resolve) => (debounceFired = resolve));
    const timers = {
      setTimeout: (fn: () => void, ms: number) =>
        setTimeout(() => {
          fn();
          if (ms === 3) debounceFired();
        }, ms),
      clearTimeout: (handle: unknown) => clearTimeout(handle as NodeJS.Timeout),
    };
    const conn = await scripted({
      announceDebounceMs: 3,
      timers,
      // A slow listing: the chunk added meanwhile must not reach the directory before the sync, whose sweep would drop it.
      getInventory: async () => {
        conn.announce([added]);
        await fired;
        return [];
      },
    });
    conn.start();
    await nextEvent(conn, "welcome");
    await conn.whenAnnounced();
    expect(seen).toEqual([
      { added: [], sync: { epoch: expect.any(String), done: true } },
      { added: [added], sync: undefined },
    ]);
  });

  it("closes for good: pending requests fail and no reconnect happens", async () => {
    onConnection = (socket) => socket.send(welcome());
    const conn = await scripted();
    conn.start();
    await nextEvent(conn, "welcome");
    const pending = conn.findNode("f".repeat(64));
    conn.close();
    await expect(pending).rejects.toMatchObject({ code: "directory_closed" });
    expect(conn.state).toBe("closed");
    await expect(conn.findNode("f".repeat(64))).rejects.toMatchObject({ code: "directory_closed" });
  });
});
