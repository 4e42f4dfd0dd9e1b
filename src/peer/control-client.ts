/**
 * `PeerOperations` through a running daemon's control socket (protocol in
 * control-protocol.ts): what the CLI uses when `peer start` runs in the
 * same home. Progress and warning lines are handed to the caller's hooks as
 * they arrive; the `error` line becomes a PeercloudError with the daemon's
 * code, so the CLI reports it exactly like a local failure. Aborting the
 * caller's signal closes the connection, which cancels the operation in the
 * daemon.
 */
import { request, type IncomingMessage } from "node:http";
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PeercloudError } from "../core/errors.js";
import { CONTROL_ROUTES, OUTCOME_TRAILER, type ControlLine, type ControlOutcome } from "./control-protocol.js";
import type { GetRequest, GetResult, OperationHooks, PeerOperations, PinRequest, PinResult, PutRequest, PutResult, StatusReport, UnpinResult } from "./operations.js";
import type { LibraryEntry } from "./library.js";
import type { ProgressEvent } from "./progress.js";

export class ControlClient implements PeerOperations {
  constructor(readonly socketPath: string) {}

  put(body: PutRequest, hooks: OperationHooks = {}): Promise<PutResult> {
    return this.call("POST", CONTROL_ROUTES.put, body, hooks) as Promise<PutResult>;
  }

  async get(body: GetRequest, hooks: OperationHooks = {}, sink?: Writable): Promise<GetResult> {
    if (!body.stream) return (await this.call("POST", CONTROL_ROUTES.get, body, hooks)) as GetResult;
    if (!sink) throw new PeercloudError("usage", "a streamed get needs a sink to write to", 400);
    const res = await this.open("POST", CONTROL_ROUTES.get, body, hooks.signal);
    if (!String(res.headers["content-type"]).startsWith("application/octet-stream")) {
      // The daemon refused before streaming: one NDJSON error line.
      return (await this.readLines(res, hooks)) as GetResult;
    }
    try {
      await pipeline(res, sink, { end: false });
    } catch (error) {
      throw connectionLost(error);
    }
    const raw = res.trailers[OUTCOME_TRAILER];
    if (!raw) throw new PeercloudError("daemon_connection_lost", "the daemon closed the stream without an outcome (did it stop?)", 502);
    const outcome = JSON.parse(decodeURIComponent(raw)) as ControlOutcome;
    if ("error" in outcome) throw new PeercloudError(outcome.error.code, outcome.error.message, 500);
    return outcome.result as GetResult;
  }

  status(): Promise<StatusReport> {
    return this.call("GET", CONTROL_ROUTES.status, undefined, {}) as Promise<StatusReport>;
  }

  ls(): Promise<LibraryEntry[]> {
    return this.call("GET", CONTROL_ROUTES.ls, undefined, {}) as Promise<LibraryEntry[]>;
  }

  unpin(link: string, hooks: OperationHooks = {}): Promise<UnpinResult> {
    return this.call("POST", CONTROL_ROUTES.unpin, { link }, hooks) as Promise<UnpinResult>;
  }

  pin(request: PinRequest, hooks: OperationHooks = {}): Promise<PinResult> {
    return this.call("POST", CONTROL_ROUTES.pin, request, hooks) as Promise<PinResult>;
  }

  async close(): Promise<void> {}

  private async call(method: string, path: string, body: unknown, hooks: OperationHooks): Promise<unknown> {
    return this.readLines(await this.open(method, path, body, hooks.signal), hooks);
  }

  private open(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request({ socketPath: this.socketPath, method, path, signal, headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {} }, resolve);
      req.on("error", (error) => {
        if (signal?.aborted) return reject(signal.reason);
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ECONNREFUSED" || code === "ENOENT") {
          reject(new PeercloudError("daemon_unreachable", `the peer daemon is not answering on ${this.socketPath} (it may have just stopped; run the command again)`, 503));
        } else reject(connectionLost(error));
      });
      req.end(payload);
    });
  }

  private async readLines(res: IncomingMessage, hooks: OperationHooks): Promise<unknown> {
    let buffered = "";
    let outcome: ControlOutcome | undefined;
    const handle = (text: string) => {
      if (!text.trim()) return;
      const line = JSON.parse(text) as ControlLine;
      if (line.type === "progress") {
        const { type: _type, ...event } = line;
        hooks.onProgress?.(event as ProgressEvent);
      } else if (line.type === "warning") hooks.onWarning?.(line.message);
      else if (line.type === "result") outcome = { result: line.result };
      else if (line.type === "error") outcome = { error: line.error };
    };
    try {
      res.setEncoding("utf8");
      for await (const piece of res as AsyncIterable<string>) {
        buffered += piece;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          handle(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
        }
      }
      handle(buffered);
    } catch (error) {
      if (hooks.signal?.aborted) throw hooks.signal.reason;
      throw connectionLost(error);
    }
    if (!outcome) throw new PeercloudError("daemon_connection_lost", "the daemon closed the connection before answering (did it stop?)", 502);
    if ("error" in outcome) throw new PeercloudError(outcome.error.code, outcome.error.message, 500);
    return outcome.result;
  }
}

function connectionLost(error: unknown): PeercloudError {
  return new PeercloudError("daemon_connection_lost", `lost the connection to the daemon: ${(error as Error).message}`, 502);
}
