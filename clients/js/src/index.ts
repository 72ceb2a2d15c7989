// index.ts — the public API of the querycache browser client (what dist/querycache.js exports).

export { ClientCache } from "./cache.js";
export type { ClientCacheOptions, SetOptions, CacheMetrics, HealthReport, EntryInfo, WarmSpec } from "./cache.js";
export { cachedFetch, defaultCache } from "./default.js";
export type { CachedFetchOptions } from "./fetch.js";
export { liveInvalidation } from "./events.js";
export type { LiveInvalidationOptions, LiveInvalidationHandle, EventSourceLike, EventSourceConstructor } from "./events.js";
export type { StorageLike, StorageState } from "./storage.js";
