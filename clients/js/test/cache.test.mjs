// cache.test.mjs — ClientCache in memory: LRU and bounds, TTL, tags, single-flight, warming, metrics.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientCache } from "../dist/querycache.js";
import { fakeClock } from "./fakes.mjs";

const memoryCache = (options = {}) => new ClientCache({ storage: null, ...options });

test("LRU: the entry bound evicts the least recently used, and get refreshes recency", async () => {
  const cache = memoryCache({ maxEntries: 3 });
  await cache.set("a", 1);
  await cache.set("b", 2);
  await cache.set("c", 3);
  assert.equal(await cache.get("a"), 1); // a is now the most recent; b is the oldest
  await cache.set("d", 4);
  assert.equal(await cache.get("b"), undefined);
  assert.equal(await cache.get("a"), 1);
  assert.equal(await cache.get("c"), 3);
  assert.equal(await cache.get("d"), 4);
  assert.deepEqual(cache.getEntries().map((e) => e.key), ["d", "c", "a"]);
  const metrics = cache.getMetrics();
  assert.equal(metrics.entries, 3);
  assert.equal(metrics.evictions, 1);
});

test("LRU: the byte bound (UTF-16 length x 2 of the JSON) evicts oldest first; a value over maxBytes is not stored", async () => {
  const cache = memoryCache({ maxBytes: 100 });
  await cache.set("a", "x".repeat(18)); // JSON "xxx…" = 20 chars = 40 bytes
  await cache.set("b", "y".repeat(18));
  assert.equal(cache.getMetrics().bytes, 80);
  await cache.set("c", "z".repeat(18)); // 120 > 100: a goes
  assert.equal(cache.getMetrics().bytes, 80);
  assert.equal(await cache.get("a"), undefined);
  assert.equal(await cache.get("b"), "y".repeat(18));
  await cache.set("huge", "h".repeat(60)); // 124 bytes alone
  assert.equal(await cache.get("huge"), undefined);
  assert.equal(await cache.get("c"), "z".repeat(18), "an oversized value must not evict others");
  assert.equal(cache.getMetrics().oversized, 1);
  await cache.set("b", "h".repeat(60)); // replacing b with an oversized value removes the old b
  assert.equal(await cache.get("b"), undefined);
});

test("TTL: entries expire by the injected clock; 0 and Infinity never expire; negative is a RangeError", async () => {
  const clock = fakeClock();
  const cache = memoryCache({ now: clock.now, defaultTtl: 1000 });
  await cache.set("default", 1);
  await cache.set("short", 2, { ttl: 100 });
  await cache.set("forever", 3, { ttl: 0 });
  await cache.set("infinite", 4, { ttl: Infinity });
  clock.advance(99);
  assert.equal(await cache.get("short"), 2);
  clock.advance(1);
  assert.equal(await cache.get("short"), undefined);
  clock.advance(899);
  assert.equal(await cache.get("default"), 1);
  clock.advance(1);
  assert.equal(await cache.get("default"), undefined);
  clock.advance(10 ** 12);
  assert.equal(await cache.get("forever"), 3);
  assert.equal(await cache.get("infinite"), 4);
  assert.equal(cache.getMetrics().expirations, 2);
  assert.equal(cache.getMetrics().entries, 2);
  await assert.rejects(cache.set("bad", 1, { ttl: -1 }), RangeError);
});

test("values are copies: mutating what get returned does not change the cache; undefined is refused", async () => {
  const cache = memoryCache();
  const value = { list: [1, 2] };
  await cache.set("k", value);
  value.list.push(3);
  const got = await cache.get("k");
  assert.deepEqual(got, { list: [1, 2] });
  got.list.push(9);
  assert.deepEqual(await cache.get("k"), { list: [1, 2] });
  await assert.rejects(cache.set("u", undefined), TypeError);
});

test("invalidateByTags removes exactly the entries with any of the tags", async () => {
  const cache = memoryCache();
  await cache.set("songs", [1, 2], { tags: ["model:songs"] });
  await cache.set("song:42", { id: 42 }, { tags: ["model:songs", "model:songs:42"] });
  await cache.set("song:7", { id: 7 }, { tags: ["model:songs:7"] });
  await cache.set("users", [], { tags: ["model:users"] });
  assert.equal(cache.invalidateByTags(["model:songs:42"]), 1);
  assert.equal(await cache.get("song:42"), undefined);
  assert.deepEqual(await cache.get("songs"), [1, 2]);
  assert.equal(cache.invalidateByTags(["model:songs", "model:songs:7"]), 2);
  assert.deepEqual(cache.getEntries().map((e) => e.key), ["users"]);
  assert.equal(cache.invalidateByTags("nothing"), 0);
  assert.equal(cache.getMetrics().invalidations, 3);
});

test("getOrSet: concurrent callers share one factory call", async () => {
  const cache = memoryCache();
  let calls = 0;
  let release;
  const gate = new Promise((resolve) => (release = resolve));
  const factory = async () => {
    calls++;
    await gate;
    return { n: calls };
  };
  const waiters = Array.from({ length: 10 }, () => cache.getOrSet("k", factory, { tags: ["t"] }));
  await new Promise((resolve) => setTimeout(resolve, 5));
  release();
  const results = await Promise.all(waiters);
  assert.equal(calls, 1);
  for (const result of results) assert.deepEqual(result, { n: 1 });
  assert.deepEqual(await cache.getOrSet("k", factory), { n: 1 });
  assert.equal(calls, 1, "a cached value is returned without calling the factory");
  assert.deepEqual(cache.getEntries()[0].tags, ["t"]);
});

