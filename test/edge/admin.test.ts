/**
 * The admin API: refused without the secret, with a wrong one, and when the
 * deployment has no usable secret at all; join tokens created (shown once,
 * stored hashed), listed without tokens, revoked; region summaries.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { joinTokenId } from "../../src/core/join-token.js";
import { app } from "../../workers/app.js";
import { adminFetch, createJoinToken, edgeFetch, expectError, json } from "./helpers.js";

const ROUTES: [string, string, string?][] = [
  ["POST", "/v1/admin/join-tokens", JSON.stringify({ label: "x" })],
  ["GET", "/v1/admin/join-tokens"],
  ["DELETE", `/v1/admin/join-tokens/${"0".repeat(64)}`],
  ["GET", "/v1/admin/regions"],
];

describe("admin authentication", () => {
  it.each(ROUTES)("refuses %s %s without a secret (401), with a wrong one (403)", async (method, path, body) => {
    await expectError(await edgeFetch(path, { method, body }), 401, "admin_auth_required");
    await expectError(await edgeFetch(path, { method, body, headers: { authorization: "Basic YWRtaW46YWRtaW4=" } }), 401, "admin_auth_required");
    await expectError(await adminFetch(path, { method, body }, "wrong-secret"), 403, "admin_auth_failed");
    await expectError(await adminFetch(path, { method, body }, "test-admin-secret-0123456789abcdeF"), 403, "admin_auth_failed");
  });

  it.each([[""], ["short"], [undefined]])("refuses everything when ADMIN_SECRET is %j", async (secret) => {
    for (const [method, path, body] of ROUTES) {
      const headers = { authorization: `Bearer ${secret ?? "anything-at-all-here"}` };
      const res = await app.fetch(new Request(`https://edge.test${path}`, { method, body, headers }), { ...env, ADMIN_SECRET: secret as string }, createExecutionContext());
      await expectError(res, 403, "admin_disabled");
    }
  });
});

describe("join tokens", () => {
  it("creates a token shown once and stores only its hash", async () => {
    const created = await createJoinToken({ label: "rack 7", ttlSeconds: 3600, roles: ["service", "publisher"], regions: ["eu"] });
    expect(created.token).toMatch(/^pcj_[A-Za-z0-9_-]{43}$/);
    expect(created.id).toBe(await joinTokenId(created.token));
    expect(created).toMatchObject({ label: "rack 7", roles: ["service", "publisher"], regions: ["eu"], revokedAtMs: null });
    expect(created.expiresAtMs! - Date.now()).toBeGreaterThan(3500_000);

    const stored = await env.DASHBOARD.getWithMetadata(`join-token:${created.id}`, "text");
    expect(stored.value).not.toContain(created.token);
    expect(JSON.stringify(stored.metadata)).not.toContain(created.token);
    expect(JSON.parse(stored.value!).id).toBe(created.id);
  });

  it("defaults to a week's validity and to every role but publisher", async () => {
    const created = await createJoinToken({ label: "defaults" });
    expect(created.roles).toEqual(["service", "client", "gateway"]);
    expect(created.regions).toEqual([]);
    expect(Math.round((created.expiresAtMs! - Date.now()) / 3600_000)).toBe(7 * 24);
    const forever = await createJoinToken({ label: "forever", ttlSeconds: null });
    expect(forever.expiresAtMs).toBeNull();
  });

  it("lists tokens without ever showing one", async () => {
    const a = await createJoinToken({ label: "list-a" });
    const b = await createJoinToken({ label: "list-b" });
    const res = await adminFetch("/v1/admin/join-tokens");
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain(a.token);
    expect(text).not.toContain(b.token);
    expect(text).not.toContain("pcj_");
    const body = JSON.parse(text);
    const ids = body.tokens.map((t: { id: string }) => t.id);
    expect(ids).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(body.tokens.find((t: { id: string }) => t.id === a.id)).toMatchObject({ label: "list-a", revokedAtMs: null });
    expect(body.cursor).toBeNull();
  });

  it("revokes a token, idempotently, keeping its record", async () => {
    const created = await createJoinToken({ label: "to revoke" });
    const res = await adminFetch(`/v1/admin/join-tokens/${created.id}`, { method: "DELETE" });
    expect(res.status).toBe(200);
    const revoked = await json(res);
    expect(revoked.revokedAtMs).toBeTypeOf("number");
    expect(revoked.token).toBeUndefined();
    const again = await json(await adminFetch(`/v1/admin/join-tokens/${created.id}`, { method: "DELETE" }));
    expect(again.revokedAtMs).toBe(revoked.revokedAtMs);
    const listed = await json(await adminFetch("/v1/admin/join-tokens"));
    expect(listed.tokens.find((t: { id: string }) => t.id === created.id).revokedAtMs).toBe(revoked.revokedAtMs);
  });

  it("answers 404 for an unknown token and 400 for a malformed ID", async () => {
    await expectError(await adminFetch(`/v1/admin/join-tokens/${"ab".repeat(32)}`, { method: "DELETE" }), 404, "unknown_join_token");
    await expectError(await adminFetch("/v1/admin/join-tokens/xyz", { method: "DELETE" }), 400, "invalid_token_id");
  });

  it.each([
    [{}, "invalid_request"],
    [{ label: "" }, "invalid_request"],
    [{ label: "x".repeat(65) }, "invalid_request"],
    [{ label: "x", ttlSeconds: 5 }, "invalid_request"],
    [{ label: "x", ttlSeconds: 1.5e9 }, "invalid_request"],
    [{ label: "x", roles: ["root"] }, "invalid_request"],
    [{ label: "x", roles: [] }, "invalid_request"],
    [{ label: "x", regions: ["mars"] }, "unknown_region"],
    [{ label: "x", regions: ["eu", "eu"] }, "invalid_request"],
    [{ label: "x", token: "pcj_chosen" }, "invalid_request"],
  ])("refuses the creation body %j", async (body, code) => {
    const res = await adminFetch("/v1/admin/join-tokens", { method: "POST", body: JSON.stringify(body) });
    await expectError(res, 400, code);
  });
});

describe("GET /v1/admin/regions", () => {
  it("reports every configured region with its live summary and its KV snapshot", async () => {
    await env.DASHBOARD.put("region:ap", JSON.stringify({ region: "ap", peers: { alive: 1, suspect: 0, dead: 0, connected: 0 }, updatedAtMs: 1 }));
    const res = await adminFetch("/v1/admin/regions");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = await json(res);
    expect(body.regions.map((r: { name: string }) => r.name)).toEqual(["eu", "us", "ap"]);
    for (const region of body.regions) {
      expect(region.live).toMatchObject({ region: region.name });
      expect(region.live.peers).toBeTypeOf("object");
      expect(region.live.r2EgressBytes).toBeTypeOf("number");
    }
    expect(body.regions[2]).toMatchObject({ locationHint: "apac", snapshot: { region: "ap", updatedAtMs: 1 } });
  });
});
