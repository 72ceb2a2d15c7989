// cache.ts — ClientCache: the in-page LRU cache (entry and byte bounds, TTLs, tags, single-flight)
// with optional localStorage persistence that degrades to memory only and never throws at the caller.

import { Lru } from "./lru.js";
import { compressionAvailable, gzipToBase64, base64GunzipToText } from "./compress.js";
import {
  PrefixedStorage,
  defaultStorage,
  decodeEnvelope,
  encodeEnvelope,
  type EnvelopeMeta,
  type StorageLike,
  type StorageState,
} from "./storage.js";
import { fetchWithCache, type CachedFetchOptions } from "./fetch.js";

/**
 * Options of a {@link ClientCache}. Sizes are in bytes of the value's serialized JSON,
 * counted as its UTF-16 length × 2 (what a browser's localStorage quota counts).
 *
 * @example
 * const cache = new ClientCache({ maxEntries: 100, defaultTtl: 60_000, storage: null });
 */
export interface ClientCacheOptions {
  /** Most entries held (default 500). */
  maxEntries?: number;
  /** Most bytes held (default 5 000 000); a single larger value is not stored. */
  maxBytes?: number;
  /** TTL in ms of entries set without one (default 300 000); 0 or Infinity: no expiry. */
  defaultTtl?: number;
  /**
   * Where `persist` entries are kept (default `globalThis.localStorage`, if reading it does not throw).
   * Pass `null` (or `undefined` explicitly) for memory only.
   */
  storage?: StorageLike | null;
  /** Prefix of this cache's keys in storage (default `"querycache:"`). */
  storagePrefix?: string;
  /** Persisted values whose JSON exceeds this many bytes are gzipped (default 4096). */
  compressAbove?: number;
  /** The clock, epoch ms (default `Date.now`); tests inject their own. */
  now?: () => number;
  /** The fetch used by `cache.fetch` and `cachedFetch` (default `globalThis.fetch` at call time). */
  fetch?: typeof fetch;
}

/**
 * Options of {@link ClientCache.set}.
 *
 * @example
 * await cache.set("songs:42", song, { ttl: 60_000, tags: ["model:songs", "model:songs:42"], persist: true });
 */
export interface SetOptions {
  /** Lifetime in ms (default: the cache's `defaultTtl`); 0 or Infinity: no expiry; negative or NaN: RangeError. */
  ttl?: number;
  /** Tags for {@link ClientCache.invalidateByTags}. */
  tags?: string[];
  /** Also keep the entry in storage and restore it when the page loads again. */
  persist?: boolean;
  /** A validator (an HTTP ETag): an entry that has one survives being marked stale, to be revalidated. */
  etag?: string;
  /** The value is per-user data: {@link ClientCache.clearPrivate} drops it. */
  private?: boolean;
}

/**
 * Counters of a {@link ClientCache}, from {@link ClientCache.getMetrics}.
 *
 * @example
 * const { hits, misses, hitRate } = cache.getMetrics();
 */
export interface CacheMetrics {
  /** Reads answered from the cache (`get`, and `fetch` answered with no request). */
  hits: number;
  /** Reads that found nothing usable. */
  misses: number;
  /** Calls to `set` (including the ones `getOrSet` and `fetch` make). */
  sets: number;
  /** Entries evicted to respect `maxEntries` / `maxBytes`. */
  evictions: number;
  /** Entries dropped because their TTL passed. */
  expirations: number;
  /** Entries dropped by `invalidateByTags`, or by being marked stale without a validator. */
  invalidations: number;
  /** Entries held now. */
  entries: number;
  /** Bytes held now (UTF-16 length × 2 of the JSON). */
  bytes: number;
  /** Storage operations that failed (quota, access refused, no storage). */
  storageErrors: number;
  /** Stored entries found corrupt (bad JSON, wrong shape or version, failed decompression) and removed. */
  corruptEntries: number;
  /** Values written to storage gzipped. */
  compressed: number;
  /** hits / (hits + misses), 0 before any read. */
  hitRate: number;
  /** Values not stored because they alone exceed `maxBytes`. */
  oversized: number;
  /** `fetch` answers rebuilt from the stored body after a `304 Not Modified`. */
  revalidated: number;
  /** Persisted copies dropped from storage (oldest first) to make room after a quota error. */
  storageEvictions: number;
}

