/**
 * Relay mailbox frames (docs/RELAY.md, "Mailboxes"): binary WebSocket messages whose first byte is
 * the frame type. Used by `den relay` and by the daemon's relay client. Decoders take untrusted
 * bytes and return null on anything malformed; the payloads and ids they return are views into
 * the input, not copies.
 */
import { concatBytes, fromBase32, fromUtf8, utf8 } from "../crypto/encoding.ts";
import { sha256 } from "../crypto/kdf.ts";
import { ed25519Sign, ed25519Verify } from "../crypto/sign.ts";
import { fingerprint } from "../identity/fingerprint.ts";
import { PUBLIC_KEY_BYTES, type PublicKeys } from "../identity/keys.ts";

export const MailboxFrame = {
  challenge: 0x01,
  auth: 0x02,
  ready: 0x03,
  send: 0x10,
  deliver: 0x11,
  noRoute: 0x12,
  error: 0x7f,
} as const;
export type MailboxFrameType = (typeof MailboxFrame)[keyof typeof MailboxFrame];

/** The relay's cap on one WebSocket message, mailbox frames included. */
export const MAX_WS_MESSAGE = 65536;
export const MAILBOX_ID_BYTES = 32;
/** Type byte and mailbox id in front of a SEND or DELIVER payload. */
export const MAILBOX_HEADER_BYTES = 1 + MAILBOX_ID_BYTES;
export const MAX_MAILBOX_PAYLOAD = MAX_WS_MESSAGE - MAILBOX_HEADER_BYTES; // 65,503
export const CHALLENGE_VERSION = 1;
export const NONCE_BYTES = 32;
export const SIGNATURE_BYTES = 64;
const AUTH_BYTES = 1 + PUBLIC_KEY_BYTES.ed25519 + PUBLIC_KEY_BYTES.x25519 +
  PUBLIC_KEY_BYTES.mlkem768 + SIGNATURE_BYTES;
/** Error messages are for people reading logs; longer ones are cut. */
const MAX_ERROR_MESSAGE = 512;

const MAILBOX_DOMAIN = utf8("den-mailbox-v1");
const AUTH_DOMAIN = utf8("den-relay-auth-v1");

export interface AuthFrame {
  publicKeys: PublicKeys;
  signature: Uint8Array;
}

export interface AddressedPayload {
  /** Destination (SEND, NO_ROUTE) or source (DELIVER) mailbox id. */
  id: Uint8Array;
  payload: Uint8Array;
}

export interface MailboxError {
  code: number;
  message: string;
}

/** The type byte of a frame, or null for an empty one. */
export function frameType(b: Uint8Array): number | null {
  return b.length > 0 ? b[0] : null;
}

/** SHA-256("den-mailbox-v1" ‖ F), F being the 32-byte fingerprint hash. */
export function mailboxId(fingerprintBytes: Uint8Array): Uint8Array {
  if (fingerprintBytes.length !== 32) throw new RangeError("fingerprint hash must be 32 bytes");
  return sha256(concatBytes(MAILBOX_DOMAIN, fingerprintBytes));
}

/** The mailbox id of the node with these public keys. */
export function mailboxIdOf(pub: PublicKeys): Uint8Array {
  return mailboxId(fromBase32(fingerprint(pub)));
}

/** What AUTH signs: "den-relay-auth-v1" ‖ nonce. */
export function authSigningInput(nonce: Uint8Array): Uint8Array {
  return concatBytes(AUTH_DOMAIN, nonce);
}

function typed(type: MailboxFrameType, ...parts: Uint8Array[]): Uint8Array {
  return concatBytes(Uint8Array.of(type), ...parts);
}

function checkLength(name: string, b: Uint8Array, n: number): void {
  if (b.length !== n) throw new RangeError(`${name} must be ${n} bytes, got ${b.length}`);
}

/**
 * CHALLENGE: type ‖ version ‖ nonce, and, when the relay runs a UDP reflector (docs/NAT.md), its
 * two ports (u16be each) after the nonce.
 */
export function encodeChallenge(
  nonce: Uint8Array,
  reflector: readonly [number, number] | null = null,
): Uint8Array {
  checkLength("nonce", nonce, NONCE_BYTES);
  const head = typed(MailboxFrame.challenge, Uint8Array.of(CHALLENGE_VERSION), nonce);
  if (reflector === null) return head;
  for (const p of reflector) {
    if (!Number.isInteger(p) || p < 1 || p > 0xffff) throw new RangeError(`reflector port ${p}`);
  }
  const [a, b] = reflector;
  return concatBytes(head, Uint8Array.of(a >> 8, a & 0xff, b >> 8, b & 0xff));
}

const CHALLENGE_BYTES = 2 + NONCE_BYTES;
const CHALLENGE_WITH_PORTS = CHALLENGE_BYTES + 4;

/** The nonce, or null for a malformed frame or another challenge version. */
export function decodeChallenge(b: Uint8Array): Uint8Array | null {
  if (b.length !== CHALLENGE_BYTES && b.length !== CHALLENGE_WITH_PORTS) return null;
  if (b[0] !== MailboxFrame.challenge || b[1] !== CHALLENGE_VERSION) return null;
  return b.subarray(2, CHALLENGE_BYTES);
}

/** The reflector ports a (valid) challenge announces; null when it has none or is malformed. */
export function challengeReflector(b: Uint8Array): [number, number] | null {
  if (b.length !== CHALLENGE_WITH_PORTS || decodeChallenge(b) === null) return null;
  const a = (b[CHALLENGE_BYTES] << 8) | b[CHALLENGE_BYTES + 1];
  const c = (b[CHALLENGE_BYTES + 2] << 8) | b[CHALLENGE_BYTES + 3];
  return a === 0 || c === 0 ? null : [a, c];
}

