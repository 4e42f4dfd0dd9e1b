/**
 * Real peer processes for end-to-end tests: the `peercloud` command
 * (bin/peercloud.js) run as child processes against a local edge
 * (local-edge.ts), each peer in its own temporary home.
 *
 *   const net = await startTestNetwork({ peers: 3 });   // edge + 3 running daemons
 *   const [p1, p2] = net.peers;
 *   const res = await p1.run(["--json", "status"]);      // { code, signal, stdout, stderr }
 *   const put = await p1.put(file, ["--replicas", "1"]);  // the parsed --json result
 *   const get = p2.spawnCli(["--json", "get", link]);    // a live child: wait on its lines
 *   await get.waitForLine("stderr", (l) => l.includes('"fetch"'));
 *   await p1.kill("SIGKILL");
 *   …
 *   await net.stop();                                     // every process, the edge, every temp dir
 *
 * Synchronisation is on events only — a daemon's `{"event":"ready"}` and
 * `{"event":"directory_connected"}` lines, a command's output lines, process
 * exits — or on a condition re-checked against the real system (the
 * directory's answers) with a deadline; never on a sleep. The deadlines here
 * are generous safety nets for a loaded 2-core machine, not timing claims.
 *
 * Peers get distinct `--host-id`s so the directory treats them as distinct
 * failure domains (placement never puts two replicas on one host ID), listen
 * on 127.0.0.1 with a free port, and advertise that address. Homes that never
 * run a daemon (pure downloaders, publishers in one-shot mode) join with
 * roles that exclude "service", so placement never picks a peer that cannot
 * be reached.
 *
 * Cleanup: `net.stop()` (call it in afterAll) SIGCONTs and SIGKILLs every
 * process this module started, stops the edge and removes the temp root.
 * A process-exit hook kills any child still alive if a test run aborts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { open, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { RegionSummary } from "../../durable-objects/region-directory-contract.js";
import { isCid } from "../../src/core/cid.js";
import { parseLink } from "../../src/core/link.js";
import { openManifest, type ChunkRef } from "../../src/core/manifest.js";
import type { PeerInfo, ProviderInfo } from "../../src/core/messages.js";
import type { Role } from "../../src/core/roles.js";
import { EdgeClient } from "../../src/peer/edge-client.js";
import { PeerHome } from "../../src/peer/home.js";
import { nodeChunkCipher } from "../../src/peer/native-chunk-cipher.js";
import type { GetResult } from "../../src/peer/download.js";
import type { PutResult } from "../../src/peer/ingest.js";
export { sha256File, writeRandomFile } from "./files.js";
import { startLocalEdge, type LocalEdge, type LocalEdgeOptions } from "./local-edge.js";

export const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const PEERCLOUD_BIN = join(REPO_ROOT, "bin", "peercloud.js");

/** Safety net for one-shot commands; a command that needs longer passes its own. */
const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;
/** Safety net for a daemon to print its ready line and reach the directory. */
const DAEMON_READY_TIMEOUT_MS = 90_000;

// ---------------------------------------------------------------------------
// Every child process this module starts, so nothing outlives the test run.

const children = new Set<ChildProcess>();
/** The subset that are one-shot commands (not daemons). */
const commands = new Set<ChildProcess>();

