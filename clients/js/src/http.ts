// http.ts — parsing of the HTTP response headers that decide caching: Cache-Control, Vary, Expires/Age, X-Cache-Tags.

/**
 * The directives of a `Cache-Control` header that the client acts on.
 *
 * @example
 * parseCacheControl("public, max-age=60, s-maxage=600"); // { maxAge: 60, noStore: false, noCache: false, private: false }
 */
export interface CacheControl {
  /** `max-age` in seconds (`s-maxage` is for shared caches and ignored). */
  maxAge: number | undefined;
  noStore: boolean;
  /** `no-cache` (or `must-revalidate` with `max-age=0`): revalidate before every use. */
  noCache: boolean;
  private: boolean;
}

/**
 * Parses a `Cache-Control` header value (case-insensitive; unknown directives ignored).
 *
 * @example
 * parseCacheControl("private, no-cache").noCache === true
 */
export function parseCacheControl(value: string | null): CacheControl {
  const result: CacheControl = { maxAge: undefined, noStore: false, noCache: false, private: false };
  if (value === null) return result;
  for (const part of value.split(",")) {
    const [rawName = "", ...rest] = part.split("=");
    const name = rawName.trim().toLowerCase();
    const argument = rest.join("=").trim().replace(/^"(.*)"$/, "$1");
    if (name === "no-store") result.noStore = true;
    else if (name === "no-cache") result.noCache = true;
    else if (name === "private") result.private = true;
    else if (name === "max-age") {
      const seconds = Number.parseInt(argument, 10);
      if (Number.isFinite(seconds) && seconds >= 0) result.maxAge = seconds;
    }
  }
  return result;
}

/**
 * The lowercased, sorted header names of a `Vary` header, or `"*"`.
 *
 * @example
 * parseVary("Authorization, Accept-Language"); // ["accept-language", "authorization"]
 */
export function parseVary(value: string | null): string[] | "*" {
  if (value === null) return [];
  const names = value.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
  if (names.includes("*")) return "*";
  return [...new Set(names)].sort();
}

/**
 * The epoch ms until which a response is fresh: `max-age` (less `Age`), else `Expires`
 * (against `Date`), else `now` (no heuristic freshness: it must be revalidated). `no-cache` → `now`.
 *
 * @example
 * freshUntil(new Headers({ "cache-control": "max-age=60" }), 1_000); // 61_000
 */
export function freshUntil(headers: Headers, now: number): number {
  const control = parseCacheControl(headers.get("cache-control"));
  if (control.noCache || control.noStore) return now;
  if (control.maxAge !== undefined) {
    const age = Number.parseInt(headers.get("age") ?? "0", 10);
    return now + Math.max(0, control.maxAge - (Number.isFinite(age) && age > 0 ? age : 0)) * 1000;
  }
  const expires = headers.get("expires");
  if (expires !== null) {
    const at = Date.parse(expires);
    if (Number.isNaN(at)) return now;
    const date = Date.parse(headers.get("date") ?? "");
    return now + Math.max(0, at - (Number.isNaN(date) ? now : date));
  }
  return now;
}

/**
 * The tags of an `X-Cache-Tags` header (comma-separated, trimmed, empty ones dropped).
 *
 * @example
 * parseTags("model:songs, model:songs:42"); // ["model:songs", "model:songs:42"]
 */
export function parseTags(value: string | null): string[] {
  if (value === null) return [];
  return value.split(",").map((tag) => tag.trim()).filter((tag) => tag !== "");
}
