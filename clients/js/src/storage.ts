// storage.ts — safe access to localStorage (or any Web Storage) and the JSON envelope persisted entries are kept in.

/** How persistence is doing: `"available"`, `"unavailable"` (no storage, or access throws) or `"quota-exceeded"` (the last write did not fit). @example const s: StorageState = "available"; */
export type StorageState = "available" | "unavailable" | "quota-exceeded";

/** The subset of the Web Storage interface the cache uses. @example const s: StorageLike = window.localStorage; */
export interface StorageLike {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * A persisted entry as stored under `storagePrefix + key`, version 1.
 * Exactly one of `value` (the plain value) and `z` (base64 of the gzipped JSON) is present.
 *
 * @example
 * {"v":1,"n":24,"tags":["model:songs"],"expiresAt":1767225600000,"t":1767225300000,"value":{"id":42}}
 */
export interface Envelope {
  /** Format version: 1. */
  v: 1;
  /** Size of the plain JSON in bytes (UTF-16 length × 2). */
  n: number;
  /** Tags of the entry. */
  tags: string[];
  /** Expiry as epoch milliseconds, or null for none. */
  expiresAt: number | null;
  /** When it was written (epoch ms): orders the restored entries by recency. */
  t: number;
  /** Set when the entry must be revalidated before being served. */
  stale?: true;
  /** The validator of a revalidatable entry (cachedFetch's ETag). */
  etag?: string;
  /** Set on entries holding per-user data (dropped by `clearPrivate`). */
  private?: true;
  /** The plain value. */
  value?: unknown;
  /** Base64 of the gzipped JSON of the value. */
  z?: string;
}

/** The envelope fields besides the value. @example const meta: EnvelopeMeta = { v: 1, n: 2, tags: [], expiresAt: null, t: 0 }; */
export type EnvelopeMeta = Omit<Envelope, "value" | "z">;

/**
 * Serializes an envelope around an already serialized JSON value (`json`) or a compressed one (`z`),
 * without parsing and re-serializing the value.
 *
 * @example
 * encodeEnvelope({ v: 1, n: 4, tags: [], expiresAt: null, t: 0 }, { json: "42" }); // '{"v":1,…,"value":42}'
 */
export function encodeEnvelope(meta: EnvelopeMeta, payload: { json: string } | { z: string }): string {
  const head = JSON.stringify(meta).slice(0, -1);
  return "json" in payload ? `${head},"value":${payload.json}}` : `${head},"z":${JSON.stringify(payload.z)}}`;
}

/**
 * Parses and validates a stored envelope; returns undefined for anything that is not a
 * well-formed version 1 envelope (invalid JSON, wrong version, wrong field types).
 *
 * @example
 * decodeEnvelope('{"v":1,"n":4,"tags":[],"expiresAt":null,"t":0,"value":42}')?.value === 42
 */
export function decodeEnvelope(raw: string): Envelope | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const e = parsed as Record<string, unknown>;
  const hasValue = "value" in e;
  const hasZ = "z" in e;
  const valid =
    e.v === 1 &&
    typeof e.n === "number" && Number.isFinite(e.n) && e.n >= 0 &&
    Array.isArray(e.tags) && e.tags.every((tag) => typeof tag === "string") &&
    (e.expiresAt === null || (typeof e.expiresAt === "number" && Number.isFinite(e.expiresAt))) &&
    typeof e.t === "number" &&
    (e.stale === undefined || e.stale === true) &&
    (e.etag === undefined || typeof e.etag === "string") &&
    (e.private === undefined || e.private === true) &&
    hasValue !== hasZ &&
    (!hasZ || typeof e.z === "string");
  return valid ? (parsed as Envelope) : undefined;
}

/**
 * Whether `error` is a storage quota error, as browsers name them
 * (`QuotaExceededError`, Firefox's `NS_ERROR_DOM_QUOTA_REACHED`, legacy codes 22 and 1014).
 *
 * @example
 * try { localStorage.setItem(k, v); } catch (e) { if (isQuotaError(e)) evictSomething(); }
 */
