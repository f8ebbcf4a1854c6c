/**
 * The handshake's acceptance rules, each a pure function that throws a HandshakeError a user can
 * act on: version negotiation, timestamp freshness, and the peer's identity.
 */
import { equalBytes } from "../crypto/encoding.ts";
import { mlkemPublicKeyIsValid } from "../crypto/kem.ts";
import { DenError } from "../errors.ts";
import { type PublicKeys, validateName } from "../identity/keys.ts";
import { describeSkew, HandshakeError } from "./errors.ts";

/** Handshake timestamps further than this from the local clock are refused. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

export interface VersionRange {
  min: number;
  max: number;
}

/** Responder side: the highest version both ranges contain. */
export function chooseVersion(peer: VersionRange, own: VersionRange): number {
  const v = Math.min(peer.max, own.max);
  if (v < Math.max(peer.min, own.min)) {
    throw new HandshakeError(
      "version",
      `no protocol version in common: the peer speaks ${range(peer)}, this node ` +
        `${range(own)}`,
    );
  }
  return v;
}

/** Initiator side: the responder must have chosen a version we offered. */
export function checkChosenVersion(chosen: number, own: VersionRange): void {
  if (chosen < own.min || chosen > own.max) {
    throw new HandshakeError(
      "version",
      `the peer chose protocol version ${chosen}, but this node speaks ${range(own)}`,
    );
  }
}

function range(r: VersionRange): string {
  return r.min === r.max ? `version ${r.min}` : `versions ${r.min}..${r.max}`;
}

/**
 * A peer's timestamp must be within ±5 minutes of our clock (inclusive), so a handshake message
 * recorded earlier cannot be played back later.
 */
export function checkFreshness(peerTimestamp: number, now: number): void {
  const skew = peerTimestamp - now;
  if (Math.abs(skew) <= MAX_CLOCK_SKEW_MS) return;
  const dir = skew > 0 ? "ahead of" : "behind";
  throw new HandshakeError(
    "stale",
    `the peer's clock is ${describeSkew(skew)} ${dir} this machine's; handshakes need the two ` +
      `clocks within ±5 min (or the message is an old one played back)`,
  );
}

/**
 * After the signature verified: the name follows the node-name rules, the ML-KEM key passes the
 * FIPS 203 input check, and the peer is not this node itself (a connection looped back to us).
 * The X25519 key is only length-checked: any 32 bytes are a key, and its users reject low-order
 * points when they compute with it.
 */
export function checkPeerIdentity(peer: PublicKeys, name: string, own: PublicKeys): void {
  try {
    validateName(name);
  } catch (err) {
    if (!(err instanceof DenError)) throw err;
    throw new HandshakeError("identity", `the peer sent an invalid node name: ${err.message}`);
  }
  if (!mlkemPublicKeyIsValid(peer.mlkem768)) {
    throw new HandshakeError(
      "identity",
      `the peer "${name}" sent an invalid ML-KEM-768 public key (FIPS 203 input check failed)`,
    );
  }
  if (equalBytes(peer.ed25519, own.ed25519)) {
    throw new HandshakeError(
      "identity",
      `the peer presented this node's own identity: the connection looped back to this node`,
      "check the peer's address: it points at this machine (or at a copy of its identity)",
    );
  }
}
