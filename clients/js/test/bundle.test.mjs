// bundle.test.mjs — the shipped dist/querycache.js is one self-contained ES module exporting the public API.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as client from "../dist/querycache.js";

const source = readFileSync(new URL("../dist/querycache.js", import.meta.url), "utf8");

test("dist/querycache.js has no imports and exports exactly the public API", () => {
  assert.doesNotMatch(source, /^\s*import\s/m);
  assert.doesNotMatch(source, /\bimport\(/);
  assert.deepEqual(Object.keys(client).sort(), ["ClientCache", "cachedFetch", "defaultCache", "liveInvalidation"]);
  assert.equal(typeof client.ClientCache, "function");
});

test("dist/querycache.js loads from a data: URL, as a page importing it with no build step would", async () => {
  const loaded = await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
  const cache = new loaded.ClientCache({ storage: null });
  await cache.set("k", { ok: true });
  assert.deepEqual(await cache.get("k"), { ok: true });
});
