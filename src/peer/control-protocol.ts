/**
 * What the CLI and the daemon say to each other over the control socket
 * (`<home>/control.sock`): HTTP/1.1 on a Unix socket, one request per
 * operation, answered with NDJSON — progress and warning lines while the
 * operation runs, then exactly one `result` or `error` line. A streamed get
 * (`get -o - --stream` through the daemon) is the one exception: its body is
 * the file's bytes in order and its outcome travels in the HTTP trailer
 * `x-peercloud-outcome`, because the bytes must stay untouched for stdout.
 *
 * Why HTTP on a socket: node:http gives framing, backpressure and
 * cancellation (the CLI's Ctrl-C closes the connection, the daemon aborts the
 * operation) for free, and the socket file's mode (0600, in a 0700 home)
 * is the access control — the daemon reads and writes files as its user.
 */
import type { ProgressEvent } from "./progress.js";
import type { GetRequest, PinRequest, PutRequest } from "./operations.js";

export const CONTROL_ROUTES = {
  put: "/v1/put",
  get: "/v1/get",
  status: "/v1/status",
  ls: "/v1/ls",
  unpin: "/v1/unpin",
  pin: "/v1/pin",
} as const;

export const OUTCOME_TRAILER = "x-peercloud-outcome";
export const NDJSON_TYPE = "application/x-ndjson";
export const MAX_CONTROL_BODY_BYTES = 64 * 1024;

export type ControlLine =
  ({ type: "progress" } & ProgressEvent) | { type: "warning"; message: string } | { type: "result"; result: unknown } | { type: "error"; error: { code: string; message: string } };

export type ControlOutcome = { result: unknown } | { error: { code: string; message: string } };

export interface ControlBodies {
  put: PutRequest;
  get: GetRequest;
  unpin: { link: string };
  pin: PinRequest;
}
