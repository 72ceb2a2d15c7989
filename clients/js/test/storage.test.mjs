// storage.test.mjs — persistence in a fake localStorage: round trip, quota, private mode, corrupt data, compression.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientCache } from "../dist/querycache.js";
import { FakeStorage, fakeClock } from "./fakes.mjs";

const PREFIX = "querycache:";

/** A JSON value of about `chars` characters that compresses well. */
const bigValue = (chars) => ({ rows: Array.from({ length: Math.ceil(chars / 40) }, (_, i) => ({ id: i, title: "a song title" })) });

test("persistence round trip: a new cache on the same storage restores persisted entries only, in recency order", async () => {
  const storage = new FakeStorage();
  const clock = fakeClock();
  const first = new ClientCache({ storage, now: clock.now });
  await first.set("kept", { id: 1 }, { persist: true, tags: ["model:songs"], ttl: 60_000 });
  clock.advance(1);
  await first.set("memory-only", { id: 2 });
  clock.advance(1);
  await first.set("kept-too", [1, 2, 3], { persist: true, ttl: 0 });
  assert.deepEqual(storage.rawKeys().sort(), [PREFIX + "kept", PREFIX + "kept-too"]);
  const envelope = JSON.parse(storage.raw(PREFIX + "kept"));
  assert.equal(envelope.v, 1);
  assert.deepEqual(envelope.value, { id: 1 });
  assert.deepEqual(envelope.tags, ["model:songs"]);
  assert.equal(envelope.expiresAt, clock.t - 2 + 60_000);

  const second = new ClientCache({ storage, now: clock.now });
  // usable synchronously after construction (no await of ready needed for plain entries)
  assert.deepEqual(second.getEntries().map((e) => [e.key, e.persisted]), [["kept-too", true], ["kept", true]]);
  assert.deepEqual(await second.get("kept"), { id: 1 });
  assert.deepEqual(await second.get("kept-too"), [1, 2, 3]);
  assert.equal(await second.get("memory-only"), undefined);
  // tags survive the reload, and invalidation removes the stored copy too
  assert.equal(second.invalidateByTags(["model:songs"]), 1);
  assert.equal(storage.raw(PREFIX + "kept"), undefined);
  assert.equal(second.healthCheck().status, "healthy");
});

test("persisted entries expire: an expired one is not restored and is removed from storage", async () => {
  const storage = new FakeStorage();
  const clock = fakeClock();
  const first = new ClientCache({ storage, now: clock.now });
  await first.set("short", 1, { persist: true, ttl: 1000 });
  clock.advance(1000);
  const second = new ClientCache({ storage, now: clock.now });
  assert.equal(await second.get("short"), undefined);
  assert.equal(storage.raw(PREFIX + "short"), undefined);
  assert.equal(second.getMetrics().expirations, 1);
});

test("delete, eviction, replacement by a non-persisted value and clear remove the stored copy", async () => {
  const storage = new FakeStorage();
  storage.rawSet("other-app", "untouched");
  const cache = new ClientCache({ storage, maxEntries: 2 });
  await cache.set("a", 1, { persist: true });
  await cache.set("b", 2, { persist: true });
  await cache.set("c", 3, { persist: true }); // evicts a
  assert.equal(storage.raw(PREFIX + "a"), undefined);
  cache.delete("b");
  assert.equal(storage.raw(PREFIX + "b"), undefined);
  await cache.set("c", 4); // not persisted any more
  assert.equal(storage.raw(PREFIX + "c"), undefined);
  await cache.set("d", 5, { persist: true });
  storage.rawSet(PREFIX + "stray", "left by an older page");
  cache.clear();
  assert.deepEqual(storage.rawKeys(), ["other-app"]);
});

test("quota exceeded: degrades to memory, counts the error, does not throw, health is degraded", async () => {
  const storage = new FakeStorage({ quota: 120 });
  const cache = new ClientCache({ storage });
  await cache.set("big", "x".repeat(200), { persist: true }); // must not reject
  assert.equal(await cache.get("big"), "x".repeat(200), "kept in memory");
  assert.equal(storage.raw(PREFIX + "big"), undefined);
  assert.equal(cache.getEntries()[0].persisted, false);
  assert.ok(cache.getMetrics().storageErrors >= 1);
  const health = cache.healthCheck();
  assert.equal(health.status, "degraded");
  assert.equal(health.storage, "quota-exceeded");
  assert.match(health.lastStorageError, /QuotaExceededError/);
  // a later write that fits makes it healthy again
  await cache.set("small", 1, { persist: true });
  assert.notEqual(storage.raw(PREFIX + "small"), undefined);
  assert.equal(cache.healthCheck().status, "healthy");
});

