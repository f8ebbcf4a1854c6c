/**
 * The encrypted record layer of a session (docs/PROTOCOL.md, "Records"). Pure and synchronous:
 * ChaCha20-Poly1305 from node:crypto, nonce = the record header (key epoch ‖ counter), which is
 * also the associated data. One sender and one receiver per direction, each with its own key.
 *
 * The transport is in order (TCP, relay): the receiver accepts exactly the next counter, so a
 * replayed, reordered, dropped, truncated or altered record is a RecordError and the caller
 * closes the session. A failed open changes nothing in the receiver.
 *
 * Counters run on across key epochs rather than restarting at 0: otherwise records dropped just
 * before a rekey would go unnoticed (the receiver cannot tell where the old epoch ended).
 */
import { CHACHA_TAG_BYTES, chachaOpen, chachaSealInPlace } from "../crypto/aead.ts";
import { DenError } from "../errors.ts";
import { readRecordHeader, RECORD_HEADER_BYTES, writeRecordHeader } from "./codec.ts";
import { RecordError } from "./errors.ts";
import { nextRecordKey, wipe } from "./keyschedule.ts";

export { RecordError } from "./errors.ts";

export const MAX_RECORD_PAYLOAD = 65535;
/** Header (12) + record type (1) + AEAD tag (16). */
export const RECORD_OVERHEAD = RECORD_HEADER_BYTES + 1 + CHACHA_TAG_BYTES;
/** The largest record on the wire; transports bound frames with it. */
export const MAX_RECORD_BYTES = RECORD_OVERHEAD + MAX_RECORD_PAYLOAD;

export const DEFAULT_REKEY_BYTES = 2 ** 30; // 1 GiB of payload
export const DEFAULT_REKEY_MS = 10 * 60 * 1000;

const MAX_EPOCH = 0xffffffff;
const KEY_BYTES = 32;

export interface RekeyLimits {
  /** Payload bytes sealed under one key before the sender moves to the next. */
  bytes: number;
  /** Milliseconds under one key before the sender moves to the next. */
  ms: number;
}

/** Fills in the defaults; each limit must be a positive number (RangeError otherwise). */
export function rekeyLimits(opts: { bytes?: number; ms?: number } = {}): RekeyLimits {
  const bytes = opts.bytes ?? DEFAULT_REKEY_BYTES;
  const ms = opts.ms ?? DEFAULT_REKEY_MS;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new RangeError(`rekey.bytes must be a positive integer, got ${bytes}`);
  }
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new RangeError(`rekey.ms must be a positive number, got ${ms}`);
  }
  return { bytes, ms };
}

export class RecordSender {
  #key: Uint8Array;
  #epoch = 0;
  #counter = 0;
  #bytesSealed = 0;
  #sinceRekey = 0;
  #rekeyedAt: number;
  readonly #limits: RekeyLimits;

  /** `key` is copied; `now` (ms) starts the rekey clock. */
  constructor(key: Uint8Array, opts: { now: number; rekey?: { bytes?: number; ms?: number } }) {
    if (key.length !== KEY_BYTES) throw new RangeError("record key must be 32 bytes");
    checkNow(opts.now);
    this.#key = key.slice();
    this.#rekeyedAt = opts.now;
    this.#limits = rekeyLimits(opts.rekey);
  }

  /** Payload bytes sealed over the session's lifetime, all epochs. */
  get bytesSealed(): number {
    return this.#bytesSealed;
  }

