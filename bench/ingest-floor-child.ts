/**
 * bench/peer.ts's ingest floor (ingest-floor.ts), measured in a process of
 * its own: in the benchmark's process, whose heap holds the input and the
 * ingest's buffers, the same seal loop measured ~20% more CPU per byte than
 * in a fresh one, and a floor must not be raised by its surroundings.
 *
 *   tsx bench/ingest-floor-child.ts '{"inputPath": …, "storeParent": …, "runs": 2}'
 *
 * Prints one line: the IngestFloor as JSON.
 */
import { measureIngestFloor, type FloorConfig } from "./ingest-floor.js";

const config = JSON.parse(process.argv[2] ?? "") as FloorConfig;
process.stdout.write(`${JSON.stringify(measureIngestFloor(config))}\n`);
