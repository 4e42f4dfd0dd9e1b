/**
 * Child processes of the swarm bench, each started inside one of the run's
 * network namespaces (`ip netns exec NS cmd…`; `ip` execs the command, so the
 * pid we hold is the program itself) in a process group of its own, so that a
 * Ctrl-C on the terminal reaches only the bench, which then stops everything
 * in order. Output is split into lines that the bench waits on (a daemon's
 * `{"event":"ready"}`, a driver's result), kept as a tail for error messages,
 * and written to a log file in the run's temp dir.
 *
 * Every process lands in one registry; `stopAllProcesses()` ends them by
 * their own process-group id (SIGTERM, then SIGKILL after a grace period) —
 * never by name.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const PEERCLOUD_BIN = join(REPO_ROOT, "bin", "peercloud.js");

/** Output kept per stream for error messages. */
const TAIL_CHARS = 6000;

const registry = new Set<NsProcess>();

export interface NsSpawnOptions {
  /** Short label for logs and errors, e.g. "daemon p3". */
  name: string;
  /** Namespace to run in; null: this process's own. */
  ns: string | null;
  command: string;
  args: string[];
  /** Directory for `<name>.log` (stdout and stderr, interleaved with prefixes). */
  logDir: string;
  /** Keep stdin open for `writeLine` (drivers wait for "go" on it). */
  stdin?: boolean;
  env?: Record<string, string | undefined>;
}

type StreamName = "stdout" | "stderr";

