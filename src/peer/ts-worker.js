// Boots a worker thread whose code is TypeScript (see seal-pool.ts): Node 20
// does not give worker threads the loader hooks of the thread that created
// them, and a `--import tsx` in the worker's execArgv registers too late for
// its entry module, so this plain-JavaScript entry registers tsx's loader in
// the new thread and then imports the module named in workerData.moduleUrl.
// "tsx/esm/api" resolves from this file's location, whatever the cwd.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.moduleUrl);
