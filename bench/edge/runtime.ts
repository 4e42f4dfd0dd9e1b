/**
 * The local edge under test, driven through Miniflare directly (DESIGN
 * "Decisions already measured": `wrangler dev`'s proxy runs out of file
 * descriptors at ~200 sockets; Miniflare itself held 10,000).
 *
 * 1. The Worker is bundled from the current sources exactly as a deploy
 *    would (`wrangler deploy --dry-run --outdir`), so the bench measures the
 *    code that ships, not a test build.
 * 2. A small wrapper entry (written beside the bundle, never into the
 *    sources) subclasses the two Durable Object classes to count handler
 *    invocations (fetch, webSocketMessage, alarm…), RPC calls, SQLite rows
 *    read/written (from each cursor's `rowsRead`/`rowsWritten`, the figures
 *    Cloudflare bills) and `setAlarm` calls, and exposes them on
 *    `GET /__bench/counters`. Nothing of the app's own behaviour changes.
 * 3. A second worker in the same workerd process holds a trivial echo
 *    Durable Object with hibernatable WebSockets and the same "ping"→"pong"
 *    auto-response: the same-run baseline of what local workerd can do with
 *    WebSocket messages on this machine.
 *
 * Both workers listen on their own loopback socket (`unsafeDirectSockets`),
 * so region and echo traffic take the same path: client → workerd → Worker
 * (upgrade only) → Durable Object.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, rmSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { randomBytes, toBase64Url } from "../../src/core/bytes.js";

/** RPC methods of the two classes (durable-objects/region-directory-contract.ts, ReplayGuard.claim) counted as "rpc". */
const RPC_METHODS: Record<string, string[]> = {
  RegionDirectory: ["register", "peerState", "findNode", "findProviders", "pin", "place", "deliverSignal", "addEgress", "summary"],
  ReplayGuard: ["claim"],
};

/** The instrumented entry: re-exports the bundle with counting subclasses of its Durable Objects. */
function instrumentedEntrySource(region: string): string {
  return `// Written by bench/edge/runtime.ts: counts what the Durable Objects do; changes nothing else.
import * as app from "./index.js";
export * from "./index.js";

const HANDLERS = ["fetch", "webSocketMessage", "webSocketClose", "webSocketError", "alarm"];
const RPC_METHODS = ${JSON.stringify(RPC_METHODS)};
const all = {};

function instrumentStorage(ctx, c) {
  const storage = ctx.storage;
  const sql = storage && storage.sql;
  if (sql && typeof sql.exec === "function") {
    const exec = sql.exec;
    const pending = [];
    const fold = () => {
      for (const cursor of pending) { c.rowsRead += cursor.rowsRead; c.rowsWritten += cursor.rowsWritten; }
      pending.length = 0;
    };
    try {
      Object.defineProperty(sql, "exec", {
        configurable: true, writable: true,
        value: function (...args) { const cursor = exec.apply(sql, args); pending.push(cursor); if (pending.length > 4096) fold(); return cursor; },
      });
      c.folds.push(fold);
      c.sqlInstrumented = true;
    } catch (err) { c.sqlInstrumented = false; c.sqlInstrumentError = String(err); }
    c.databases.push(sql);
  }
  if (storage && typeof storage.setAlarm === "function") {
    const setAlarm = storage.setAlarm;
    try {
      Object.defineProperty(storage, "setAlarm", {
        configurable: true, writable: true,
        value: function (...args) { c.setAlarm++; return setAlarm.apply(storage, args); },
      });
    } catch {}
  }
}

function foldAll() { for (const c of Object.values(all)) for (const fold of c.folds) fold(); }

function afterCall(result) {
  if (result && typeof result.then === "function") return result.finally(foldAll);
  foldAll();
  return result;
}

function snapshot() {
  foldAll();
  const out = {};
  for (const [name, c] of Object.entries(all)) {
    let databaseBytes = 0;
    for (const sql of c.databases) { try { databaseBytes += sql.databaseSize; } catch {} }
    out[name] = {
      constructed: c.constructed, handlers: { ...c.handlers }, rpc: { ...c.rpc },
      rowsRead: c.rowsRead, rowsWritten: c.rowsWritten, setAlarm: c.setAlarm,
      objects: c.databases.length, databaseBytes, sqlInstrumented: c.sqlInstrumented ?? null,
    };
  }
  return out;
}

function instrument(Base, name) {
  if (typeof Base !== "function") return Base;
  const c = (all[name] = { constructed: 0, handlers: {}, rpc: {}, rowsRead: 0, rowsWritten: 0, setAlarm: 0, folds: [], databases: [] });
  class Instrumented extends Base {
    constructor(ctx, env) {
      instrumentStorage(ctx, c); // before super(): schema migrations in the constructor count too
      super(ctx, env);
      c.constructed++;
    }
    benchCounters() { return snapshot(); }
  }
  for (const handler of HANDLERS) {
    const original = Base.prototype[handler];
    if (typeof original !== "function") continue;
    Object.defineProperty(Instrumented.prototype, handler, {
      configurable: true, writable: true,
      value: function (...args) { c.handlers[handler] = (c.handlers[handler] ?? 0) + 1; return afterCall(original.apply(this, args)); },
    });
  }
  for (const method of RPC_METHODS[name] ?? []) {
    const original = Base.prototype[method];
    if (typeof original !== "function") continue;
    Object.defineProperty(Instrumented.prototype, method, {
      configurable: true, writable: true,
      value: function (...args) { c.rpc[method] = (c.rpc[method] ?? 0) + 1; return afterCall(original.apply(this, args)); },
    });
  }
  Object.defineProperty(Instrumented, "name", { value: Base.name });
  return Instrumented;
}

export const RegionDirectory = instrument(app.RegionDirectory, "RegionDirectory");
export const ReplayGuard = instrument(app.ReplayGuard, "ReplayGuard");

const base = app.default;
export default {
  async fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__bench/counters") {
      const ns = env.REGION_DIRECTORY;
      return Response.json(await ns.get(ns.idFromName(${JSON.stringify(region)})).benchCounters());
    }
    return base.fetch(request, env, ctx);
  },
};
`;
}

