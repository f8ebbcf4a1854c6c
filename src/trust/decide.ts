/**
 * The trust decision for a peer that completed a handshake presenting (name, fingerprint).
 * Pure: no I/O, no clock; the caller applies the outcome (remember the peer, refuse the
 * session). The rules and their reasons are in docs/TRUST.md.
 *
 *   1. A pinned fingerprint decides alone: equal → "pinned", different → `pin_mismatch`.
 *   2. Without a pin, a name known with another fingerprint → `identity_changed`.
 *   3. The name known with this fingerprint, or this fingerprint known under another name
 *      (a renamed peer; the caller updates the name) → "known".
 *   4. Otherwise → "first-use" (the caller remembers it: TOFU).
 */

export type TrustDecision =
  | { ok: true; basis: "pinned" | "known" | "first-use" }
  | {
    ok: false;
    code: "pin_mismatch" | "identity_changed";
    message: string;
    /** The fingerprint we trust for this name. */
    expected: string;
    /** The fingerprint the peer presented. */
    presented: string;
    hint: string;
  };

/** What decideTrust reads from the TOFU store (KnownPeers satisfies it). */
export interface KnownLookup {
  byName(name: string): { fingerprint: string } | undefined;
  byFingerprint(fingerprint: string): { name: string } | undefined;
}

export interface TrustInput {
  /** The name the peer presented. */
  name: string;
  /** The fingerprint of the keys the peer proved it holds (canonical: 52 lowercase base32). */
  fingerprint: string;
  /**
   * The fingerprint pinned for this peer (config `[[peers]]`, `den add-peer --fingerprint`,
   * invite codes), canonical. Absent, null or undefined: not pinned.
   */
  pinned?: string | null;
  /** The TOFU store; absent: nothing is known yet. */
  known?: KnownLookup;
}

export function decideTrust(input: TrustInput): TrustDecision {
  const { name, fingerprint, pinned, known } = input;
  // Fingerprints are compared in their canonical form only: an odd spelling of a pin is a
  // mismatch (loud), never a match.
  if (pinned !== undefined && pinned !== null) {
    if (pinned === fingerprint) return { ok: true, basis: "pinned" };
    return {
      ok: false,
      code: "pin_mismatch",
      message: `${name} presented ${fingerprint}, but ${pinned} is pinned for ${name}; ` +
        "connection refused",
      expected: pinned,
      presented: fingerprint,
      hint: `check with ${name}'s owner which fingerprint \`den status\` prints on that node. ` +
        `If the change is expected (a reinstall, a new key), update the pin: ` +
        `den add-peer ${name} [HOST:PORT] --fingerprint NEW_FINGERPRINT, or the fingerprint of ` +
        `${name}'s [[peers]] entry in config.toml. Otherwise someone may be impersonating ${name}.`,
    };
  }
  const byName = known?.byName(name);
  if (byName !== undefined && byName.fingerprint !== fingerprint) {
    return {
      ok: false,
      code: "identity_changed",
      message: `${name} presented ${fingerprint}, but ${name} is known as ` +
        `${byName.fingerprint} (known_peers.toml); connection refused`,
      expected: byName.fingerprint,
      presented: fingerprint,
      hint: `verify out of band: ask ${name}'s owner to read the fingerprint \`den status\` ` +
        `prints on that node. Only if it is ${fingerprint}, accept it with ` +
        `den trust reset ${name}, and once connected compare \`den peers verify ${name}\` ` +
        `words with them. Otherwise someone may be impersonating ${name}.`,
    };
  }
  if (byName !== undefined) return { ok: true, basis: "known" };
  // A known key under a new name: the key is what was trusted; names are labels.
  if (known?.byFingerprint(fingerprint) !== undefined) return { ok: true, basis: "known" };
  return { ok: true, basis: "first-use" };
}
