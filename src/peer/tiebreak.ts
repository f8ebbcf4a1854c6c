/**
 * When two sessions exist between the same pair (both dialled at once), both ends must keep the
 * same one without talking about it: the session initiated by the smaller fingerprint wins.
 * A new session in the same direction as the existing one replaces it (the old one is stale).
 */
export function keepNewSession(
  self: string,
  peer: string,
  existingInitiator: string,
  newInitiator: string,
): boolean {
  if (existingInitiator === newInitiator) return true;
  return newInitiator === (self < peer ? self : peer);
}