/**
 * The state of a {@link ClientCache}, from {@link ClientCache.healthCheck}.
 *
 * @example
 * if (cache.healthCheck().status === "degraded") console.warn("querycache: memory only");
 */
export interface HealthReport {
  /** `"healthy"`, or `"degraded"` when persistence is not working. */
  status: "healthy" | "degraded";
  /** State of persistence. */
  storage: StorageState;
  entries: number;
  bytes: number;
  maxEntries: number;
  maxBytes: number;
  /** Entries that have a copy in storage. */
  persistedEntries: number;
  /** Whether values can be gzipped on this platform. */
  compression: boolean;
  storageErrors: number;
  corruptEntries: number;
  /** The last storage error message, if any. */
  lastStorageError?: string;
}

/**
 * One entry as {@link ClientCache.getEntries} lists it.
 *
 * @example
 * for (const e of cache.getEntries()) console.log(e.key, e.bytes, e.tags);
 */
export interface EntryInfo {
  key: string;
  tags: string[];
  /** UTF-16 length × 2 of the JSON. */
  bytes: number;
  /** Epoch ms, or null for no expiry. */
  expiresAt: number | null;
  /** Whether a copy is in storage. */
  persisted: boolean;
  /** Whether that copy is gzipped. */
  compressed: boolean;
  /** Whether the entry must be revalidated before being served. */
  stale: boolean;
  /** Whether the entry holds per-user data. */
  private: boolean;
}

/**
 * One item for {@link ClientCache.warmCache}.
 *
 * @example
 * const spec: WarmSpec = { key: "songs", factory: () => fetch("/api/songs").then((r) => r.json()), options: { tags: ["model:songs"] } };
 */
export interface WarmSpec<T = unknown> {
  key: string;
  factory: () => T | Promise<T>;
  options?: SetOptions;
}

/** @internal What fetch.ts reads from an entry. */
export interface LookupResult {
  value: unknown;
  stale: boolean;
  private: boolean;
  persisted: boolean;
  tags: string[];
}

interface Entry {
  key: string;
  /** The serialized value; undefined while a restored compressed value is being decoded. */
  json: string | undefined;
  decoding: Promise<string | undefined> | undefined;
  bytes: number;
  tags: string[];
  expiresAt: number | null;
  persisted: boolean;
  /** Characters the stored copy takes (key and value), to know what dropping it frees. */
  storedChars: number;
  compressed: boolean;
  stale: boolean;
  etag: string | undefined;
  private: boolean;
  /** When it was last written (epoch ms): the recency order of restored entries. */
  writtenAt: number;
}

const INVALIDATION_LOG = 64;

/**
 * A cache of JSON values for one page: LRU-bounded by entry count and by bytes, with TTLs,
 * tags, in-page single-flight, and optional persistence in localStorage (gzipped above a size).
 * Storage problems (no storage, access refused, quota, corrupt data) degrade it to memory only:
 * they are counted in {@link getMetrics} and shown by {@link healthCheck}, never thrown.
 *
 * `get` returns a fresh copy of the stored JSON each time (values are kept serialized), so
 * values must be JSON-serializable (not `undefined`, no functions, cycles or BigInts) and
 * mutating what `get` returned does not change the cache.
 *
 * @example
 * import { ClientCache } from "/api/v1/cache/client.js";
 * const cache = new ClientCache({ maxEntries: 200 });
 * const songs = await cache.getOrSet("songs", () => fetch("/api/songs").then((r) => r.json()),
 *   { ttl: 60_000, tags: ["model:songs"], persist: true });
 * cache.invalidateByTags(["model:songs"]);
 */
