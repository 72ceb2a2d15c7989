// fetch.test.mjs — cachedFetch / cache.fetch against a scripted fake server: freshness, 304s, Cache-Control, Vary, tags.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientCache, cachedFetch, defaultCache } from "../dist/querycache.js";
import { FakeStorage, fakeClock, fakeFetch } from "./fakes.mjs";

const URL_SONGS = "http://app.test/api/v1/songs";

function setup(handler, options = {}) {
  const fetch = fakeFetch(handler);
  const clock = fakeClock();
  const cache = new ClientCache({ storage: null, fetch, now: clock.now, ...options });
  return { fetch, clock, cache };
}

test("a fresh copy (max-age) is answered locally with no request, as a real Response", async () => {
  const { fetch, clock, cache } = setup(() => [200, { "cache-control": "max-age=60", "content-type": "application/json", etag: '"v1"' }, '{"songs":[1,2]}']);
  const first = await cache.fetch(URL_SONGS);
  assert.deepEqual(await first.json(), { songs: [1, 2] });
  clock.advance(59_000);
  const second = await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 1);
  assert.ok(second instanceof Response);
  assert.equal(second.status, 200);
  assert.equal(second.headers.get("content-type"), "application/json");
  assert.equal(second.headers.get("etag"), '"v1"');
  assert.deepEqual(await second.json(), { songs: [1, 2] });
  assert.equal(cache.getMetrics().hits, 1);
  clock.advance(1000); // now stale: revalidated with If-None-Match
  await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 2);
  assert.equal(fetch.calls[1].headers.get("if-none-match"), '"v1"');
});

test("Age is subtracted from max-age", async () => {
  const { fetch, clock, cache } = setup(() => [200, { "cache-control": "max-age=60", age: "50" }, "x"]);
  await cache.fetch(URL_SONGS);
  clock.advance(9_000);
  await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 1);
  clock.advance(1_000);
  await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 2);
});

test("a stale copy with an ETag is revalidated: a 304 reuses the stored body and takes the 304's headers and freshness", async () => {
  let version = 1;
  const { fetch, clock, cache } = setup((request) => {
    if (request.headers.get("if-none-match") === `"v${version}"`) return [304, { etag: `"v${version}"`, "cache-control": "max-age=30", "x-served": "revalidated" }];
    return [200, { etag: `"v${version}"`, "cache-control": "no-cache", "content-type": "application/json", "x-served": "full" }, JSON.stringify({ version })];
  });
  assert.deepEqual(await (await cache.fetch(URL_SONGS)).json(), { version: 1 });
  const revalidated = await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 2);
  assert.equal(fetch.calls[1].headers.get("if-none-match"), '"v1"');
  assert.equal(revalidated.status, 200, "the caller sees a 200 built from the stored body");
  assert.equal(revalidated.headers.get("x-served"), "revalidated");
  assert.equal(revalidated.headers.get("content-type"), "application/json");
  assert.deepEqual(await revalidated.json(), { version: 1 });
  assert.equal(cache.getMetrics().revalidated, 1);
  // the 304 made it fresh for 30 s
  clock.advance(29_000);
  await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 2);
  // a change on the server: a 200 replaces the stored answer
  clock.advance(2_000);
  version = 2;
  assert.deepEqual(await (await cache.fetch(URL_SONGS)).json(), { version: 2 });
  assert.equal(fetch.calls[2].headers.get("if-none-match"), '"v1"');
  assert.deepEqual(await (await cache.fetch(URL_SONGS)).json(), { version: 2 });
  assert.equal(fetch.calls[3].headers.get("if-none-match"), '"v2"');
});

