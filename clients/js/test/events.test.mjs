// events.test.mjs — liveInvalidation against a fake EventSource: invalidate, reset, reconnect, absence.

import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientCache, liveInvalidation } from "../dist/querycache.js";
import { fakeEventSourceClass } from "./fakes.mjs";

async function filledCache() {
  const cache = new ClientCache({ storage: null });
  await cache.set("songs", [1, 2], { tags: ["model:songs"] });
  await cache.set("song:42", { id: 42 }, { tags: ["model:songs", "model:songs:42"] });
  await cache.set("song:7", { id: 7 }, { tags: ["model:songs:7"] });
  await cache.set("users", [], { tags: ["model:users"] });
  await cache.set("with-etag", { id: 1 }, { tags: ["model:albums"], etag: '"a1"' });
  return cache;
}

test("an invalidate event drops exactly the entries with those tags and reports them", async () => {
  const Source = fakeEventSourceClass();
  const cache = await filledCache();
  const seen = [];
  const live = liveInvalidation({ cache, EventSource: Source, url: "/api/v1/cache/events", onInvalidate: (tags, removed) => seen.push([tags, removed]) });
  assert.equal(Source.instances.length, 1);
  assert.equal(Source.instances[0].url, "/api/v1/cache/events");
  const source = Source.instances[0];
  assert.equal(live.connected, false);
  source.open();
  source.emit("ready", { instance: "server-a" });
  assert.equal(live.connected, true);
  source.emit("invalidate", { tags: ["model:songs:42", "model:nothing"] }, "17");
  assert.deepEqual(seen, [[["model:songs:42", "model:nothing"], 1]]);
  assert.equal(live.lastEventId, "17");
  assert.equal(await cache.get("song:42"), undefined);
  assert.deepEqual(await cache.get("songs"), [1, 2]);
  assert.deepEqual(await cache.get("song:7"), { id: 7 });
  source.emit("invalidate", { tags: ["model:songs"] }, "18");
  assert.equal(await cache.get("songs"), undefined);
  assert.deepEqual(cache.getEntries().map((e) => e.key).sort(), ["song:7", "users", "with-etag"]);
  // malformed events are ignored
  source.emit("invalidate", "not json", "19");
  source.emit("invalidate", { tags: "model:users" }, "20");
  assert.equal(cache.getMetrics().entries, 3);
  assert.equal(live.lastEventId, "20");
  live.close();
  assert.equal(source.closed, true);
  assert.equal(live.connected, false);
});

test("a reset event marks everything stale: plain entries are dropped, entries with an ETag stay to be revalidated", async () => {
  const Source = fakeEventSourceClass();
  const cache = await filledCache();
  const stale = [];
  liveInvalidation({ cache, EventSource: Source, onStale: (reason) => stale.push(reason) });
  const source = Source.instances[0];
  source.open();
  source.emit("ready", { instance: "a" });
  source.emit("reset", {});
  assert.deepEqual(stale, ["reset"]);
  assert.equal(await cache.get("users"), undefined);
  assert.equal(await cache.get("with-etag"), undefined);
  assert.deepEqual(cache.getEntries().map((e) => [e.key, e.stale]), [["with-etag", true]]);
});

test("a reconnect after a successful connection marks everything stale; the first connection does not", async () => {
  const Source = fakeEventSourceClass();
  const cache = await filledCache();
  const stale = [];
  const live = liveInvalidation({ cache, EventSource: Source, onStale: (reason) => stale.push(reason) });
  const source = Source.instances[0];
  source.fail(); // a failure before ever connecting
  source.open();
  source.emit("ready", { instance: "a" });
  assert.deepEqual(stale, [], "first connection: nothing marked stale");
  assert.equal(cache.getMetrics().entries, 5);
  source.fail(); // the browser reconnects by itself
  assert.equal(live.connected, false);
  assert.equal(cache.getMetrics().entries, 5, "nothing is marked while disconnected");
  source.open();
  source.emit("ready", { instance: "a" }); // open then ready: marked once
  assert.deepEqual(stale, ["reconnect"]);
  assert.equal(live.connected, true);
  assert.deepEqual(cache.getEntries().map((e) => [e.key, e.stale]), [["with-etag", true]]);
  live.close();
});

test("when the browser gives up (stream closed), a new EventSource is opened after reconnectDelay and the reconnect marks stale", async () => {
  const Source = fakeEventSourceClass();
  const cache = await filledCache();
  const live = liveInvalidation({ cache, EventSource: Source, reconnectDelay: 5 });
  Source.instances[0].emit("ready", { instance: "a" });
  Source.instances[0].fail({ closed: true });
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(Source.instances.length, 2);
  Source.instances[1].emit("ready", { instance: "b" });
  assert.equal(live.connected, true);
  assert.equal(cache.getMetrics().entries, 1, "only the entry with an ETag is left, stale");
  // events of the old source are ignored
  Source.instances[0].emit("invalidate", { tags: ["model:albums"] });
  assert.equal(cache.getMetrics().entries, 1);
  live.close();
  Source.instances[1].fail({ closed: true });
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(Source.instances.length, 2, "no reconnect after close()");
});

test("without EventSource: a handle that is never connected, and nothing throws", () => {
  const saved = globalThis.EventSource;
  try {
    delete globalThis.EventSource;
    const live = liveInvalidation({ cache: new ClientCache({ storage: null }) });
    assert.equal(live.connected, false);
    assert.equal(live.lastEventId, undefined);
    live.close();
    assert.equal(live.connected, false);
  } finally {
    if (saved !== undefined) globalThis.EventSource = saved;
  }
});

test("an EventSource constructor that throws does not throw out of liveInvalidation", () => {
  const live = liveInvalidation({
    cache: new ClientCache({ storage: null }),
    EventSource: class { constructor() { throw new SyntaxError("bad url"); } },
  });
  assert.equal(live.connected, false);
  live.close();
});