export class ClientCache {
  /** Most entries held. */
  readonly maxEntries: number;
  /** Most bytes held. */
  readonly maxBytes: number;
  /** TTL in ms of entries set without one (0 or Infinity: none). */
  readonly defaultTtl: number;
  /** Persisted values larger than this (bytes) are gzipped. */
  readonly compressAbove: number;
  /** Resolves once the entries restored from storage are all decoded (or dropped as corrupt). Never rejects. */
  readonly ready: Promise<void>;
  /** The clock (epoch ms). */
  readonly now: () => number;
  /** @internal The fetch `cache.fetch` uses, if one was given. */
  readonly fetchImpl: typeof fetch | undefined;

  private readonly lru = new Lru<Entry>();
  private readonly storage: PrefixedStorage;
  private readonly inflight = new Map<string, Promise<unknown>>();
  private invalidationSeq = 0;
  private invalidationLog: Array<{ seq: number; tags: Set<string> | null }> = [];
  private readonly counts = {
    hits: 0, misses: 0, sets: 0, evictions: 0, expirations: 0, invalidations: 0,
    corruptEntries: 0, compressed: 0, oversized: 0, revalidated: 0, storageEvictions: 0,
  };

  constructor(options: ClientCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 500;
    this.maxBytes = options.maxBytes ?? 5_000_000;
    this.defaultTtl = options.defaultTtl ?? 300_000;
    this.compressAbove = options.compressAbove ?? 4096;
    this.now = options.now ?? (() => Date.now());
    this.fetchImpl = options.fetch;
    const storage = "storage" in options ? options.storage ?? undefined : defaultStorage();
    this.storage = new PrefixedStorage(storage, options.storagePrefix ?? "querycache:");
    this.storage.probe();
    this.ready = this.restore();
  }

  /**
   * Stores `value` under `key` (replacing what was there). Resolves once a persisted entry is
   * written (or given up on: storage problems are counted, not thrown). Rejects only with a
   * TypeError for a value JSON cannot serialize, or a RangeError for a negative TTL.
   *
   * @example
   * await cache.set("user:7", { name: "Ada" }, { ttl: 0, tags: ["model:users:7"], persist: true });
   */
  async set(key: string, value: unknown, options: SetOptions = {}): Promise<void> {
    const entry = this.store(key, serialize(value), options);
    if (entry !== undefined && options.persist === true) await this.persist(entry);
  }

  /**
   * The value under `key`, or undefined on a miss. Expired entries are misses and are removed;
   * stale entries (after a `reset` or a reconnect of live invalidation) are misses too.
   * A hit makes the entry the most recently used.
   *
   * @example
   * const user = await cache.get<{ name: string }>("user:7");
   */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    const entry = await this.live(key);
    if (entry === undefined || entry.stale || entry.json === undefined) {
      this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    return JSON.parse(entry.json) as T;
  }

  /**
   * The value under `key`, or else the factory's result, stored with `options`. Concurrent
   * callers for the same key share one factory call; if it rejects, every waiter gets the
   * rejection and nothing is stored. A result is returned but not stored when an invalidation
   * touching its tags (or a `reset`/`clear`) happened while the factory ran.
   *
   * @example
   * const songs = await cache.getOrSet("songs", () => fetch("/api/songs").then((r) => r.json()), { tags: ["model:songs"] });
   */
  async getOrSet<T>(key: string, factory: () => T | Promise<T>, options: SetOptions = {}): Promise<T> {
    const running = this.inflight.get(key);
    if (running !== undefined) return running as Promise<T>;
    const cached = await this.get<T>(key);
    if (cached !== undefined) return cached;
    const runningNow = this.inflight.get(key);
    if (runningNow !== undefined) return runningNow as Promise<T>;
    const since = this.invalidationSeq;
    const run = (async () => {
      const value = await factory();
      if (!this.invalidatedSince(since, options.tags ?? [], key)) await this.set(key, value, options);
      return value;
    })();
    this.inflight.set(key, run);
    try {
      return await run;
    } finally {
      if (this.inflight.get(key) === run) this.inflight.delete(key);
    }
  }

