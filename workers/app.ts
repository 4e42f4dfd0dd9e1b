/**
 * The edge Worker's HTTP surface: one hono sub-app per area, mounted under
 * /v1, and the single place where errors become responses. Handlers throw
 * PeercloudError (src/core/errors.ts, workers/errors.ts); `onError` turns
 * every error into `{ "error": { "code", "message" } }` with its status, and
 * anything unexpected into a logged 500 `internal_error` that reveals
 * nothing. Routes and codes: docs/api.md.
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./context.js";
import { admin } from "./admin.js";
import { bootstrap } from "./bootstrap.js";
import { chunks } from "./chunks.js";
import { directory } from "./directory.js";
import { errorResponse, jsonError } from "./errors.js";
import { network } from "./network.js";

export const app = new Hono<AppEnv>();

app.route("/v1", network);
app.route("/v1", bootstrap);
app.route("/v1", directory);
app.route("/v1", chunks);
app.route("/v1", admin);

app.notFound((c) => jsonError(404, "not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 200)}`));

app.onError((err) => {
  // hono's own exceptions (none of our routes throw them, but middleware may) keep their status.
  if (err instanceof HTTPException && err.status < 500) return jsonError(err.status, "invalid_request", err.message || "invalid request");
  return errorResponse(err);
});
