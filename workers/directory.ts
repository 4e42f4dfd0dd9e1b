/**
 * The region directory's HTTP face: the WebSocket entry every peer keeps
 * open, and the same lookups and requests the socket offers, for peers (and
 * the CLI) that ask once without connecting.
 *
 * The Worker authenticates; the region's Durable Object trusts what the
 * Worker tells it. So the WebSocket is forwarded with `x-peercloud-node-id`
 * and `x-peercloud-region` set from the verified certificate only, after
 * every client-sent `x-peercloud-*` header is stripped. Lookups accept any
 * certificate holder of the network in any region (peers look across
 * regions); state-changing requests (connect, pins, signal) claim their nonce.
 */
import { Hono } from "hono";
import * as v from "valibot";
import { isCid, parseCid } from "../src/core/cid.js";
import { ValidationError } from "../src/core/errors.js";
import { batchProviderCount, MAX_PROVIDER_BATCH_CIDS, MAX_SIGNAL_PAYLOAD_CHARS, nodeIdSchema, pinMessage, placeMessage, signalMessage, type ProviderInfo } from "../src/core/messages.js";
import { bodyDigestHex } from "../src/core/signed-request.js";
import type { Role } from "../src/core/roles.js";
import { rankRegions } from "../src/core/region-rank.js";
import { parseWith } from "../src/core/validate.js";
import { parseJsonBytes, readBodyBytes } from "./body.js";
import { networkParams, regionConfig, regionStub, requireRegion, type AppContext, type AppEnv, type RegionStub } from "./context.js";
import { ForbiddenError, fromRemote, HttpError } from "./errors.js";
import { authenticatePeer, claimOnce } from "./peer-auth.js";

/** Largest FIND_NODE / FIND_PROVIDERS answer over HTTP (as over the socket). */
const MAX_LOOKUP_COUNT = 100;
const MAX_PINS_BODY_BYTES = 128 * 1024;
const MAX_PLACE_BODY_BYTES = 8 * 1024;
/** 256 CIDs of 59 characters in JSON are ~16 KiB. */
const MAX_PROVIDERS_BODY_BYTES = 32 * 1024;
const MAX_SIGNAL_BODY_BYTES = MAX_SIGNAL_PAYLOAD_CHARS + 1024;
const TRUSTED_HEADER_PREFIX = "x-peercloud-";

const pinsBodySchema = v.pipe(
  v.strictObject({ cids: pinMessage.entries.cids, replicas: pinMessage.entries.replicas, sizeBytes: pinMessage.entries.sizeBytes }),
  v.check((b) => b.cids.every(isCid), "cids must be canonical peercloud CIDs"),
  v.check((b) => b.sizeBytes === undefined || b.sizeBytes.length === b.cids.length, "sizeBytes must give one size per CID"),
);
// CIDs are checked one by one after the shape (parseCid), so that a bad one is 400 invalid_cid as on the GET route.
const providersBodySchema = v.strictObject({
  cids: v.pipe(v.array(v.pipe(v.string(), v.maxLength(128))), v.minLength(1), v.maxLength(MAX_PROVIDER_BATCH_CIDS)),
  count: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_LOOKUP_COUNT))),
  scope: v.optional(v.picklist(["region", "all"])),
});
const placeBodySchema = v.strictObject({ count: placeMessage.entries.count, exclude: placeMessage.entries.exclude, sizeBytes: placeMessage.entries.sizeBytes });
const DRAIN_ERRORS = { peer_not_registered: 404, not_a_storage_peer: 403 };
const drainBodySchema = v.strictObject({ draining: v.boolean() });
const signalBodySchema = v.strictObject({ to: signalMessage.entries.to, region: signalMessage.entries.region, payload: signalMessage.entries.payload });

export const directory = new Hono<AppEnv>();

function countQuery(c: AppContext, fallback: number): number {
  const raw = c.req.query("count");
  if (raw === undefined) return Math.min(fallback, MAX_LOOKUP_COUNT);
  if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LOOKUP_COUNT) {
    throw new ValidationError(`query.count must be an integer from 1 to ${MAX_LOOKUP_COUNT}`);
  }
  return Number(raw);
}

/** Reads a bounded JSON body, verifies the signature over its exact bytes, then validates its shape. */
async function signedJson<S extends v.GenericSchema>(c: AppContext, schema: S, maxBytes: number, options: { replayGuard: boolean; role?: Role }) {
  const bytes = await readBodyBytes(c.req.raw, maxBytes);
  const auth = await authenticatePeer(c, { bodySha256Hex: await bodyDigestHex(bytes), replayGuard: false, role: options.role });
  const body: v.InferOutput<S> = parseWith(schema, parseJsonBytes(bytes, maxBytes, "body"), "body");
  // The nonce is claimed only for a request we will act on, so a rejected body can be corrected and re-signed.
  if (options.replayGuard) await claimOnce(c, auth.certificate.nodeId, auth.nonce, auth.timestampMs);
  return { auth, body };
}

