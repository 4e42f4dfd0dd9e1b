/**
 * Peer roles (DESIGN "Nodes"): every node runs the same program; roles say
 * what it offers. `service` stores and serves chunks, `client` only
 * downloads, `gateway` relays for peers that cannot be reached directly,
 * `publisher` may pin content and upload to the R2 cold tier.
 */
export const ROLES = ["service", "client", "gateway", "publisher"] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** Roles whose holders store chunks for others (placement and replica counts consider only these). */
export function storesChunks(roles: readonly Role[]): boolean {
  return roles.includes("service");
}
