/**
 * `peercloud init --edge URL --join-token TOKEN [--region R] [--roles …]
 * [--host-id ID] [--port P] [--advertise URL] [--force | --rejoin]`:
 * creates this home's identity (Ed25519, identity.key mode 0600) and joins
 * the network (POST /v1/bootstrap), saving the certificate and settings in
 * config.json.
 *
 * Nothing is written until the edge has accepted the join, so a typo in the
 * URL or token leaves no half-made home. An existing identity is never
 * replaced unless `--force` (a new peer); `--rejoin` keeps it and joins
 * again (an expired certificate, a new token). A key left by an
 * interrupted init (identity without config) is reused.
 */
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import * as v from "valibot";
import { fromBase64Url, toBase64Url } from "../../core/bytes.js";
import { verifyCertificate } from "../../core/certificate.js";
import { ConflictError } from "../../core/errors.js";
import { generateIdentity } from "../../core/identity.js";
import { hostIdSchema, regionSchema } from "../../core/messages.js";
import { DEFAULT_PARAMS } from "../../core/params.js";
import { isRole, type Role } from "../../core/roles.js";
import { EdgeClient } from "../../peer/edge-client.js";
import { newConvergenceSecret, type PeerConfig } from "../../peer/home.js";
import { contextOf, printResult } from "../context.js";
import { UsageError } from "../errors.js";
import { parseAdvertise, parsePort } from "./peer.js";

interface InitFlags {
  edge: string;
  joinToken: string;
  region?: string;
  roles: Role[];
  hostId?: string;
  port: number;
  advertise?: string;
  force?: boolean;
  rejoin?: boolean;
}

const DEFAULT_PORT = 7070;

function parseRoles(text: string): Role[] {
  const roles = text
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  const bad = roles.filter((r) => !isRole(r));
  if (roles.length === 0 || bad.length) throw new InvalidArgumentError(`roles are a comma-separated list of service, client, gateway, publisher${bad.length ? ` (not: ${bad.join(", ")})` : ""}`);
  return [...new Set(roles)] as Role[];
}

const schemaParser = (schema: v.GenericSchema<string>, what: string) => (text: string) => {
  const result = v.safeParse(schema, text);
  if (!result.success) throw new InvalidArgumentError(`${what} ${result.issues[0].message}`);
  return text;
};