export function encodeAuth(pub: PublicKeys, signature: Uint8Array): Uint8Array {
  checkLength("ed25519 public key", pub.ed25519, PUBLIC_KEY_BYTES.ed25519);
  checkLength("x25519 public key", pub.x25519, PUBLIC_KEY_BYTES.x25519);
  checkLength("ml-kem-768 public key", pub.mlkem768, PUBLIC_KEY_BYTES.mlkem768);
  checkLength("signature", signature, SIGNATURE_BYTES);
  return typed(MailboxFrame.auth, pub.ed25519, pub.x25519, pub.mlkem768, signature);
}

export function decodeAuth(b: Uint8Array): AuthFrame | null {
  if (b.length !== AUTH_BYTES || b[0] !== MailboxFrame.auth) return null;
  let off = 1;
  const take = (n: number) => b.subarray(off, off += n);
  const ed25519 = take(PUBLIC_KEY_BYTES.ed25519);
  const x25519 = take(PUBLIC_KEY_BYTES.x25519);
  const mlkem768 = take(PUBLIC_KEY_BYTES.mlkem768);
  return { publicKeys: { ed25519, x25519, mlkem768 }, signature: take(SIGNATURE_BYTES) };
}

/** The AUTH frame answering `nonce`, signed with the node's Ed25519 key. */
export async function signAuth(
  signing: CryptoKey,
  pub: PublicKeys,
  nonce: Uint8Array,
): Promise<Uint8Array> {
  return encodeAuth(pub, await ed25519Sign(signing, authSigningInput(nonce)));
}

/** The mailbox id AUTH proves for `nonce`, or null when the signature does not verify. */
export async function verifyAuth(auth: AuthFrame, nonce: Uint8Array): Promise<Uint8Array | null> {
  const ok = await ed25519Verify(auth.publicKeys.ed25519, authSigningInput(nonce), auth.signature);
  return ok ? mailboxIdOf(auth.publicKeys) : null;
}

export function encodeReady(id: Uint8Array): Uint8Array {
  checkLength("mailbox id", id, MAILBOX_ID_BYTES);
  return typed(MailboxFrame.ready, id);
}

export function decodeReady(b: Uint8Array): Uint8Array | null {
  if (b.length !== MAILBOX_HEADER_BYTES || b[0] !== MailboxFrame.ready) return null;
  return b.subarray(1);
}

function encodeAddressed(type: MailboxFrameType, id: Uint8Array, payload: Uint8Array) {
  checkLength("mailbox id", id, MAILBOX_ID_BYTES);
  if (payload.length < 1 || payload.length > MAX_MAILBOX_PAYLOAD) {
    throw new RangeError(`payload must be 1..${MAX_MAILBOX_PAYLOAD} bytes, got ${payload.length}`);
  }
  return typed(type, id, payload);
}

function decodeAddressed(type: MailboxFrameType, b: Uint8Array): AddressedPayload | null {
  if (b.length <= MAILBOX_HEADER_BYTES || b.length > MAX_WS_MESSAGE || b[0] !== type) return null;
  return { id: b.subarray(1, MAILBOX_HEADER_BYTES), payload: b.subarray(MAILBOX_HEADER_BYTES) };
}

export function encodeSend(dst: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeAddressed(MailboxFrame.send, dst, payload);
}

/** `id` is the destination mailbox. */
export function decodeSend(b: Uint8Array): AddressedPayload | null {
  return decodeAddressed(MailboxFrame.send, b);
}

export function encodeDeliver(src: Uint8Array, payload: Uint8Array): Uint8Array {
  return encodeAddressed(MailboxFrame.deliver, src, payload);
}

/** `id` is the source mailbox. */
export function decodeDeliver(b: Uint8Array): AddressedPayload | null {
  return decodeAddressed(MailboxFrame.deliver, b);
}

/** The 33 bytes in front of a DELIVER payload; the relay makes it once per mailbox. */
export function deliverHeader(src: Uint8Array): Uint8Array {
  checkLength("mailbox id", src, MAILBOX_ID_BYTES);
  return typed(MailboxFrame.deliver, src);
}

export function encodeNoRoute(dst: Uint8Array): Uint8Array {
  checkLength("mailbox id", dst, MAILBOX_ID_BYTES);
  return typed(MailboxFrame.noRoute, dst);
}

export function decodeNoRoute(b: Uint8Array): Uint8Array | null {
  if (b.length !== MAILBOX_HEADER_BYTES || b[0] !== MailboxFrame.noRoute) return null;
  return b.subarray(1);
}

/** UTF-8 of `s`, cut to at most `max` bytes without splitting a character. */
function boundedUtf8(s: string, max: number): Uint8Array {
  const b = utf8(s);
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--; // back off continuation bytes
  return b.subarray(0, end);
}

export function encodeError(code: number, message: string): Uint8Array {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
    throw new RangeError(`error code ${code} does not fit in 2 bytes`);
  }
  return typed(
    MailboxFrame.error,
    Uint8Array.of(code >> 8, code & 0xff),
    boundedUtf8(message, MAX_ERROR_MESSAGE),
  );
}

export function decodeError(b: Uint8Array): MailboxError | null {
  if (b.length < 3 || b.length > MAX_WS_MESSAGE || b[0] !== MailboxFrame.error) return null;
  try {
    return { code: (b[1] << 8) | b[2], message: fromUtf8(b.subarray(3)) };
  } catch {
    return null;
  }
}
