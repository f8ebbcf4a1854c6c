/**
 * den's own room-chat cryptography (docs/CHAT.md): a committed hybrid X25519 + ML-KEM-768
 * exchange, per-direction keys from the whole transcript, and message records padded to fixed
 * buckets and sealed with ChaCha20-Poly1305 under a counter nonce. Pure functions: the state
 * machine (room_session.ts) decides when each one runs.
 */
import { x25519 } from "@noble/curves/ed25519.js";
import { chachaOpen, chachaSeal } from "../crypto/aead.ts";
import { compareBytes, concatBytes, equalBytes, fromUtf8, utf8 } from "../crypto/encoding.ts";
import { hkdfSha256, sha256 } from "../crypto/kdf.ts";
import {
  MLKEM768_CIPHERTEXT_BYTES,
  MLKEM768_PUBLIC_KEY_BYTES,
  mlkemDecapsulate,
  mlkemEncapsulate,
  mlkemFromSeed,
  mlkemPublicKeyIsValid,
} from "../crypto/kem.ts";
import { sasWords } from "../trust/sas.ts";
import { ChatViolation } from "./violation.ts";

export const CHAT_PROTOCOL = "den-chat-v1";
/** Padded plaintext sizes: every sealed message is one of these plus the 16-byte tag. */
export const PAD_BUCKETS = [256, 1024, 4096] as const;
/** Type (1 byte) and body length (2 bytes, big-endian) ahead of the body. */
export const RECORD_HEADER_BYTES = 3;
const COUNTER_BYTES = 8;
const TAG_BYTES = 16;

export const RecordType = { ready: 1, text: 2, bye: 3 } as const;
export type RecordType = typeof RecordType[keyof typeof RecordType];

/** Random bytes on demand: the CSPRNG in use, a seeded source in tests and vectors. */
export type RandomSource = (n: number) => Uint8Array;

/** One side's ephemeral keys; `hello` is what it reveals: X25519 public ‖ ML-KEM-768 public. */
export interface ChatKeyPair {
  x25519Secret: Uint8Array;
  mlkemSecret: Uint8Array;
  hello: Uint8Array;
}

export const HELLO_BYTES = 32 + MLKEM768_PUBLIC_KEY_BYTES;

export function chatKeyPair(random: RandomSource): ChatKeyPair {
  const x25519Secret = random(32);
  const seed = random(64);
  const kem = mlkemFromSeed(seed);
  seed.fill(0);
  return {
    x25519Secret,
    mlkemSecret: kem.secretKey,
    hello: concatBytes(x25519.getPublicKey(x25519Secret), kem.publicKey),
  };
}

/** Sent before the hello, so neither side can choose its keys after seeing the other's. */
export function helloCommitment(hello: Uint8Array): Uint8Array {
  return sha256(concatBytes(utf8(`${CHAT_PROTOCOL} commit`), hello));
}

/** Checks a revealed hello against its commitment and the key rules; returns the peer's keys. */
export function checkPeerHello(
  hello: Uint8Array,
  commitment: Uint8Array,
  ours: Uint8Array,
): { x25519: Uint8Array; mlkem: Uint8Array } {
  if (hello.length !== HELLO_BYTES) {
    throw new ChatViolation(`key exchange: hello is ${hello.length} bytes, not ${HELLO_BYTES}`);
  }
  if (!equalBytes(helloCommitment(hello), commitment)) {
    throw new ChatViolation("key exchange: the revealed keys do not match their commitment");
  }
  if (equalBytes(hello, ours)) {
    throw new ChatViolation("key exchange: our own keys came back (a reflected message)");
  }
  const mlkem = hello.subarray(32);
  if (!mlkemPublicKeyIsValid(mlkem)) {
    throw new ChatViolation("key exchange: the ML-KEM-768 public key is invalid");
  }
  return { x25519: hello.subarray(0, 32), mlkem };
}

export function x25519Agree(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(secret, peerPublic);
  } catch {
    throw new ChatViolation("key exchange: the X25519 public key is invalid");
  }
  // A low-order peer point makes the "shared" secret public (RFC 7748 §6.1).
  if (shared.every((b) => b === 0)) {
    throw new ChatViolation("key exchange: the X25519 public key is a low-order point");
  }
  return shared;
}

export function encapsulateTo(mlkemPublic: Uint8Array, random: RandomSource) {
  const m = random(32);
  try {
    return mlkemEncapsulate(mlkemPublic, m);
  } finally {
    m.fill(0); // with the public key, it would rebuild the shared secret
  }
}

export function decapsulateFrom(cipherText: Uint8Array, mlkemSecret: Uint8Array): Uint8Array {
  if (cipherText.length !== MLKEM768_CIPHERTEXT_BYTES) {
    throw new ChatViolation(
      `key exchange: ML-KEM ciphertext is ${cipherText.length} bytes, not ${MLKEM768_CIPHERTEXT_BYTES}`,
    );
  }
  return mlkemDecapsulate(cipherText, mlkemSecret);
}

export interface ChatKeys {
  send: Uint8Array;
  receive: Uint8Array;
  /** Six words both people read aloud: equal words mean no one in the middle swapped keys. */
  sas: string[];
}

