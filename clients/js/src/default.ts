// default.ts — the page's shared default ClientCache, and cachedFetch, the free function that uses it.

import { ClientCache } from "./cache.js";
import { fetchWithCache, type CachedFetchOptions } from "./fetch.js";

let shared: ClientCache | undefined;

/**
 * The page's shared cache, created with default options on first use. `cachedFetch` and
 * `liveInvalidation` use it unless given another.
 *
 * @example
 * defaultCache().invalidateByTags(["model:songs"]);
 */
export function defaultCache(): ClientCache {
  shared ??= new ClientCache();
  return shared;
}

/**
 * `fetch` with a cache in front (the shared {@link defaultCache}; `cache.fetch` uses its own):
 *
 * - Only GET and HEAD are cached. Other methods go through, and a successful (2xx) one drops the
 *   cached GET and HEAD answers of the same URL.
 * - Only `200` answers are stored. A fresh one (`Cache-Control: max-age`, less `Age`; else `Expires`)
 *   is answered locally with no request. A stale one with an `ETag` (or `Last-Modified`) is
 *   revalidated with `If-None-Match` (`If-Modified-Since`): a `304` reuses the stored body, with
 *   the headers and freshness the 304 brings; a `200` replaces it.
 * - `no-store` is never kept; `no-cache` is kept and revalidated before every use; `s-maxage` is
 *   ignored; without `max-age` or `Expires` an answer is only kept if it has a validator.
 * - `Vary`: the answer is kept per value of the named request headers; `Vary: *` is not kept.
 *   `private` answers are also keyed by the request's `Authorization`. Header values are hashed
 *   (SHA-256) before they become part of a key, so tokens are not stored in clear; an answer is
 *   never served to a request carrying a different token. Entries that are `private` or vary on
 *   Authorization or Cookie are dropped by `cache.logout()` / `cache.clearPrivate()`.
 * - Tags: the server's `X-Cache-Tags` (comma-separated) plus `options.tags` become the entry's
 *   tags, for `invalidateByTags` and live invalidation.
 * - Requests that carry their own conditional or Range headers, or `cache: "no-store"`, go through
 *   untouched; `cache: "no-cache"` revalidates; `cache: "reload"` fetches anew and stores.
 *
 * Answers from the cache are new `Response` objects (status, status text, headers and body as
 * stored; `url` and `redirected` are not kept).
 *
 * @example
 * import { cachedFetch } from "/api/v1/cache/client.js";
 * const songs = await (await cachedFetch("/api/v1/songs", { headers: { Authorization: `Bearer ${token}` } })).json();
 */
export function cachedFetch(input: string | URL | Request, init?: RequestInit, options?: CachedFetchOptions): Promise<Response> {
  return fetchWithCache(defaultCache(), input, init, options);
}
