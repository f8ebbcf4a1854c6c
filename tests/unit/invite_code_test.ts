import assert from "node:assert/strict";
import { fromBase64Url, toBase64Url } from "../../src/crypto/encoding.ts";
import { DenError } from "../../src/errors.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { generateIdentity, identityFromSeeds } from "../../src/identity/keys.ts";
import { decodeInvite, encodeInvite, type InviteCode } from "../../src/team/invite_code.ts";

const seq = (n: number, start: number) =>
  Uint8Array.from({ length: n }, (_, i) => (start + i) & 255);

async function alice() {
  return await identityFromSeeds("alice", {
    ed25519: seq(32, 0),
    x25519: seq(32, 32),
    mlkem: seq(64, 64),
  });
}

async function sample(): Promise<{ invite: InviteCode; signing: CryptoKey }> {
  const id = await alice();
  return {
    signing: id.signing,
    invite: {
      team: "11".repeat(32),
      teamName: "example",
      proposal: "22".repeat(32),
      inviter: {
        fingerprint: fingerprint(id.publicKeys),
        name: "alice",
        ed25519: id.publicKeys.ed25519,
      },
      seed: seq(32, 200),
      expires: 1767225600000,
      role: "member",
      envs: ["default"],
      addresses: ["192.0.2.10:7834"],
      relays: ["wss://relay.example.net"],
    },
  };
}

async function rejects(code: string, now: number, expected: string): Promise<DenError> {
  try {
    await decodeInvite(code, now);
  } catch (err) {
    assert.ok(err instanceof DenError, String(err));
    assert.equal(err.code, expected, err.message);
    return err;
  }
  assert.fail(`accepted a code that should fail with ${expected}`);
}

Deno.test("invite code: the vector in docs/SYNC.md", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/SYNC.md", import.meta.url));
  const field = (label: string) => {
    const m = doc.match(new RegExp(`^\\s*${label}:\\s+(\\S+)$`, "m"));
    assert.ok(m, `docs/SYNC.md has no "${label}:" line`);
    return m[1];
  };
  const { invite, signing } = await sample();
  assert.equal(invite.inviter.fingerprint, field("inviter fingerprint"));
  const code = await encodeInvite(invite, signing);
  assert.equal(code, field("code"));
  assert.deepEqual(await decodeInvite(field("code"), invite.expires - 1), invite);
});

Deno.test("invite code: whitespace from copy and paste is ignored", async () => {
  const { invite, signing } = await sample();
  const code = await encodeInvite(invite, signing);
  const wrapped = `  ${code.slice(0, 40)}\n${code.slice(40, 90)} ${code.slice(90)}\n`;
  assert.deepEqual(await decodeInvite(wrapped, invite.expires - 1), invite);
});

Deno.test("invite code: expired, forged, truncated and foreign codes are refused, each saying which", async () => {
  const { invite, signing } = await sample();
  const code = await encodeInvite(invite, signing);
  const now = invite.expires - 1;
  const expired = await rejects(code, invite.expires, "invite_expired");
  assert.match(expired.message, /expired/);
  assert.equal(expired.exit, 4);
  // One changed character in the payload: still decodes, the signature no longer matches.
  const raw = fromBase64Url(code.slice(4));
  raw[120] ^= 1;
  const forged = await rejects("den1" + toBase64Url(raw), now, "invite_forged");
  assert.equal(forged.exit, 5);
  // A longer expiry signed by someone else is a forgery too.
  const mallory = await generateIdentity("mallory");
  const resigned = await encodeInvite({ ...invite, expires: invite.expires + 1 }, mallory.signing);
  await rejects(resigned, now, "invite_forged");
  for (const cut of [code.slice(0, code.length / 2), code.slice(0, 60), "den1"]) {
    const e = await rejects(cut, now, "invite_malformed");
    assert.equal(e.exit, 2);
  }
  await rejects("hello", now, "invite_malformed");
  await rejects(code + "AAAA", now, "invite_malformed");
  await rejects("den1!!!!", now, "invite_malformed");
});
