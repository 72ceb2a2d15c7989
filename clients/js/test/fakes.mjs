// fakes.mjs — test doubles for the browser APIs the client uses: localStorage (with a quota and a
// private mode that throws on access), fetch (a scripted server that records requests) and EventSource.

/** A Web Storage in memory. `quota` counts characters of keys and values (like browsers, in UTF-16 units). */
export class FakeStorage {
  /** @param {{ quota?: number, throwOnAccess?: boolean }} [options] */
  constructor({ quota = Infinity, throwOnAccess = false } = {}) {
    this.quota = quota;
    this.throwOnAccess = throwOnAccess;
    this.data = new Map();
    this.setCalls = 0;
  }

  check() {
    if (this.throwOnAccess) throw new DOMException("The operation is insecure.", "SecurityError");
  }

  get length() {
    this.check();
    return this.data.size;
  }

  key(index) {
    this.check();
    return [...this.data.keys()][index] ?? null;
  }

  getItem(key) {
    this.check();
    return this.data.has(String(key)) ? this.data.get(String(key)) : null;
  }

  setItem(key, value) {
    this.check();
    this.setCalls++;
    const k = String(key);
    const v = String(value);
    const previous = this.data.get(k);
    const used = this.usedChars() - (previous === undefined ? 0 : k.length + previous.length) + k.length + v.length;
    if (used > this.quota) {
      throw new DOMException(`Setting the value of '${k}' exceeded the quota.`, "QuotaExceededError");
    }
    this.data.set(k, v);
  }

  removeItem(key) {
    this.check();
    this.data.delete(String(key));
  }

  clear() {
    this.check();
    this.data.clear();
  }

  /** Characters used (keys and values); not affected by throwOnAccess. */
  usedChars() {
    let used = 0;
    for (const [k, v] of this.data) used += k.length + v.length;
    return used;
  }

  /** Test access bypassing the checks. */
  raw(key) {
    return this.data.get(key);
  }

  rawSet(key, value) {
    this.data.set(key, value);
  }

  rawKeys() {
    return [...this.data.keys()];
  }
}

/**
 * A fetch that answers from `handler(request, callNumber)` (which returns a Response or
 * [status, headers, body]) and records every Request it got in `.calls`. Relative URLs are
 * resolved against http://app.test/.
 */
export function fakeFetch(handler) {
  const calls = [];
  const fetch = async (input, init) => {
    const request = input instanceof Request ? new Request(input, init) : new Request(new URL(String(input), "http://app.test/"), init);
    calls.push(request);
    const answer = await handler(request, calls.length);
    if (answer instanceof Response) return answer;
    const [status, headers = {}, body = null] = answer;
    return new Response(status === 304 || status === 204 ? null : body, { status, headers });
  };
  fetch.calls = calls;
  return fetch;
}

/** A fresh EventSource class whose instances are listed in `.instances`, driven by the test. */
export function fakeEventSourceClass() {
  class FakeEventSource {
    static instances = [];

    constructor(url, init) {
      this.url = url;
      this.init = init;
      this.readyState = 0;
      this.closed = false;
      this.listeners = new Map();
      FakeEventSource.instances.push(this);
    }

    addEventListener(type, listener) {
      if (!this.listeners.has(type)) this.listeners.set(type, []);
      this.listeners.get(type).push(listener);
    }

    close() {
      this.readyState = 2;
      this.closed = true;
    }

    dispatch(type, event) {
      for (const listener of this.listeners.get(type) ?? []) listener(event);
    }

    /** The connection opened (fires `open`). */
    open() {
      this.readyState = 1;
      this.dispatch("open", { type: "open" });
    }

    /** A named event with JSON data and an optional id. */
    emit(type, data, id = "") {
      this.dispatch(type, { type, data: typeof data === "string" ? data : JSON.stringify(data), lastEventId: id });
    }

    /** The connection failed: the browser retries (readyState CONNECTING) unless `closed`. */
    fail({ closed = false } = {}) {
      this.readyState = closed ? 2 : 0;
      this.dispatch("error", { type: "error" });
    }
  }
  return FakeEventSource;
}

/** A controllable clock for the `now` option. */
export function fakeClock(start = 1_700_000_000_000) {
  const clock = { t: start, now: () => clock.t, advance: (ms) => { clock.t += ms; } };
  return clock;
}
