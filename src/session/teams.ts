/**
 * Team ids in the handshake. They are never sent as they are: each side sends
 * HMAC-SHA-256(teams key, team id) for its teams, with a key only the two ends of this handshake
 * know, and learns only which of its own teams the peer also has. A peer (even an unauthenticated
 * initiator, which is all it takes to get M2) never learns teams it is not in itself, and tags are
 * unlinkable across sessions.
 */
import { fromHex, toHex } from "../crypto/encoding.ts";
import { hmacSha256 } from "../crypto/kdf.ts";
import { compareBytes, MAX_TEAMS } from "./codec.ts";

const TEAM_ID = /^[0-9a-f]{64}$/;

/** Validates the configured team ids (lowercase hex of 32 bytes, no repeats); sorted copy. */
export function normalizeTeams(teams: readonly string[]): string[] {
  if (!Array.isArray(teams)) throw new TypeError("teams must be an array of team ids");
  if (teams.length > MAX_TEAMS) {
    throw new RangeError(`a node can be in at most ${MAX_TEAMS} teams, got ${teams.length}`);
  }
  for (const t of teams) {
    if (typeof t !== "string" || !TEAM_ID.test(t)) {
      throw new RangeError(`not a team id (64 lowercase hex characters): ${JSON.stringify(t)}`);
    }
  }
  const sorted = [...teams].sort();
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new RangeError(`team id listed twice: ${sorted[i]}`);
  }
  return sorted;
}

/** The blinded tags for `teams`, sorted ascending (the order carries no information). */
export function teamTags(key: Uint8Array, teams: readonly string[]): Uint8Array[] {
  return teams.map((t) => hmacSha256(key, fromHex(t))).sort(compareBytes);
}

/** Our teams whose tag the peer sent: the intersection, sorted. */
export function sharedTeams(
  key: Uint8Array,
  ownTeams: readonly string[],
  peerTags: readonly Uint8Array[],
): string[] {
  const peer = new Set(peerTags.map(toHex));
  return ownTeams.filter((t) => peer.has(toHex(hmacSha256(key, fromHex(t))))).sort();
}