export interface Exchange {
  ourHello: Uint8Array;
  theirHello: Uint8Array;
  x25519Shared: Uint8Array;
  /** Our ciphertext (to their ML-KEM key) and its secret. */
  sentCt: Uint8Array;
  sentSecret: Uint8Array;
  /** Their ciphertext (to our key) and the secret we decapsulated. */
  receivedCt: Uint8Array;
  receivedSecret: Uint8Array;
}

/**
 * Roles come from the hellos' byte order (A sorts first), so both sides order the transcript
 * the same way without anyone being told who started. The words cover the committed hellos only:
 * the ciphertexts are chosen after the hellos are known, so a machine in the middle could grind
 * them, but it cannot read them without the committed ML-KEM secret key.
 */
export function deriveChatKeys(x: Exchange): ChatKeys {
  const order = compareBytes(x.ourHello, x.theirHello);
  if (order === 0) throw new ChatViolation("key exchange: both sides sent the same keys");
  const weAreA = order < 0;
  const [helloA, helloB] = weAreA ? [x.ourHello, x.theirHello] : [x.theirHello, x.ourHello];
  const [ctA, ctB] = weAreA ? [x.sentCt, x.receivedCt] : [x.receivedCt, x.sentCt];
  const [ssA, ssB] = weAreA ? [x.sentSecret, x.receivedSecret] : [x.receivedSecret, x.sentSecret];
  const transcript = sha256(concatBytes(utf8(CHAT_PROTOCOL), helloA, helloB, ctA, ctB));
  const ikm = concatBytes(x.x25519Shared, ssA, ssB);
  const okm = hkdfSha256(ikm, transcript, utf8(`${CHAT_PROTOCOL} keys`), 64);
  ikm.fill(0);
  const aToB = okm.slice(0, 32), bToA = okm.slice(32, 64);
  okm.fill(0);
  const sas = sasWords(sha256(concatBytes(utf8(`${CHAT_PROTOCOL} sas`), helloA, helloB)));
  return weAreA ? { send: aToB, receive: bToA, sas } : { send: bToA, receive: aToB, sas };
}

/** The smallest bucket that holds a record with `bodyBytes` of body. */
export function bucketFor(bodyBytes: number): number {
  const need = RECORD_HEADER_BYTES + bodyBytes;
  const bucket = PAD_BUCKETS.find((b) => b >= need);
  if (bucket === undefined) throw new RangeError(`a chat record body of ${bodyBytes} bytes`);
  return bucket;
}

/** The wire size of a sealed record (counter ‖ ciphertext ‖ tag) for each bucket. */
export const SEALED_SIZES: readonly number[] = PAD_BUCKETS.map((b) =>
  COUNTER_BYTES + b + TAG_BYTES
);

function nonceFor(counter: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, false);
  return nonce;
}

const RECORD_AAD = utf8(`${CHAT_PROTOCOL} msg`);

/** counter (8, big-endian) ‖ ChaCha20-Poly1305(type ‖ length ‖ body ‖ zero padding). */
export function sealRecord(
  key: Uint8Array,
  counter: bigint,
  type: RecordType,
  body: Uint8Array,
): Uint8Array {
  const padded = new Uint8Array(bucketFor(body.length));
  padded[0] = type;
  new DataView(padded.buffer).setUint16(1, body.length, false);
  padded.set(body, RECORD_HEADER_BYTES);
  const out = new Uint8Array(COUNTER_BYTES + padded.length + TAG_BYTES);
  new DataView(out.buffer).setBigUint64(0, counter, false);
  out.set(chachaSeal(key, nonceFor(counter), padded, RECORD_AAD), COUNTER_BYTES);
  padded.fill(0);
  return out;
}

/**
 * Opens a record that must carry counter `expected`: anything else is a replay, a duplicate or a
 * reordering, and ends the session. Padding must be zero, so a record has one valid form.
 */
export function openRecord(
  key: Uint8Array,
  expected: bigint,
  sealed: Uint8Array,
): { type: RecordType; body: Uint8Array } {
  if (!SEALED_SIZES.includes(sealed.length)) {
    throw new ChatViolation(`message of ${sealed.length} bytes is not one of the padded sizes`);
  }
  const counter = new DataView(sealed.buffer, sealed.byteOffset).getBigUint64(0, false);
  if (counter < expected) {
    throw new ChatViolation(`message number ${counter} was already received (a replay)`);
  }
  if (counter > expected) {
    throw new ChatViolation(
      `message number ${counter} arrived where ${expected} was due (reordered or dropped)`,
    );
  }
  let padded: Uint8Array;
  try {
    padded = chachaOpen(key, nonceFor(counter), sealed.subarray(COUNTER_BYTES), RECORD_AAD);
  } catch {
    throw new ChatViolation("a message failed to decrypt (altered, or keys do not match)");
  }
  const type = padded[0];
  const length = new DataView(padded.buffer, padded.byteOffset).getUint16(1, false);
  if (type !== RecordType.ready && type !== RecordType.text && type !== RecordType.bye) {
    throw new ChatViolation(`unknown record type ${type}`);
  }
  const end = RECORD_HEADER_BYTES + length;
  if (end > padded.length || padded.subarray(end).some((b) => b !== 0)) {
    throw new ChatViolation("a message's padding is malformed");
  }
  return { type, body: padded.slice(RECORD_HEADER_BYTES, end) };
}

export function decodeText(body: Uint8Array): string {
  try {
    return fromUtf8(body);
  } catch {
    throw new ChatViolation("a message is not valid UTF-8");
  }
}
