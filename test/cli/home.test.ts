/**
 * The peer home (src/peer/home.ts): identity file mode, atomic and validated
 * config, stale pid detection. Real files in a temp directory; "a dead
 * process" is a child that has really exited.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { generateIdentity } from "../../src/core/identity.js";
import { newConvergenceSecret, PeerHome, resolveHomeDir, type PeerConfig } from "../../src/peer/home.js";

let dir: string;
let home: PeerHome;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "peercloud-home-"));
  home = new PeerHome(join(dir, "home"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sampleConfig(nodeId: string): Promise<PeerConfig> {
  return {
    version: 1,
    edgeUrl: "http://127.0.0.1:8787",
    network: { id: "a".repeat(64), publicKey: "A".repeat(43) },
    nodeId,
    region: "eu",
    roles: ["service", "publisher"],
    hostId: "local-1",
    certificate: "pc1.body.sig",
    certificateExpiresAtMs: 1_900_000_000_000,
    directoryPath: "/v1/regions/eu/connect",
    convergenceSecret: newConvergenceSecret(),
    port: 7101,
    joinedAtMs: 1_800_000_000_000,
  };
}

/** The pid of a process that has exited (and been reaped), so nothing runs under it now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  const pid = child.pid!;
  await new Promise((resolve) => child.once("exit", resolve));
  return pid;
}

describe("resolveHomeDir", () => {
  it("prefers --home, then PEERCLOUD_HOME, then ~/.peercloud", () => {
    expect(resolveHomeDir("/x/y", { PEERCLOUD_HOME: "/env" })).toBe("/x/y");
    expect(resolveHomeDir(undefined, { PEERCLOUD_HOME: "/env" })).toBe("/env");
    expect(resolveHomeDir(undefined, {})).toMatch(/\.peercloud$/);
  });
});

describe("identity", () => {
  it("is written with mode 0600 and reads back as the same node", async () => {
    const identity = await generateIdentity();
    await home.writeIdentity(identity);
    const st = await stat(home.identityPath);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await home.readIdentity()).nodeId).toBe(identity.nodeId);
  });

  it("is never replaced without force", async () => {
    const first = await generateIdentity();
    await home.writeIdentity(first);
    await expect(home.writeIdentity(await generateIdentity())).rejects.toMatchObject({ code: "identity_exists" });
    expect((await home.readIdentity()).nodeId).toBe(first.nodeId);
    const second = await generateIdentity();
    await home.writeIdentity(second, { force: true });
    expect((await home.readIdentity()).nodeId).toBe(second.nodeId);
  });

  it("a missing home is home_not_initialized and nothing gets created", async () => {
    await expect(home.load()).rejects.toMatchObject({ code: "home_not_initialized" });
    await expect(stat(home.dir)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("config", () => {
  it("round-trips and leaves no temp files", async () => {
    const identity = await generateIdentity();
    await home.writeIdentity(identity);
    const config = await sampleConfig(identity.nodeId);
    await home.writeConfig(config);
    await home.writeConfig({ ...config, port: 7102 });
    expect((await home.load()).config).toEqual({ ...config, port: 7102 });
    expect((await readdir(home.dir)).sort()).toEqual(["config.json", "identity.key"]);
  });

  it("refuses to write an invalid config and keeps the old one", async () => {
    const config = await sampleConfig((await generateIdentity()).nodeId);
    await home.writeConfig(config);
    await expect(home.writeConfig({ ...config, port: 70000 })).rejects.toThrow();
    expect(JSON.parse(await readFile(home.configPath, "utf8")).port).toBe(7101);
  });

  it("reports corrupt JSON clearly", async () => {
    await home.create();
    await writeFile(home.configPath, '{"version": 1, "edgeUrl": ');
    await expect(home.readConfig()).rejects.toMatchObject({ code: "config_invalid", message: expect.stringContaining("not valid JSON") });
  });

  it.each([
    ["port", "seven", "field port"],
    ["edgeUrl", "ftp://edge", "field edgeUrl"],
    ["roles", ["service", "wizard"], "field roles[1]"],
    ["convergenceSecret", "short", "field convergenceSecret"],
    ["storagelimitBytes", 5, "storagelimitBytes"],
  ])("names the bad field %s", async (field, value, expected) => {
    const config = { ...(await sampleConfig((await generateIdentity()).nodeId)), [field]: value };
    await home.create();
    await writeFile(home.configPath, JSON.stringify(config));
    await expect(home.readConfig()).rejects.toMatchObject({ code: "config_invalid", message: expect.stringContaining(expected) });
  });

  it("names a missing field", async () => {
    const { certificate: _dropped, ...config } = await sampleConfig((await generateIdentity()).nodeId);
    await home.create();
    await writeFile(home.configPath, JSON.stringify(config));
    await expect(home.readConfig()).rejects.toMatchObject({ code: "config_invalid", message: expect.stringContaining("field certificate") });
  });
});

describe("pid file", () => {
  it("is claimed once; a second live claimant is peer_already_running", async () => {
    await home.acquirePidFile(process.pid);
    expect(await readFile(home.pidPath, "utf8")).toBe(`${process.pid}\n`);
    await expect(home.acquirePidFile(process.ppid)).rejects.toMatchObject({ code: "peer_already_running" });
    expect(await home.runningPid()).toBe(process.pid);
  });

  it("a pid file of a dead process is stale: removed with its leftovers, and the home can be claimed", async () => {
    await home.create();
    const pid = await deadPid();
    await writeFile(home.pidPath, `${pid}\n`);
    await writeFile(home.daemonInfoPath, JSON.stringify({ pid, controlSocket: home.controlSocketPath, transferUrl: "http://127.0.0.1:1", nodeId: "x", startedAtMs: 1 }));
    await writeFile(home.controlSocketPath, "");
    expect(await home.runningDaemon()).toBeNull();
    expect((await readdir(home.dir)).sort()).toEqual([]);
    await home.acquirePidFile(process.pid);
    expect(await home.runningPid()).toBe(process.pid);
  });

  it("a garbage pid file is stale too", async () => {
    await home.create();
    await writeFile(home.pidPath, "not a pid");
    await home.acquirePidFile(process.pid);
    expect(await home.runningPid()).toBe(process.pid);
  });

  it("removeRuntimeFiles releases the home", async () => {
    await home.acquirePidFile(process.pid);
    await home.removeRuntimeFiles();
    expect(await home.runningPid()).toBeNull();
  });
});
