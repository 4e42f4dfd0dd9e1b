/**
 * The HTTP baseline's server (the central-server model), inside the origin
 * host's namespace: a plain node:http static file server for the files of
 * one directory, streamed from disk with Content-Length, one TCP connection
 * per client. Prints {"listening":true} once it accepts connections.
 *
 *   http-server.ts HOST PORT DIR
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";

const [host, portText, dir] = process.argv.slice(2);
if (!host || !portText || !dir) {
  process.stderr.write("usage: http-server.ts HOST PORT DIR\n");
  process.exit(2);
}

const server = createServer(async (req, res) => {
  const name = decodeURIComponent((req.url ?? "/").slice(1));
  if (req.method !== "GET" || !/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith(".")) {
    res.writeHead(400).end();
    return;
  }
  const path = join(dir, name);
  try {
    const { size } = await stat(path);
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
    await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), res);
  } catch (error) {
    if (!res.headersSent) res.writeHead((error as NodeJS.ErrnoException).code === "ENOENT" ? 404 : 500).end();
    else res.destroy();
  }
});
server.listen(Number(portText), host, () => process.stdout.write(JSON.stringify({ listening: true }) + "\n"));
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(0));