export function isQuotaError(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return name === "QuotaExceededError" || name === "NS_ERROR_DOM_QUOTA_REACHED" || code === 22 || code === 1014;
}

/**
 * `globalThis.localStorage`, or undefined when there is none or reading it throws
 * (Firefox and Chrome throw a SecurityError when site data is blocked).
 *
 * @example
 * const storage = defaultStorage(); // undefined in Node, in workers and with storage blocked
 */
export function defaultStorage(): StorageLike | undefined {
  try {
    return (globalThis as { localStorage?: StorageLike }).localStorage ?? undefined;
  } catch {
    return undefined;
  }
}

/** The result of a write: stored, refused for quota, or failed otherwise. @example const r: WriteResult = "quota"; */
export type WriteResult = "ok" | "quota" | "error";

/**
 * Web Storage behind a key prefix, where every operation catches what the storage throws,
 * counts it and keeps `state` up to date. Nothing here throws.
 *
 * @example
 * const store = new PrefixedStorage(localStorage, "querycache:");
 * store.write("songs", "{…}"); // "ok" | "quota" | "error"
 * store.keys();                // ["songs"]
 */
export class PrefixedStorage {
  /** Errors met so far (quota, access, missing storage). */
  errors = 0;
  /** Current state of persistence. */
  state: StorageState;
  /** The message of the last error, for health checks. */
  lastError: string | undefined;

  constructor(private readonly storage: StorageLike | undefined, readonly prefix: string) {
    this.state = storage === undefined ? "unavailable" : "available";
    if (storage === undefined) this.lastError = "no storage";
  }

  /** Whether there is a storage at all (it may still throw). @example if (store.present) … */
  get present(): boolean {
    return this.storage !== undefined;
  }

  /**
   * Writes and removes a probe key to learn whether storage works (Safari's old private
   * mode reads fine and refuses every write). Updates `state`.
   *
   * @example
   * store.probe(); store.state; // "available" | "unavailable" | "quota-exceeded"
   */
  probe(): void {
    if (this.storage === undefined) return;
    const key = this.prefix + "\u0000probe";
    try {
      this.storage.setItem(key, "1");
      this.storage.removeItem(key);
      this.state = "available";
    } catch (error) {
      this.fail(error);
    }
  }

  /** The cache keys (prefix removed) present in storage; [] when it cannot be read. @example store.keys() */
  keys(): string[] {
    const storage = this.storage;
    if (storage === undefined) return [];
    try {
      const keys: string[] = [];
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i);
        if (key !== null && key.startsWith(this.prefix) && !key.includes("\u0000")) keys.push(key.slice(this.prefix.length));
      }
      return keys;
    } catch (error) {
      this.fail(error);
      return [];
    }
  }

  /** The raw string under `key`, null when absent, undefined when reading failed. @example store.read("songs") */
  read(key: string): string | null | undefined {
    if (this.storage === undefined) return undefined;
    try {
      return this.storage.getItem(this.prefix + key);
    } catch (error) {
      this.fail(error);
      return undefined;
    }
  }

  /** Stores `raw` under `key`. @example if (store.write("songs", raw) === "quota") freeSpace(); */
  write(key: string, raw: string): WriteResult {
    if (this.storage === undefined) {
      this.errors++;
      return "error";
    }
    try {
      this.storage.setItem(this.prefix + key, raw);
      this.state = "available";
      return "ok";
    } catch (error) {
      this.fail(error);
      return isQuotaError(error) ? "quota" : "error";
    }
  }

  /** Removes `key`; false if removal failed. @example store.remove("songs") */
  remove(key: string): boolean {
    if (this.storage === undefined) return false;
    try {
      this.storage.removeItem(this.prefix + key);
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    }
  }

  private fail(error: unknown): void {
    this.errors++;
    this.state = isQuotaError(error) ? "quota-exceeded" : "unavailable";
    this.lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  }
}