  /** The key epoch the next record will use unless it triggers a rekey. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * One record: header ‖ ChaCha20-Poly1305(type ‖ payload) ‖ tag. Moves to the next key first
   * when the byte or time limit is reached; the receiver follows on its own, so traffic never
   * waits. A bad type, an oversize payload or a bad clock value is a programming error
   * (RangeError).
   */
  seal(type: number, payload: Uint8Array, now: number): Uint8Array {
    if (!Number.isInteger(type) || type < 0 || type > 255) {
      throw new RangeError(`record type must be 0..255, got ${type}`);
    }
    if (payload.length > MAX_RECORD_PAYLOAD) {
      throw new RangeError(
        `record payload is ${payload.length} bytes; at most ${MAX_RECORD_PAYLOAD} (split it)`,
      );
    }
    checkNow(now);
    if (this.#key.length === 0) throw new Error("RecordSender used after close()");
    if (!Number.isSafeInteger(this.#counter)) {
      throw new RangeError("record counter exhausted (2^53 records); start a new session");
    }
    if (this.#sinceRekey >= this.#limits.bytes || now - this.#rekeyedAt >= this.#limits.ms) {
      this.#rekey(now);
    }
    // One allocation: header, then type ‖ payload encrypted in place, then the tag.
    const out = new Uint8Array(RECORD_OVERHEAD + payload.length);
    writeRecordHeader(out, this.#epoch, this.#counter);
    out[RECORD_HEADER_BYTES] = type;
    out.set(payload, RECORD_HEADER_BYTES + 1);
    const header = out.subarray(0, RECORD_HEADER_BYTES);
    chachaSealInPlace(this.#key, header, out.subarray(RECORD_HEADER_BYTES), header);
    this.#counter++;
    this.#sinceRekey += payload.length;
    this.#bytesSealed += payload.length;
    return out;
  }

  /** Zeroes the key; the sender cannot be used afterwards. */
  close(): void {
    wipe(this.#key);
    this.#key = new Uint8Array(0);
  }

  #rekey(now: number): void {
    if (this.#epoch === MAX_EPOCH) {
      throw new RecordError("epoch", "the session used up its 2^32 keys; start a new one");
    }
    const next = nextRecordKey(this.#key, this.#epoch + 1);
    wipe(this.#key);
    this.#key = next;
    this.#epoch++;
    this.#sinceRekey = 0;
    this.#rekeyedAt = now;
  }
}

export class RecordReceiver {
  #key: Uint8Array;
  #epoch = 0;
  #next = 0;

  /** `key` is copied. */
  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError("record key must be 32 bytes");
    this.#key = key.slice();
  }

  /** The key epoch of the last record opened (0 before any). */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Accepts exactly the next record: counter = the next expected one, and epoch = current or
   * current + 1 (the sender rekeyed: the receiver ratchets too and zeroes the old key). Anything
   * else is a RecordError, and the receiver's state is unchanged.
   */
  open(record: Uint8Array): { type: number; payload: Uint8Array } {
    if (this.#key.length === 0) throw new Error("RecordReceiver used after close()");
    if (record.length < RECORD_OVERHEAD) {
      throw new RecordError(
        "truncated",
        `record of ${record.length} bytes is shorter than the minimum ${RECORD_OVERHEAD}`,
      );
    }
    if (record.length > MAX_RECORD_BYTES) {
      throw new RecordError(
        "oversize",
        `record of ${record.length} bytes is longer than the maximum ${MAX_RECORD_BYTES}`,
      );
    }
    const { epoch, counter } = readRecordHeader(record);
    const ratchet = epoch === this.#epoch + 1;
    if (!ratchet && epoch !== this.#epoch) {
      throw new RecordError(
        "epoch",
        `record for key epoch ${epoch}, but the session is at epoch ${this.#epoch} (accepts ` +
          `${this.#epoch} or ${this.#epoch + 1})`,
      );
    }
    if (counter !== this.#next) {
      const replay = counter < this.#next;
      throw new RecordError(
        replay ? "replay" : "reorder",
        `record ${counter} (epoch ${epoch}) is ` +
          (replay ? "replayed or duplicated" : "out of order, or records before it were lost") +
          `; expected record ${this.#next}`,
      );
    }
    const key = ratchet ? nextRecordKey(this.#key, epoch) : this.#key;
    const header = record.subarray(0, RECORD_HEADER_BYTES);
    let plaintext: Uint8Array;
    try {
      plaintext = chachaOpen(key, header, record.subarray(RECORD_HEADER_BYTES), header);
    } catch (err) {
      if (ratchet) wipe(key);
      if (err instanceof DenError && err.code === "aead_failed") {
        throw new RecordError(
          "tamper",
          `record ${counter} of epoch ${epoch} failed authentication: it was modified`,
        );
      }
      throw err;
    }
    if (ratchet) {
      wipe(this.#key);
      this.#key = key;
      this.#epoch = epoch;
    }
    this.#next = counter + 1;
    return { type: plaintext[0], payload: plaintext.subarray(1) };
  }

  /** Zeroes the key; the receiver cannot be used afterwards. */
  close(): void {
    wipe(this.#key);
    this.#key = new Uint8Array(0);
  }
}

function checkNow(now: number): void {
  if (!Number.isFinite(now)) throw new RangeError(`now must be ms since the epoch, got ${now}`);
}