test("quota exceeded mid-way: the oldest persisted entries of this cache are dropped from storage to make room, once", async () => {
  const storage = new FakeStorage();
  const clock = fakeClock();
  const cache = new ClientCache({ storage, now: clock.now, compressAbove: Infinity });
  for (const key of ["k1", "k2", "k3"]) {
    await cache.set(key, "v".repeat(50), { persist: true });
    clock.advance(1);
  }
  storage.rawSet("someone-else", "z".repeat(100));
  storage.quota = storage.usedChars() + 20; // full now
  await cache.get("k1"); // k1 becomes the most recently used; k2 is now the oldest
  await cache.set("k4", "w".repeat(50), { persist: true });
  assert.notEqual(storage.raw(PREFIX + "k4"), undefined, "written after making room");
  assert.equal(storage.raw(PREFIX + "k2"), undefined, "the oldest persisted copy was dropped");
  assert.notEqual(storage.raw(PREFIX + "k3"), undefined, "only as much as needed was dropped");
  assert.notEqual(storage.raw(PREFIX + "k1"), undefined);
  assert.equal(storage.raw("someone-else"), "z".repeat(100), "other keys are never touched");
  assert.equal(await cache.get("k2"), "v".repeat(50), "the dropped copy is still in memory");
  assert.equal(cache.getEntries().find((e) => e.key === "k2").persisted, false);
  assert.equal(cache.getMetrics().storageEvictions, 1);
  // a value that cannot fit even after dropping everything: given up on, counted, no throw
  const before = cache.getMetrics().storageErrors;
  await cache.set("enormous", "e".repeat(5000), { persist: true });
  assert.equal(storage.raw(PREFIX + "enormous"), undefined);
  assert.ok(cache.getMetrics().storageErrors > before);
  assert.equal(await cache.get("enormous"), "e".repeat(5000));
  assert.equal(cache.healthCheck().storage, "quota-exceeded");
});

test("private mode: storage that throws on every access degrades to memory and never throws", async () => {
  const storage = new FakeStorage({ throwOnAccess: true });
  const cache = new ClientCache({ storage });
  await cache.set("k", { a: 1 }, { persist: true, tags: ["t"] });
  assert.deepEqual(await cache.get("k"), { a: 1 });
  assert.equal(cache.invalidateByTags(["t"]), 1);
  cache.clear();
  cache.clearPrivate();
  const health = cache.healthCheck();
  assert.equal(health.status, "degraded");
  assert.equal(health.storage, "unavailable");
  assert.match(health.lastStorageError, /SecurityError/);
  assert.ok(cache.getMetrics().storageErrors >= 2);
});

test("a globalThis.localStorage getter that throws, or none, means memory only", async () => {
  const descriptor = Object.getOwnPropertyDescriptor(globalThis, "localStorage");
  try {
    Object.defineProperty(globalThis, "localStorage", { configurable: true, get() { throw new DOMException("denied", "SecurityError"); } });
    const cache = new ClientCache();
    await cache.set("k", 1, { persist: true });
    assert.equal(await cache.get("k"), 1);
    assert.equal(cache.healthCheck().storage, "unavailable");
    assert.equal(cache.getMetrics().storageErrors, 1);
    const fake = new FakeStorage();
    Object.defineProperty(globalThis, "localStorage", { configurable: true, value: fake });
    const withDefault = new ClientCache();
    await withDefault.set("k", 1, { persist: true });
    assert.notEqual(fake.raw(PREFIX + "k"), undefined, "globalThis.localStorage is the default storage");
  } finally {
    if (descriptor) Object.defineProperty(globalThis, "localStorage", descriptor);
    else delete globalThis.localStorage;
  }
});

test("corrupt stored data is removed and counted, never thrown; good entries next to it are restored", async () => {
  const storage = new FakeStorage();
  const good = new ClientCache({ storage });
  await good.set("good", { ok: true }, { persist: true });
  storage.rawSet(PREFIX + "bad-json", "{not json");
  storage.rawSet(PREFIX + "wrong-version", JSON.stringify({ v: 2, n: 2, tags: [], expiresAt: null, t: 0, value: 1 }));
  storage.rawSet(PREFIX + "wrong-shape", JSON.stringify({ v: 1, n: 2, tags: "model:songs", expiresAt: null, t: 0, value: 1 }));
  storage.rawSet(PREFIX + "both", JSON.stringify({ v: 1, n: 2, tags: [], expiresAt: null, t: 0, value: 1, z: "H4sI" }));
  storage.rawSet(PREFIX + "array", "[1,2]");
  storage.rawSet(PREFIX + "bad-base64", JSON.stringify({ v: 1, n: 20, tags: [], expiresAt: null, t: 0, z: "!!!not base64!!!" }));
  storage.rawSet(PREFIX + "bad-gzip", JSON.stringify({ v: 1, n: 20, tags: [], expiresAt: null, t: 0, z: btoa("definitely not gzip") }));

  const cache = new ClientCache({ storage });
  await cache.ready;
  assert.deepEqual(await cache.get("good"), { ok: true });
  for (const key of ["bad-json", "wrong-version", "wrong-shape", "both", "array", "bad-base64", "bad-gzip"]) {
    assert.equal(await cache.get(key), undefined, key);
    assert.equal(storage.raw(PREFIX + key), undefined, `${key} is removed from storage`);
  }
  assert.equal(cache.getMetrics().corruptEntries, 7);
  assert.equal(cache.healthCheck().corruptEntries, 7);
});

