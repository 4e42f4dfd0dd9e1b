/**
 * Helpers of the region directory tests: random IDs and CIDs, registration
 * through the object's RPC, real hibernatable WebSockets to `/connect`
 * with a message queue to await replies on (never sleeps), and control of
 * the object's clock through runInDurableObject.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { toHex } from "../../src/core/bytes.js";
import { cidFromSha256 } from "../../src/core/cid.js";
import type { Capacity, DirectoryToPeer, PeerToDirectory } from "../../src/core/messages.js";
import { paramsFromEnv } from "../../src/core/params-env.js";
import type { Role } from "../../src/core/roles.js";
import type { RegionDirectory } from "../../durable-objects/region-directory.js";
import type { RegisterPeerInput } from "../../durable-objects/region-directory-contract.js";

export type DirectoryStub = DurableObjectStub<RegionDirectory>;

/** The network parameters the objects run with (defaults plus any wrangler.toml overrides). */
export const PARAMS = paramsFromEnv(env as unknown as Record<string, unknown>);

export function randomNodeId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(32)));
}

export function randomCid(): string {
  return cidFromSha256(crypto.getRandomValues(new Uint8Array(32)));
}

let regionCounter = 0;
/** A fresh region (and so a fresh object) per test, so tests never see each other's peers. */
export function freshRegion(): string {
  return `t${Date.now().toString(36)}-${(regionCounter++).toString(36)}`;
}

export function directoryStub(region: string): DirectoryStub {
  return env.REGION_DIRECTORY.get(env.REGION_DIRECTORY.idFromName(region));
}

export const CAPACITY: Capacity = { storageBytes: 1e12, uploadBps: 1e8, downloadBps: 1e8 };

export interface PeerOptions {
  nodeId?: string;
  hostId?: string;
  roles?: Role[];
  addresses?: string[];
}

export function peerInput(opts: PeerOptions = {}): RegisterPeerInput {
  const nodeId = opts.nodeId ?? randomNodeId();
  return {
    nodeId,
    publicKey: `pk-${nodeId.slice(0, 16)}`,
    hostId: opts.hostId ?? `host-${nodeId.slice(0, 12)}`,
    addresses: opts.addresses ?? ["http://203.0.113.7:7070"],
    roles: opts.roles ?? ["service"],
    capacity: CAPACITY,
    certificateExpiresAtMs: Date.now() + 3600_000,
  };
}

/** Registers a peer and returns its node ID. */
export async function registerPeer(stub: DirectoryStub, region: string, opts: PeerOptions = {}): Promise<string> {
  const input = peerInput(opts);
  await stub.register(region, input);
  return input.nodeId;
}

/** Sets the object's clock to a fixed time (ms); the instance keeps it until it restarts. */
export async function setClock(stub: DirectoryStub, nowMs: number): Promise<void> {
  await runInDurableObject(stub, (obj: RegionDirectory) => {
    obj.clock = () => nowMs;
  });
}

type Frame = DirectoryToPeer | { type: "text"; text: string };

/** One peer's WebSocket to its directory, with an awaitable queue of received frames. */
export class PeerSocket {
  private readonly frames: Frame[] = [];
  private readonly waiters: ((f: Frame) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The directory's first message on this socket. */
  welcome?: DirectoryToPeer;

  constructor(
    readonly ws: WebSocket,
    readonly nodeId: string,
  ) {
    ws.addEventListener("message", (event) => {
      const text = typeof event.data === "string" ? event.data : new TextDecoder().decode(event.data as ArrayBuffer);
      let frame: Frame;
      try {
        const parsed = JSON.parse(text);
        frame = parsed && typeof parsed === "object" && typeof parsed.type === "string" ? parsed : { type: "text", text };
      } catch {
        frame = { type: "text", text };
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter(frame);
      else this.frames.push(frame);
    });
    this.closed = new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
  }

  /** The next frame received (in order). */
  next(): Promise<Frame> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  send(message: PeerToDirectory | string): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** Sends a request and returns the next frame, which the directory sends in reply (one event at a time). */
  async request(message: PeerToDirectory | string): Promise<Frame> {
    this.send(message);
    return this.next();
  }

  close(code = 1000, reason = "test done"): void {
    this.ws.close(code, reason);
  }
}

/** Opens `/connect` for a registered peer, as the Worker would after verifying its certificate; consumes the welcome. */
export async function connectPeer(stub: DirectoryStub, nodeId: string, region: string): Promise<PeerSocket> {
  const res = await stub.fetch("https://directory/connect", {
    headers: { Upgrade: "websocket", "x-peercloud-node-id": nodeId, "x-peercloud-region": region },
  });
  if (res.status !== 101 || !res.webSocket) throw new Error(`connect failed: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  ws.accept();
  const peer = new PeerSocket(ws, nodeId);
  const welcome = await peer.next();
  if (welcome.type !== "welcome") throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`);
  peer.welcome = welcome;
  return peer;
}

/**
 * The error an RPC call rejects with. (Awaiting inside try/catch rather than
 * `expect(stub.x()).rejects`: the RPC promise is a thenable whose rejection
 * vitest would otherwise also report as unhandled.) RPC keeps an error's
 * message — prefixed with its class name — but not its fields.
 */
export async function rpcError(call: () => Promise<unknown>): Promise<Error> {
  try {
    await call();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected the RPC call to fail");
}

/** Sends a status report and waits until the directory handled it (the reply to a later request on the same socket). */
export async function reportStatus(peer: PeerSocket, freeBytes = 1e9): Promise<void> {
  peer.send({ type: "status", load: { activeTransfers: 0, queueLength: 0, cpu: 0.1 }, freeBytes });
  await peer.request({ type: "find_node", id: "sync", target: peer.nodeId, count: 1 });
}

/** A fresh region with a publisher and `storagePeers` storage peers, each on its own host, connected and reporting. */
export interface StorageRegion {
  region: string;
  stub: DirectoryStub;
  t0: number;
  publisher: string;
  peers: PeerSocket[];
}

export async function storageRegion(storagePeers: number, freeBytes: (i: number) => number = () => 1e9): Promise<StorageRegion> {
  const region = freshRegion();
  const stub = directoryStub(region);
  const t0 = Date.now();
  await setClock(stub, t0);
  const publisher = await registerPeer(stub, region, { roles: ["client", "publisher"] });
  const peers: PeerSocket[] = [];
  for (let i = 0; i < storagePeers; i++) {
    const id = await registerPeer(stub, region, { hostId: `host-${i}`, addresses: [`http://10.0.0.${i + 1}:7070`] });
    peers.push(await connectPeer(stub, id, region));
  }
  for (const [i, p] of peers.entries()) await reportStatus(p, freeBytes(i));
  return { region, stub, t0, publisher, peers };
}