  /**
   * Fills the cache: `getOrSet` for each item, all at once. A failing factory is counted in
   * `failed` and does not reject the call. Items already cached count as warmed without
   * calling their factory.
   *
   * @example
   * const { warmed, failed } = await cache.warmCache([
   *   { key: "songs", factory: () => fetch("/api/songs").then((r) => r.json()), options: { persist: true } },
   * ]);
   */
  async warmCache(items: Array<WarmSpec>): Promise<{ warmed: number; failed: number }> {
    const results = await Promise.allSettled(items.map((item) => this.getOrSet(item.key, item.factory, item.options)));
    const warmed = results.filter((result) => result.status === "fulfilled").length;
    return { warmed, failed: results.length - warmed };
  }

  /**
   * Removes every entry carrying at least one of `tags`, from memory and storage.
   * Returns how many were removed.
   *
   * @example
   * cache.invalidateByTags(["model:songs:42"]); // 3
   */
  invalidateByTags(tags: string | readonly string[]): number {
    const wanted = new Set(typeof tags === "string" ? [tags] : tags);
    let removed = 0;
    for (const [, entry] of this.lru.oldestFirst()) {
      if (entry.tags.some((tag) => wanted.has(tag))) {
        this.drop(entry);
        removed++;
      }
    }
    this.counts.invalidations += removed;
    this.logInvalidation(wanted);
    return removed;
  }

  /**
   * Marks every held entry stale: entries with a validator (an ETag, as `fetch` stores them) stay,
   * to be revalidated before they are served again; the others are removed. Live invalidation
   * calls this after a `reset` event and after reconnecting. Returns how many entries it touched.
   *
   * @example
   * cache.markAllStale();
   */
  markAllStale(): number {
    let touched = 0;
    for (const [key, entry] of this.lru.oldestFirst()) {
      touched++;
      if (entry.etag === undefined) {
        this.drop(entry);
        this.counts.invalidations++;
        continue;
      }
      if (entry.stale) continue;
      entry.stale = true;
      if (entry.persisted) {
        const raw = this.storage.read(key);
        const envelope = raw == null ? undefined : decodeEnvelope(raw);
        if (envelope === undefined || this.storage.write(key, JSON.stringify({ ...envelope, stale: true })) !== "ok") {
          this.storage.remove(key);
          entry.persisted = false;
          entry.compressed = false;
        }
      }
    }
    this.logInvalidation(null);
    return touched;
  }

  /**
   * Removes `key` from memory and storage; true if it was held. A `getOrSet` or `fetch` of that
   * key already under way returns its result without storing it.
   *
   * @example
   * cache.delete("user:7");
   */
  delete(key: string): boolean {
    this.logInvalidation(new Set([keyMarker(key)]));
    const entry = this.lru.peek(key);
    if (entry === undefined) return false;
    this.drop(entry);
    return true;
  }

  /**
   * Removes every entry, and every key under this cache's prefix in storage. Metrics are kept.
   *
   * @example
   * cache.clear();
   */
  clear(): void {
    this.lru.clear();
    for (const key of this.storage.keys()) this.storage.remove(key);
    this.logInvalidation(null);
  }

  /**
   * Removes every entry holding per-user data: the ones set with `private: true`, which is how
   * `fetch` stores answers that were `Cache-Control: private` or varied on Authorization or Cookie.
   * Also removes such entries that other tabs persisted. Call it on logout. Returns how many it removed.
   *
   * @example
   * await api.logout(); cache.clearPrivate();
   */
  clearPrivate(): number {
    let removed = 0;
    for (const [, entry] of this.lru.oldestFirst()) {
      if (entry.private) {
        this.drop(entry);
        removed++;
      }
    }
    for (const key of this.storage.keys()) {
      if (this.lru.has(key)) continue;
      const raw = this.storage.read(key);
      const envelope = raw == null ? undefined : decodeEnvelope(raw);
      if (envelope === undefined || envelope.private === true) {
        if (this.storage.remove(key)) removed++;
      }
    }
    this.logInvalidation(null);
    return removed;
  }

