/**
 * The handshake transcript hash and every key derived in a session (docs/PROTOCOL.md, "Key
 * schedule"). Synchronous: HKDF-SHA-256 from @noble/hashes, so the record layer's rekey ratchet
 * can run inside a synchronous seal/open, and the handshake uses the same code.
 */
import { CHACHA_NONCE_BYTES } from "../crypto/aead.ts";
import { concatBytes, u32be, utf8 } from "../crypto/encoding.ts";
import { hkdfSha256, sha256 } from "../crypto/kdf.ts";

export const LABELS = Object.freeze(
  {
    transcript: "den/v1 transcript",
    handshakeResponder: "den/v1 handshake r->i",
    handshakeInitiator: "den/v1 handshake i->r",
    teamTags: "den/v1 team tags",
    trafficInitiator: "den/v1 traffic i->r",
    trafficResponder: "den/v1 traffic r->i",
    rekey: "den/v1 rekey",
    attach: "den/v1 path attach",
    dataPlane: "den/v1 data plane",
    signatureResponder: "den/v1 responder signature",
    signatureInitiator: "den/v1 initiator signature",
  } as const,
);

const KEY_BYTES = 32;

/**
 * A chained hash: h0 = SHA-256(label), then h(n+1) = SHA-256(h(n) ‖ data) for each piece of the
 * handshake in order. Every hash along the way is a value some key or signature is bound to.
 */
export class Transcript {
  #hash: Uint8Array = sha256(utf8(LABELS.transcript));

  absorb(data: Uint8Array): Uint8Array {
    this.#hash = sha256(concatBytes(this.#hash, data));
    return this.#hash.slice();
  }

  get hash(): Uint8Array {
    return this.#hash.slice();
  }
}

export interface HandshakeKeys {
  /** Seals the responder's identity block in M2. */
  responder: Uint8Array;
  /** Seals the initiator's identity block in M3. */
  initiator: Uint8Array;
  /** Keys the HMAC that blinds team ids (teams.ts). */
  teams: Uint8Array;
}

/** `shared` = X25519 shared secret ‖ ML-KEM shared secret; `th2` = transcript hash after M2's header. */
export function handshakeKeys(shared: Uint8Array, th2: Uint8Array): HandshakeKeys {
  return {
    responder: hkdfSha256(shared, th2, utf8(LABELS.handshakeResponder), KEY_BYTES),
    initiator: hkdfSha256(shared, th2, utf8(LABELS.handshakeInitiator), KEY_BYTES),
    teams: hkdfSha256(shared, th2, utf8(LABELS.teamTags), KEY_BYTES),
  };
}

export interface TrafficKeys {
  initiatorToResponder: Uint8Array;
  responderToInitiator: Uint8Array;
  /** Proves, on a new connection, that it belongs to this session (attach.ts). */
  attach: Uint8Array;
  /** The root of the VPN data plane's packet keys (docs/DATAPLANE.md). */
  dataPlane: Uint8Array;
}

/** `sessionId` = the final transcript hash. */
export function trafficKeys(shared: Uint8Array, sessionId: Uint8Array): TrafficKeys {
  return {
    initiatorToResponder: hkdfSha256(
      shared,
      sessionId,
      utf8(LABELS.trafficInitiator),
      KEY_BYTES,
    ),
    responderToInitiator: hkdfSha256(
      shared,
      sessionId,
      utf8(LABELS.trafficResponder),
      KEY_BYTES,
    ),
    attach: hkdfSha256(shared, sessionId, utf8(LABELS.attach), KEY_BYTES),
    dataPlane: hkdfSha256(shared, sessionId, utf8(LABELS.dataPlane), KEY_BYTES),
  };
}

/** The record key of `epoch` (≥ 1) from the key of epoch - 1. One way: old keys stay secret. */
export function nextRecordKey(key: Uint8Array, epoch: number): Uint8Array {
  return hkdfSha256(
    key,
    new Uint8Array(0),
    concatBytes(utf8(LABELS.rekey), u32be(epoch)),
    KEY_BYTES,
  );
}

/** What each side signs: a role label, then the transcript hash so far. */
export function signingInput(role: "initiator" | "responder", th: Uint8Array): Uint8Array {
  const label = role === "initiator" ? LABELS.signatureInitiator : LABELS.signatureResponder;
  return concatBytes(utf8(label), th);
}

/** Each handshake key seals exactly one block, so a constant nonce never repeats under a key. */
export function handshakeNonce(): Uint8Array {
  return new Uint8Array(CHACHA_NONCE_BYTES);
}

export function wipe(...buffers: (Uint8Array | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}