/**
 * The baseline: one Durable Object, hibernatable WebSockets, "ping" auto-answered
 * "pong", and for every other message the least work that keeps the protocol's
 * flow: parse the JSON, answer `{type:"ack",id}` when it carries an id (like the
 * directory, it does not answer id-less status reports).
 */
const ECHO_WORKER_SOURCE = `
import { DurableObject } from "cloudflare:workers";
const counters = { constructed: 0, handlers: {} };
const count = (h) => { counters.handlers[h] = (counters.handlers[h] ?? 0) + 1; };
export class EchoRoom extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    counters.constructed++;
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }
  async fetch(request) {
    count("fetch");
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    pair[1].send('{"type":"welcome"}');
    return new Response(null, { status: 101, webSocket: pair[0] });
  }
  webSocketMessage(ws, message) {
    count("webSocketMessage");
    let id;
    try { id = JSON.parse(message).id; } catch {}
    if (id !== undefined) ws.send(JSON.stringify({ type: "ack", id }));
  }
  webSocketClose(ws, code) { count("webSocketClose"); try { ws.close(code === 1005 ? 1000 : code); } catch {} }
  webSocketError() { count("webSocketError"); }
  benchCounters() { return { EchoRoom: { constructed: counters.constructed, handlers: { ...counters.handlers } } }; }
}
export default {
  async fetch(request, env) {
    const stub = env.ECHO.get(env.ECHO.idFromName("echo"));
    if (new URL(request.url).pathname === "/__bench/counters") return Response.json(await stub.benchCounters());
    return stub.fetch(request);
  },
};
`;

export interface ObjectCounters {
  constructed: number;
  handlers: Record<string, number>;
  rpc?: Record<string, number>;
  rowsRead?: number;
  rowsWritten?: number;
  setAlarm?: number;
  objects?: number;
  databaseBytes?: number;
  sqlInstrumented?: boolean | null;
}
export type Counters = Record<string, ObjectCounters>;

export interface EdgeRuntime {
  /** Loopback origin of the peercloud Worker, e.g. http://127.0.0.1:34567 */
  edgeUrl: URL;
  /** Loopback origin of the echo baseline worker. */
  echoUrl: URL;
  adminSecret: string;
  region: string;
  compatibilityDate: string;
  stateDir: string;
  regionCounters(): Promise<Counters>;
  echoCounters(): Promise<Counters>;
  dispose(): Promise<void>;
}

export interface StartOptions {
  projectDir: string;
  region: string;
  /** Parent folder of the run's state (SQLite files of the objects, KV, R2); removed at the end. */
  stateParentDir: string;
  log: (line: string) => void;
}