test("no-store is never kept (and drops an older copy); no-cache is kept but revalidated every time", async () => {
  let policy = "max-age=60";
  const { fetch, clock, cache } = setup((request) => {
    if (request.headers.get("if-none-match") === '"e"') return [304, { etag: '"e"', "cache-control": policy }];
    return [200, { "cache-control": policy, etag: '"e"' }, "body"];
  });
  await cache.fetch(URL_SONGS);
  assert.equal(cache.getMetrics().entries, 1);
  clock.advance(61_000);
  policy = "no-store";
  await cache.fetch(URL_SONGS); // a 304 saying no-store: served, then dropped
  assert.equal(cache.getMetrics().entries, 0);
  await cache.fetch(URL_SONGS);
  await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 4);
  assert.equal(fetch.calls[3].headers.get("if-none-match"), null, "nothing was kept to revalidate");
  assert.equal(cache.getMetrics().entries, 0);

  policy = "no-cache";
  const text = await (await cache.fetch(URL_SONGS)).text();
  assert.equal(text, "body");
  assert.equal(cache.getMetrics().entries, 1);
  const again = await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 6, "no-cache is always revalidated");
  assert.equal(fetch.calls[5].headers.get("if-none-match"), '"e"');
  assert.equal(await again.text(), "body");
});

test("a 200 with neither freshness nor validator is not kept; Vary: * is not kept", async () => {
  let headers = {};
  const { fetch, cache } = setup(() => [200, headers, "x"]);
  await cache.fetch(URL_SONGS);
  await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 2);
  assert.equal(cache.getMetrics().entries, 0);
  headers = { "cache-control": "max-age=60", vary: "*" };
  await cache.fetch(URL_SONGS);
  await cache.fetch(URL_SONGS);
  assert.equal(fetch.calls.length, 4);
  assert.equal(cache.getMetrics().entries, 0);
});