  /**
   * Same as {@link clearPrivate}.
   *
   * @example
   * cache.logout();
   */
  logout(): number {
    return this.clearPrivate();
  }

  /**
   * A cached `fetch` through this cache: see {@link cachedFetch}.
   *
   * @example
   * const response = await cache.fetch("/api/v1/songs?page=1");
   * const songs = await response.json();
   */
  fetch(input: string | URL | Request, init?: RequestInit, options?: CachedFetchOptions): Promise<Response> {
    return fetchWithCache(this, input, init, options);
  }

  /**
   * The counters, and the current entry count and size.
   *
   * @example
   * console.log(cache.getMetrics().hitRate);
   */
  getMetrics(): CacheMetrics {
    const reads = this.counts.hits + this.counts.misses;
    return {
      ...this.counts,
      entries: this.lru.size,
      bytes: this.lru.bytes,
      storageErrors: this.storage.errors,
      hitRate: reads === 0 ? 0 : this.counts.hits / reads,
    };
  }

  /**
   * How the cache is doing: `"degraded"` when persistence does not work (no storage, access
   * refused, or the last write exceeded the quota). Never throws.
   *
   * @example
   * const { status, storage } = cache.healthCheck(); // "healthy", "available"
   */
  healthCheck(): HealthReport {
    let persistedEntries = 0;
    for (const [, entry] of this.lru.oldestFirst()) if (entry.persisted) persistedEntries++;
    const state = this.storage.state;
    const report: HealthReport = {
      status: state === "available" ? "healthy" : "degraded",
      storage: state,
      entries: this.lru.size,
      bytes: this.lru.bytes,
      maxEntries: this.maxEntries,
      maxBytes: this.maxBytes,
      persistedEntries,
      compression: compressionAvailable(),
      storageErrors: this.storage.errors,
      corruptEntries: this.counts.corruptEntries,
    };
    if (this.storage.lastError !== undefined) report.lastStorageError = this.storage.lastError;
    return report;
  }

  /**
   * The entries held, most recently used first (expired ones are removed, not listed).
   *
   * @example
   * console.table(cache.getEntries());
   */
  getEntries(): EntryInfo[] {
    const now = this.now();
    const list: EntryInfo[] = [];
    for (const [, entry] of this.lru.oldestFirst()) {
      if (isExpired(entry, now)) {
        this.drop(entry);
        this.counts.expirations++;
        continue;
      }
      list.push({
        key: entry.key,
        tags: [...entry.tags],
        bytes: entry.bytes,
        expiresAt: entry.expiresAt,
        persisted: entry.persisted,
        compressed: entry.compressed,
        stale: entry.stale,
        private: entry.private,
      });
    }
    return list.reverse();
  }

  /** @internal An entry for fetch.ts, stale ones included (expired ones removed); makes it most recent. */
  async lookup(key: string): Promise<LookupResult | undefined> {
    const entry = await this.live(key);
    if (entry === undefined || entry.json === undefined) return undefined;
    return { value: JSON.parse(entry.json), stale: entry.stale, private: entry.private, persisted: entry.persisted, tags: [...entry.tags] };
  }

  /** @internal Counts a fetch answered locally, from the network, or rebuilt after a 304. */
  record(outcome: "hit" | "miss" | "revalidated"): void {
    if (outcome === "hit") this.counts.hits++;
    else if (outcome === "miss") this.counts.misses++;
    else this.counts.revalidated++;
  }

  /** @internal A mark to pass to {@link invalidatedSince} later. */
  invalidationMark(): number {
    return this.invalidationSeq;
  }

  /** @internal Whether an invalidation touching `tags`, or `key` (deleted), or everything happened after `mark`. */
  invalidatedSince(mark: number, tags: readonly string[], key: string): boolean {
    if (mark === this.invalidationSeq) return false;
    const first = this.invalidationLog[0];
    if (first === undefined || first.seq > mark + 1) return true;
    const touched = [...tags, keyMarker(key)];
    return this.invalidationLog.some(
      (logged) => logged.seq > mark && (logged.tags === null || touched.some((tag) => logged.tags?.has(tag))),
    );
  }

