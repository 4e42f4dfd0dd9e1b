/**
 * bench/peer.ts's ingest floor (ingest-floor.ts), measured in a process of
 * its own: in the benchmark's process, whose heap holds the input and the
 * ingest's buffers, the same seal loop measured ~20% more CPU per byte than
 * in a fresh one, and a floor must not be raised by its surroundings.
 *
 *   tsx bench/ingest-floor-child.ts '{"inputPath": …, "storeParent": …, "runs": 1}'
 *
 * Prints one line: the IngestFloor as JSON.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { IngestFloorProbe } from "./ingest-floor.js";

export interface FloorChildConfig {
  inputPath: string;
  storeParent: string;
  runs: number;
}

const config = JSON.parse(process.argv[2] ?? "") as FloorChildConfig;
const data = new Uint8Array(readFileSync(config.inputPath));
const probe = new IngestFloorProbe(config.inputPath, data);
const floor = probe.measure(config.storeParent, { mode: "convergent", convergenceSecret: randomBytes(32) }, config.runs);
process.stdout.write(`${JSON.stringify(floor)}\n`);
