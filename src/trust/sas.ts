/**
 * Short authentication strings: six words both ends of a session derive from its session id,
 * for two people to compare out of band (`den peers verify NAME`). If a machine in the middle
 * ran two sessions, their ids differ and so, except with probability 2^-48, do the words.
 * Derivation and test vector: docs/TRUST.md.
 */
import { concatBytes, utf8 } from "../crypto/encoding.ts";
import { sha256 } from "../crypto/kdf.ts";
import { SAS_WORDS } from "./wordlist.ts";

/** Separates SAS hashes from every other SHA-256 of a session id. */
export const SAS_DOMAIN = "den-sas-v1";
/** Words per SAS: one byte each, 48 bits. */
export const SAS_WORD_COUNT = 6;
/** Shorter ids are not a session's transcript hash; refusing them catches wiring mistakes. */
export const MIN_SESSION_ID_BYTES = 16;

/**
 * The six words for `sessionId`: SHA-256(SAS_DOMAIN ‖ sessionId), bytes 0-5, each the index of
 * a word in SAS_WORDS. `sessionId` must bind the whole handshake (both identities and both
 * ephemeral keys), so the words are the same on both ends and only there.
 */
export function sasWords(sessionId: Uint8Array): string[] {
  if (!(sessionId instanceof Uint8Array) || sessionId.length < MIN_SESSION_ID_BYTES) {
    throw new RangeError(`SAS: a session id must be at least ${MIN_SESSION_ID_BYTES} bytes`);
  }
  const digest = sha256(concatBytes(utf8(SAS_DOMAIN), sessionId));
  return [...digest.subarray(0, SAS_WORD_COUNT)].map((b) => SAS_WORDS[b]);
}