test("getOrSet: a rejection reaches every waiter and stores nothing; the next call tries again", async () => {
  const cache = memoryCache();
  let calls = 0;
  const failing = async () => {
    calls++;
    await new Promise((resolve) => setTimeout(resolve, 2));
    throw new Error("backend down");
  };
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => cache.getOrSet("k", failing)));
  assert.equal(calls, 1);
  assert.ok(results.every((r) => r.status === "rejected" && r.reason.message === "backend down"));
  assert.equal(cache.getMetrics().entries, 0);
  assert.equal(await cache.getOrSet("k", () => "ok"), "ok");
  assert.equal(await cache.get("k"), "ok");
});

test("getOrSet: a value whose tags were invalidated while the factory ran is returned but not stored", async () => {
  const cache = memoryCache();
  let release;
  const pending = cache.getOrSet("k", () => new Promise((resolve) => (release = resolve)), { tags: ["model:songs"] });
  await new Promise((resolve) => setTimeout(resolve, 1));
  cache.invalidateByTags(["model:songs"]);
  release("old");
  assert.equal(await pending, "old");
  assert.equal(await cache.get("k"), undefined);
  // an invalidation of other tags does not prevent storing
  const other = cache.getOrSet("k2", () => new Promise((resolve) => (release = resolve)), { tags: ["model:songs"] });
  await new Promise((resolve) => setTimeout(resolve, 1));
  cache.invalidateByTags(["model:users"]);
  release("fresh");
  await other;
  assert.equal(await cache.get("k2"), "fresh");
});

test("warmCache counts warmed and failed items without rejecting", async () => {
  const cache = memoryCache();
  await cache.set("present", "kept");
  let presentFactoryCalled = false;
  const result = await cache.warmCache([
    { key: "a", factory: () => 1 },
    { key: "b", factory: async () => ({ b: true }), options: { tags: ["model:b"] } },
    { key: "c", factory: () => { throw new Error("sync failure"); } },
    { key: "d", factory: () => Promise.reject(new Error("async failure")) },
    { key: "present", factory: () => { presentFactoryCalled = true; return "replaced"; } },
  ]);
  assert.deepEqual(result, { warmed: 3, failed: 2 });
  assert.equal(await cache.get("a"), 1);
  assert.deepEqual(await cache.get("b"), { b: true });
  assert.equal(await cache.get("c"), undefined);
  assert.equal(await cache.get("present"), "kept");
  assert.equal(presentFactoryCalled, false);
});

test("metrics count hits, misses and sets; delete and clear remove entries", async () => {
  const cache = memoryCache();
  assert.equal(cache.getMetrics().hitRate, 0);
  await cache.set("a", 1);
  await cache.set("b", 2);
  await cache.get("a");
  await cache.get("a");
  await cache.get("a");
  await cache.get("zzz");
  const metrics = cache.getMetrics();
  assert.equal(metrics.hits, 3);
  assert.equal(metrics.misses, 1);
  assert.equal(metrics.sets, 2);
  assert.equal(metrics.hitRate, 0.75);
  assert.equal(cache.delete("a"), true);
  assert.equal(cache.delete("a"), false);
  assert.equal(await cache.get("a"), undefined);
  cache.clear();
  assert.equal(cache.getMetrics().entries, 0);
  assert.equal(cache.getMetrics().bytes, 0);
});

test("markAllStale: plain entries become misses, entries with an etag are kept as stale", async () => {
  const cache = memoryCache();
  await cache.set("plain", 1);
  await cache.set("validated", 2, { etag: '"abc"' });
  cache.markAllStale();
  assert.equal(await cache.get("plain"), undefined);
  assert.equal(await cache.get("validated"), undefined, "a stale entry is never served by get");
  assert.deepEqual(cache.getEntries().map((e) => [e.key, e.stale]), [["validated", true]]);
  await cache.set("validated", 3, { etag: '"def"' });
  assert.equal(await cache.get("validated"), 3, "setting again makes it fresh");
});

test("a cache with storage: null is memory only and reports itself degraded", () => {
  const cache = memoryCache();
  const health = cache.healthCheck();
  assert.equal(health.status, "degraded");
  assert.equal(health.storage, "unavailable");
});

test("getOrSet: a delete of the key while the factory ran prevents storing; a delete of another key does not", async () => {
  const cache = memoryCache();
  await cache.set("other", 1);
  let release;
  const pending = cache.getOrSet("k", () => new Promise((resolve) => (release = resolve)));
  await new Promise((resolve) => setTimeout(resolve, 1));
  cache.delete("other");
  release("v1");
  await pending;
  assert.equal(await cache.get("k"), "v1");
  cache.delete("k");
  const again = cache.getOrSet("k", () => new Promise((resolve) => (release = resolve)));
  await new Promise((resolve) => setTimeout(resolve, 1));
  await cache.set("k", "written meanwhile");
  cache.delete("k");
  release("v2");
  assert.equal(await again, "v2");
  assert.equal(await cache.get("k"), undefined);
});
