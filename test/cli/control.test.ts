/**
 * The daemon's control socket (control-server.ts / control-client.ts) over a
 * real Unix socket, with the operations running offline over a real chunk
 * store in a temp home: progress arrives as it happens, a streamed get
 * carries exact bytes, a failure keeps its code, and stale socket files do
 * not block listening.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "../../src/core/identity.js";
import { ClientSession } from "../../src/peer/client-session.js";
import { ControlClient } from "../../src/peer/control-client.js";
import { ControlServer } from "../../src/peer/control-server.js";
import { newConvergenceSecret, PeerHome } from "../../src/peer/home.js";
import type { ProgressEvent } from "../../src/peer/progress.js";

let dir: string;
let session: ClientSession;
let server: ControlServer;
let client: ControlClient;
const content = Buffer.alloc(3 * 1024 * 1024 + 17);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "peercloud-control-"));
  for (let i = 0; i < content.length; i++) content[i] = (i * 2654435761) >>> 24;
  await writeFile(join(dir, "input.bin"), content);
  const home = new PeerHome(join(dir, "home"));
  const identity = await generateIdentity();
  await home.writeIdentity(identity);
  await home.writeConfig({
    version: 1,
    edgeUrl: "http://127.0.0.1:1",
    network: { id: "a".repeat(64), publicKey: "A".repeat(43) },
    nodeId: identity.nodeId,
    region: "eu",
    roles: ["service", "publisher"],
    certificate: "pc1.e30.AAAA",
    certificateExpiresAtMs: Date.now() + 3600_000,
    directoryPath: "/v1/regions/eu/connect",
    convergenceSecret: newConvergenceSecret(),
    port: 0,
    joinedAtMs: Date.now(),
  });
  session = await ClientSession.open(home, { offline: true });
  // A socket file left by a crashed daemon must not stop the next one.
  await writeFile(home.controlSocketPath, "stale");
  server = new ControlServer(session, home.controlSocketPath);
  await server.listen();
  client = new ControlClient(home.controlSocketPath);
});

afterAll(async () => {
  await server?.close();
  await session?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("control socket", () => {
  let link = "";

  it("put streams progress and returns the result", async () => {
    const events: ProgressEvent[] = [];
    const result = await client.put({ path: join(dir, "input.bin"), replicas: 1 }, { onProgress: (e) => events.push(e) });
    expect(result.bytes).toBe(content.length);
    expect(result.link).toMatch(/^peercloud:\/\//);
    expect(events.at(-1)).toMatchObject({ op: "put", phase: "done", bytesDone: content.length });
    link = result.link;
  });

  it("get writes the file; a streamed get carries the exact bytes", async () => {
    const out = join(dir, "copy.bin");
    const result = await client.get({ link, output: out });
    expect(result.path).toBe(out);
    expect(Buffer.compare(await readFile(out), content)).toBe(0);

    const sink = new PassThrough();
    const pieces: Buffer[] = [];
    sink.on("data", (b: Buffer) => pieces.push(b));
    const streamed = await client.get({ link, stream: true }, {}, sink);
    expect(streamed.path).toBe("-");
    expect(Buffer.compare(Buffer.concat(pieces), content)).toBe(0);
  });

  it("status and ls answer", async () => {
    const status = await client.status();
    expect(status.store.chunks).toBeGreaterThan(0);
    expect(status.store.limitBytes).toBeNull();
    const entries = await client.ls();
    expect(entries.map((e) => e.op).sort()).toEqual(["get", "put"]);
  });

  it("failures keep their code", async () => {
    await expect(client.put({ path: join(dir, "missing.bin") })).rejects.toMatchObject({ code: "path_not_found" });
    await expect(client.get({ link: "peercloud://nonsense" })).rejects.toMatchObject({ code: "invalid_link" });
    await expect(client.put({ path: "relative/path" })).rejects.toMatchObject({ code: "invalid_request" });
  });

  it("unpin releases what put pinned", async () => {
    const result = await client.unpin(link);
    expect(result.cids).toBeGreaterThan(1);
    expect((await client.status()).store.pinnedBytes).toBe(0);
    expect((await client.ls()).find((e) => e.op === "put")?.replicas).toBe(0);
  });

  it("a client without a daemon gets daemon_unreachable", async () => {
    await expect(new ControlClient(join(dir, "nobody.sock")).status()).rejects.toMatchObject({ code: "daemon_unreachable" });
  });
});