  private logInvalidation(tags: Set<string> | null): void {
    this.invalidationSeq++;
    this.invalidationLog.push({ seq: this.invalidationSeq, tags });
    if (this.invalidationLog.length > INVALIDATION_LOG) this.invalidationLog.shift();
  }

  /** The entry under `key` if present and unexpired, its value decoded; stale plain entries are removed. */
  private async live(key: string): Promise<Entry | undefined> {
    let entry = this.lru.peek(key);
    if (entry === undefined) return undefined;
    if (entry.json === undefined) {
      await entry.decoding;
      if (this.lru.peek(key) !== entry || entry.json === undefined) return undefined;
    }
    if (isExpired(entry, this.now())) {
      this.drop(entry);
      this.counts.expirations++;
      return undefined;
    }
    if (entry.stale && entry.etag === undefined) {
      this.drop(entry);
      return undefined;
    }
    entry = this.lru.touch(key);
    return entry;
  }

  /** Puts an entry in memory, replacing any previous one, and evicts what no longer fits. */
  private store(key: string, json: string, options: SetOptions): Entry | undefined {
    const ttl = options.ttl ?? this.defaultTtl;
    if (Number.isNaN(ttl) || ttl < 0) throw new RangeError(`querycache: ttl must be >= 0 ms, got ${ttl}`);
    this.counts.sets++;
    const previous = this.lru.peek(key);
    if (previous !== undefined) this.drop(previous);
    const bytes = json.length * 2;
    if (bytes > this.maxBytes) {
      this.counts.oversized++;
      return undefined;
    }
    const now = this.now();
    const entry: Entry = {
      key,
      json,
      decoding: undefined,
      bytes,
      tags: [...new Set(options.tags ?? [])],
      expiresAt: ttl === 0 || ttl === Infinity ? null : now + ttl,
      persisted: false,
      storedChars: 0,
      compressed: false,
      stale: false,
      etag: options.etag,
      private: options.private === true,
      writtenAt: now,
    };
    this.lru.set(key, entry, bytes);
    this.evictOverflow(entry);
    return entry;
  }

  private evictOverflow(keep: Entry): void {
    while (this.lru.size > this.maxEntries || this.lru.bytes > this.maxBytes) {
      const oldest = this.lru.oldestKey();
      if (oldest === undefined || oldest === keep.key) return;
      const victim = this.lru.peek(oldest);
      if (victim !== undefined) this.drop(victim);
      this.counts.evictions++;
    }
  }

  /** Removes an entry from memory and its copy from storage. */
  private drop(entry: Entry): void {
    if (this.lru.peek(entry.key) === entry) this.lru.delete(entry.key);
    if (entry.persisted) {
      this.storage.remove(entry.key);
      entry.persisted = false;
    }
  }

  /** Writes an entry to storage, gzipped if large; on failure it stays in memory only. */
  private async persist(entry: Entry): Promise<void> {
    const json = entry.json;
    if (json === undefined) return;
    let payload: { json: string } | { z: string } = { json };
    if (json.length * 2 > this.compressAbove && compressionAvailable()) {
      try {
        payload = { z: await gzipToBase64(json) };
      } catch {
        payload = { json };
      }
      if (this.lru.peek(entry.key) !== entry) return; // replaced or removed meanwhile
    }
    const meta: EnvelopeMeta = { v: 1, n: entry.bytes, tags: entry.tags, expiresAt: entry.expiresAt, t: entry.writtenAt };
    if (entry.stale) meta.stale = true;
    if (entry.etag !== undefined) meta.etag = entry.etag;
    if (entry.private) meta.private = true;
    const raw = encodeEnvelope(meta, payload);
    if (this.writeMakingRoom(entry.key, raw)) {
      entry.persisted = true;
      entry.compressed = "z" in payload;
      entry.storedChars = entry.key.length + raw.length;
      if (entry.compressed) this.counts.compressed++;
    }
  }