/** The edge's origin; a path, query or non-http scheme is a usage error. */
export function edgeOrigin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--edge must be the edge's http(s) URL, got ${JSON.stringify(text)}`, "invalid_edge_url");
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.pathname !== "/" || url.search || url.hash) {
    throw new UsageError(`--edge must be a bare http(s) origin such as https://edge.example.com, got ${JSON.stringify(text)}`, "invalid_edge_url");
  }
  return url.origin;
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("create this home's identity and join a network")
    .requiredOption("--edge <url>", "the edge's URL, e.g. https://peercloud.example.workers.dev")
    .requiredOption("--join-token <token>", "a join token from the network's operator")
    .option("--region <name>", "region to join (default: chosen by the edge from your location)", schemaParser(regionSchema, "region"))
    .option("--roles <list>", "comma-separated roles: service, client, gateway, publisher", parseRoles, ["service", "publisher"] as Role[])
    .option("--host-id <id>", "failure-domain label: peers with one host ID never hold the same replica (default: this peer's node ID)", schemaParser(hostIdSchema, "host ID"))
    .option("--port <port>", `transfer server port (default ${DEFAULT_PORT}; 0: any free port at each start)`, parsePort, DEFAULT_PORT)
    .option("--advertise <url>", "transfer URL other peers should use, e.g. http://203.0.113.7:7070", parseAdvertise)
    .option("--force", "replace an existing identity with a new one (this home becomes a new peer)")
    .option("--rejoin", "keep the existing identity and join again (e.g. after the certificate expired)")
    .action(async (flags: InitFlags, command: Command) => {
      const ctx = contextOf(command);
      const edgeUrl = edgeOrigin(flags.edge);
      if (flags.force && flags.rejoin) throw new UsageError("--force makes a new identity and --rejoin keeps the old one: give one of them");
      const home = ctx.home;
      const running = await home.runningPid();
      if (running !== null) throw new ConflictError("peer_already_running", `a peer daemon (pid ${running}) runs in ${home.dir}; stop it before init`);

      const hasIdentity = await home.hasIdentity();
      const hasConfig = await home.readConfig().then(
        () => true,
        () => false,
      );
      if (flags.rejoin && !hasIdentity) throw new UsageError(`--rejoin needs an existing identity, and ${home.dir} has none`, "home_not_initialized");
      if (hasIdentity && hasConfig && !flags.force && !flags.rejoin) {
        throw new ConflictError("identity_exists", `${home.dir} already holds a joined peer; pass --rejoin to join again with the same identity, or --force to replace it`);
      }
      const identity = hasIdentity && !flags.force ? await home.readIdentity() : await generateIdentity();

      // daemon.ts (and the daemon's modules) load only to compute the default advertised address.
      const advertise = flags.advertise ?? (flags.port === 0 ? null : (await import("../../peer/daemon.js")).advertisedUrl("0.0.0.0", flags.port));
      const edge = new EdgeClient({ edgeUrl, identity });
      const answer = await edge.bootstrap({
        publicKey: toBase64Url(identity.publicKey),
        addresses: advertise ? [advertise] : [],
        roles: flags.roles,
        capacity: { storageBytes: await freeBytesNear(home.dir), uploadBps: 0, downloadBps: 0 },
        ...(flags.region ? { region: flags.region } : {}),
        ...(flags.hostId ? { hostId: flags.hostId } : {}),
        joinToken: flags.joinToken,
      });
      // The edge signed what it says about us: check it before saving (wrong network key, wrong node = a broken edge).
      await verifyCertificate(answer.certificate, { networkPublicKey: fromBase64Url(answer.network.publicKey), nowMs: Date.now(), maxSkewMs: DEFAULT_PARAMS.signatureMaxSkewMs });

      const previous = hasConfig && flags.rejoin ? await home.readConfig() : null;
      const config: PeerConfig = {
        version: 1,
        edgeUrl,
        network: { id: answer.network.id, publicKey: answer.network.publicKey },
        nodeId: answer.nodeId,
        region: answer.region,
        roles: flags.roles,
        ...(flags.hostId ? { hostId: flags.hostId } : previous?.hostId ? { hostId: previous.hostId } : {}),
        certificate: answer.certificate,
        certificateExpiresAtMs: answer.certificateExpiresAtMs,
        directoryPath: answer.directoryPath,
        // A re-join keeps the convergence secret, so re-puts still de-duplicate against earlier ones.
        convergenceSecret: previous?.convergenceSecret ?? newConvergenceSecret(),
        port: flags.port,
        ...(flags.advertise ? { advertiseUrl: flags.advertise } : {}),
        ...(previous?.storageLimitBytes ? { storageLimitBytes: previous.storageLimitBytes } : {}),
        joinedAtMs: Date.now(),
      };
      if (!hasIdentity || flags.force) await home.writeIdentity(identity, { force: flags.force });
      await home.writeConfig(config);
      printResult(
        ctx,
        {
          nodeId: config.nodeId,
          region: config.region,
          roles: config.roles,
          networkId: config.network.id,
          home: home.dir,
          certificateExpiresAtMs: config.certificateExpiresAtMs,
          peers: answer.peers.length,
        },
        `joined network ${config.network.id.slice(0, 16)}… as ${config.nodeId.slice(0, 16)}… in region ${config.region} (${answer.peers.length} peer(s) known); home ${home.dir}`,
      );
    });
}

/** Free space where the store will live (the home, or its nearest existing parent): the capacity offered at join. */
async function freeBytesNear(dir: string): Promise<number> {
  for (let d = dir; ; d = dirname(d)) {
    try {
      const s = await statfs(d);
      return Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, s.bavail * s.bsize));
    } catch {
      if (dirname(d) === d) return 0;
    }
  }
}