test("compression: a large persisted value is gzipped in storage (base64) and restored intact", async () => {
  const storage = new FakeStorage();
  const value = bigValue(20_000);
  const json = JSON.stringify(value);
  const first = new ClientCache({ storage, compressAbove: 4096 });
  await first.set("big", value, { persist: true, tags: ["model:songs"] });
  await first.set("small", { id: 1 }, { persist: true });
  const envelope = JSON.parse(storage.raw(PREFIX + "big"));
  assert.equal(envelope.value, undefined);
  assert.equal(typeof envelope.z, "string");
  assert.match(envelope.z, /^[A-Za-z0-9+/]+=*$/);
  assert.ok(storage.raw(PREFIX + "big").length < json.length / 4, "stored much smaller than the JSON");
  assert.deepEqual(JSON.parse(storage.raw(PREFIX + "small")).value, { id: 1 }, "small values are stored plain");
  assert.equal(first.getMetrics().compressed, 1);
  assert.equal(first.getEntries().find((e) => e.key === "big").compressed, true);

  const second = new ClientCache({ storage });
  // get works before ready: it waits for that entry's decoding
  assert.deepEqual(await second.get("big"), value);
  await second.ready;
  assert.equal(second.getMetrics().bytes, json.length * 2 + JSON.stringify({ id: 1 }).length * 2);
  assert.equal(second.invalidateByTags(["model:songs"]), 1);
  assert.equal(storage.raw(PREFIX + "big"), undefined);
});

test("compression: a compressed entry whose size does not match its envelope is corrupt", async () => {
  const storage = new FakeStorage();
  const first = new ClientCache({ storage, compressAbove: 100 });
  await first.set("big", bigValue(1000), { persist: true });
  const envelope = JSON.parse(storage.raw(PREFIX + "big"));
  storage.rawSet(PREFIX + "big", JSON.stringify({ ...envelope, n: envelope.n + 2 }));
  const second = new ClientCache({ storage });
  assert.equal(await second.get("big"), undefined);
  assert.equal(second.getMetrics().corruptEntries, 1);
  assert.equal(storage.raw(PREFIX + "big"), undefined);
});

test("without CompressionStream large values are stored plain", async () => {
  const saved = globalThis.CompressionStream;
  try {
    delete globalThis.CompressionStream;
    const storage = new FakeStorage();
    const cache = new ClientCache({ storage, compressAbove: 100 });
    await cache.set("big", bigValue(1000), { persist: true });
    assert.deepEqual(JSON.parse(storage.raw(PREFIX + "big")).value, bigValue(1000));
    assert.equal(cache.getMetrics().compressed, 0);
    assert.equal(cache.healthCheck().compression, false);
  } finally {
    globalThis.CompressionStream = saved;
  }
});

test("a stale mark is persisted: after a reload a stale entry with an etag is still stale", async () => {
  const storage = new FakeStorage();
  const first = new ClientCache({ storage });
  await first.set("validated", 1, { persist: true, etag: '"v1"' });
  await first.set("plain", 2, { persist: true });
  first.markAllStale();
  assert.equal(storage.raw(PREFIX + "plain"), undefined);
  assert.equal(JSON.parse(storage.raw(PREFIX + "validated")).stale, true);
  const second = new ClientCache({ storage });
  assert.equal(await second.get("validated"), undefined);
  assert.deepEqual(second.getEntries().map((e) => [e.key, e.stale]), [["validated", true]]);
});

test("a restored set of entries larger than the bounds is trimmed to the most recent", async () => {
  const storage = new FakeStorage();
  const clock = fakeClock();
  const first = new ClientCache({ storage, now: clock.now });
  for (const key of ["a", "b", "c", "d"]) {
    await first.set(key, key, { persist: true });
    clock.advance(1);
  }
  const second = new ClientCache({ storage, now: clock.now, maxEntries: 2 });
  assert.deepEqual(second.getEntries().map((e) => e.key), ["d", "c"]);
  assert.deepEqual(storage.rawKeys().sort(), [PREFIX + "c", PREFIX + "d"]);
});