/**
 * Where the objects' SQLite files live. Locally every Durable Object event
 * commits an SQLite transaction to that folder, so on a disk the figures
 * measure the disk's fsync latency; in memory (tmpfs) they measure the
 * runtime and the directory's code, which is closer to production, where
 * durability is replication rather than a local fsync per event.
 */
export function defaultStateParentDir(): string {
  try {
    accessSync("/dev/shm", constants.W_OK);
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

/** Runs `wrangler deploy --dry-run --outdir` and returns the folder with index.js. */
async function buildBundle(projectDir: string, outDir: string, log: (line: string) => void): Promise<string> {
  const t0 = Date.now();
  const wrangler = join(projectDir, "node_modules", ".bin", "wrangler");
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(wrangler, ["deploy", "--dry-run", "--outdir", outDir], {
      cwd: projectDir,
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", CI: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (d) => output.push(String(d)));
    child.stderr.on("data", (d) => output.push(String(d)));
    child.on("error", reject);
    child.on("exit", resolve);
  });
  if (code !== 0) throw new Error(`wrangler deploy --dry-run failed (exit ${code}):\n${output.join("").slice(-4000)}`);
  const files = await readdir(outDir);
  if (!files.includes("index.js")) throw new Error(`wrangler wrote no index.js into ${outDir} (found: ${files.join(", ")})`);
  const sizeBytes = (await stat(join(outDir, "index.js"))).size;
  log(`built the Worker bundle with wrangler --dry-run in ${((Date.now() - t0) / 1000).toFixed(1)} s (${(sizeBytes / 1024).toFixed(0)} KiB)`);
  return outDir;
}

/**
 * wrangler.toml as wrangler reads it. wrangler's module installs a SIGINT
 * handler that exits the process at once (it is a CLI); the bench has its
 * own cleanup (close sockets, dispose Miniflare, remove its state), so the
 * handlers the import adds are taken off again.
 */
async function readWranglerConfig(path: string) {
  const signals = ["SIGINT", "SIGTERM"] as const;
  const before = new Map(signals.map((sig) => [sig, new Set(process.listeners(sig))]));
  try {
    const { unstable_readConfig } = await import("wrangler");
    return unstable_readConfig({ config: path });
  } finally {
    for (const sig of signals) for (const listener of process.listeners(sig)) if (!before.get(sig)!.has(listener)) process.removeListener(sig, listener);
  }
}

function tomlVar(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

const STATE_DIR_PREFIX = "peercloud-bench-edge-";

/**
 * Removes state folders of earlier runs whose process is gone. A run cleans
 * up after itself, also on Ctrl-C, but tsx SIGKILLs a child whose event loop
 * does not acknowledge a signal within 30 ms, and then nothing runs.
 */
async function removeStaleStateDirs(parent: string, log: (line: string) => void): Promise<void> {
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (!name.startsWith(STATE_DIR_PREFIX)) continue;
    const dir = join(parent, name);
    const pid = Number(await readFile(join(dir, "owner.pid"), "utf8").catch(() => "NaN"));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    try {
      process.kill(pid, 0);
      continue; // still running
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") continue;
    }
    await rm(dir, { recursive: true, force: true });
    log(`removed ${dir}, left behind by an interrupted run (pid ${pid})`);
  }
}

export async function startEdge(opts: StartOptions): Promise<EdgeRuntime> {
  await removeStaleStateDirs(opts.stateParentDir, opts.log);
  const workDir = await mkdtemp(join(opts.stateParentDir, STATE_DIR_PREFIX));
  await writeFile(join(workDir, "owner.pid"), String(process.pid));
  // Miniflare's own SIGINT/SIGTERM hook kills workerd and exits synchronously, so an
  // interrupted run ends in "exit": remove the state there, synchronously.
  const removeStateSync = () => rmSync(workDir, { recursive: true, force: true });
  process.on("exit", removeStateSync);
  let mf: Miniflare | undefined;
  const dispose = async () => {
    const m = mf;
    mf = undefined;
    if (m) await m.dispose().catch((err) => opts.log(`miniflare dispose failed: ${(err as Error).message}`));
    await rm(workDir, { recursive: true, force: true });
    process.removeListener("exit", removeStateSync);
  };
  try {
    const config = await readWranglerConfig(join(opts.projectDir, "wrangler.toml"));
    const bundleDir = await buildBundle(opts.projectDir, join(workDir, "bundle"), opts.log);
    const entryPath = join(bundleDir, "bench-entry.js");
    await writeFile(entryPath, instrumentedEntrySource(opts.region));
    const compatibilityDate = config.compatibility_date ?? "2026-04-20";
    const compatibilityFlags = config.compatibility_flags ?? ["nodejs_compat"];
    const vars = (config.vars ?? {}) as Record<string, unknown>;
    const adminSecret = toBase64Url(randomBytes(24));
    const generousLimit = { simple: { limit: 1_000_000_000, period: 60 as const } };
    const ratelimits: Record<string, typeof generousLimit> = {};
    for (const r of config.ratelimits ?? []) ratelimits[r.name] = generousLimit;

    mf = new Miniflare({
      // Region choice must not depend on a fetched request.cf; the bench names its region explicitly.
      cf: false,
      durableObjectsPersist: join(workDir, "do"),
      kvPersist: join(workDir, "kv"),
      r2Persist: join(workDir, "r2"),
      workers: [
        {
          name: "peercloud",
          modules: true,
          modulesRoot: bundleDir,
          scriptPath: entryPath,
          // wrangler's bundle is an ES module; Miniflare's default rules would read other *.js as CommonJS.
          modulesRules: [{ type: "ESModule", include: ["**/*.js"] }],
          compatibilityDate,
          compatibilityFlags,
          unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
          durableObjects: {
            REGION_DIRECTORY: { className: "RegionDirectory", useSQLite: true },
            REPLAY_GUARD: { className: "ReplayGuard", useSQLite: true },
          },
          r2Buckets: ["CHUNKS"],
          kvNamespaces: ["DASHBOARD"],
          ratelimits,
          bindings: {
            ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, tomlVar(v)])),
            ADMIN_SECRET: adminSecret,
            EDGE_SIGNING_KEY: toBase64Url(randomBytes(32)),
          },
        },
        {
          name: "echo",
          modules: true,
          script: ECHO_WORKER_SOURCE,
          compatibilityDate,
          unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
          durableObjects: { ECHO: { className: "EchoRoom", useSQLite: true } },
        },
      ],
    });
    await mf.ready;
    const edgeUrl = await mf.unsafeGetDirectURL("peercloud");
    const echoUrl = await mf.unsafeGetDirectURL("echo");
    const getJson = async (url: URL): Promise<Counters> => {
      const res = await fetch(new URL("/__bench/counters", url));
      if (!res.ok) throw new Error(`counters: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
      return (await res.json()) as Counters;
    };
    return {
      edgeUrl,
      echoUrl,
      adminSecret,
      region: opts.region,
      compatibilityDate,
      stateDir: workDir,
      regionCounters: () => getJson(edgeUrl),
      echoCounters: () => getJson(echoUrl),
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

// ---- the workerd processes, seen through /proc ------------------------------

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  cpuTicks: number;
}

async function readProc(pid: number): Promise<ProcInfo | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { pid, ppid: Number(fields[1]), comm, cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** The workerd processes descending from this Node process (Miniflare spawns them). */
export async function workerdProcesses(): Promise<ProcInfo[]> {
  const entries = await readdir("/proc");
  const infos = (await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map((e) => readProc(Number(e))))).filter((p): p is ProcInfo => p !== null);
  const children = new Map<number, ProcInfo[]>();
  for (const p of infos) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: ProcInfo[] = [];
  const queue = [process.pid];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    for (const child of children.get(queue[i]) ?? []) {
      queue.push(child.pid);
      if (child.comm.includes("workerd")) out.push(child);
    }
  }
  return out;
}

/** Sum of VmRSS of the workerd processes, in bytes. */
export async function workerdRssBytes(): Promise<number> {
  let total = 0;
  for (const p of await workerdProcesses()) {
    try {
      const status = await readFile(`/proc/${p.pid}/status`, "utf8");
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // the process ended between listing and reading
    }
  }
  return total;
}

/** CPU time (user + system) used so far by the workerd processes, in ms (clock ticks are 10 ms on Linux). */
export async function workerdCpuMs(): Promise<number> {
  let ticks = 0;
  for (const p of await workerdProcesses()) ticks += p.cpuTicks;
  return ticks * 10;
}

/** CPU time used by the whole machine so far (all processes, all cores), in ms, from /proc/stat. */
export async function machineCpuMs(): Promise<number> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  return busy * 10;
}
