#!/usr/bin/env node
// The `peercloud` command. The sources are TypeScript, and a checkout works
// without a build step: this file runs src/cli/main.ts either
//
// - compiled: a bundle of src/cli/main.ts (plain ESM, split so that each
//   command loads only the modules it needs) that this file builds with
//   esbuild into node_modules/.cache/peercloud/ the first time it runs after
//   a source change, and reuses while every input file keeps its mtime and
//   size (a few dozen stats per start); or
// - through tsx's loader, when compiling is not possible (no esbuild, a cache
//   directory we cannot write, a build error — tsx then reports the error
//   with its source position) or when PEERCLOUD_TSX=1 asks for it.
//
// Why not always tsx: on Node 20 tsx's ESM hooks run in a loader thread with
// its own V8 isolate, esbuild client and per-module transform cache, which
// costs this process ~35 MB resident for its whole life, a fifth of a
// one-shot `peercloud get`'s 200 MB budget (measured, `peercloud status`
// without a daemon: 113 MB through tsx, 75 MB compiled, 64 MB with the
// per-command imports of src/cli and the young-generation setting below).
// The compiled code is what tsx would run —
// the same esbuild transform with the same tsconfig — bundled; the only
// rewrite is `import.meta.url`, which keeps naming each module's source file
// (seal-pool.ts finds its worker files next to itself).
//
// The build runs in esbuild's own process; this one only waits for it. Two
// commands starting at once may both build: each writes its bundle to a
// private directory renamed into place, then the manifest (current.json)
// atomically, so readers see one complete build or the other.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { join, relative, resolve } from "node:path";
import { setFlagsFromString } from "node:v8";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRY = join(ROOT, "src", "cli", "main.ts");
const CACHE = join(ROOT, "node_modules", ".cache", "peercloud");
const MANIFEST = join(CACHE, "current.json");
/** Bumped when the build options below change meaning (this file is also an input, so edits rebuild anyway). */
const FORMAT = 1;
/** Builds kept besides the current one: a command that read the previous manifest may still be importing its files. */
const KEEP_BUILDS = 3;

setSmallYoungGeneration();

const compiled =
  process.env.PEERCLOUD_TSX === "1"
    ? null
    : await compiledEntry().catch((error) => {
        // Not fatal (tsx runs the sources instead), but worth knowing why when debugging.
        if (process.env.PEERCLOUD_DEBUG === "1") process.stderr.write(`peercloud: running through tsx, the compiled build failed: ${error?.stack ?? error}\n`);
        return null;
      });
if (compiled) {
  await import(compiled);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(ENTRY).href);
}

/**
 * V8 grows the young generation up to 2 × 16 MiB semi-spaces once enough
 * objects have survived scavenges; a download's stream of short-lived
 * promises and buffers gets it there within seconds, ~30 MB of heap a
 * one-shot command has no use for (measured: a 1 GiB get's heapTotal
 * 53 MB → 21 MB, peak RSS 5–15 MB lower, ~5% more CPU, same wall time).
 * Keeping the initial 1 MiB semi-spaces means more, cheaper scavenges.
 * (`--optimize-for-size` would save another ~20 MB by collecting the old
 * generation about twice as often, but costs the get ~35% more CPU: not
 * taken.) `--max-semi-space-size` would say it directly but only works on
 * the command line, which `node bin/peercloud.js` and npm's bin shims do
 * not let us set; the growth factor is read whenever the young generation
 * would grow, so setting it here takes effect. The daemon (`peer start`) keeps V8's defaults: it lives
 * long and favours throughput. V8 12.x and 11.x (Node 20–22) know the flag;
 * elsewhere it is left alone rather than risk an "unrecognized flag" line.
 */
function setSmallYoungGeneration() {
  const argv = process.argv.slice(2);
  const daemon = argv.some((arg, i) => arg === "peer" && argv[i + 1] === "start");
  const v8Major = Number(process.versions.v8.split(".")[0]);
  if (daemon || v8Major < 11 || v8Major > 12) return;
  setFlagsFromString("--semi-space-growth-factor=1");
}

/** The compiled entry's URL, building it if the cache is missing or stale. */
async function compiledEntry() {
  const manifest = readManifest();
  if (manifest && isFresh(manifest)) return pathToFileURL(join(CACHE, manifest.dir, manifest.entry)).href;
  return build();
}

