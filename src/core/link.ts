/**
 * Links: what a publisher shares. A link names a sealed manifest by CID and
 * carries its 32-byte key, in one of two forms:
 *
 *   peercloud://<manifestCid>#<key>
 *   https://<edge-host>/d/<manifestCid>#<key>
 *
 * The key is base64url without padding (RFC 4648 §5) and lives in the URI
 * fragment (RFC 3986 §3.5), which browsers and HTTP clients never send to a
 * server: the edge serving /d/<cid> sees only the CID, never the key.
 * `http://` is accepted for the local development edge.
 */
import { fromBase64Url, toBase64Url } from "./bytes.js";
import { CHUNK_KEY_BYTES } from "./chunk-cipher.js";
import { parseCid } from "./cid.js";
import { ValidationError } from "./errors.js";

export const LINK_SCHEME = "peercloud";
export const EDGE_LINK_PATH_PREFIX = "/d/";
/** Longer input is not a link (a real one is about 130 characters plus the host). */
export const MAX_LINK_CHARS = 2048;

export interface LinkTarget {
  /** CID of the sealed manifest. */
  cid: string;
  /** The manifest key (32 bytes). */
  key: Uint8Array;
}

export interface ParsedLink extends LinkTarget {
  /** Origin of the edge for https links (e.g. "https://edge.example"), absent for peercloud:// links. */
  edgeOrigin?: string;
}

export type LinkProblem = "malformed" | "missing_key" | "bad_cid" | "bad_key" | "bad_key_length";

function invalid(reason: LinkProblem, message: string): ValidationError {
  return new ValidationError(message, "invalid_link", { reason });
}

/** `peercloud://<cid>#<key>`, or `<edge origin>/d/<cid>#<key>` when `edgeUrl` is given. */
export function formatLink(target: LinkTarget, edgeUrl?: string): string {
  const cid = parseCid(target.cid).cid;
  if (!(target.key instanceof Uint8Array) || target.key.length !== CHUNK_KEY_BYTES) {
    throw new RangeError(`formatLink: key must be ${CHUNK_KEY_BYTES} bytes`);
  }
  const fragment = "#" + toBase64Url(target.key);
  if (edgeUrl === undefined) return `${LINK_SCHEME}://${cid}${fragment}`;
  return `${edgeOrigin(edgeUrl)}${EDGE_LINK_PATH_PREFIX}${cid}${fragment}`;
}

function edgeOrigin(edgeUrl: string): string {
  let url: URL;
  try {
    url = new URL(edgeUrl);
  } catch {
    throw new TypeError(`formatLink: not a URL: ${JSON.stringify(edgeUrl)}`);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.pathname !== "/" || url.search || url.hash || url.username || url.password) {
    throw new TypeError(`formatLink: the edge URL must be a bare http(s) origin, got ${JSON.stringify(edgeUrl)}`);
  }
  return url.origin;
}

/** Parses either link form; throws ValidationError "invalid_link" with `details.reason` saying what is wrong. */
export function parseLink(input: unknown): ParsedLink {
  if (typeof input !== "string") throw invalid("malformed", `a link must be a string, got ${input === null ? "null" : typeof input}`);
  const text = input.trim();
  if (text.length > MAX_LINK_CHARS) throw invalid("malformed", `a link is at most ${MAX_LINK_CHARS} characters, got ${text.length}`);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();

  let cidText: string;
  let fragment: string | null;
  let origin: string | undefined;
  if (scheme === LINK_SCHEME) {
    const m = /^peercloud:\/\/([^/?#]*)\/?(#.*)?$/i.exec(text);
    if (!m) throw invalid("malformed", `malformed peercloud link (expected peercloud://<cid>#<key>): ${preview(text)}`);
    cidText = m[1];
    fragment = m[2] === undefined ? null : m[2].slice(1);
  } else if (scheme === "https" || scheme === "http") {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalid("malformed", `malformed URL: ${preview(text)}`);
    }
    const m = /^\/d\/([^/]*)$/.exec(url.pathname);
    if (!m || url.search || url.username || url.password) {
      throw invalid("malformed", `not a peercloud link (expected ${scheme}://<edge>/d/<cid>#<key>): ${preview(text)}`);
    }
    cidText = m[1];
    fragment = text.includes("#") ? url.hash.slice(1) : null;
    origin = url.origin;
  } else {
    throw invalid("malformed", `not a peercloud link (expected peercloud://<cid>#<key> or https://<edge>/d/<cid>#<key>): ${preview(text)}`);
  }

  let cid: string;
  try {
    cid = parseCid(cidText).cid;
  } catch (e) {
    throw invalid("bad_cid", `link has a bad manifest CID: ${(e as Error).message}`);
  }
  if (fragment === null || fragment === "") throw invalid("missing_key", "link has no key (the part after '#'); ask the publisher for the full link");
  let key: Uint8Array;
  try {
    key = fromBase64Url(fragment);
  } catch {
    throw invalid("bad_key", "link key is not base64url (A-Z a-z 0-9 - _, no padding)");
  }
  if (key.length !== CHUNK_KEY_BYTES) throw invalid("bad_key_length", `link key is ${key.length} bytes, expected ${CHUNK_KEY_BYTES}`);
  return origin === undefined ? { cid, key } : { cid, key, edgeOrigin: origin };
}

/** The input for an error message, without its fragment: error text gets logged, and the fragment is the key. */
function preview(text: string): string {
  const hash = text.indexOf("#");
  const shown = hash < 0 ? text : text.slice(0, hash) + "#…";
  return JSON.stringify(shown.length > 100 ? shown.slice(0, 100) + "…" : shown);
}
