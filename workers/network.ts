/**
 * `GET /v1/network`: the network's public identity and the parameters in
 * force. Peers fetch it once at init and on every renewal; with the public
 * key they verify each other's certificates offline, and with the parameters
 * they never hard-code an interval the operator may change in wrangler.toml.
 */
import { Hono } from "hono";
import { networkKey, networkParams, regionConfig, type AppEnv } from "./context.js";

export interface NetworkInfo {
  id: string;
  publicKey: string;
  params: ReturnType<typeof networkParams>;
  regions: string[];
}

export const network = new Hono<AppEnv>();

network.get("/network", async (c) => {
  const key = await networkKey(c.env);
  const body: NetworkInfo = {
    id: key.id,
    publicKey: key.publicKeyBase64,
    params: networkParams(c.env),
    regions: Object.keys(regionConfig(c.env).regions),
  };
  // Short shared caching: the key changes only with a redeploy, params rarely.
  return c.json(body, 200, { "cache-control": "public, max-age=60" });
});