  /** setItem; on a quota error, drops the oldest persisted copies of this cache to make room and tries once more. */
  private writeMakingRoom(key: string, raw: string): boolean {
    const first = this.storage.write(key, raw);
    if (first !== "quota") return first === "ok";
    const needed = this.storage.prefix.length + key.length + raw.length;
    let freed = 0;
    for (const [oldKey, old] of this.lru.oldestFirst()) {
      if (freed >= needed) break;
      if (!old.persisted || oldKey === key) continue;
      if (this.storage.remove(oldKey)) {
        old.persisted = false;
        old.compressed = false;
        freed += this.storage.prefix.length + old.storedChars;
        this.counts.storageEvictions++;
      }
    }
    return freed > 0 && this.storage.write(key, raw) === "ok";
  }

  /** Loads the persisted entries at construction; compressed ones are decoded in the background. */
  private restore(): Promise<void> {
    if (!this.storage.present) return Promise.resolve();
    const now = this.now();
    const found: Array<{ key: string; raw: string; meta: EnvelopeMeta; json?: string; z?: string }> = [];
    for (const key of this.storage.keys()) {
      const raw = this.storage.read(key);
      if (raw == null) continue;
      const envelope = decodeEnvelope(raw);
      if (envelope === undefined) {
        this.corrupt(key);
        continue;
      }
      if (envelope.expiresAt !== null && envelope.expiresAt <= now) {
        this.storage.remove(key);
        this.counts.expirations++;
        continue;
      }
      const { value, z, ...meta } = envelope;
      if (z !== undefined) found.push({ key, raw, meta, z });
      else found.push({ key, raw, meta, json: JSON.stringify(value) });
    }
    found.sort((a, b) => a.meta.t - b.meta.t);
    const decodings: Array<Promise<unknown>> = [];
    for (const item of found) {
      const bytes = item.json !== undefined ? item.json.length * 2 : item.meta.n;
      if (bytes > this.maxBytes) {
        this.storage.remove(item.key);
        continue;
      }
      const entry: Entry = {
        key: item.key,
        json: item.json,
        decoding: undefined,
        bytes,
        tags: item.meta.tags,
        expiresAt: item.meta.expiresAt,
        persisted: true,
        storedChars: item.key.length + item.raw.length,
        compressed: item.z !== undefined,
        stale: item.meta.stale === true,
        etag: item.meta.etag,
        private: item.meta.private === true,
        writtenAt: item.meta.t,
      };
      if (item.z !== undefined) {
        entry.decoding = this.decode(entry, item.z);
        decodings.push(entry.decoding);
      }
      this.lru.set(item.key, entry, bytes);
      this.evictOverflow(entry);
    }
    return Promise.all(decodings).then(() => undefined);
  }

  /** Gunzips a restored value; a failure (or a size that does not match) removes the entry as corrupt. */
  private async decode(entry: Entry, z: string): Promise<string | undefined> {
    let json: string | undefined;
    try {
      if (!compressionAvailable()) throw new Error("no DecompressionStream");
      json = await base64GunzipToText(z);
      JSON.parse(json);
      if (json.length * 2 !== entry.bytes) json = undefined;
    } catch {
      json = undefined;
    }
    if (this.lru.peek(entry.key) !== entry) return undefined;
    entry.decoding = undefined;
    if (json === undefined) {
      this.drop(entry);
      this.corrupt(entry.key);
      return undefined;
    }
    entry.json = json;
    return json;
  }

  private corrupt(key: string): void {
    this.counts.corruptEntries++;
    this.storage.remove(key);
  }
}

/** The pseudo-tag a `delete(key)` is logged under, for in-flight writes of that key. */
function keyMarker(key: string): string {
  return "\u0000key:" + key;
}

function serialize(value: unknown): string {
  const json = JSON.stringify(value);
  if (typeof json !== "string") throw new TypeError("querycache: the value is not JSON-serializable");
  return json;
}

function isExpired(entry: Entry, now: number): boolean {
  return entry.expiresAt !== null && entry.expiresAt <= now;
}
