/**
 * PKCS#8 wrapping of raw 32-byte Ed25519/X25519 private keys (RFC 8410), so WebCrypto can import
 * them. Importing PKCS#8 rather than JWK keeps the secret out of immutable base64 strings and
 * lets WebCrypto bind the key pair itself (a JWK's "x" is not checked against "d").
 */

// SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING { OCTET STRING (32) } }
const PREFIX_HEAD = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65];
const PREFIX_TAIL = [0x04, 0x22, 0x04, 0x20];
const OID_ED25519 = 0x70; // 1.3.101.112
const OID_X25519 = 0x6e; // 1.3.101.110

/** Caller zeroes the result after import. */
export function pkcs8FromSeed(
  curve: "Ed25519" | "X25519",
  seed: Uint8Array,
): Uint8Array<ArrayBuffer> {
  if (seed.length !== 32) throw new RangeError(`${curve}: seed must be 32 bytes`);
  const oid = curve === "Ed25519" ? OID_ED25519 : OID_X25519;
  const out = new Uint8Array(PREFIX_HEAD.length + 1 + PREFIX_TAIL.length + 32);
  out.set(PREFIX_HEAD, 0);
  out[PREFIX_HEAD.length] = oid;
  out.set(PREFIX_TAIL, PREFIX_HEAD.length + 1);
  out.set(seed, PREFIX_HEAD.length + 1 + PREFIX_TAIL.length);
  return out;
}
