/**
 * Fixed secrets for the edge test project only (never used outside tests):
 * tests need to know the admin secret and the network key to sign requests.
 */
export const TEST_ADMIN_SECRET = "test-admin-secret-0123456789abcdef";
/** base64url of the 32-byte seed 0x01 × 32. */
export const TEST_EDGE_SIGNING_KEY = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
