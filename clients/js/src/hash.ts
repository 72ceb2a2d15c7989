// hash.ts — one-way hashing of credentials and header values before they become part of a cache key.

/**
 * Hashes `text` to lowercase hex: SHA-256 through `crypto.subtle` where the page has it
 * (secure contexts: https and localhost). Elsewhere it falls back to a fast 53-bit
 * non-cryptographic hash (cyrb53, prefixed `w:`): still not the credential in clear,
 * but not resistant to a determined attacker with access to localStorage.
 *
 * @example
 * const keyPart = await hashText("Bearer eyJhbGciOi..."); // "5f1c…" (64 hex digits)
 */
export async function hashText(text: string): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle !== undefined) {
    try {
      const digest = await subtle.digest("SHA-256", new TextEncoder().encode(text));
      return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    } catch {
      // fall through to the weak hash
    }
  }
  return "w:" + weakHash(text).toString(16);
}

/**
 * cyrb53: a fast non-cryptographic 53-bit string hash (public domain, by bryc).
 *
 * @example
 * weakHash("abc") === weakHash("abc") // true
 */
export function weakHash(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
