/**
 * Prerequisites, and the private sandbox the whole run lives in.
 *
 * skipReason(): the bench needs root, `ip` and `tc`, and the kernel must let
 * it create a network namespace with a veth pair and an HTB qdisc; if not,
 * it says why and skips (exit 0).
 *
 * runInSandbox(): re-runs the bench inside fresh pid + mount + network
 * namespaces (`unshare --pid --mount --net --fork --kill-child`) with a
 * private tmpfs on /run/netns. Everything the run creates — namespaces,
 * veths, processes — then belongs to that sandbox, so the kernel removes all
 * of it even if the bench is killed with SIGKILL (the pid namespace's init
 * dies, its processes with it, and the namespaces have no other holder).
 * unshare(1) ignores SIGINT/SIGTERM itself, so this outer process forwards
 * them to the inner bench; the inner bench also watches its stdin, a pipe
 * from here, and cleans up and exits if this process disappears.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";

export const SANDBOX_ENV = "PCS_SANDBOXED";
export const RUN_ID_ENV = "PCS_RUN_ID";

export function insideSandbox(): boolean {
  return process.env[SANDBOX_ENV] === "1";
}

function commandWorks(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { stdio: "ignore", timeout: 10_000 });
  return r.status === 0;
}

/** Why the bench cannot run here, or null. */
export function skipReason(): string | null {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "not root: network namespaces, veth pairs and tc shaping need root (run with sudo)";
  if (!commandWorks("ip", ["-V"])) return "the ip command (iproute2) is missing";
  if (!commandWorks("tc", ["-V"])) return "the tc command (iproute2) is missing";
  const ns = `pcs-${process.pid}-check`;
  const steps: [string, string[]][] = [
    ["ip", ["netns", "add", ns]],
    ["ip", ["-n", ns, "link", "add", "ck0", "type", "veth", "peer", "name", "ck1"]],
    ["tc", ["-n", ns, "qdisc", "add", "dev", "ck0", "root", "handle", "1:", "htb"]],
  ];
  let reason: string | null = null;
  for (const [command, args] of steps) {
    const r = spawnSync(command, args, { encoding: "utf8", timeout: 10_000 });
    if (r.status !== 0) {
      reason = `\`${command} ${args.join(" ")}\` failed: ${(r.stderr || r.error?.message || "").trim().split("\n")[0]} (network namespaces, veth or HTB unavailable)`;
      break;
    }
  }
  spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
  return reason;
}

/** Whether unshare can make the sandbox here. */
export function sandboxAvailable(): boolean {
  return commandWorks("unshare", ["--pid", "--mount", "--net", "--fork", "--kill-child", "true"]);
}

/** Pids of a process's children (outer pid namespace view). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Runs this same script (same node flags, same arguments) in the sandbox and
 * resolves with its exit status. stdout and stderr are passed through.
 */
export function runInSandbox(runId: number): Promise<number> {
  mkdirSync("/run/netns", { recursive: true });
  const inner = [process.execPath, ...process.execArgv, process.argv[1], ...process.argv.slice(2)];
  const script = 'mount -t tmpfs -o size=1m,mode=0755 pcs-netns /run/netns && ip link set lo up && exec "$@"';
  const child = spawn("unshare", ["--pid", "--mount", "--net", "--fork", "--kill-child", "--mount-proc", "--propagation", "private", "sh", "-c", script, "sh", ...inner], {
    stdio: ["pipe", "inherit", "inherit"],
    env: { ...process.env, [SANDBOX_ENV]: "1", [RUN_ID_ENV]: String(runId) },
  });
  const forward = (signal: NodeJS.Signals) => {
    // unshare → (sh exec'd into) node: the inner bench is unshare's only child.
    for (const pid of childrenOf(child.pid!)) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  };
  const onInt = () => forward("SIGINT");
  const onTerm = () => forward("SIGTERM");
  process.on("SIGINT", onInt);
  process.on("SIGTERM", onTerm);
  return new Promise((resolveExit) => {
    child.once("error", (error) => {
      process.stderr.write(`bench:swarm: could not start the sandbox: ${error.message}\n`);
      resolveExit(1);
    });
    child.once("exit", (code, signal) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolveExit(code ?? (signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 1));
    });
  });
}

/** Inside the sandbox: calls `onLost` when the outer process (our stdin's writer) goes away. */
export function watchLifeline(onLost: () => void): void {
  process.stdin.on("end", onLost);
  process.stdin.on("error", onLost);
  process.stdin.resume();
}
