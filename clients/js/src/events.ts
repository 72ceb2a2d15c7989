// events.ts — live invalidation: the server's Server-Sent Events stream of invalidated tags, applied to a ClientCache.

import type { ClientCache } from "./cache.js";
import { defaultCache } from "./default.js";

/** The parts of an `EventSource` used here. @example const source: EventSourceLike = new EventSource("/api/v1/cache/events"); */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

/** An `EventSource` constructor. @example const Source: EventSourceConstructor = EventSource; */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/**
 * Options of {@link liveInvalidation}.
 *
 * @example
 * liveInvalidation({ url: "/api/v1/cache/events", onInvalidate: (tags, removed) => console.log(tags, removed) });
 */
export interface LiveInvalidationOptions {
  /** The stream (default `"/api/v1/cache/events"`). */
  url?: string;
  /** The cache to invalidate (default {@link defaultCache}). */
  cache?: ClientCache;
  /** The EventSource constructor (default `globalThis.EventSource`; none: the handle does nothing). */
  EventSource?: EventSourceConstructor;
  /** Send cookies to a cross-origin stream. */
  withCredentials?: boolean;
  /** Called after each `invalidate` event with its tags and how many entries it removed. */
  onInvalidate?: (tags: string[], removed: number) => void;
  /** Called when everything was marked stale: after a `reset` event, or after reconnecting. */
  onStale?: (reason: "reset" | "reconnect") => void;
  /** Called on `ready` with the server instance's id. */
  onReady?: (instance: string | undefined) => void;
  /** When the browser gives up on the stream (it closed), open a new one after this many ms (default 5000; Infinity: never). */
  reconnectDelay?: number;
}

/**
 * The handle {@link liveInvalidation} returns.
 *
 * @example
 * const live = liveInvalidation(); if (!live.connected) console.log("not connected yet"); live.close();
 */
export interface LiveInvalidationHandle {
  /** Stops listening (and reconnecting). */
  close(): void;
  /** Whether the stream is open now. */
  readonly connected: boolean;
  /** The `id` of the last event received (the server's sequence number), if any. */
  readonly lastEventId: string | undefined;
}

const CLOSED = 2;

/**
 * Listens to the server's invalidation stream and applies it to a cache:
 *
 * - `ready` (`data: {"instance": "..."}`): connected.
 * - `invalidate` (`id: <seq>`, `data: {"tags": [...]}`): `cache.invalidateByTags(tags)`, then `onInvalidate(tags, removed)`.
 * - `reset` (`data: {}`; the server lost events): `cache.markAllStale()`: entries with an ETag must be
 *   revalidated before being served again, the others are dropped.
 * - A reconnection after a connection that had succeeded also marks everything stale (events may
 *   have been missed); the first connection does not.
 *
 * Without an EventSource (old browsers, workers without it, Node) it returns a handle that is never
 * connected and does nothing. It never throws.
 *
 * @example
 * import { liveInvalidation } from "/api/v1/cache/client.js";
 * const live = liveInvalidation({ onInvalidate: (tags) => rerender(tags) });
 * addEventListener("pagehide", () => live.close());
 */
export function liveInvalidation(options: LiveInvalidationOptions = {}): LiveInvalidationHandle {
  const Source = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  let connected = false;
  let lastEventId: string | undefined;
  if (typeof Source !== "function") {
    return { close() {}, get connected() { return false; }, get lastEventId() { return undefined; } };
  }
  const url = options.url ?? "/api/v1/cache/events";
  const reconnectDelay = options.reconnectDelay ?? 5000;
  const cache = options.cache ?? defaultCache();
  let source: EventSourceLike | undefined;
  let everConnected = false;
  let missedSome = false;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const markStale = (reason: "reset" | "reconnect"): void => {
    cache.markAllStale();
    options.onStale?.(reason);
  };
  const onConnected = (): void => {
    if (connected) return;
    connected = true;
    if (everConnected && missedSome) markStale("reconnect");
    everConnected = true;
    missedSome = false;
  };
  const remember = (event: MessageEvent): void => {
    if (typeof event.lastEventId === "string" && event.lastEventId !== "") lastEventId = event.lastEventId;
  };

  const open = (): void => {
    timer = undefined;
    let current: EventSourceLike;
    try {
      current = options.withCredentials === true ? new Source(url, { withCredentials: true }) : new Source(url);
    } catch {
      return;
    }
    source = current;
    current.addEventListener("open", () => {
      if (source === current) onConnected();
    });
    current.addEventListener("ready", (event) => {
      if (source !== current) return;
      onConnected();
      const data = parseData(event.data);
      const instance = data !== undefined && typeof data.instance === "string" ? data.instance : undefined;
      options.onReady?.(instance);
    });
    current.addEventListener("invalidate", (event) => {
      if (source !== current) return;
      remember(event);
      const data = parseData(event.data);
      const tags = data?.tags;
      if (!Array.isArray(tags) || !tags.every((tag): tag is string => typeof tag === "string")) return;
      const removed = cache.invalidateByTags(tags);
      options.onInvalidate?.(tags, removed);
    });
    current.addEventListener("reset", (event) => {
      if (source !== current) return;
      remember(event);
      markStale("reset");
    });
    current.addEventListener("error", () => {
      if (source !== current) return;
      connected = false;
      if (everConnected) missedSome = true;
      if (current.readyState === CLOSED && !closed && Number.isFinite(reconnectDelay)) {
        timer = setTimeout(open, reconnectDelay);
      }
    });
  };
  open();

  return {
    close() {
      closed = true;
      connected = false;
      if (timer !== undefined) clearTimeout(timer);
      source?.close();
      source = undefined;
    },
    get connected() {
      return connected;
    },
    get lastEventId() {
      return lastEventId;
    },
  };
}

function parseData(data: unknown): Record<string, unknown> | undefined {
  if (typeof data !== "string") return undefined;
  try {
    const parsed: unknown = JSON.parse(data);
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
