/** Cryptographically secure random bytes from the platform CSPRNG. */

// getRandomValues refuses more than 65536 bytes per call (WebCrypto QuotaExceededError).
const MAX_CHUNK = 65536;

export function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`randomBytes: bad length ${n}`);
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += MAX_CHUNK) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + MAX_CHUNK)));
  }
  return out;
}
