/**
 * The CLI's one error path, seen from outside: the real `peercloud` binary
 * run as a child process. Every failure is exactly one line on stderr
 * (`peercloud: <message> (<code>)`) or one JSON error object on stdout with
 * --json, a non-zero exit (2: bad input, 1: run time), no stack trace, and
 * nothing written that was not there before.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateIdentity } from "../../src/core/identity.js";
import { newConvergenceSecret, PeerHome } from "../../src/peer/home.js";

const BIN = resolve(__dirname, "../../bin/peercloud.js");
const VALID_CID = "bafkreibnoelefnzgwbcacyt4vh52ymxvzbjq7mmqhtcnwarfq4lzegsiqe";
const VALID_LINK = `peercloud://${VALID_CID}#${"A".repeat(43)}`;

let dir: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolveRun) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir, env: { ...process.env, PEERCLOUD_HOME: join(dir, "default-home"), PEERCLOUD_DEBUG: "", ...env } }, (error, stdout, stderr) => {
      resolveRun({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

function expectOneLine(r: Run, code: string, exitCode: number): void {
  expect(r.code).toBe(exitCode);
  expect(r.stdout).toBe("");
  const lines = r.stderr.split("\n").filter(Boolean);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^peercloud: .+ \\(${code}\\)$`));
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

function expectJsonError(r: Run, code: string, exitCode: number): void {
  expect(r.code).toBe(exitCode);
  // stderr may carry progress as JSON lines, nothing else.
  for (const line of r.stderr.split("\n").filter(Boolean)) expect(JSON.parse(line)).toMatchObject({ type: expect.stringMatching(/^(progress|warning)$/) });
  const parsed = JSON.parse(r.stdout);
  expect(parsed).toEqual({ error: { code, message: expect.any(String) } });
  expect(r.stdout.trim().split("\n")).toHaveLength(1);
}

async function entries(): Promise<string[]> {
  return (await readdir(dir)).sort();
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "peercloud-cli-"));
  await writeFile(join(dir, "file.txt"), "hello");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("usage errors (exit 2)", () => {
  it.each([
    [["put", "file.txt", "--bogus"], "unknown_option"],
    [["frobnicate"], "unknown_command"],
    [[], "missing_argument"],
    [["put"], "missing_argument"],
    [["put", "file.txt", "--replicas", "zero"], "invalid_argument"],
    [["put", "file.txt", "--replicas", "17"], "invalid_argument"],
    [["peer", "start", "--storage-limit", "12 apples"], "invalid_argument"],
    [["peer", "start", "--max-upload-rate", "fast"], "invalid_argument"],
    [["peer", "start", "--max-upload-rate", "0"], "invalid_argument"],
    [["peer", "start", "--port", "70000"], "invalid_argument"],
    [["get", VALID_LINK, "-o", "-"], "usage"],
    [["init", "--edge", "not a url", "--join-token", "pcj_x"], "invalid_edge_url"],
    [["init", "--join-token", "pcj_x"], "missing_option"],
  ])("%j → %s", async (args, code) => {
    const before = await entries();
    expectOneLine(await run(args), code, 2);
    expect(await entries()).toEqual(before);
  });

  it("--json turns the line into one JSON error on stdout", async () => {
    expectJsonError(await run(["--json", "put", "file.txt", "--bogus"]), "unknown_option", 2);
    expectJsonError(await run(["put", "file.txt", "--json", "--replicas", "0"]), "invalid_argument", 2);
  });

  it("--help and --version still succeed", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: peercloud/);
    expect((await run(["--version"])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe("bad input (exit 2)", () => {
  it("put of a missing file", async () => {
    const before = await entries();
    expectOneLine(await run(["put", "no-such-file.bin"]), "path_not_found", 2);
    expectJsonError(await run(["--json", "put", "no-such-file.bin"]), "path_not_found", 2);
    expect(await entries()).toEqual(before);
  });

  it.each([
    ["garbage", "not a link"],
    ["wrong scheme", `ftp://x/${VALID_CID}`],
    ["bad CID", "peercloud://bafyNOTACID#" + "A".repeat(43)],
    ["no key", `peercloud://${VALID_CID}`],
    ["short key", `peercloud://${VALID_CID}#AAAA`],
  ])("get with a malformed link (%s) writes nothing", async (_label, link) => {
    const before = await entries();
    expectOneLine(await run(["get", link, "-o", "out.bin"]), "invalid_link", 2);
    expect(await entries()).toEqual(before);
  });

  it("an unknown home is reported, and not created", async () => {
    const home = join(dir, "nowhere");
    for (const args of [["status"], ["ls"], ["put", "file.txt"], ["get", VALID_LINK], ["unpin", VALID_LINK], ["peer", "start"]]) {
      expectOneLine(await run(["--home", home, ...args]), "home_not_initialized", 2);
    }
    expectOneLine(await run(["status"]), "home_not_initialized", 2); // PEERCLOUD_HOME
    expect(await entries()).not.toContain("nowhere");
    expect(await entries()).not.toContain("default-home");
  });

  it("a hand-broken config names the field", async () => {
    const home = new PeerHome(join(dir, "broken-home"));
    const identity = await generateIdentity();
    await home.writeIdentity(identity);
    await home.create();
    await writeFile(home.configPath, JSON.stringify({ version: 1, edgeUrl: "http://127.0.0.1:1", port: "seven" }));
    const r = await run(["--home", home.dir, "status"]);
    expectOneLine(r, "config_invalid", 1);
    expect(r.stderr).toMatch(/field /);
    await rm(home.dir, { recursive: true });
  });
});

describe("run-time failures (exit 1)", () => {
  it("init against a dead edge leaves no home behind", async () => {
    const home = join(dir, "dead-edge-home");
    const r = await run(["--home", home, "init", "--edge", "http://127.0.0.1:1", "--join-token", "pcj_" + "A".repeat(43)]);
    expectOneLine(r, "edge_unreachable", 1);
    expect(await entries()).not.toContain("dead-edge-home");
  });

  it("put through a home whose edge is dead fails with one line and prints no link", async () => {
    const home = new PeerHome(join(dir, "stale-home"));
    const identity = await generateIdentity();
    await home.writeIdentity(identity);
    await home.writeConfig({
      version: 1,
      edgeUrl: "http://127.0.0.1:1",
      network: { id: "a".repeat(64), publicKey: "A".repeat(43) },
      nodeId: identity.nodeId,
      region: "eu",
      roles: ["service", "publisher"],
      certificate: "pc1.e30.AAAA",
      certificateExpiresAtMs: Date.now() + 3600_000,
      directoryPath: "/v1/regions/eu/connect",
      convergenceSecret: newConvergenceSecret(),
      port: 0,
      joinedAtMs: Date.now(),
    });
    const r = await run(["--home", home.dir, "put", "file.txt"]);
    expectOneLine(r, "edge_unreachable", 1);
    expectJsonError(await run(["--home", home.dir, "--json", "put", "file.txt"]), "edge_unreachable", 1);
    // The home's lock was released: nothing claims to run there.
    expect(await home.runningPid()).toBeNull();
  });
});
