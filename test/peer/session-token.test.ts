/**
 * Session tokens: issued and verified by one process's key, unforgeable,
 * expiring, and robust to any string a remote peer might send as a token.
 */
import { describe, expect, it } from "vitest";
import { SessionTokens, MAX_SESSION_TOKEN_CHARS } from "../../src/peer/session-token.js";

const NODE = "a".repeat(64);
const T0 = 1_700_000_000_000;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe("SessionTokens", () => {
  it("round-trips node ID, roles and expiry", () => {
    const tokens = new SessionTokens();
    const token = tokens.issue(NODE, ["service", "publisher"], 60_000, T0);
    expect(tokens.verify(token, T0)).toEqual({ nodeId: NODE, roles: ["service", "publisher"], expiresAtMs: T0 + 60_000 });
    expect(tokens.verify(token, T0 + 59_999).nodeId).toBe(NODE);
    expect(token.length).toBeLessThan(MAX_SESSION_TOKEN_CHARS);
  });

  it("expires at exactly issue time + ttl", () => {
    const tokens = new SessionTokens();
    const token = tokens.issue(NODE, ["client"], 1000, T0);
    expect(codeOf(() => tokens.verify(token, T0 + 1000))).toBe("session_expired");
    const err = (() => {
      try {
        tokens.verify(token, T0 + 5000);
      } catch (e) {
        return e as { status: number };
      }
    })();
    expect(err?.status).toBe(401);
  });

  it("rejects tokens of another process (another key)", () => {
    const token = new SessionTokens().issue(NODE, ["service"], 60_000, T0);
    expect(codeOf(() => new SessionTokens().verify(token, T0))).toBe("bad_session");
  });

  it("shares tokens between instances given the same secret", () => {
    const secret = new Uint8Array(32).fill(7);
    const token = new SessionTokens({ secret }).issue(NODE, ["service"], 60_000, T0);
    expect(new SessionTokens({ secret }).verify(token, T0).roles).toEqual(["service"]);
  });

  it("detects any tampering with the payload (e.g. adding a role or extending expiry)", () => {
    const tokens = new SessionTokens();
    const token = tokens.issue(NODE, ["client"], 60_000, T0);
    const [payload, mac] = token.split(".");
    const forgedPayload = Buffer.from(`v1|${NODE}|client,publisher|${T0 + 60_000}`).toString("base64url");
    expect(codeOf(() => tokens.verify(`${forgedPayload}.${mac}`, T0))).toBe("bad_session");
    const longer = Buffer.from(`v1|${NODE}|client|${T0 + 10 ** 9}`).toString("base64url");
    expect(codeOf(() => tokens.verify(`${longer}.${mac}`, T0))).toBe("bad_session");
    // Flip one character of the MAC.
    const flipped = mac.slice(0, 10) + (mac[10] === "A" ? "B" : "A") + mac.slice(11);
    expect(codeOf(() => tokens.verify(`${payload}.${flipped}`, T0))).toBe("bad_session");
  });

  it("answers bad_session (never a crash) to garbage", () => {
    const tokens = new SessionTokens();
    const garbage: unknown[] = [undefined, null, 42, {}, "", ".", "a.b", "x".repeat(10_000), "é.é", `${"A".repeat(20)}.${"A".repeat(43)}`, "a..b", "Bearer x"];
    for (const g of garbage) expect(codeOf(() => tokens.verify(g, T0))).toBe("bad_session");
  });

  it("refuses to issue for malformed inputs", () => {
    const tokens = new SessionTokens();
    expect(() => tokens.issue("not-a-node", ["client"], 1000)).toThrow(TypeError);
    expect(() => tokens.issue(NODE, ["root" as never], 1000)).toThrow(TypeError);
    expect(() => tokens.issue(NODE, ["client"], 0)).toThrow(RangeError);
  });
});