directory.get("/regions/:region/connect", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "upgrade_required", "this endpoint is a WebSocket: send Upgrade: websocket");
  }
  const { certificate, nonce, timestampMs } = await authenticatePeer(c, { replayGuard: false });
  if (certificate.region !== region) {
    throw new ForbiddenError("wrong_region", `this certificate is for region ${certificate.region}; connect to /v1/regions/${certificate.region}/connect`);
  }
  await claimOnce(c, certificate.nodeId, nonce, timestampMs);
  const headers = new Headers();
  for (const [name, value] of c.req.raw.headers) if (!name.toLowerCase().startsWith(TRUSTED_HEADER_PREFIX)) headers.set(name, value);
  headers.set("upgrade", "websocket");
  headers.set("x-peercloud-node-id", certificate.nodeId);
  headers.set("x-peercloud-region", region);
  return regionStub(c.env, region).fetch(new Request("https://directory/connect", { headers }));
});

directory.get("/regions/:region/nodes", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  const target = parseWith(nodeIdSchema, c.req.query("target"), "query.target");
  const count = countQuery(c, networkParams(c.env).k);
  await authenticatePeer(c, { replayGuard: false });
  const nodes = await regionStub(c.env, region).findNode(target, count);
  return c.json({ region, target, nodes });
});

// The region's summary (peers, replicas, under-replicated chunks, repair jobs): what `peercloud status` shows of the network.
directory.get("/regions/:region/summary", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  await authenticatePeer(c, { replayGuard: false });
  return c.json(await regionStub(c.env, region).summary());
});

directory.get("/regions/:region/providers/:cid", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  const { cid } = parseCid(c.req.param("cid"));
  const count = countQuery(c, networkParams(c.env).k);
  const scope = c.req.query("scope") ?? "region";
  if (scope !== "region" && scope !== "all") throw new ValidationError('query.scope must be "region" or "all"');
  await authenticatePeer(c, { replayGuard: false });
  const providers = await regionStub(c.env, region).findProviders(cid, count);
  if (scope === "all" && providers.length < count) await addOtherRegions(c, region, cid, count, providers);
  return c.json({ region, cid, scope, providers });
});

/**
 * Asks every other region at once and returns their answers nearest region
 * first, by the local directory's estimates of the quality between regions
 * (src/core/region-rank.ts; regions never measured last, in configuration
 * order). The estimates are read alongside the lookups, so ordering costs
 * no extra round trip; without them (the read failed) the order is the
 * configuration's. A region that fails is skipped (logged), not the lookup.
 */
async function askOtherRegions<T>(c: AppContext, local: string, what: string, ask: (stub: RegionStub) => Promise<T>): Promise<T[]> {
  const configured = Object.keys(regionConfig(c.env).regions);
  const others = configured.filter((r) => r !== local);
  const [estimates, answers] = await Promise.all([
    regionStub(c.env, local)
      .regionQuality()
      .catch((err: unknown) => {
        console.error(`peercloud edge: region quality of ${local} unavailable; asking other regions in configuration order`, err);
        return [];
      }),
    Promise.allSettled(others.map((r) => ask(regionStub(c.env, r)))),
  ]);
  const answerOf = new Map(others.map((r, i) => [r, answers[i]]));
  const ordered: T[] = [];
  for (const region of rankRegions(local, configured, estimates)) {
    const answer = answerOf.get(region)!;
    if (answer.status === "fulfilled") ordered.push(answer.value);
    else console.error(`peercloud edge: ${what} in region ${region} failed`, answer.reason);
  }
  return ordered;
}

/** Fills `providers` up to `count` from the other regions, nearest first, after the local region's own answer. */
async function addOtherRegions(c: AppContext, local: string, cid: string, count: number, providers: ProviderInfo[]): Promise<void> {
  const answers = await askOtherRegions(c, local, "providers lookup", (stub) => stub.findProviders(cid, count));
  const seen = new Set(providers.map((p) => p.nodeId));
  for (const answer of answers) {
    for (const p of answer) {
      if (providers.length >= count) return;
      if (!seen.has(p.nodeId)) {
        seen.add(p.nodeId);
        providers.push(p);
      }
    }
  }
}

