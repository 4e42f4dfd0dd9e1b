/**
 * Runs one short system command (`ip`, `tc`, `sysctl`) and returns its
 * stdout; a failure names the command line and carries its stderr, so a
 * topology step that the kernel refuses says exactly which and why.
 */
import { execFile } from "node:child_process";

export class CommandError extends Error {
  constructor(
    readonly commandLine: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`\`${commandLine}\` failed${exitCode === null ? "" : ` (exit ${exitCode})`}: ${stderr.trim() || "(no output)"}`);
    this.name = "CommandError";
  }
}

export function run(command: string, args: string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolveRun, rejectRun) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) {
        const code = typeof (error as NodeJS.ErrnoException & { code?: unknown }).code === "number" ? (error as unknown as { code: number }).code : null;
        rejectRun(new CommandError([command, ...args].join(" "), String(stderr || error.message), code));
      } else resolveRun(String(stdout));
    });
  });
}

/** Like run(), resolving to null instead of rejecting (probes, best-effort cleanup). */
export async function tryRun(command: string, args: string[], timeoutMs = 30_000): Promise<string | null> {
  try {
    return await run(command, args, timeoutMs);
  } catch {
    return null;
  }
}
