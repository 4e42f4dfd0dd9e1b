/**
 * One TCP stream's goodput between two namespaces (the link check; iperf3 is
 * not installed here). Run by link-check.ts inside a namespace:
 *
 *   link-probe.ts recv HOST PORT WARMUP_MS MEASURE_MS
 *       listens, prints {"listening":true}, accepts one connection, counts the
 *       payload bytes that arrive between WARMUP_MS and WARMUP_MS + MEASURE_MS
 *       after the first byte (slow start and HTB's initial burst fall in the
 *       warm-up), prints {"bytes","seconds","goodputBitsPerS"} and closes;
 *   link-probe.ts send HOST PORT
 *       connects (retrying while the receiver is not listening yet, up to
 *       10 s) and writes as fast as the socket takes it until the receiver
 *       closes, then exits 0.
 */
import { connect, createServer, type Socket } from "node:net";

const [mode, host, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const CONNECT_DEADLINE_MS = 10_000;
const HARD_DEADLINE_MS = 120_000;

setTimeout(() => {
  process.stderr.write(`link-probe ${mode}: no result within ${HARD_DEADLINE_MS / 1000} s\n`);
  process.exit(3);
}, HARD_DEADLINE_MS).unref();

function now(): number {
  return performance.now();
}

function receive(warmupMs: number, measureMs: number): void {
  const server = createServer((socket) => {
    server.close();
    let total = 0;
    let firstAt = -1;
    let startBytes = -1;
    let startAt = 0;
    socket.on("data", (piece: Buffer) => {
      const t = now();
      if (firstAt < 0) firstAt = t;
      total += piece.length;
      // The window opens with this piece's arrival: its bytes came before, so they do not count (at a few Mbit/s one
      // 64 KB read is a large share of a one-second window).
      if (startBytes < 0 && t - firstAt >= warmupMs) {
        startBytes = total;
        startAt = t;
      }
      if (startBytes >= 0 && t - startAt >= measureMs) {
        const bytes = total - startBytes;
        const seconds = (t - startAt) / 1000;
        process.stdout.write(JSON.stringify({ bytes, seconds, goodputBitsPerS: (bytes * 8) / seconds }) + "\n");
        socket.destroy();
        process.exit(0);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      process.stderr.write("link-probe recv: the sender closed before the measurement ended\n");
      process.exit(1);
    });
  });
  server.listen(port, host, () => process.stdout.write(JSON.stringify({ listening: true }) + "\n"));
}

function send(): void {
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const started = now();
  const attempt = () => {
    const socket: Socket = connect({ host, port });
    let connected = false;
    socket.once("connect", () => {
      connected = true;
      const pump = () => {
        while (socket.write(chunk)) {
          // keep the socket's buffer full
        }
      };
      socket.on("drain", pump);
      pump();
    });
    socket.on("error", () => {});
    socket.once("close", (hadError) => {
      // The receiver closing on us ends the probe; before a connection, retry until the deadline.
      if (connected) process.exit(0);
      if (hadError && now() - started < CONNECT_DEADLINE_MS) setTimeout(attempt, 100);
      else {
        process.stderr.write(`link-probe send: could not connect to ${host}:${port}\n`);
        process.exit(1);
      }
    });
  };
  attempt();
}

if (mode === "recv") receive(Number(rest[0]), Number(rest[1]));
else if (mode === "send") send();
else {
  process.stderr.write("usage: link-probe.ts recv HOST PORT WARMUP_MS MEASURE_MS | send HOST PORT\n");
  process.exit(2);
}
