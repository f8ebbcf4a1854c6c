/**
 * Data-plane packet keys (docs/DATAPLANE.md, "Keys"). Every key comes from the peer session's
 * data-plane secret, itself derived from the hybrid X25519 + ML-KEM-768 handshake secret and the
 * whole transcript (session/keyschedule.ts): the data plane is as post-quantum as the session.
 * A receive slot's key also binds the fresh salt of its offer, the offerer and the slot index, so
 * two slots never share a key and a key never outlives its session.
 */
import { concatBytes, u32be, utf8 } from "../../crypto/encoding.ts";
import { hkdfSha256 } from "../../crypto/kdf.ts";

export const PACKET_KEY_LABEL = "den/v1 data plane packets";

/** The key of the receive slot `index` that `offerer` (its fingerprint) opened with `salt`. */
export function packetKey(
  dataPlaneSecret: Uint8Array,
  salt: Uint8Array,
  offerer: string,
  index: number,
): Uint8Array {
  const info = concatBytes(utf8(PACKET_KEY_LABEL), utf8(offerer), u32be(index));
  return hkdfSha256(dataPlaneSecret, salt, info, 32);
}