test("Vary on Authorization: an answer is never served to another token, and tokens are not stored in clear", async () => {
  const storage = new FakeStorage();
  const { fetch, cache } = setup(
    (request) => [200, { "cache-control": "max-age=60", vary: "Authorization", etag: '"x"' }, `data of ${request.headers.get("authorization") ?? "anonymous"}`],
    { storage },
  );
  const as = (token) => cache.fetch(URL_SONGS, token === undefined ? {} : { headers: { Authorization: `Bearer ${token}` } }, { persist: true });
  assert.equal(await (await as("alice-secret")).text(), "data of Bearer alice-secret");
  assert.equal(await (await as("bob-secret")).text(), "data of Bearer bob-secret");
  assert.equal(await (await as(undefined)).text(), "data of anonymous");
  assert.equal(fetch.calls.length, 3);
  assert.equal(fetch.calls[1].headers.get("if-none-match"), null, "bob's request does not revalidate alice's answer");
  // each is now served locally to its own token only
  assert.equal(await (await as("alice-secret")).text(), "data of Bearer alice-secret");
  assert.equal(await (await as("bob-secret")).text(), "data of Bearer bob-secret");
  assert.equal(await (await as(undefined)).text(), "data of anonymous");
  assert.equal(fetch.calls.length, 3);
  assert.equal(await (await as("mallory")).text(), "data of Bearer mallory");
  assert.equal(fetch.calls.length, 4);
  const stored = storage.rawKeys().map((key) => key + storage.raw(key)).join("\n");
  assert.ok(stored.includes("data of Bearer alice-secret"), "the answer itself is persisted");
  assert.ok(!/"Bearer alice-secret"|\["authorization","Bearer/.test(stored), "the token is not in a key");
  assert.equal(cache.getEntries()[0].private, true);
});

test("private answers are keyed by the request's Authorization even without Vary", async () => {
  const { fetch, cache } = setup((request) => [200, { "cache-control": "private, max-age=60" }, `me=${request.headers.get("authorization")}`]);
  const as = (token) => cache.fetch(URL_SONGS, { headers: { Authorization: token } });
  assert.equal(await (await as("t1")).text(), "me=t1");
  assert.equal(await (await as("t2")).text(), "me=t2");
  assert.equal(await (await as("t1")).text(), "me=t1");
  assert.equal(fetch.calls.length, 2);
});

test("logout / clearPrivate drops private and Authorization-varying answers, keeps public ones", async () => {
  const storage = new FakeStorage();
  const { fetch, cache } = setup((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/me") return [200, { "cache-control": "private, max-age=60" }, "me"];
    if (path === "/feed") return [200, { "cache-control": "max-age=60", vary: "Cookie" }, "feed"];
    if (path === "/mine") return [200, { "cache-control": "max-age=60", vary: "Authorization" }, "mine"];
    return [200, { "cache-control": "max-age=60" }, "public"];
  }, { storage });
  for (const path of ["/me", "/feed", "/mine", "/public"]) await cache.fetch(`http://app.test${path}`, { headers: { authorization: "t" } }, { persist: true });
  await cache.set("plain", 1, { persist: true });
  assert.equal(cache.logout(), 3);
  assert.deepEqual(cache.getEntries().map((e) => e.key).sort(), ["fetch:GET http://app.test/public", "plain"]);
  assert.equal(storage.rawKeys().length, 2);
  await cache.fetch("http://app.test/public");
  assert.equal(fetch.calls.length, 4);
  await cache.fetch("http://app.test/me", { headers: { authorization: "t" } });
  assert.equal(fetch.calls.length, 5);
  assert.equal(cache.clearPrivate(), 1);
});

test("non-GET requests pass through; a successful one drops that URL's entries", async () => {
  let status = 200;
  const { fetch, cache } = setup((request) => {
    if (request.method === "GET") return [200, { "cache-control": "max-age=60" }, "list"];
    if (request.method === "HEAD") return [200, { "cache-control": "max-age=60" }];
    return [status, {}, "posted"];
  });
  await cache.fetch(URL_SONGS);
  await cache.fetch(URL_SONGS, { method: "HEAD" });
  await cache.fetch("http://app.test/api/v1/other");
  assert.equal(cache.getMetrics().entries, 3);
  status = 500;
  const failed = await cache.fetch(URL_SONGS, { method: "POST", body: "{}" });
  assert.equal(failed.status, 500);
  assert.equal(cache.getMetrics().entries, 3, "a failed write drops nothing");
  status = 201;
  const posted = await cache.fetch(URL_SONGS, { method: "post", body: "{}" });
  assert.equal(posted.status, 201);
  assert.equal(await posted.text(), "posted");
  assert.deepEqual(cache.getEntries().map((e) => e.key), ["fetch:GET http://app.test/api/v1/other"]);
  await cache.fetch(URL_SONGS, { method: "POST", body: "{}" });
  await cache.fetch(URL_SONGS);
  assert.deepEqual(fetch.calls.map((r) => r.method), ["GET", "HEAD", "GET", "POST", "POST", "POST", "GET"]);
});

test("HEAD answers are cached apart from GET and have no body", async () => {
  const { fetch, cache } = setup((request) => [200, { "cache-control": "max-age=60", "x-method": request.method }, request.method === "HEAD" ? null : "body"]);
  const head = await cache.fetch(URL_SONGS, { method: "HEAD" });
  const headAgain = await cache.fetch(URL_SONGS, { method: "HEAD" });
  assert.equal(headAgain.headers.get("x-method"), "HEAD");
  assert.equal(await headAgain.text(), "");
  assert.equal(head.status, 200);
  const get = await cache.fetch(URL_SONGS);
  assert.equal(await get.text(), "body");
  assert.equal(fetch.calls.length, 2);
});

test("X-Cache-Tags (plus options.tags) become the entry's tags, so invalidateByTags drops it", async () => {
  const { fetch, cache } = setup((request) => {
    const id = new URL(request.url).pathname.split("/").pop();
    return [200, { "cache-control": "max-age=600", "x-cache-tags": `model:songs, model:songs:${id}` }, `song ${id}`];
  });
  await cache.fetch("http://app.test/api/v1/songs/42", undefined, { tags: ["page:detail"] });
  await cache.fetch("http://app.test/api/v1/songs/7");
  assert.deepEqual(cache.getEntries().find((e) => e.key.endsWith("/42")).tags, ["model:songs", "model:songs:42", "page:detail"]);
  assert.equal(cache.invalidateByTags(["model:songs:42"]), 1);
  await cache.fetch("http://app.test/api/v1/songs/42");
  await cache.fetch("http://app.test/api/v1/songs/7");
  assert.deepEqual(fetch.calls.map((r) => new URL(r.url).pathname), ["/api/v1/songs/42", "/api/v1/songs/7", "/api/v1/songs/42"]);
});

test("a stale-marked entry is revalidated before being served; without a validator it is refetched", async () => {
  const { fetch, cache } = setup((request) => {
    if (request.headers.get("if-none-match") === '"e"') return [304, { etag: '"e"', "cache-control": "max-age=60" }];
    const etag = new URL(request.url).pathname === "/etag" ? { etag: '"e"' } : {};
    return [200, { "cache-control": "max-age=60", ...etag }, "body"];
  });
  await cache.fetch("http://app.test/etag");
  await cache.fetch("http://app.test/plain");
  cache.markAllStale();
  assert.equal(await (await cache.fetch("http://app.test/etag")).text(), "body");
  assert.equal(fetch.calls[2].headers.get("if-none-match"), '"e"');
  await cache.fetch("http://app.test/plain");
  assert.equal(fetch.calls[3].headers.get("if-none-match"), null);
  // both fresh again
  await cache.fetch("http://app.test/etag");
  await cache.fetch("http://app.test/plain");
  assert.equal(fetch.calls.length, 4);
});

test("persisted fetch answers survive a reload, binary bodies included", async () => {
  const storage = new FakeStorage();
  const clock = fakeClock();
  const bytes = new Uint8Array([0, 255, 1, 254, 0x80]);
  const fetch = fakeFetch(() => new Response(bytes, { status: 200, headers: { "cache-control": "max-age=60", "content-type": "application/octet-stream" } }));
  const first = new ClientCache({ storage, fetch, now: clock.now });
  await first.fetch(URL_SONGS, undefined, { persist: true });
  const second = new ClientCache({ storage, fetch, now: clock.now });
  const answer = await second.fetch(URL_SONGS);
  assert.deepEqual(new Uint8Array(await answer.arrayBuffer()), bytes);
  assert.equal(fetch.calls.length, 1);
});

test("requests with their own conditional headers or cache: no-store go through untouched", async () => {
  const { fetch, cache } = setup(() => [200, { "cache-control": "max-age=60" }, "x"]);
  await cache.fetch(URL_SONGS, { headers: { "If-None-Match": '"mine"' } });
  await cache.fetch(URL_SONGS, { cache: "no-store" });
  assert.equal(cache.getMetrics().entries, 0);
  await cache.fetch(URL_SONGS);
  await cache.fetch(URL_SONGS, { cache: "reload" });
  assert.equal(fetch.calls.length, 4);
});

test("cachedFetch uses the shared defaultCache and globalThis.fetch", async () => {
  const saved = globalThis.fetch;
  const fetch = fakeFetch(() => [200, { "cache-control": "max-age=60" }, "shared"]);
  try {
    globalThis.fetch = fetch;
    assert.equal(defaultCache(), defaultCache());
    assert.equal(await (await cachedFetch("http://app.test/shared")).text(), "shared");
    assert.equal(await (await cachedFetch("http://app.test/shared")).text(), "shared");
    assert.equal(fetch.calls.length, 1);
    assert.ok(defaultCache().getEntries().some((e) => e.key === "fetch:GET http://app.test/shared"));
  } finally {
    globalThis.fetch = saved;
    defaultCache().clear();
  }
});

test("a GET answer arriving after a successful POST to the same URL is returned but not stored", async () => {
  let releaseGet;
  const { fetch, cache } = setup((request) => {
    if (request.method === "POST") return [204, {}];
    return new Promise((resolve) => (releaseGet = () => resolve(new Response("old list", { status: 200, headers: { "cache-control": "max-age=60" } }))));
  });
  const slowGet = cache.fetch(URL_SONGS);
  await new Promise((resolve) => setTimeout(resolve, 1));
  await cache.fetch(URL_SONGS, { method: "POST", body: "{}" });
  releaseGet();
  assert.equal(await (await slowGet).text(), "old list");
  assert.equal(cache.getEntries().some((e) => e.key === `fetch:GET ${URL_SONGS}`), false);
  assert.equal(fetch.calls.filter((r) => r.method === "POST").length, 1);
});
