import assert from "node:assert/strict";
import { toBase32, utf8 } from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { decideTrust, type KnownLookup, type TrustDecision } from "../../src/trust/decide.ts";
import { KnownPeers } from "../../src/trust/known_peers.ts";

const fp = (seed: string) => toBase32(sha256(utf8(seed)));
const A = fp("a");
const B = fp("b");
const C = fp("c");

/** A lookup over name → fingerprint pairs. */
function known(entries: Record<string, string>): KnownLookup {
  return {
    byName: (n) => Object.hasOwn(entries, n) ? { fingerprint: entries[n] } : undefined,
    byFingerprint: (f) => {
      const name = Object.keys(entries).find((n) => entries[n] === f);
      return name === undefined ? undefined : { name };
    },
  };
}

function refused(d: TrustDecision) {
  assert.equal(d.ok, false);
  if (d.ok) throw new Error("unreachable");
  return d;
}

Deno.test("trust: a matching pin accepts, whatever the TOFU store says", () => {
  assert.deepEqual(decideTrust({ name: "pa", fingerprint: A, pinned: A }), {
    ok: true,
    basis: "pinned",
  });
  // The store knows pa with another key, or knows A under another name: the pin wins.
  assert.deepEqual(
    decideTrust({ name: "pa", fingerprint: A, pinned: A, known: known({ pa: B, pb: A }) }),
    { ok: true, basis: "pinned" },
  );
});

Deno.test("trust: a pin mismatch refuses, naming both fingerprints and the fix", () => {
  const d = refused(decideTrust({ name: "pa", fingerprint: B, pinned: A }));
  assert.equal(d.code, "pin_mismatch");
  assert.equal(d.expected, A);
  assert.equal(d.presented, B);
  assert.ok(d.message.startsWith(`pa presented ${B}, but ${A} is pinned for pa`), d.message);
  assert.match(d.hint, /owner/);
  assert.match(d.hint, /den add-peer pa \[HOST:PORT\] --fingerprint NEW_FINGERPRINT/);
  assert.match(d.hint, /config\.toml/);
  // A pin beats TOFU even when the store would accept the presented key.
  const d2 = refused(
    decideTrust({ name: "pa", fingerprint: B, pinned: A, known: known({ pa: B }) }),
  );
  assert.equal(d2.code, "pin_mismatch");
  // Only canonical forms match: the same fingerprint spelled differently is a mismatch, not a pass.
  assert.equal(decideTrust({ name: "pa", fingerprint: A, pinned: A.toUpperCase() }).ok, false);
});

Deno.test("trust: a known name with another fingerprint refuses: identity_changed", () => {
  const d = refused(decideTrust({ name: "pa", fingerprint: B, known: known({ pa: A }) }));
  assert.equal(d.code, "identity_changed");
  assert.equal(d.expected, A);
  assert.equal(d.presented, B);
  assert.ok(d.message.includes(A) && d.message.includes(B), d.message);
  assert.ok(d.message.startsWith(`pa presented ${B}, but pa is known as ${A}`), d.message);
  assert.match(d.hint, /den trust reset pa/);
  assert.match(d.hint, /den peers verify pa/);
  // Also when the presented key is known under another name: the name's binding decides.
  const d2 = refused(decideTrust({ name: "pa", fingerprint: B, known: known({ pa: A, pb: B }) }));
  assert.equal(d2.code, "identity_changed");
  // A null or absent pin means TOFU applies.
  const d3 = refused(
    decideTrust({ name: "pa", fingerprint: B, pinned: null, known: known({ pa: A }) }),
  );
  assert.equal(d3.code, "identity_changed");
});

Deno.test("trust: known name and fingerprint: known", () => {
  assert.deepEqual(decideTrust({ name: "pa", fingerprint: A, known: known({ pa: A, pb: B }) }), {
    ok: true,
    basis: "known",
  });
});

Deno.test("trust: a known fingerprint under a new name is accepted (a rename)", () => {
  assert.deepEqual(decideTrust({ name: "pa-new", fingerprint: A, known: known({ pa: A }) }), {
    ok: true,
    basis: "known",
  });
});

Deno.test("trust: unknown name and fingerprint, or no store: first use", () => {
  assert.deepEqual(decideTrust({ name: "pc", fingerprint: C, known: known({ pa: A, pb: B }) }), {
    ok: true,
    basis: "first-use",
  });
  assert.deepEqual(decideTrust({ name: "pc", fingerprint: C }), { ok: true, basis: "first-use" });
  assert.deepEqual(decideTrust({ name: "pc", fingerprint: C, pinned: undefined }), {
    ok: true,
    basis: "first-use",
  });
});

Deno.test("trust: KnownPeers is a lookup for decideTrust, and remember follows the decision", () => {
  const store = KnownPeers.empty("/nonexistent/known_peers.toml");
  const now = new Date("2025-01-02T03:04:05Z");
  let d = decideTrust({ name: "pa", fingerprint: A, known: store });
  assert.deepEqual(d, { ok: true, basis: "first-use" });
  store.remember("pa", A, now);
  d = decideTrust({ name: "pa", fingerprint: A, known: store });
  assert.deepEqual(d, { ok: true, basis: "known" });
  assert.equal(
    refused(decideTrust({ name: "pa", fingerprint: B, known: store })).code,
    "identity_changed",
  );
  d = decideTrust({ name: "pa2", fingerprint: A, known: store });
  assert.deepEqual(d, { ok: true, basis: "known" });
  store.remember("pa2", A, now); // the caller records the new name
  assert.equal(store.byName("pa"), undefined);
  assert.equal(store.byName("pa2")?.fingerprint, A);
});

Deno.test("trust: decideTrust does not touch its input", () => {
  const entries = { pa: A };
  const input = Object.freeze({ name: "pa", fingerprint: B, known: known(entries) });
  decideTrust(input);
  assert.deepEqual(entries, { pa: A });
});
