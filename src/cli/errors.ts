/**
 * The CLI's one error path. Every failure of every command ends here and
 * becomes exactly one line on stderr — `peercloud: <message> (<code>)` — or,
 * with `--json`, one `{"error":{"code","message"}}` object on stdout, and a
 * non-zero exit: 2 when the command line or its input is wrong (the user can
 * fix it by typing something else), 1 for failures at run time (network,
 * disk, remote refusals). Expected errors never print a stack trace;
 * unexpected ones (bugs) print theirs only with PEERCLOUD_DEBUG=1.
 */
import { CommanderError } from "commander";
import { isPeercloudError, PeercloudError } from "../core/errors.js";

export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/** Codes that mean "the input was wrong": exit 2. */
const USAGE_CODES = new Set([
  "usage",
  "unknown_option",
  "unknown_command",
  "missing_argument",
  "missing_option",
  "invalid_argument",
  "excess_arguments",
  "invalid_size",
  "invalid_link",
  "invalid_edge_url",
  "invalid_replicas",
  "invalid_min_regions",
  "invalid_name",
  "path_not_found",
  "unsupported_file_type",
  "home_not_initialized",
  "identity_exists",
  "output_exists",
]);

/** A mistake on the command line that the parser could not catch. */
export class UsageError extends PeercloudError {
  constructor(message: string, code = "usage") {
    super(code, message, 400);
    this.name = "UsageError";
  }
}

const COMMANDER_CODES: Record<string, string> = {
  "commander.unknownOption": "unknown_option",
  "commander.unknownCommand": "unknown_command",
  "commander.missingArgument": "missing_argument",
  "commander.optionMissingArgument": "missing_argument",
  "commander.missingMandatoryOptionValue": "missing_option",
  "commander.invalidArgument": "invalid_argument",
  "commander.excessArguments": "excess_arguments",
  "commander.conflictingOption": "usage",
};

export interface ReportedError {
  code: string;
  message: string;
  exitCode: number;
}

/** Classifies any thrown value into a code, a one-line message and an exit status. */
export function describeError(error: unknown): ReportedError {
  if (error instanceof CommanderError) {
    const code = COMMANDER_CODES[error.code] ?? "usage";
    return { code, message: oneLine(error.message.replace(/^error:\s*/i, "")), exitCode: EXIT_USAGE };
  }
  if (isPeercloudError(error)) {
    return { code: error.code, message: oneLine(error.message), exitCode: USAGE_CODES.has(error.code) ? EXIT_USAGE : EXIT_RUNTIME };
  }
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (error instanceof Error && typeof errno === "string" && /^E[A-Z0-9]+$/.test(errno)) {
    // An operating-system error that escaped a module's own translation (ENOSPC, EACCES, EMFILE…).
    return { code: errno.toLowerCase(), message: oneLine(error.message), exitCode: EXIT_RUNTIME };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: "internal_error", message: `internal error: ${oneLine(message)} (set PEERCLOUD_DEBUG=1 for details)`, exitCode: EXIT_RUNTIME };
}

export interface ErrorOutput {
  json: boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Writes the one line (or JSON object) for `error` and returns the exit status to use. */
export function reportError(error: unknown, out: ErrorOutput): number {
  const { code, message, exitCode } = describeError(error);
  if (out.json) out.stdout.write(JSON.stringify({ error: { code, message } }) + "\n");
  else out.stderr.write(`peercloud: ${message} (${code})\n`);
  if (process.env.PEERCLOUD_DEBUG && error instanceof Error && error.stack) out.stderr.write(error.stack + "\n");
  return exitCode;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