/**
 * The batched FIND_PROVIDERS: one signed request for up to 256 CIDs (a
 * download asks per batch of chunks, not per chunk). Same auth as the GET
 * route (any certificate holder, no nonce claim: it changes nothing).
 * `scope=all` asks the other regions only for the CIDs the local region
 * answered with fewer than the per-CID count.
 */
directory.post("/regions/:region/providers", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  const { body } = await signedJson(c, providersBodySchema, MAX_PROVIDERS_BODY_BYTES, { replayGuard: false });
  const cids = [...new Set(body.cids.map((cid) => parseCid(cid).cid))];
  const scope = body.scope ?? "region";
  const count = body.count ?? Math.min(networkParams(c.env).k, MAX_LOOKUP_COUNT);
  const providers = await regionStub(c.env, region).findProvidersBatch(cids, count);
  const perCid = batchProviderCount(count, cids.length);
  const short = cids.filter((cid) => (providers[cid] ??= []).length < perCid);
  if (scope === "all" && short.length > 0) await addOtherRegionsBatch(c, region, short, count, perCid, providers);
  return c.json({ region, scope, providers });
});

/** addOtherRegions for a batch: tops up each short CID to `perCid`, nearest region first; a failing region is skipped. */
async function addOtherRegionsBatch(c: AppContext, local: string, cids: string[], count: number, perCid: number, providers: Record<string, ProviderInfo[]>): Promise<void> {
  const answers = await askOtherRegions(c, local, "batched providers lookup", (stub) => stub.findProvidersBatch(cids, count));
  for (const answer of answers) {
    for (const cid of cids) {
      const list = providers[cid];
      const seen = new Set(list.map((p) => p.nodeId));
      for (const p of answer[cid] ?? []) {
        if (list.length >= perCid) break;
        if (!seen.has(p.nodeId)) {
          seen.add(p.nodeId);
          list.push(p);
        }
      }
    }
  }
}

directory.post("/regions/:region/pins", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  const { auth, body } = await signedJson(c, pinsBodySchema, MAX_PINS_BODY_BYTES, { replayGuard: true, role: "publisher" });
  await regionStub(c.env, region).pin(auth.certificate.nodeId, body.cids, body.replicas, body.sizeBytes);
  return c.json({ region, pinned: body.cids.length, replicas: body.replicas });
});

directory.post("/regions/:region/place", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  const { body } = await signedJson(c, placeBodySchema, MAX_PLACE_BODY_BYTES, { replayGuard: false });
  const nodes = await regionStub(c.env, region).place(body.count, body.exclude ?? [], body.sizeBytes);
  return c.json({ region, nodes });
});

/**
 * Drain (issue 6 item 4): the signing storage peer starts (`draining: true`)
 * or cancels its drain in its own region, and reads its progress. The same
 * as the socket's `drain` message, for the CLI, which runs beside the
 * daemon rather than inside it.
 */
directory.post("/regions/:region/drain", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  const { auth, body } = await signedJson(c, drainBodySchema, MAX_PLACE_BODY_BYTES, { replayGuard: true, role: "service" });
  if (auth.certificate.region !== region) throw new ForbiddenError("wrong_region", `this peer belongs to region ${auth.certificate.region}, not ${region}`);
  const progress = await regionStub(c.env, region)
    .drain(auth.certificate.nodeId, body.draining)
    .catch((err: unknown) => {
      throw fromRemote(err, DRAIN_ERRORS);
    });
  return c.json(progress);
});

directory.get("/regions/:region/drain", async (c) => {
  const region = requireRegion(c.env, c.req.param("region"));
  const auth = await authenticatePeer(c, { replayGuard: false });
  if (auth.certificate.region !== region) throw new ForbiddenError("wrong_region", `this peer belongs to region ${auth.certificate.region}, not ${region}`);
  const progress = await regionStub(c.env, region)
    .drainProgress(auth.certificate.nodeId)
    .catch((err: unknown) => {
      throw fromRemote(err, DRAIN_ERRORS);
    });
  return c.json(progress);
});

directory.post("/signal", async (c) => {
  const { auth, body } = await signedJson(c, signalBodySchema, MAX_SIGNAL_BODY_BYTES, { replayGuard: true });
  const region = requireRegion(c.env, body.region ?? auth.certificate.region);
  const from = auth.certificate;
  const result = await regionStub(c.env, region)
    .deliverSignal(from.nodeId, from.region, body.to, body.payload)
    .catch((err: unknown) => {
      throw fromRemote(err, { peer_not_connected: 404 });
    });
  return c.json({ ...result, region, to: body.to });
});
