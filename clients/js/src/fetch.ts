// fetch.ts — fetch through a ClientCache: HTTP freshness, ETag revalidation, Vary and credential keying, X-Cache-Tags.

import type { ClientCache, LookupResult } from "./cache.js";
import { freshUntil, parseCacheControl, parseTags, parseVary } from "./http.js";
import { hashText } from "./hash.js";
import { bytesToBase64, base64ToBytes } from "./compress.js";

/**
 * Options of {@link cachedFetch} and `ClientCache.fetch`.
 *
 * @example
 * await cachedFetch("/api/v1/songs", undefined, { persist: true, tags: ["page:home"] });
 */
export interface CachedFetchOptions {
  /** Keep the answer in storage too (default false). */
  persist?: boolean;
  /** Tags added to the ones the server sent in `X-Cache-Tags`. */
  tags?: string[];
}

/** One stored answer, for one combination of the request headers the answer varies on. */
interface StoredAnswer {
  status: number;
  statusText: string;
  headers: Array<[string, string]>;
  /** The body as text, or base64 when it is not valid UTF-8. */
  body: string;
  base64?: true;
  /** Epoch ms until which it may be served without asking the server. */
  freshUntil: number;
  etag?: string;
  lastModified?: string;
}

/** The value stored under `fetch:<METHOD> <url>`: the Vary header names and one answer per variant. */
interface FetchRecord {
  vary: string[];
  variants: Record<string, StoredAnswer>;
}

const MAX_VARIANTS = 8;
const DROPPED_HEADERS = new Set(["set-cookie", "set-cookie2", "content-encoding", "content-length", "transfer-encoding"]);

/**
 * `fetch` through `cache` (what `cache.fetch` and {@link cachedFetch} call). See {@link cachedFetch}.
 *
 * @example
 * const response = await fetchWithCache(cache, "/api/v1/songs");
 */
export async function fetchWithCache(
  cache: ClientCache,
  input: string | URL | Request,
  init: RequestInit | undefined,
  options: CachedFetchOptions = {},
): Promise<Response> {
  const send = cache.fetchImpl ?? globalThis.fetch;
  const request = input instanceof Request ? input : undefined;
  const method = (init?.method ?? request?.method ?? "GET").toUpperCase();
  const url = absoluteUrl(request?.url ?? String(input));
  const headers = new Headers(init?.headers ?? request?.headers);

  if (method !== "GET" && method !== "HEAD") {
    const response = await send(input, init);
    if (response.ok) {
      cache.delete(recordKey("GET", url));
      cache.delete(recordKey("HEAD", url));
    }
    return response;
  }
  const mode = init?.cache ?? request?.cache;
  if (mode === "no-store" || ["if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "range"].some((h) => headers.has(h))) {
    return send(input, init);
  }

  const key = recordKey(method, url);
  const found = await cache.lookup(key);
  const record = asRecord(found?.value);
  const lookupId = record === undefined ? undefined : await variantId(record.vary, headers);
  const stored = lookupId === undefined ? undefined : record?.variants[lookupId];
  const now = cache.now();
  if (stored !== undefined && found?.stale === false && stored.freshUntil > now && mode !== "no-cache" && mode !== "reload") {
    cache.record("hit");
    return toResponse(stored, method);
  }

  const mark = cache.invalidationMark();
  const sendHeaders = new Headers(headers);
  const revalidating = stored !== undefined && (stored.etag !== undefined || stored.lastModified !== undefined) && mode !== "reload";
  if (revalidating && stored.etag !== undefined) sendHeaders.set("if-none-match", stored.etag);
  else if (revalidating && stored.lastModified !== undefined) sendHeaders.set("if-modified-since", stored.lastModified);
  const response = request !== undefined
    ? await send(new Request(request, { ...init, headers: sendHeaders }))
    : await send(input, { ...init, headers: sendHeaders });

  if (response.status === 304 && revalidating && stored !== undefined && record !== undefined && lookupId !== undefined && found !== undefined) {
    const merged = mergeHeaders(stored.headers, response.headers);
    const mergedHeaders = new Headers(merged);
    const answer: StoredAnswer = { ...stored, headers: merged, freshUntil: freshUntil(mergedHeaders, cache.now()) };
    const etag = response.headers.get("etag");
    if (etag !== null) answer.etag = etag;
    cache.record("revalidated");
    if (parseCacheControl(mergedHeaders.get("cache-control")).noStore) {
      cache.delete(key);
    } else {
      const tags = unique([...parseTags(mergedHeaders.get("x-cache-tags")), ...(options.tags ?? [])]);
      const next = withVariant(record, record.vary, lookupId, answer, found);
      if (!cache.invalidatedSince(mark, tags, key)) {
        await cache.set(key, next, {
          ttl: retention(cache, answer),
          tags,
          persist: options.persist ?? found.persisted,
          etag: validatorOf(next),
          private: found.private,
        });
      }
    }
    return toResponse(answer, method);
  }

  cache.record("miss");
  if (response.status !== 200) return response;
  const control = parseCacheControl(response.headers.get("cache-control"));
  const varyHeader = parseVary(response.headers.get("vary"));
  if (control.noStore || varyHeader === "*") {
    if (found !== undefined) cache.delete(key);
    return response;
  }
  const vary = control.private && !varyHeader.includes("authorization") ? [...varyHeader, "authorization"].sort() : varyHeader;
  const answer: StoredAnswer = {
    status: response.status,
    statusText: response.statusText,
    headers: [...response.headers].filter(([name]) => !DROPPED_HEADERS.has(name.toLowerCase())),
    body: "",
    freshUntil: freshUntil(response.headers, cache.now()),
  };
  const etag = response.headers.get("etag");
  const lastModified = response.headers.get("last-modified");
  if (etag !== null) answer.etag = etag;
  if (lastModified !== null) answer.lastModified = lastModified;
  if (answer.freshUntil <= cache.now() && etag === null && lastModified === null) {
    // Nothing can be answered locally from it later: neither fresh nor revalidatable.
    if (found !== undefined) cache.delete(key);
    return response;
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const text = decodeUtf8(bytes);
  if (text === undefined) {
    answer.body = bytesToBase64(bytes);
    answer.base64 = true;
  } else {
    answer.body = text;
  }
  const id = await variantId(vary, headers);
  const isPrivate = control.private || vary.includes("authorization") || vary.includes("cookie");
  const next = withVariant(record, vary, id, answer, found);
  const tags = unique([...parseTags(response.headers.get("x-cache-tags")), ...(options.tags ?? [])]);
  if (!cache.invalidatedSince(mark, tags, key)) {
    const keepsOthers = Object.keys(next.variants).length > 1;
    await cache.set(key, next, {
      ttl: retention(cache, answer),
      tags,
      persist: options.persist === true,
      etag: validatorOf(next),
      private: isPrivate || (keepsOthers && found?.private === true),
    });
  }
  return toResponse(answer, method);
}

/** A validator of the record (any variant's), so that the cache keeps it for revalidation when marked stale. */
function validatorOf(record: FetchRecord): string | undefined {
  for (const answer of Object.values(record.variants)) {
    const validator = answer.etag ?? answer.lastModified;
    if (validator !== undefined) return validator;
  }
  return undefined;
}

function recordKey(method: string, url: string): string {
  return `fetch:${method} ${url}`;
}

/** The URL made absolute against the page's location when there is one (keys must not depend on how a URL was written). */
function absoluteUrl(url: string): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  try {
    return new URL(url, base).href;
  } catch {
    return url;
  }
}

/** The id of the variant a request selects: a hash of its values of the Vary headers, so credentials are never stored in clear. */
async function variantId(vary: readonly string[], headers: Headers): Promise<string> {
  if (vary.length === 0) return "-";
  return hashText(JSON.stringify(vary.map((name) => [name, headers.get(name) ?? ""])));
}

function asRecord(value: unknown): FetchRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Partial<FetchRecord>;
  if (!Array.isArray(record.vary) || typeof record.variants !== "object" || record.variants === null) return undefined;
  return record as FetchRecord;
}

