/**
 * The daemon's control API: `PeerOperations` served over HTTP on a Unix
 * socket (protocol in control-protocol.ts), so `put`/`get`/`status`/`ls`/
 * `unpin` from another terminal run inside the daemon, next to its open
 * store and its directory connection, with progress streamed back as NDJSON.
 *
 * A request's operation is aborted when its client goes away (Ctrl-C in the
 * CLI). The socket file is created with mode 0600; a stale file from a
 * crashed daemon is removed before listening (the caller holds the home's
 * pid lock, so no live daemon owns it). Errors become one `error` line with
 * the error's code — the CLI prints it like any local failure.
 */
import { chmod, mkdir, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as v from "valibot";
import { isPeercloudError, PeercloudError, ValidationError } from "../core/errors.js";
import { parseWith } from "../core/validate.js";
import { CONTROL_ROUTES, MAX_CONTROL_BODY_BYTES, NDJSON_TYPE, OUTCOME_TRAILER, type ControlLine, type ControlOutcome } from "./control-protocol.js";
import type { OperationHooks, PeerOperations } from "./operations.js";
import { createProgressReporter } from "./progress.js";

/** sun_path is 108 bytes on Linux (104 on macOS); longer home paths get a socket under the temp dir. */
const MAX_SOCKET_PATH_CHARS = 100;

const putBody = v.strictObject({
  path: v.pipe(v.string(), v.startsWith("/", "must be absolute")),
  replicas: v.optional(v.number()),
  minRegions: v.optional(v.number()),
  cold: v.optional(v.boolean()),
  private: v.optional(v.boolean()),
});
const getBody = v.strictObject({
  link: v.string(),
  output: v.optional(v.pipe(v.string(), v.startsWith("/", "must be absolute"))),
  stream: v.optional(v.boolean()),
});
const unpinBody = v.strictObject({ link: v.string() });
const pinBody = v.strictObject({ link: v.string(), replicas: v.optional(v.number()), minRegions: v.optional(v.number()) });

/** Where the control socket of a home lives: `<home>/control.sock`, or a short path when that is too long. */
export function controlSocketPathFor(homeDir: string, preferred: string): string {
  if (preferred.length <= MAX_SOCKET_PATH_CHARS) return preferred;
  const tag = createHash("sha256").update(homeDir).digest("hex").slice(0, 16);
  return join(tmpdir(), `peercloud-${tag}`, "control.sock");
}

export class ControlServer {
  private readonly server: Server;

  constructor(
    private readonly ops: PeerOperations,
    readonly socketPath: string,
    private readonly onError: (error: unknown) => void = () => {},
  ) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async listen(): Promise<void> {
    await mkdir(join(this.socketPath, ".."), { recursive: true, mode: 0o700 });
    await rm(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.socketPath, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    await chmod(this.socketPath, 0o600);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    await rm(this.socketPath, { force: true });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort(new PeercloudError("cancelled", "the client went away", 499));
    });
    try {
      const route = `${req.method} ${req.url}`;
      if (route === `GET ${CONTROL_ROUTES.status}`) return await this.ndjson(res, abort.signal, () => this.ops.status());
      if (route === `GET ${CONTROL_ROUTES.ls}`) return await this.ndjson(res, abort.signal, () => this.ops.ls());
      if (route === `POST ${CONTROL_ROUTES.put}`) {
        const body = parseWith(putBody, await readJsonBody(req), "body");
        return await this.ndjson(res, abort.signal, (hooks) => this.ops.put(body, hooks));
      }
      if (route === `POST ${CONTROL_ROUTES.unpin}`) {
        const body = parseWith(unpinBody, await readJsonBody(req), "body");
        return await this.ndjson(res, abort.signal, (hooks) => this.ops.unpin(body.link, hooks));
      }
      if (route === `POST ${CONTROL_ROUTES.pin}`) {
        const body = parseWith(pinBody, await readJsonBody(req), "body");
        return await this.ndjson(res, abort.signal, (hooks) => this.ops.pin(body, hooks));
      }
      if (route === `POST ${CONTROL_ROUTES.get}`) {
        const body = parseWith(getBody, await readJsonBody(req), "body");
        if (body.stream) return await this.streamGet(res, abort.signal, body);
        return await this.ndjson(res, abort.signal, (hooks) => this.ops.get(body, hooks));
      }
      throw new PeercloudError("not_found", `no control route ${route}`, 404);
    } catch (error) {
      if (!res.headersSent) {
        res.writeHead(200, { "content-type": NDJSON_TYPE });
        res.end(JSON.stringify(errorLine(error)) + "\n");
      } else res.destroy();
    }
  }

  /** Runs one operation, streaming its progress and warnings, ending with its result or error. */
  private async ndjson(res: ServerResponse, signal: AbortSignal, run: (hooks: OperationHooks) => Promise<unknown>): Promise<void> {
    res.writeHead(200, { "content-type": NDJSON_TYPE, "cache-control": "no-store" });
    const write = (line: ControlLine) => {
      if (!res.destroyed) res.write(JSON.stringify(line) + "\n");
    };
    const progress = createProgressReporter({ mode: "json", stream: res, intervalMs: 200 });
    let final: ControlLine;
    try {
      const result = await run({ signal, onProgress: progress.update, onWarning: (message) => write({ type: "warning", message }) });
      progress.stop();
      final = { type: "result", result };
    } catch (error) {
      progress.stop();
      final = errorLine(error);
      if (!isPeercloudError(error)) this.onError(error);
    }
    write(final);
    res.end();
  }

  /** A streamed get: the body is the file, the outcome a trailer (NDJSON would corrupt the bytes). */
  private async streamGet(res: ServerResponse, signal: AbortSignal, body: v.InferOutput<typeof getBody>): Promise<void> {
    res.writeHead(200, { "content-type": "application/octet-stream", trailer: OUTCOME_TRAILER, "cache-control": "no-store" });
    let outcome: ControlOutcome;
    try {
      outcome = { result: await this.ops.get(body, { signal }, res) };
    } catch (error) {
      outcome = { error: errorLine(error).error };
      if (!isPeercloudError(error)) this.onError(error);
    }
    if (res.destroyed) return;
    res.addTrailers({ [OUTCOME_TRAILER]: encodeURIComponent(JSON.stringify(outcome)) });
    res.end();
  }
}

function errorLine(error: unknown): Extract<ControlLine, { type: "error" }> {
  if (isPeercloudError(error)) return { type: "error", error: { code: error.code, message: error.message } };
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof errno === "string" && /^E[A-Z0-9]+$/.test(errno)) return { type: "error", error: { code: errno.toLowerCase(), message: (error as Error).message } };
  return { type: "error", error: { code: "internal_error", message: `internal error in the daemon: ${error instanceof Error ? error.message : String(error)}` } };
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const pieces: Buffer[] = [];
  let size = 0;
  for await (const piece of req as AsyncIterable<Buffer>) {
    size += piece.length;
    if (size > MAX_CONTROL_BODY_BYTES) throw new ValidationError(`control request body is larger than ${MAX_CONTROL_BODY_BYTES} bytes`, "too_large");
    pieces.push(piece);
  }
  try {
    return JSON.parse(Buffer.concat(pieces).toString("utf8"));
  } catch {
    throw new ValidationError("control request body is not valid JSON");
  }
}
