/**
 * Teardown on every way out: the run registers what it made (processes are
 * tracked by processes.ts; namespaces by their run prefix; the temp dir),
 * and cleanup() removes it all, once, in order — processes first (they hold
 * the namespaces), then namespaces, then files. SIGINT/SIGTERM run it and
 * exit 130/143; a synchronous "exit" hook is the last resort for paths that
 * never reach it (an uncaught exception).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killAllProcessesNow, stopAllProcesses } from "./processes.js";
import { destroyTopology, listNamespaces, removeStaleNamespaces } from "./topology.js";

export interface CleanupTargets {
  prefix: string;
  tempDir: string | null;
  keepTempDir: boolean;
}

let targets: CleanupTargets | null = null;
let cleaning: Promise<void> | null = null;
let interruptedBy: NodeJS.Signals | null = null;

/** The signal that interrupted the run, if one did (failures after it are the teardown's, not the run's). */
export function interruption(): NodeJS.Signals | null {
  return interruptedBy;
}

export function registerCleanup(t: CleanupTargets): void {
  targets = t;
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAllProcesses(5000);
    if (!targets) return;
    await destroyTopology({ prefix: targets.prefix });
    if (targets.tempDir && !targets.keepTempDir) rmSync(targets.tempDir, { recursive: true, force: true });
  })();
  return cleaning;
}

/** Stops the run from outside its flow (a signal, the launcher gone): cleans up and exits 130 (SIGINT) or 143. */
export function interrupt(signal: NodeJS.Signals, why: string, log: (line: string) => void): void {
  if (interruptedBy) return;
  interruptedBy = signal;
  log(`${why}: stopping every process and removing the namespaces`);
  void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
}

/** Installs the signal handlers and the exit hook. `log` receives one line per interruption. */
export function installCleanupHandlers(log: (line: string) => void): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => interrupt(signal, signal, log));
  process.on("exit", () => {
    killAllProcessesNow();
    if (!targets) return;
    for (const ns of listNamespaces(targets.prefix)) {
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        // best effort on the way out
      }
    }
    if (targets.tempDir && !targets.keepTempDir) rmSync(targets.tempDir, { recursive: true, force: true });
  });
}

/**
 * Leftovers of runs killed before their cleanup (possible only without the
 * sandbox): `pcs-<pid>-*` namespaces and temp dirs whose pid is gone.
 * Returns what was removed.
 */
export async function removeStaleRuns(): Promise<string[]> {
  const removed = await removeStaleNamespaces();
  for (const name of readdirSync(tmpdir())) {
    const m = /^pcs-(\d+)-/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EPERM") continue;
    }
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