/**
 * The record with `answer` as variant `id`. Other variants are kept only under the same Vary
 * (at most MAX_VARIANTS, the oldest dropped); if the entry was stale they must be revalidated
 * before use, and those without a validator are dropped.
 */
function withVariant(
  record: FetchRecord | undefined,
  vary: string[],
  id: string,
  answer: StoredAnswer,
  found: LookupResult | undefined,
): FetchRecord {
  const variants: Record<string, StoredAnswer> = {};
  if (record !== undefined && sameList(record.vary, vary)) {
    for (const [otherId, other] of Object.entries(record.variants)) {
      if (otherId === id) continue;
      if (found?.stale === true) {
        if (other.etag === undefined && other.lastModified === undefined) continue;
        variants[otherId] = { ...other, freshUntil: 0 };
      } else {
        variants[otherId] = other;
      }
    }
  }
  const ids = Object.keys(variants);
  for (const oldId of ids.slice(0, Math.max(0, ids.length - (MAX_VARIANTS - 1)))) delete variants[oldId];
  variants[id] = answer;
  return { vary, variants };
}

/** How long to keep a record: its freshness, or for a revalidatable answer at least the cache's default TTL. */
function retention(cache: ClientCache, answer: StoredAnswer): number {
  const fresh = Math.max(1, answer.freshUntil - cache.now());
  if (answer.etag === undefined && answer.lastModified === undefined) return fresh;
  if (cache.defaultTtl === 0 || cache.defaultTtl === Infinity) return 0;
  return Math.max(fresh, cache.defaultTtl);
}

/** The stored headers updated with those a 304 carries (RFC 9111 §4.3.4). */
function mergeHeaders(stored: Array<[string, string]>, update: Headers): Array<[string, string]> {
  const merged = new Headers(stored);
  for (const [name, value] of update) {
    if (!DROPPED_HEADERS.has(name.toLowerCase())) merged.set(name, value);
  }
  return [...merged];
}

function toResponse(answer: StoredAnswer, method: string): Response {
  let body: BodyInit | null = null;
  if (method !== "HEAD") body = answer.base64 === true ? base64ToBytes(answer.body) : answer.body;
  return new Response(body, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
