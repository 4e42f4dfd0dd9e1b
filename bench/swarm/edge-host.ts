/**
 * The real local edge inside the origin host's namespace: the Worker bundled
 * as `wrangler deploy` bundles it, run by Miniflare (workerd) with its real
 * Durable Objects, R2 and KV (test/helpers/local-edge.ts), listening on the
 * origin's own address. Prints one line once it answers, then runs until
 * SIGTERM/SIGINT or until stdin closes (the bench went away):
 *
 *   {"edgeUrl":"http://10.77.0.1:8787","joinToken":"…"}
 *
 *   edge-host.ts HOST PORT
 */
import { startLocalEdge } from "../../test/helpers/local-edge.js";

const [host, portText] = process.argv.slice(2);
if (!host || !portText) {
  process.stderr.write("usage: edge-host.ts HOST PORT\n");
  process.exit(2);
}

const edge = await startLocalEdge({ host, port: Number(portText) });
// For a non-loopback host Miniflare's own URL is a private loopback entry; peers use the public socket.
const edgeUrl = `http://${host}:${portText}`;
const network = await fetch(`${edgeUrl}/v1/network`);
if (!network.ok) throw new Error(`the edge does not answer on ${edgeUrl}: HTTP ${network.status}`);
const joinToken = await edge.createJoinToken({ label: "bench-swarm", roles: ["service", "client", "publisher"] });
process.stdout.write(JSON.stringify({ edgeUrl, joinToken }) + "\n");

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void edge.stop().finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
