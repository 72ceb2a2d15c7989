// lru.ts — the recency order of the cache: a Map kept oldest-first, with a running byte total.

/**
 * A least-recently-used index of items that each have a size in bytes.
 * It only keeps order and totals; the eviction policy belongs to its owner.
 *
 * @example
 * const lru = new Lru<string>();
 * lru.set("a", "A", 2);
 * lru.set("b", "B", 2);
 * lru.touch("a");              // "a" is now the most recently used
 * [...lru.oldestFirst()];      // [["b", "B"], ["a", "A"]]
 */
export class Lru<V> {
  private readonly items = new Map<string, { value: V; bytes: number }>();
  private total = 0;

  /** Number of items. @example new Lru<number>().size === 0 */
  get size(): number {
    return this.items.size;
  }

  /** Sum of the items' byte sizes. @example lru.set("k", 1, 10); lru.bytes === 10 */
  get bytes(): number {
    return this.total;
  }

  /** The item under `key`, without changing its recency. @example lru.peek("a") */
  peek(key: string): V | undefined {
    return this.items.get(key)?.value;
  }

  /** Whether `key` is held. @example lru.has("a") */
  has(key: string): boolean {
    return this.items.has(key);
  }

  /** Makes `key` the most recently used; returns its value. @example lru.touch("a") */
  touch(key: string): V | undefined {
    const item = this.items.get(key);
    if (item === undefined) return undefined;
    this.items.delete(key);
    this.items.set(key, item);
    return item.value;
  }

  /** Adds or replaces `key` as the most recently used item. @example lru.set("a", value, 128) */
  set(key: string, value: V, bytes: number): void {
    this.delete(key);
    this.items.set(key, { value, bytes });
    this.total += bytes;
  }

  /** Removes `key`; returns its value if it was held. @example lru.delete("a") */
  delete(key: string): V | undefined {
    const item = this.items.get(key);
    if (item === undefined) return undefined;
    this.items.delete(key);
    this.total -= item.bytes;
    return item.value;
  }

  /** The least recently used key, if any. @example const victim = lru.oldestKey() */
  oldestKey(): string | undefined {
    for (const key of this.items.keys()) return key;
    return undefined;
  }

  /** Items from least to most recently used (a snapshot: safe to delete while iterating). @example for (const [k, v] of lru.oldestFirst()) {} */
  oldestFirst(): Array<[string, V]> {
    return [...this.items].map(([key, item]) => [key, item.value]);
  }

  /** Removes everything. @example lru.clear() */
  clear(): void {
    this.items.clear();
    this.total = 0;
  }
}
