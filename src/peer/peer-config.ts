/**
 * The peer's `config.json`: everything `init` learned when joining, the
 * settings `peer start` uses unless its flags override them for one run, and
 * the certificate the daemon renews; validated with valibot whenever read.
 *
 * The file is written by this program only (atomically), but people open it
 * in editors, and a half-copied home or a hand edit must give one clear
 * error naming the field (`config.json: port: must be …`), not a crash deep
 * in the daemon. Unknown fields are rejected for the same reason: a typo
 * like `storagelimitBytes` must not be silently ignored.
 */
import * as v from "valibot";
import { ROLES } from "../core/roles.js";
import { hostIdSchema, nodeIdSchema, regionSchema } from "../core/messages.js";

export const CONFIG_VERSION = 1;

const base64url = (bytes: number) =>
  v.pipe(
    v.string(),
    v.regex(/^[A-Za-z0-9_-]+$/, "must be base64url"),
    v.check((s) => Math.floor((s.length * 3) / 4) === bytes && s.length % 4 !== 1, `must encode ${bytes} bytes`),
  );

const httpOrigin = v.pipe(
  v.string(),
  v.check((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "http:" || u.protocol === "https:") && u.pathname === "/" && !u.search && !u.hash && u.origin === s;
    } catch {
      return false;
    }
  }, "must be a bare http(s) origin such as https://edge.example.com"),
);

const portSchema = v.pipe(v.number(), v.integer("must be an integer"), v.minValue(0, "must be 0–65535"), v.maxValue(65535, "must be 0–65535"));
const positiveInt = v.pipe(v.number(), v.integer("must be an integer"), v.minValue(1, "must be positive"), v.maxValue(Number.MAX_SAFE_INTEGER));

export const peerConfigSchema = v.strictObject({
  version: v.literal(CONFIG_VERSION, `must be ${CONFIG_VERSION}`),
  /** Origin of the edge Worker this peer joined through. */
  edgeUrl: httpOrigin,
  network: v.strictObject({
    /** hex(SHA-256(network public key)). */
    id: nodeIdSchema,
    /** The edge's Ed25519 public key, base64url: verifies other peers' certificates offline. */
    publicKey: base64url(32),
  }),
  nodeId: nodeIdSchema,
  region: regionSchema,
  roles: v.pipe(v.array(v.picklist(ROLES, `must be one of ${ROLES.join(", ")}`)), v.minLength(1, "must name at least one role")),
  /** Failure-domain label sent at bootstrap (replicas never share a host). */
  hostId: v.optional(hostIdSchema),
  /** `pc1.…` certificate from the edge, replaced atomically on renewal. */
  certificate: v.pipe(v.string(), v.startsWith("pc1.", "must be a pc1.… certificate"), v.maxLength(2048)),
  certificateExpiresAtMs: positiveInt,
  /** WebSocket path of the region directory (from the bootstrap answer). */
  directoryPath: v.pipe(v.string(), v.startsWith("/", "must be an absolute path")),
  /** Publisher secret for convergent chunk keys (32 bytes, base64url): never leaves this home. */
  convergenceSecret: base64url(32),
  /** Transfer server port; 0 picks a free one at every start. */
  port: portSchema,
  /** Interface the transfer server listens on. */
  host: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(255))),
  /** Transfer URL announced to other peers, when it differs from http://<host>:<port> (NAT, proxies). */
  advertiseUrl: v.optional(v.pipe(v.string(), v.regex(/^https?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be http(s)://host:port"))),
  /** Upper bound on stored chunk bytes; absent = unlimited. */
  storageLimitBytes: v.optional(positiveInt),
  /** Interval of the chunk store's re-hash scrub; absent = the daemon default. */
  scrubIntervalMs: v.optional(positiveInt),
  joinedAtMs: positiveInt,
});

export type PeerConfig = v.InferOutput<typeof peerConfigSchema>;
