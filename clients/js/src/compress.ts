// compress.ts — gzip text to base64 and back with the platform's CompressionStream, when it has one.

/**
 * Whether this platform has `CompressionStream` and `DecompressionStream`
 * (browsers since 2023, Node 18+). Without them values are stored uncompressed.
 *
 * @example
 * if (compressionAvailable()) console.log("large values will be gzipped in localStorage");
 */
export function compressionAvailable(): boolean {
  return typeof globalThis.CompressionStream === "function" && typeof globalThis.DecompressionStream === "function";
}

/**
 * Gzips `text` (as UTF-8) and returns the result in base64.
 * Rejects if compression is unavailable.
 *
 * @example
 * const z = await gzipToBase64(JSON.stringify(bigValue));
 */
export async function gzipToBase64(text: string): Promise<string> {
  const input = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(input).arrayBuffer());
  return bytesToBase64(bytes);
}

/**
 * Decodes base64, gunzips it and returns the UTF-8 text. Rejects on bad base64,
 * bad gzip data or invalid UTF-8.
 *
 * @example
 * const json = await base64GunzipToText(z);
 */
export async function base64GunzipToText(base64: string): Promise<string> {
  const bytes = base64ToBytes(base64);
  const output = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const plain = await new Response(output).arrayBuffer();
  return new TextDecoder("utf-8", { fatal: true }).decode(plain);
}

/**
 * Encodes bytes as standard base64 (with padding).
 *
 * @example
 * bytesToBase64(new Uint8Array([104, 105])) === "aGk="
 */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/**
 * Decodes standard base64; throws on characters outside the alphabet.
 *
 * @example
 * base64ToBytes("aGk=") // Uint8Array [104, 105]
 */
export function base64ToBytes(base64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
