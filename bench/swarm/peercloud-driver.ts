/**
 * One downloader of a peercloud phase, started inside its peer's namespace
 * before the phase begins so that loading the code (tsx, the library) is not
 * counted as transfer time. It opens the peer's running daemon through the
 * library API (the control socket the CLI uses), checks the daemon's store
 * is empty, prints a ready line, and waits for "go" on stdin. Then the
 * daemon performs the get (exactly what `peercloud get LINK -o OUT` asks of
 * it) and the driver prints its result with wall-clock timestamps:
 *
 *   {"ready":true,"storeChunks":0}
 *   {"done":true,"goAtMs","doneAtMs","result":{…GetResult}}     or {"error":{code,message}}
 *
 *   peercloud-driver.ts '<json: { home, link, output }>'
 */
import { createInterface } from "node:readline";
import { PeercloudClient } from "../../src/index.js";

interface DriverConfig {
  home: string;
  link: string;
  output: string;
}

const config = JSON.parse(process.argv[2] ?? "null") as DriverConfig | null;
if (!config) {
  process.stderr.write("usage: peercloud-driver.ts '<json config>' (started by bench/swarm.ts)\n");
  process.exit(2);
}

/** Wall clock with sub-millisecond resolution, comparable across processes on this machine. */
const wallMs = () => performance.timeOrigin + performance.now();
const print = (value: unknown) => process.stdout.write(JSON.stringify(value) + "\n");

try {
  const client = await PeercloudClient.open({ home: config.home, via: "daemon" });
  const status = await client.status();
  print({ ready: true, storeChunks: status.store.chunks, nodeId: status.nodeId });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() !== "go") continue;
    const goAtMs = wallMs();
    const result = await client.get(config.link, { output: config.output });
    const doneAtMs = wallMs();
    print({ done: true, goAtMs, doneAtMs, result });
    break;
  }
  await client.close();
  process.exit(0);
} catch (error) {
  const e = error as { code?: string; message?: string };
  print({ error: { code: e.code ?? "driver_failed", message: e.message ?? String(error) } });
  process.exit(1);
}
