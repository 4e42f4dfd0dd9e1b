/**
 * `npm start`: a whole peercloud network on this machine — the edge under
 * `wrangler dev` (state in .peercloud/dev/edge) and N peers (homes
 * .peercloud/dev/peer-1…N, transfer ports 7101…), each a real
 * `peercloud peer start` process.
 *
 *   npm start                  # 3 peers
 *   npm start -- --peers 5
 *
 * Steps: local secrets (.dev.vars) → wrangler dev → wait until
 * GET /v1/network answers (polled, with a deadline) → a join token from the
 * admin API → `peercloud init` for every home not yet initialised (or whose
 * certificate expired: `init --rejoin` keeps its identity and data) → one
 * `peer start` per home, each awaited until it prints its ready line → the
 * copy-paste commands. Ctrl-C stops the peers, then the edge, and waits for
 * them; a child that dies on its own stops everything with a message saying
 * which. Restarting keeps every home and the edge's state.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureDevSecrets } from "./dev-secrets.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DEV_DIR = join(ROOT, ".peercloud", "dev");
const EDGE_PORT = 8787;
const EDGE_URL = `http://127.0.0.1:${EDGE_PORT}`;
const FIRST_PEER_PORT = 7101;
const EDGE_READY_DEADLINE_MS = 120_000;
const PEER_READY_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 15_000;
/** Re-join when the certificate has less than this left (the daemon renews on its own above it). */
const REJOIN_MARGIN_MS = 60 * 60_000;
const CLI = join(ROOT, "bin", "peercloud.js");

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<void>;
}

const children: Child[] = [];
let stopping: Promise<never> | null = null;

function log(message: string): void {
  process.stdout.write(`[local-network] ${message}\n`);
}

function track(name: string, proc: ChildProcess): Child {
  const exited = once(proc, "exit").then(() => {});
  const child = { name, proc, exited };
  children.push(child);
  proc.on("exit", (code, signal) => {
    if (stopping) return log(`${name} stopped`);
    log(`${name} exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}); stopping everything`);
    void stopAll(1);
  });
  return child;
}

/**
 * Stops every child and exits. Idempotent: a second Ctrl-C (or tsx relaying
 * the first one again) waits for the same shutdown instead of cutting it short.
 */
function stopAll(exitCode: number): Promise<never> {
  stopping ??= shutdown().then(() => process.exit(exitCode));
  return stopping;
}

async function shutdown(): Promise<void> {
  // Peers first (they say goodbye to the edge), then the edge; each group is awaited with a deadline.
  for (const group of [children.filter((c) => c.name !== "edge"), children.filter((c) => c.name === "edge")]) {
    const running = group.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);
    for (const c of running) signalTree(c, "SIGTERM");
    const deadline = new Promise<"late">((r) => setTimeout(r, STOP_DEADLINE_MS, "late").unref());
    if ((await Promise.race([Promise.all(running.map((c) => c.exited)), deadline])) === "late") {
      for (const c of running) {
        if (c.proc.exitCode === null && c.proc.signalCode === null) {
          log(`${c.name} did not stop within ${STOP_DEADLINE_MS / 1000}s; killing it`);
          signalTree(c, "SIGKILL");
        }
      }
      await Promise.all(running.map((c) => c.exited));
    }
  }
  log("stopped");
}

/** Children run in their own process group (detached), so wrangler's workerd goes down with it. */
function signalTree(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.proc.pid!, signal);
  } catch {
    child.proc.kill(signal);
  }
}

