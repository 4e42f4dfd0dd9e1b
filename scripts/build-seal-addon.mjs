// npm's install step for this package: builds the seal addon
// (src/peer/seal-addon.cc, see binding.gyp) with the node-gyp that npm
// carries. The addon only makes ingest cheaper; without it peers seal with
// node:crypto alone and produce the same bytes. So a machine without a C++
// toolchain still installs: this prints one line saying why the addon is
// missing and exits 0, unless PEERCLOUD_REQUIRE_SEAL_ADDON=1 (CI sets it, so
// that the addon's tests cannot quietly fall back). Plain JavaScript because
// it runs before tsx is installed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const required = process.env.PEERCLOUD_REQUIRE_SEAL_ADDON === "1";
const logPath = join(root, "build", "seal-addon-build.log");

function finish(built, message) {
  console.log(`peercloud: ${message}`);
  process.exit(built || !required ? 0 : 1);
}

if (process.env.PEERCLOUD_SEAL_ADDON === "0") finish(false, "seal addon not built (PEERCLOUD_SEAL_ADDON=0); ingest seals with node:crypto alone");

// npm sets npm_config_node_gyp for lifecycle scripts; run by hand, look where npm keeps its own copy.
const candidates = [process.env.npm_config_node_gyp, join(dirname(process.execPath), "..", "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js")];
const nodeGyp = candidates.find((path) => path && existsSync(path));
if (!nodeGyp) finish(false, "seal addon not built: npm's node-gyp was not found (run `npm run build:addon` through npm); ingest seals with node:crypto alone");

const run = spawnSync(process.execPath, [nodeGyp, "rebuild"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
const output = `${run.stdout ?? ""}${run.stderr ?? ""}${run.error ? String(run.error) : ""}`;
mkdirSync(dirname(logPath), { recursive: true });
writeFileSync(logPath, output);
if (run.status === 0) finish(true, "seal addon built (build/Release/peercloud_seal.node)");
const reason = output.split("\n").find((line) => /error/i.test(line) && !/^gyp (info|ERR! (cwd|node|System|command|node-gyp))/.test(line)) ?? `node-gyp exited with ${run.status ?? run.signal}`;
finish(false, `seal addon not built (${reason.trim()}; full log in build/seal-addon-build.log); ingest seals with node:crypto alone, same bytes, ~0.3 CPU ns/B more`);