function forceKill(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    // SIGKILL ends even a stopped process; SIGCONT first anyway, so nothing lingers half-woken in a process group.
    process.kill(child.pid, "SIGCONT");
    process.kill(child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

process.once("exit", () => {
  for (const child of children) forceKill(child);
});

/** The environment of every spawned command: no inherited home, no test-runner loader flags. */
function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false" };
  delete env.PEERCLOUD_HOME;
  delete env.NODE_OPTIONS;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

// ---------------------------------------------------------------------------
// One spawned command, its output split into lines that tests can wait on.

export interface CliResult {
  /** Exit status, or null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SpawnOptions {
  /** Extra environment (undefined removes a variable). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /**
   * Leave stdout to the caller (`proc.stdout`, a raw byte stream, e.g. a
   * streamed get): nothing is buffered or split into lines.
   */
  rawStdout?: boolean;
  /** The child is killed (SIGKILL) after this long; a safety net. Default 120 s. */
  timeoutMs?: number;
  /** Replaces `node bin/peercloud.js` as the command prefix, e.g. to run under setpriv. */
  prefix?: string[];
  /** Arguments for node itself, before the script (e.g. `--import probe.mjs`). */
  nodeArgs?: string[];
  /** A long-lived daemon: not ended by killAllCommands(). */
  daemon?: boolean;
}

type StreamName = "stdout" | "stderr";

export class CliProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly args: readonly string[];
  readonly exited: Promise<CliResult>;
  private readonly lines: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  private readonly text: Record<StreamName, string> = { stdout: "", stderr: "" };
  private readonly partial: Record<StreamName, string> = { stdout: "", stderr: "" };
  private readonly waiters = new Set<() => void>();
  private result: CliResult | null = null;
  private timedOut = false;

  constructor(command: string, args: string[], options: SpawnOptions = {}) {
    this.args = args;
    this.child = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, env: childEnv(options.env), stdio: ["ignore", "pipe", "pipe"] });
    if (this.child.pid === undefined) throw new Error(`could not spawn ${command}`);
    this.pid = this.child.pid;
    children.add(this.child);
    if (!options.daemon) commands.add(this.child);
    const streams: StreamName[] = options.rawStdout ? ["stderr"] : ["stdout", "stderr"];
    for (const name of streams) {
      this.child[name]!.setEncoding("utf8");
      this.child[name]!.on("data", (piece: string) => this.onData(name, piece));
    }
    const timer = setTimeout(() => {
      this.timedOut = true;
      forceKill(this.child);
    }, options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    timer.unref();
    this.exited = new Promise<CliResult>((resolveExit, rejectExit) => {
      this.child.once("error", rejectExit);
      // "close": the process exited and its stdio streams are drained.
      this.child.once("close", (code, signal) => {
        clearTimeout(timer);
        children.delete(this.child);
        commands.delete(this.child);
        for (const name of streams) {
          if (this.partial[name]) this.lines[name].push(this.partial[name]);
          this.partial[name] = "";
        }
        this.result = { code, signal, stdout: this.text.stdout, stderr: this.text.stderr };
        this.wake();
        if (this.timedOut) rejectExit(new Error(`command timed out and was killed: ${this.describe()}`));
        else resolveExit(this.result);
      });
    });
    // A rejection nobody awaited yet must not crash the run; callers see it when they await `exited`.
    this.exited.catch(() => {});
  }

  get stdout(): NodeJS.ReadableStream {
    return this.child.stdout!;
  }

  /** Lines so far (complete lines only). */
  linesOf(stream: StreamName): readonly string[] {
    return this.lines[stream];
  }

  /** JSON objects among the lines so far (other lines are skipped). */
  jsonLinesOf(stream: StreamName): Record<string, unknown>[] {
    return this.lines[stream].flatMap((line) => {
      try {
        const value = JSON.parse(line) as unknown;
        return typeof value === "object" && value !== null ? [value as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  }

  /**
   * Resolves with the first line (already printed or future) that matches;
   * rejects if the process exits first, or after `timeoutMs` (a safety net).
   */
  waitForLine(stream: StreamName, match: (line: string) => boolean, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<string> {
    return new Promise((resolveLine, rejectLine) => {
      let seen = 0;
      const check = () => {
        const lines = this.lines[stream];
        for (; seen < lines.length; seen++) {
          if (match(lines[seen])) return finish(() => resolveLine(lines[seen]));
        }
        if (this.result)
          finish(() =>
            rejectLine(
              new Error(
                `${this.describe()} exited (code ${this.result!.code}, signal ${this.result!.signal}) before printing the awaited line on ${stream}\n--- stdout\n${tail(this.result!.stdout)}\n--- stderr\n${tail(this.result!.stderr)}`,
              ),
            ),
          );
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            rejectLine(new Error(`no awaited line on ${stream} of ${this.describe()} within ${timeoutMs} ms\n--- stdout\n${tail(this.text.stdout)}\n--- stderr\n${tail(this.text.stderr)}`)),
          ),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Like waitForLine, for a JSON line whose object satisfies `match`. */
  async waitForJson(stream: StreamName, match: (value: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>> {
    const line = await this.waitForLine(stream, (l) => matchesJson(l, match), timeoutMs);
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Sends a signal (no-op once exited). */
  signal(signal: NodeJS.Signals): void {
    if (this.result || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // exited meanwhile
    }
  }

  describe(): string {
    return `\`peercloud ${this.args.filter((a) => a !== PEERCLOUD_BIN).join(" ")}\` (pid ${this.pid})`;
  }

  private onData(stream: StreamName, piece: string): void {
    this.text[stream] += piece;
    let rest = this.partial[stream] + piece;
    let newline: number;
    while ((newline = rest.indexOf("\n")) >= 0) {
      this.lines[stream].push(rest.slice(0, newline));
      rest = rest.slice(newline + 1);
    }
    this.partial[stream] = rest;
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

function matchesJson(line: string, match: (value: Record<string, unknown>) => boolean): boolean {
  if (!line.startsWith("{")) return false;
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === "object" && value !== null && match(value as Record<string, unknown>);
  } catch {
    return false;
  }
}

function tail(text: string, maxChars = 4000): string {
  return text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
}

/** Spawns `node bin/peercloud.js ARGS` (or with a prefix such as setpriv). */
export function spawnPeercloud(args: string[], options: SpawnOptions = {}): CliProcess {
  const prefix = options.prefix ?? [];
  const nodeArgs = [...(options.nodeArgs ?? []), PEERCLOUD_BIN, ...args];
  if (prefix.length === 0) return new CliProcess(process.execPath, nodeArgs, options);
  return new CliProcess(prefix[0], [...prefix.slice(1), process.execPath, ...nodeArgs], options);
}

// ---------------------------------------------------------------------------
// A peer: a home, and (when started) its daemon.

export interface ReadyEvent {
  event: "ready";
  transferUrl: string;
  nodeId: string;
  region: string;
  controlSocket: string;
  pid: number;
}

export interface PeerStartOptions {
  /** `--storage-limit`, e.g. "1MiB". */
  storageLimit?: string;
  args?: string[];
}

export class TestPeer {
  /** The running daemon, if any. */
  daemon: CliProcess | null = null;
  ready: ReadyEvent | null = null;

  constructor(
    readonly name: string,
    readonly home: string,
    readonly hostId: string,
    readonly nodeId: string,
    readonly roles: readonly Role[],
  ) {}

  get storeDir(): string {
    return join(this.home, "store");
  }

  /** `peer start --json` on 127.0.0.1 with a free port; resolves once it serves and its directory socket is welcomed. */
  async start(options: PeerStartOptions = {}): Promise<ReadyEvent> {
    if (this.daemon) throw new Error(`${this.name} already runs (pid ${this.daemon.pid})`);
    const args = ["--home", this.home, "--json", "peer", "start", "--host", "127.0.0.1", "--port", "0"];
    if (options.storageLimit) args.push("--storage-limit", options.storageLimit);
    args.push(...(options.args ?? []));
    // A daemon lives as long as the test file needs it: no command timeout, stop() and net.stop() end it.
    const daemon = spawnPeercloud(args, { timeoutMs: 24 * 3600_000, daemon: true });
    this.daemon = daemon;
    try {
      const [ready] = await Promise.all([
        daemon.waitForJson("stdout", (e) => e.event === "ready", DAEMON_READY_TIMEOUT_MS),
        daemon.waitForJson("stdout", (e) => e.event === "directory_connected", DAEMON_READY_TIMEOUT_MS),
      ]);
      this.ready = ready as unknown as ReadyEvent;
      return this.ready;
    } catch (error) {
      forceKill(daemon.child);
      await daemon.exited.catch(() => {});
      this.daemon = null;
      throw error;
    }
  }

  /** Graceful stop (SIGTERM), waiting for the daemon to exit (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 30_000): Promise<CliResult | null> {
    const daemon = this.daemon;
    if (!daemon) return null;
    daemon.signal("SIGCONT");
    daemon.signal("SIGTERM");
    const timer = setTimeout(() => forceKill(daemon.child), timeoutMs);
    try {
      return await daemon.exited;
    } finally {
      clearTimeout(timer);
      this.daemon = null;
      this.ready = null;
    }
  }

  /**
   * Sends `signal` to the daemon. SIGKILL waits until the process is gone
   * (so the test knows it no longer serves); SIGSTOP freezes it (its sockets
   * stay open and unanswered — a peer that "vanishes"); SIGCONT thaws it.
   */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const daemon = this.daemon;
    if (!daemon) throw new Error(`${this.name} has no running daemon`);
    if (signal === "SIGKILL") {
      forceKill(daemon.child);
      await daemon.exited.catch(() => {});
      this.daemon = null;
      this.ready = null;
      return;
    }
    daemon.signal(signal);
  }

  /** Runs one command in this home and waits for it: `peercloud --home HOME ARGS`. */
  run(args: string[], options: SpawnOptions = {}): Promise<CliResult> {
    return this.spawnCli(args, options).exited;
  }

  /** Starts one command in this home without waiting (to watch its output as it runs). */
  spawnCli(args: string[], options: SpawnOptions = {}): CliProcess {
    return spawnPeercloud(["--home", this.home, ...args], options);
  }

  /** `--json put …` → the parsed result; throws with the output when the command fails. */
  async put(path: string, flags: string[] = []): Promise<PutJson> {
    return parseJsonResult<PutJson>(await this.run(["--json", "put", path, ...flags]), `put ${path}`);
  }

  /** `--json get LINK -o OUT …` → the parsed result; throws with the output when the command fails. */
  async get(link: string, output: string, flags: string[] = []): Promise<GetJson> {
    return parseJsonResult<GetJson>(await this.run(["--json", "get", link, "-o", output, ...flags]), `get ${link}`);
  }

  /** CID → file of every chunk in this peer's store (`store/chunks/<shard>/<cid>`, see chunk-store.ts). */
  chunkFiles(): Map<string, string> {
    const root = join(this.storeDir, "chunks");
    const found = new Map<string, string>();
    let shards: string[];
    try {
      shards = readdirSync(root);
    } catch {
      return found;
    }
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const name of readdirSync(join(root, shard))) if (isCid(name)) found.set(name, join(root, shard, name));
    }
    return found;
  }

  holds(cid: string): boolean {
    return this.chunkFiles().has(cid);
  }

  /** Whether this peer's store keeps `cid` pinned (never evicted): its marker `store/pins/<cid>` (pin-markers.ts). */
  pins(cid: string): boolean {
    return existsSync(join(this.storeDir, "pins", cid));
  }

  /** Flips bytes in the middle of a stored chunk file (same size, wrong hash): bit rot, or a lying peer. */
  async corruptChunk(cid: string): Promise<void> {
    const path = this.chunkFiles().get(cid);
    if (!path) throw new Error(`${this.name} does not hold ${cid}`);
    await flipBytes(path);
  }

  /**
   * The chunk list, in file order, of the file a link names, read from this
   * peer's store (the publisher's, or any holder's) and opened with the
   * link's key — what a test needs to pick "the last chunk" of a file.
   */
  async fileChunks(link: string): Promise<ChunkRef[]> {
    const { cid, key } = parseLink(link);
    const path = this.chunkFiles().get(cid);
    if (!path) throw new Error(`${this.name} does not hold manifest ${cid}`);
    const manifest = await openManifest(await readFile(path), key, cid, nodeChunkCipher);
    if (manifest.kind !== "file" || !manifest.chunks) throw new Error(`${cid} is not a file manifest with an inline chunk list`);
    return manifest.chunks;
  }
}

/** What `put --json` and `get --json` print: the library's results (src/peer/ingest.ts, download.ts). */
export type PutJson = PutResult & { [field: string]: unknown };
export type GetJson = GetResult & { [field: string]: unknown };

export function parseJsonResult<T>(result: CliResult, what: string): T {
  const describe = () => `${what}: exit ${result.code} (signal ${result.signal})\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`;
  if (result.code !== 0) throw new Error(`command failed: ${describe()}`);
  const lines = result.stdout.trim().split("\n");
  try {
    return JSON.parse(lines[lines.length - 1]) as T;
  } catch {
    throw new Error(`no JSON result: ${describe()}`);
  }
}

/** Inverts 16 bytes in the middle of a file, in place. */
export async function flipBytes(path: string, count = 16): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const { size } = await handle.stat();
    const at = Math.max(0, Math.floor(size / 2) - Math.floor(count / 2));
    const buffer = Buffer.alloc(Math.min(count, size));
    await handle.read(buffer, 0, buffer.length, at);
    for (let i = 0; i < buffer.length; i++) buffer[i] ^= 0xff;
    await handle.write(buffer, 0, buffer.length, at);
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------
// The network: a local edge, a join token, a temp root, peers.

export interface TestNetworkOptions {
  /** Peers to create and start now (daemons). Default 3. */
  peers?: number;
  edge?: LocalEdgeOptions;
  /** How those peers' daemons start, e.g. `{ storageLimit: "64MiB" }` (peers added later pass their own). */
  startOptions?: PeerStartOptions;
  /**
   * Starts the edge instead of `startLocalEdge(edge)`, e.g. a restartable
   * one (restartable-edge.ts). The network stops it in `stop()`.
   */
  startEdge?: () => Promise<LocalEdge>;
}

export interface AddPeerOptions {
  /** Default: roles service, client, publisher when started, client, publisher otherwise. */
  roles?: Role[];
  /** Start the daemon now. Default true. */
  start?: boolean;
  startOptions?: PeerStartOptions;
  /** Default: a unique one per peer. */
  hostId?: string;
  /** Region to join (`init --region`). Default: the edge's choice (locally its default region). */
  region?: string;
}

export class TestNetwork {
  readonly peers: TestPeer[] = [];
  private readonly homes: TestPeer[] = [];
  private observer: Promise<EdgeClient> | null = null;
  private stopped = false;

  private constructor(
    readonly edge: LocalEdge,
    readonly root: string,
    private readonly joinToken: string,
  ) {}

  static async start(options: TestNetworkOptions = {}): Promise<TestNetwork> {
    const root = mkdtempSync(join(tmpdir(), "peercloud-e2e-"));
    let edge: LocalEdge | null = null;
    try {
      edge = await (options.startEdge ? options.startEdge() : startLocalEdge(options.edge));
      const token = await edge.createJoinToken({ label: "e2e" });
      const net = new TestNetwork(edge, root, token);
      try {
        const count = options.peers ?? 3;
        // Joins one after another (cheap), daemons in parallel (each waits for its own events).
        const peers: TestPeer[] = [];
        for (let i = 0; i < count; i++) peers.push(await net.addPeer({ start: false, roles: ["service", "client", "publisher"] }));
        await Promise.all(peers.map((p) => p.start(options.startOptions)));
        net.peers.push(...peers);
        await net.waitUntilPlaceable(peers);
        return net;
      } catch (error) {
        await net.stop();
        throw error;
      }
    } catch (error) {
      await edge?.stop().catch(() => {});
      rmSync(root, { recursive: true, force: true });
      throw error;
    }
  }

  get edgeUrl(): string {
    return this.edge.url;
  }

  /** A fresh directory under the network's temp root. */
  dir(name: string): string {
    const path = mkdtempSync(join(this.root, `${name.replace(/[^A-Za-z0-9_-]/g, "_")}-`));
    return path;
  }

  /**
   * A new home, joined (`init`). Started as a daemon unless `start: false`;
   * a home that is not started joins without the service role unless told
   * otherwise, so placement never chooses it.
   */
  async addPeer(options: AddPeerOptions = {}): Promise<TestPeer> {
    const index = this.homes.length + 1;
    const name = `peer-${index}`;
    const home = join(this.root, name);
    const start = options.start ?? true;
    const roles = options.roles ?? (start ? ["service", "client", "publisher"] : ["client", "publisher"]);
    const hostId = options.hostId ?? `e2e-host-${index}`;
    const init = await this.init(home, hostId, roles.join(","), options.region);
    const joined = parseJsonResult<{ nodeId: string }>(init, `init ${name}`);
    const peer = new TestPeer(name, home, hostId, joined.nodeId, roles);
    this.homes.push(peer);
    if (start) {
      await peer.start(options.startOptions);
      this.peers.push(peer);
    }
    return peer;
  }

  /** `peercloud init` of a new home in this network (its join token, transfer port chosen at start). */
  private init(home: string, hostId: string, roles: string, region?: string): Promise<CliResult> {
    const args = ["--home", home, "--json", "init", "--edge", this.edge.url, "--join-token", this.joinToken, "--host-id", hostId, "--port", "0", "--roles", roles];
    return spawnPeercloud(region ? [...args, "--region", region] : args).exited;
  }

  /** Every home made so far (started or not). */
  allPeers(): readonly TestPeer[] {
    return this.homes;
  }

  /** Peers holding `cid` in their stores right now. */
  holdersOf(cid: string, among: readonly TestPeer[] = this.homes): TestPeer[] {
    return among.filter((p) => p.holds(cid));
  }

  /** Asks the edge as a client-only observer (never a placement target). */
  private observerClient(): Promise<EdgeClient> {
    this.observer ??= (async () => {
      const home = join(this.root, "observer");
      const init = await this.init(home, "e2e-observer", "client,publisher");
      parseJsonResult(init, "init observer");
      const { config, identity } = await new PeerHome(home).load();
      return new EdgeClient({ edgeUrl: this.edge.url, identity, certificate: config.certificate, attempts: 1 });
    })();
    return this.observer;
  }

  /** What the region directory answers for FIND_PROVIDERS (all regions). */
  async providersOf(cid: string): Promise<ProviderInfo[]> {
    const client = await this.observerClient();
    const { config } = await new PeerHome(this.homes[0].home).load();
    return client.findProviders(config.region, cid, { scope: "all" });
  }

  /** Waits until the directory lists `peer` as a provider of every CID (announcements are batched). */
  async waitForProvider(peer: TestPeer, cids: readonly string[], timeoutMs = 60_000): Promise<void> {
    await waitUntil(`${peer.name} listed as provider of ${cids.length} CID(s)`, timeoutMs, async () => {
      for (const cid of cids) {
        const providers = await this.providersOf(cid);
        if (!providers.some((p) => p.nodeId === peer.nodeId)) return false;
      }
      return true;
    });
  }

  /**
   * Waits until the directory would place replicas on every given peer with
   * its transfer address (its status report has been processed): puts made
   * after this see all of them.
   */
  async waitUntilPlaceable(peers: readonly TestPeer[], timeoutMs = 60_000): Promise<void> {
    const client = await this.observerClient();
    const { config } = await new PeerHome(peers[0].home).load();
    await waitUntil(`directory places on ${peers.map((p) => p.name).join(", ")}`, timeoutMs, async () => {
      const nodes: PeerInfo[] = await client.place(config.region, 16, [], 1);
      return peers.every((peer) => nodes.some((n) => n.nodeId === peer.nodeId && n.addresses.includes(peer.ready?.transferUrl ?? "")));
    });
  }

  /** Kills every process, stops the edge, removes every temp file. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      this.homes.map(async (peer) => {
        const daemon = peer.daemon;
        if (!daemon) return;
        forceKill(daemon.child);
        await daemon.exited.catch(() => {});
        peer.daemon = null;
      }),
    );
    await this.edge.stop().catch(() => {});
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The summary of the one region holding pinned chunks, through the admin API (the live object, not the KV snapshot). */
export async function pinnedRegionSummary(edge: Pick<LocalEdge, "url" | "adminSecret">): Promise<RegionSummary> {
  const res = await fetch(`${edge.url}/v1/admin/regions`, { headers: { authorization: `Bearer ${edge.adminSecret}` } });
  if (!res.ok) throw new Error(`admin regions: HTTP ${res.status}`);
  const body = (await res.json()) as { regions: { live: RegionSummary | null }[] };
  const live = body.regions.map((r) => r.live).filter((s): s is RegionSummary => s !== null && s.pinnedChunks > 0);
  if (live.length !== 1) throw new Error(`expected one region with pinned chunks, got ${JSON.stringify(body)}`);
  return live[0];
}

export function startTestNetwork(options: TestNetworkOptions = {}): Promise<TestNetwork> {
  return TestNetwork.start(options);
}

/** Kills every one-shot command still running (not the daemons), e.g. in afterEach after a failure. */
export async function killAllCommands(): Promise<void> {
  const pending = [...commands];
  for (const child of pending) forceKill(child);
  await Promise.all(pending.map((child) => (child.exitCode !== null || child.signalCode !== null ? null : new Promise((r) => child.once("close", r)))));
}

/**
 * Re-checks `condition` against the real system until it holds, with a
 * deadline. For state that changes without an event a test can await (the
 * directory's view after batched announcements). The pause between checks
 * paces the polling; correctness never depends on it.
 */
export async function waitUntil(what: string, timeoutMs: number, condition: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = null;
  for (let attempt = 0; ; attempt++) {
    try {
      if (await condition()) return;
      lastError = null;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, 500)));
  }
}

// ---------------------------------------------------------------------------
// Files.

/** A port nothing listens on (bound, then released): a dead edge. */
export function closedPort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer();
    server.once("error", rejectPort);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Rewrites fields of a home's config.json (e.g. point it at a dead edge). */
export async function editConfig(home: string, edit: (config: Record<string, unknown>) => void): Promise<void> {
  const path = join(home, "config.json");
  const config = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  edit(config);
  await writeFile(path, JSON.stringify(config, null, 2) + "\n");
}

/** Directory entries, sorted (to check that nothing was left under a final name). */
export function listDir(path: string): string[] {
  try {
    return readdirSync(path).sort();
  } catch {
    return [];
  }
}