function startEdge(): Child {
  const logPath = join(DEV_DIR, "edge.log");
  const out = createWriteStream(logPath, { flags: "a" });
  const wrangler = join(ROOT, "node_modules", ".bin", "wrangler");
  const proc = spawn(wrangler, ["dev", "--port", String(EDGE_PORT), "--ip", "127.0.0.1", "--persist-to", join(DEV_DIR, "edge"), "--show-interactive-dev-session=false"], {
    cwd: ROOT,
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  proc.stdout!.pipe(out, { end: false });
  proc.stderr!.pipe(out, { end: false });
  log(`edge: wrangler dev on ${EDGE_URL} (log: ${relative(process.cwd(), logPath)})`);
  return track("edge", proc);
}

/** Polls the readiness endpoint until it answers 200, the edge dies, or the deadline passes. */
async function waitForEdge(edge: Child): Promise<void> {
  const deadline = Date.now() + EDGE_READY_DEADLINE_MS;
  let died = false;
  void edge.exited.then(() => (died = true));
  for (;;) {
    if (died) throw new Error("wrangler dev exited before the edge answered; see .peercloud/dev/edge.log");
    try {
      const res = await fetch(`${EDGE_URL}/v1/network`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the edge did not answer GET /v1/network within ${EDGE_READY_DEADLINE_MS / 1000}s; see .peercloud/dev/edge.log`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function devVar(name: string): string {
  const text = readFileSync(join(ROOT, ".dev.vars"), "utf8");
  const m = new RegExp(`^\\s*(?:export\\s+)?${name}\\s*=\\s*(.*)$`, "m").exec(text);
  if (!m) throw new Error(`.dev.vars defines no ${name}`);
  return m[1].trim().replace(/^(["'])(.*)\1$/, "$2");
}

async function createJoinToken(): Promise<string> {
  const res = await fetch(`${EDGE_URL}/v1/admin/join-tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${devVar("ADMIN_SECRET")}`, "content-type": "application/json" },
    body: JSON.stringify({ label: "local-network", ttlSeconds: 3600, roles: ["service", "client", "gateway", "publisher"] }),
  });
  const body = (await res.json()) as { token?: string; error?: { message: string } };
  if (!res.ok || !body.token) throw new Error(`creating a join token failed: ${res.status} ${body.error?.message ?? ""}`);
  return body.token;
}

/** Runs the CLI to completion; rejects with its one error line. */
async function runCli(args: string[]): Promise<void> {
  const proc = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const [code] = (await once(proc, "exit")) as [number | null];
  if (code !== 0) throw new Error(`peercloud ${args.join(" ")} failed: ${stderr.trim()}`);
}

function needsJoin(home: string): "init" | "rejoin" | null {
  const configPath = join(home, "config.json");
  if (!existsSync(configPath)) return "init";
  const config = JSON.parse(readFileSync(configPath, "utf8")) as { certificateExpiresAtMs?: number };
  return (config.certificateExpiresAtMs ?? 0) - Date.now() < REJOIN_MARGIN_MS ? "rejoin" : null;
}

/** Starts `peer start` for a home and resolves with its ready event. */
async function startPeer(index: number, home: string): Promise<{ transferUrl: string; nodeId: string }> {
  const name = `peer-${index}`;
  const proc = spawn(process.execPath, [CLI, "--home", home, "--json", "peer", "start", "--host", "127.0.0.1", "--port", String(FIRST_PEER_PORT + index - 1)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const child = track(name, proc);
  const logFile = createWriteStream(join(DEV_DIR, `${name}.log`), { flags: "a" });
  proc.stderr!.pipe(logFile, { end: false });
  const lines = createInterface({ input: proc.stdout! });
  const ready = new Promise<{ transferUrl: string; nodeId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} printed no ready line within ${PEER_READY_DEADLINE_MS / 1000}s`)), PEER_READY_DEADLINE_MS);
    lines.on("line", (line) => {
      logFile.write(line + "\n");
      let event: { event?: string; transferUrl?: string; nodeId?: string; error?: { message: string } };
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event.event === "ready") {
        clearTimeout(timer);
        resolve({ transferUrl: event.transferUrl!, nodeId: event.nodeId! });
      } else if (event.error) {
        clearTimeout(timer);
        reject(new Error(`${name}: ${event.error.message}`));
      }
    });
    void child.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready; see .peercloud/dev/${name}.log`));
    });
  });
  return ready;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { peers: { type: "string", default: "3" } } });
  const peerCount = Number(values.peers);
  if (!Number.isInteger(peerCount) || peerCount < 1 || peerCount > 50) throw new Error(`--peers must be an integer from 1 to 50, got ${values.peers}`);
  mkdirSync(DEV_DIR, { recursive: true });
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));

  const created = ensureDevSecrets(join(ROOT, ".dev.vars"));
  if (created.length) log(`generated ${created.join(", ")} into .dev.vars`);
  const edge = startEdge();
  await waitForEdge(edge);
  log("edge is up");

  const homes = Array.from({ length: peerCount }, (_, i) => join(DEV_DIR, `peer-${i + 1}`));
  let token: string | null = null;
  for (const [i, home] of homes.entries()) {
    const joinKind = needsJoin(home);
    if (!joinKind) continue;
    token ??= await createJoinToken();
    const args = ["--home", home, "init", "--edge", EDGE_URL, "--join-token", token, "--roles", "service,publisher", "--host-id", `local-${i + 1}`, "--port", String(FIRST_PEER_PORT + i)];
    await runCli(joinKind === "rejoin" ? [...args, "--rejoin"] : args);
    log(`peer-${i + 1}: ${joinKind === "rejoin" ? "re-joined (certificate expired)" : "initialised"} in ${relative(ROOT, home)}`);
  }
  const ready = await Promise.all(homes.map((home, i) => startPeer(i + 1, home)));
  for (const [i, r] of ready.entries()) log(`peer-${i + 1}: ${r.nodeId.slice(0, 16)}… serving at ${r.transferUrl}`);

  const h = (i: number) => relative(process.cwd(), homes[i]) || ".";
  const other = peerCount > 1 ? 1 : 0;
  process.stdout.write(
    [
      "",
      `peercloud local network: edge ${EDGE_URL} (API: ${EDGE_URL}/v1/network), ${peerCount} peer(s). From another terminal:`,
      "",
      `  LINK=$(npx peercloud --home ${h(0)} put ./README.md)`,
      `  npx peercloud --home ${h(other)} get "$LINK" -o /tmp/peercloud-copy`,
      `  npx peercloud --home ${h(other)} status`,
      "",
      "Logs: .peercloud/dev/*.log. Ctrl-C stops everything; a restart keeps the data.",
      "",
    ].join("\n"),
  );
}

main().catch((error: Error) => {
  log(`error: ${error.message}`);
  void stopAll(1);
});