export class NsProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly lines: Record<StreamName, string[]> = { stdout: [], stderr: [] };
  private readonly partial: Record<StreamName, string> = { stdout: "", stderr: "" };
  private readonly tails: Record<StreamName, string> = { stdout: "", stderr: "" };
  private readonly waiters = new Set<() => void>();
  private readonly log: WriteStream;
  private done: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(options: NsSpawnOptions) {
    this.name = options.name;
    const [command, args] = options.ns ? ["ip", ["netns", "exec", options.ns, options.command, ...options.args]] : [options.command, options.args];
    const env: NodeJS.ProcessEnv = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false", WRANGLER_HIDE_BANNER: "true" };
    delete env.PEERCLOUD_HOME;
    delete env.NODE_OPTIONS;
    for (const [k, v] of Object.entries(options.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    this.log = createWriteStream(join(options.logDir, `${options.name.replace(/[^A-Za-z0-9_.-]/g, "_")}.log`));
    this.log.on("error", () => {});
    this.child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"], detached: true });
    if (this.child.pid === undefined) throw new Error(`could not spawn ${command} for ${options.name}`);
    this.pid = this.child.pid;
    registry.add(this);
    for (const stream of ["stdout", "stderr"] as const) {
      this.child[stream]!.setEncoding("utf8");
      this.child[stream]!.on("data", (piece: string) => this.onData(stream, piece));
    }
    this.child.stdin?.on("error", () => {});
    this.exited = new Promise((resolveExit) => {
      this.child.once("error", (error) => {
        this.tails.stderr += `\n[spawn error] ${error.message}`;
        this.done ??= { code: null, signal: null };
        registry.delete(this);
        this.wake();
        resolveExit(this.done);
      });
      this.child.once("close", (code, signal) => {
        for (const stream of ["stdout", "stderr"] as const) if (this.partial[stream]) this.lines[stream].push(this.partial[stream]);
        this.done = { code, signal };
        registry.delete(this);
        this.log.end(`[exit] code ${code} signal ${signal}\n`);
        this.wake();
        resolveExit(this.done);
      });
    });
  }

  get running(): boolean {
    return this.done === null;
  }

  /** Writes one line to the child's stdin (spawned with `stdin: true`). */
  writeLine(line: string): void {
    this.child.stdin?.write(line + "\n");
  }

  /** The first JSON line on `stream` (printed already or later) that satisfies `match`; rejects when the process exits first or after `timeoutMs`. */
  waitForJson<T = Record<string, unknown>>(stream: StreamName, match: (value: Record<string, unknown>) => boolean, timeoutMs: number, what = "the awaited line"): Promise<T> {
    return new Promise((resolveLine, rejectLine) => {
      let seen = 0;
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      const check = () => {
        const lines = this.lines[stream];
        for (; seen < lines.length; seen++) {
          const value = parseJsonLine(lines[seen]);
          if (value && match(value)) {
            const found = value;
            return finish(() => resolveLine(found as T));
          }
        }
        if (this.done) finish(() => rejectLine(new Error(`${this.name} exited (code ${this.done!.code}, signal ${this.done!.signal}) before printing ${what}\n${this.describeTails()}`)));
      };
      const timer = setTimeout(() => finish(() => rejectLine(new Error(`${this.name} did not print ${what} within ${Math.round(timeoutMs / 1000)} s\n${this.describeTails()}`))), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Every JSON object printed on `stream` so far. */
  jsonLines(stream: StreamName): Record<string, unknown>[] {
    return this.lines[stream].flatMap((line) => {
      const value = parseJsonLine(line);
      return value ? [value] : [];
    });
  }

  /** The last few KB of stdout and stderr, for error messages. */
  describeTails(): string {
    return `--- ${this.name} (pid ${this.pid}) stderr tail\n${this.tails.stderr.trimEnd() || "(empty)"}\n--- ${this.name} stdout tail\n${this.tails.stdout.trimEnd() || "(empty)"}`;
  }

  /** Sends a signal to the process group (its own children included). */
  signal(signal: NodeJS.Signals): void {
    if (this.done) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      try {
        process.kill(this.pid, signal);
      } catch {
        // gone meanwhile
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.done) return;
    this.child.stdin?.end();
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Whatever the program left in its group (e.g. workerd under Miniflare) goes too.
    try {
      process.kill(-this.pid, "SIGKILL");
    } catch {
      // the group is empty
    }
  }

  private onData(stream: StreamName, piece: string): void {
    this.log.write(stream === "stderr" ? piece.replace(/^(?=.)/gm, "[err] ") : piece);
    this.tails[stream] = (this.tails[stream] + piece).slice(-TAIL_CHARS);
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

function parseJsonLine(line: string): Record<string, unknown> | null {
  if (!line.startsWith("{")) return null;
  try {
    const value = JSON.parse(line) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export function spawnInNs(options: NsSpawnOptions): NsProcess {
  return new NsProcess(options);
}

/** `node --import tsx SCRIPT ARGS` inside `ns`: how the bench's own TypeScript helpers run. */
export function spawnTsInNs(options: Omit<NsSpawnOptions, "command" | "args"> & { script: string; args: string[] }): NsProcess {
  return new NsProcess({ ...options, command: process.execPath, args: ["--import", "tsx", options.script, ...options.args] });
}

/** `node bin/peercloud.js ARGS` inside `ns`. */
export function spawnPeercloudInNs(options: Omit<NsSpawnOptions, "command" | "args"> & { args: string[] }): NsProcess {
  // PEERCLOUD_BENCH_CPU_PROF=DIR: every peercloud process writes a V8 CPU profile there when it exits (to find where a run's CPU goes).
  const profile = process.env.PEERCLOUD_BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PEERCLOUD_BENCH_CPU_PROF}`] : [];
  return new NsProcess({ ...options, command: process.execPath, args: [...profile, PEERCLOUD_BIN, ...options.args] });
}

/** Runs a command to completion; rejects with its output tails on a non-zero exit or after `timeoutMs`. */
export async function runToEnd(options: NsSpawnOptions, timeoutMs: number): Promise<NsProcess> {
  const proc = new NsProcess(options);
  const timer = setTimeout(() => proc.signal("SIGKILL"), timeoutMs);
  const { code, signal } = await proc.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${options.name} failed (code ${code}, signal ${signal}${signal === "SIGKILL" ? `, killed after ${Math.round(timeoutMs / 1000)} s` : ""})\n${proc.describeTails()}`);
  return proc;
}

/** Every process still running (for error reports). */
export function runningProcesses(): NsProcess[] {
  return [...registry];
}

/** Stops every process this module started, all in parallel. */
export async function stopAllProcesses(graceMs = 10_000): Promise<void> {
  await Promise.all([...registry].map((p) => p.stop(graceMs)));
}

/** Synchronous last resort (process "exit" hook): SIGKILL every group still running. */
export function killAllProcessesNow(): void {
  for (const p of registry) p.signal("SIGKILL");
}
