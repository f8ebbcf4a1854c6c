/**
 * Session errors. Every failure caused by what a peer sent is a HandshakeError or a RecordError
 * with a reason from a fixed set; the caller closes the connection on either. Messages say what
 * happened, hints what to do about it.
 */
import { DenError, Exit, type ExitCode } from "../errors.ts";

export const HANDSHAKE_REASONS = Object.freeze(
  [
    "malformed", // a message does not parse: wrong size, magic, type, field value, trailing bytes
    "version", // no protocol version both sides support
    "stale", // a timestamp more than 5 minutes from the local clock
    "signature", // the peer's signature does not verify against the identity it sent
    "decrypt", // an encrypted handshake block does not authenticate
    "state", // a method called out of order (a bug in the caller)
    "identity", // the peer's identity is invalid (name, keys) or is our own
  ] as const,
);
export type HandshakeReason = (typeof HANDSHAKE_REASONS)[number];

export const RECORD_REASONS = Object.freeze(
  [
    "replay", // counter below the next expected one
    "reorder", // counter above the next expected one (a gap: a record was dropped or reordered)
    "tamper", // the AEAD tag does not verify
    "truncated", // shorter than an empty record
    "oversize", // longer than the largest record
    "epoch", // key epoch neither the current one nor the next
  ] as const,
);
export type RecordReason = (typeof RECORD_REASONS)[number];

const HANDSHAKE_HINTS: Readonly<Record<HandshakeReason, string>> = Object.freeze({
  malformed: "the other side may not be a den node, may run an incompatible den build, or the " +
    "connection corrupts data; check the address and `den version` on both machines",
  version: "upgrade den on the machine with the older version",
  stale: "enable time synchronization (NTP: systemd-timesyncd, chrony) on both machines; " +
    "`den doctor` checks the clock",
  signature: "the peer could not prove it holds the identity it claims: the connection may be " +
    "intercepted; compare fingerprints out of band (`den peers verify NAME`)",
  decrypt: "the handshake was modified in transit, or answered by someone other than the peer " +
    "that started it; if it keeps happening, suspect the network path",
  state: "this is a bug in den (handshake steps called out of order); please report it",
  identity: "the peer's identity is unusable; check the address points at the intended node",
});

const HANDSHAKE_EXIT: Readonly<Record<HandshakeReason, ExitCode>> = Object.freeze({
  malformed: Exit.error,
  version: Exit.error,
  stale: Exit.error,
  signature: Exit.verification,
  decrypt: Exit.verification,
  state: Exit.error,
  identity: Exit.verification,
});

export class HandshakeError extends DenError {
  readonly reason: HandshakeReason;

  constructor(reason: HandshakeReason, message: string, hint?: string) {
    super(`handshake_${reason}`, message, {
      exit: HANDSHAKE_EXIT[reason],
      hint: hint ?? HANDSHAKE_HINTS[reason],
    });
    this.name = "HandshakeError";
    this.reason = reason;
  }
}

const RECORD_HINT = "the session was closed because the peer's data failed an integrity check " +
  "(an attacker on the path, or a bug); den reconnects with a fresh handshake";

export class RecordError extends DenError {
  readonly reason: RecordReason;

  constructor(reason: RecordReason, message: string) {
    super(`record_${reason}`, message, {
      exit: reason === "tamper" ? Exit.verification : Exit.error,
      hint: RECORD_HINT,
    });
    this.name = "RecordError";
    this.reason = reason;
  }
}

/** "7 min", "42 s", "3 h": how far apart two clocks are, for messages. */
export function describeSkew(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.round(min / 60);
  if (h < 48) return `${h} h`;
  return `${Math.round(h / 24)} days`;
}
