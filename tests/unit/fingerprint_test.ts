import assert from "node:assert/strict";
import { fromHex, toBase32, toHex } from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { DenError } from "../../src/errors.ts";
import {
  fingerprint,
  normalizeFingerprint,
  shortFingerprint,
} from "../../src/identity/fingerprint.ts";
import { generateIdentity, identityFromSeeds } from "../../src/identity/keys.ts";

Deno.test("fingerprint: the vector in docs/KEYSTORE.md", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/KEYSTORE.md", import.meta.url));
  const field = (label: string) => {
    const m = doc.match(new RegExp(`^${label}:\\s+([0-9a-z]+)$`, "m"));
    assert.ok(m, `docs/KEYSTORE.md has no "${label}:" line`);
    return m[1];
  };
  const id = await identityFromSeeds("vector", {
    ed25519: fromHex(field("ed25519 seed")),
    x25519: fromHex(field("x25519 seed")),
    mlkem: fromHex(field("mlkem seed")),
  });
  assert.equal(toHex(id.publicKeys.ed25519), field("ed25519 public"));
  assert.equal(toHex(id.publicKeys.x25519), field("x25519 public"));
  assert.equal(toHex(sha256(id.publicKeys.mlkem768)), field("mlkem768 sha256"));
  assert.equal(fingerprint(id.publicKeys), field("fingerprint"));
});

Deno.test("fingerprint: deterministic, 52 lowercase base32, depends on every key", async () => {
  const id = await generateIdentity("alice");
  const fp = fingerprint(id.publicKeys);
  assert.match(fp, /^[a-z2-7]{52}$/);
  assert.equal(fingerprint(id.publicKeys), fp);
  const again = await identityFromSeeds("another name", id.seeds);
  assert.equal(fingerprint(again.publicKeys), fp, "the name is not part of the fingerprint");
  for (const k of ["ed25519", "x25519", "mlkem768"] as const) {
    const changed = { ...id.publicKeys, [k]: id.publicKeys[k].slice() };
    changed[k][0] ^= 1;
    assert.notEqual(fingerprint(changed), fp, k);
  }
  assert.throws(
    () => fingerprint({ ...id.publicKeys, x25519: new Uint8Array(31) }),
    RangeError,
  );
  assert.equal(shortFingerprint(fp), fp.slice(0, 16));
  assert.equal(shortFingerprint(fp).length, 16);
});

Deno.test("normalizeFingerprint: accepts formatted input", () => {
  const fp = toBase32(sha256(new Uint8Array([1, 2, 3])));
  assert.equal(normalizeFingerprint(fp), fp);
  assert.equal(normalizeFingerprint(fp.toUpperCase()), fp);
  const grouped = fp.match(/.{1,4}/g)!;
  assert.equal(normalizeFingerprint(grouped.join(" ")), fp);
  assert.equal(normalizeFingerprint(grouped.join("-").toUpperCase()), fp);
  assert.equal(normalizeFingerprint(grouped.join(":")), fp);
  assert.equal(normalizeFingerprint(`  ${grouped.join(" ")}\n`), fp);
});

Deno.test("normalizeFingerprint: rejects anything else with bad_fingerprint, exit 2", () => {
  const fp = toBase32(sha256(new Uint8Array([1, 2, 3])));
  const lastChanged = fp.slice(0, 51) + "b"; // only "a" and "q" are canonical last characters
  const bad = [
    "",
    fp.slice(0, 51),
    fp + "a",
    fp.slice(0, 50) + "1" + fp[51], // '1' is not base32
    fp.slice(0, 10) + "_" + fp.slice(11),
    lastChanged, // the last character only carries one bit
    shortFingerprint(fp),
  ];
  for (const input of bad) {
    assert.throws(() => normalizeFingerprint(input), (err: unknown) => {
      assert.ok(err instanceof DenError);
      assert.equal(err.code, "bad_fingerprint");
      assert.equal(err.exit, 2);
      assert.ok(err.hint && err.hint.includes("52"));
      return true;
    }, JSON.stringify(input));
  }
});
