/**
 * Fingerprints: SHA-256 over a domain-separated, length-prefixed encoding of the three public
 * keys, written as 52 lowercase base32 characters (256 bits, no padding).
 */
import { concatBytes, fromBase32, toBase32, u32be, utf8 } from "../crypto/encoding.ts";
import { sha256 } from "../crypto/kdf.ts";
import { DenError, Exit } from "../errors.ts";
import { PUBLIC_KEY_BYTES, type PublicKeys } from "./keys.ts";

export const FINGERPRINT_DOMAIN = "den-fingerprint-v1";
export const FINGERPRINT_CHARS = 52;
export const SHORT_FINGERPRINT_CHARS = 16;

export function fingerprint(pub: PublicKeys): string {
  for (const k of ["ed25519", "x25519", "mlkem768"] as const) {
    if (pub[k].length !== PUBLIC_KEY_BYTES[k]) {
      throw new RangeError(`${k} public key must be ${PUBLIC_KEY_BYTES[k]} bytes`);
    }
  }
  const encoded = concatBytes(
    utf8(FINGERPRINT_DOMAIN),
    u32be(pub.ed25519.length),
    pub.ed25519,
    u32be(pub.x25519.length),
    pub.x25519,
    u32be(pub.mlkem768.length),
    pub.mlkem768,
  );
  return toBase32(sha256(encoded));
}

/**
 * Canonical form of a user-typed fingerprint: case-insensitive, spaces, tabs, '-' and ':'
 * ignored. Throws "bad_fingerprint" (usage error) unless it is exactly 52 base32 characters
 * that encode 32 bytes.
 */
export function normalizeFingerprint(input: string): string {
  const s = input.replace(/[\s:-]/g, "").toLowerCase();
  let ok = s.length === FINGERPRINT_CHARS && /^[a-z2-7]+$/.test(s);
  if (ok) {
    try {
      fromBase32(s); // the last character carries 1 bit; the other 4 must be zero
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    const shown = input.length > 80 ? input.slice(0, 80) + "…" : input;
    throw new DenError(
      "bad_fingerprint",
      `not a den fingerprint: ${JSON.stringify(shown)} (${s.length} characters after removing ` +
        `separators)`,
      {
        exit: Exit.usage,
        hint: `a fingerprint is ${FINGERPRINT_CHARS} characters of a-z and 2-7, as printed by ` +
          "`den status` on that node; copy it whole (spaces, '-' and ':' are ignored)",
      },
    );
  }
  return s;
}

/** The first 16 characters (80 bits): for display in lists, never for pinning. */
export function shortFingerprint(fp: string): string {
  return fp.slice(0, SHORT_FINGERPRINT_CHARS);
}