function readManifest() {
  try {
    const m = JSON.parse(readFileSync(MANIFEST, "utf8"));
    return m?.format === FORMAT && typeof m.dir === "string" && typeof m.entry === "string" && Array.isArray(m.inputs) ? m : null;
  } catch {
    return null;
  }
}

/** Every input (sources, tsconfig.json, this file) still has the mtime and size it had when built. */
function isFresh(manifest) {
  for (const [path, mtimeMs, size] of manifest.inputs) {
    const st = statSync(resolve(ROOT, path), { throwIfNoEntry: false });
    if (!st || st.mtimeMs !== mtimeMs || st.size !== size) return false;
  }
  return true;
}

async function build() {
  // The esbuild that tsx itself runs (a dependency of tsx, so present wherever the tsx path works).
  mkdirSync(CACHE, { recursive: true }); // first: a read-only install fails here, before loading esbuild
  const esbuild = createRequire(createRequire(import.meta.url).resolve("tsx/package.json"))("esbuild");
  const startedMs = Date.now();
  const tmp = join(CACHE, `tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    const result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: [ENTRY],
      outdir: tmp,
      bundle: true,
      splitting: true,
      format: "esm",
      // .mjs: ESM whatever Node makes of files under node_modules/ (no package scope there, so .js would be CommonJS before Node 20.19's syntax detection).
      outExtension: { ".js": ".mjs" },
      platform: "node",
      target: "node20",
      packages: "external",
      keepNames: true,
      // For `node --enable-source-maps bin/peercloud.js`; the sources themselves are in the checkout.
      sourcemap: "linked",
      sourcesContent: false,
      metafile: true,
      logLevel: "silent",
      plugins: [sourceImportMetaUrl()],
    });
    const files = [...Object.keys(result.metafile.inputs).map((p) => resolve(ROOT, p)), join(ROOT, "tsconfig.json"), fileURLToPath(import.meta.url)];
    const inputs = files.map((path) => {
      const st = statSync(path);
      return [relative(ROOT, path), st.mtimeMs, st.size];
    });
    const entry = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint !== undefined)?.[0];
    if (!entry) throw new Error("esbuild produced no entry chunk");
    const id = createHash("sha256")
      .update(JSON.stringify([FORMAT, esbuild.version, inputs]))
      .digest("hex")
      .slice(0, 16);
    const dir = `build-${id}`;
    try {
      renameSync(tmp, join(CACHE, dir));
    } catch (error) {
      // Another command built the same inputs a moment earlier: use its copy.
      if (error.code !== "ENOTEMPTY" && error.code !== "EEXIST") throw error;
      rmSync(tmp, { recursive: true, force: true });
    }
    const manifest = { format: FORMAT, dir, entry: relative(tmp, resolve(ROOT, entry)), inputs };
    // A file edited while esbuild read it could pair old code with new stamps: such a build serves this run only.
    if (inputs.every(([, mtimeMs]) => mtimeMs < startedMs - 1000)) {
      const manifestTmp = `${MANIFEST}.${process.pid}.tmp`;
      writeFileSync(manifestTmp, JSON.stringify(manifest));
      renameSync(manifestTmp, MANIFEST);
      pruneBuilds(dir);
    }
    return pathToFileURL(join(CACHE, dir, manifest.entry)).href;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    await esbuild.stop?.();
  }
}

/** esbuild plugin: `import.meta.url` in a source module stays that module's own file URL (not the bundle chunk's). */
function sourceImportMetaUrl() {
  return {
    name: "source-import-meta-url",
    setup(b) {
      b.onLoad({ filter: /\.[cm]?ts$/ }, (args) => {
        const text = readFileSync(args.path, "utf8");
        if (!text.includes("import.meta.url")) return undefined;
        return { contents: text.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)), loader: "ts" };
      });
    },
  };
}

/**
 * Removes all but the newest builds (by modification time: another command
 * may still be loading one of them), and the private directories of builds
 * that were killed (older than a minute).
 */
function pruneBuilds(current) {
  const dirs = readdirSync(CACHE, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name !== current)
    .map((d) => ({ name: d.name, mtimeMs: statSync(join(CACHE, d.name), { throwIfNoEntry: false })?.mtimeMs ?? 0 }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  const oldBuilds = dirs.filter((d) => d.name.startsWith("build-")).slice(KEEP_BUILDS - 1);
  const deadTemps = dirs.filter((d) => d.name.startsWith("tmp-") && d.mtimeMs < Date.now() - 60_000);
  for (const d of [...oldBuilds, ...deadTemps]) rmSync(join(CACHE, d.name), { recursive: true, force: true });
}
