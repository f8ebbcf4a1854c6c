/** Mailboxes: frame codecs, AUTH signatures with a real identity, and the registry. */
import assert from "node:assert/strict";
import { type MailboxAction, MailboxRegistry } from "../../relay/mailboxes.ts";
import { concatBytes, fromBase32, utf8 } from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { ed25519Sign } from "../../src/crypto/sign.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { generateIdentity, type Identity } from "../../src/identity/keys.ts";
import {
  authSigningInput,
  decodeAuth,
  decodeChallenge,
  decodeDeliver,
  decodeError,
  decodeNoRoute,
  decodeReady,
  decodeSend,
  deliverHeader,
  encodeAuth,
  encodeChallenge,
  encodeDeliver,
  encodeError,
  encodeNoRoute,
  encodeReady,
  encodeSend,
  frameType,
  MAILBOX_HEADER_BYTES,
  MAILBOX_ID_BYTES,
  MailboxFrame,
  mailboxId,
  mailboxIdOf,
  MAX_MAILBOX_PAYLOAD,
  MAX_WS_MESSAGE,
  signAuth,
  verifyAuth,
} from "../../src/wire/relay_mailbox.ts";

const rand = (n: number) => crypto.getRandomValues(new Uint8Array(n));
const ids = { a: rand(32), b: rand(32) };

let alice: Identity | undefined;
let bob: Identity | undefined;
async function identities(): Promise<[Identity, Identity]> {
  alice ??= await generateIdentity("alice");
  bob ??= await generateIdentity("bob");
  return [alice, bob];
}

Deno.test("mailbox wire: sizes match docs/RELAY.md", () => {
  assert.equal(MAX_WS_MESSAGE, 65536);
  assert.equal(MAILBOX_ID_BYTES, 32);
  assert.equal(MAILBOX_HEADER_BYTES, 33);
  assert.equal(MAX_MAILBOX_PAYLOAD, 65503);
  assert.deepEqual(MailboxFrame, {
    challenge: 0x01,
    auth: 0x02,
    ready: 0x03,
    send: 0x10,
    deliver: 0x11,
    noRoute: 0x12,
    error: 0x7f,
  });
});

Deno.test("mailbox wire: every frame round-trips with its documented layout", async () => {
  const [a] = await identities();
  const nonce = rand(32);
  const challenge = encodeChallenge(nonce);
  assert.deepEqual(challenge.subarray(0, 2), Uint8Array.of(0x01, 1));
  assert.deepEqual(decodeChallenge(challenge), nonce);

  const sig = rand(64);
  const auth = encodeAuth(a.publicKeys, sig);
  assert.equal(auth.length, 1 + 32 + 32 + 1184 + 64);
  assert.equal(frameType(auth), MailboxFrame.auth);
  const decoded = decodeAuth(auth)!;
  assert.deepEqual(decoded.publicKeys.ed25519, a.publicKeys.ed25519);
  assert.deepEqual(decoded.publicKeys.x25519, a.publicKeys.x25519);
  assert.deepEqual(decoded.publicKeys.mlkem768, a.publicKeys.mlkem768);
  assert.deepEqual(decoded.signature, sig);

  assert.deepEqual(decodeReady(encodeReady(ids.a)), ids.a);
  assert.deepEqual(decodeNoRoute(encodeNoRoute(ids.b)), ids.b);

  const payload = rand(MAX_MAILBOX_PAYLOAD);
  const send = encodeSend(ids.b, payload);
  assert.equal(send.length, MAX_WS_MESSAGE);
  assert.deepEqual(decodeSend(send), { id: ids.b, payload });
  const deliver = encodeDeliver(ids.a, Uint8Array.of(7));
  assert.deepEqual(deliver, concatBytes(deliverHeader(ids.a), Uint8Array.of(7)));
  assert.deepEqual(decodeDeliver(deliver), { id: ids.a, payload: Uint8Array.of(7) });

  const error = encodeError(429, "slow down ☕");
  assert.deepEqual(error.subarray(0, 3), Uint8Array.of(0x7f, 0x01, 0xad));
  assert.deepEqual(decodeError(error), { code: 429, message: "slow down ☕" });
  const long = decodeError(encodeError(400, "é".repeat(1000)))!;
  assert.ok(long.message.length > 0 && utf8(long.message).length <= 512, "cut, still UTF-8");
});

Deno.test("mailbox wire: encoders refuse wrong sizes", () => {
  assert.throws(() => encodeChallenge(rand(31)), RangeError);
  assert.throws(() => encodeReady(rand(33)), RangeError);
  assert.throws(() => encodeSend(ids.a, new Uint8Array(0)), RangeError);
  assert.throws(() => encodeSend(ids.a, new Uint8Array(MAX_MAILBOX_PAYLOAD + 1)), RangeError);
  assert.throws(() => encodeError(70000, "x"), RangeError);
  assert.throws(
    () => encodeAuth({ ed25519: rand(32), x25519: rand(32), mlkem768: rand(1183) }, rand(64)),
    RangeError,
  );
});

Deno.test("mailbox wire: truncated, extended or mistyped frames decode to null", async () => {
  const [a] = await identities();
  const frames: [string, Uint8Array, (b: Uint8Array) => unknown][] = [
    ["challenge", encodeChallenge(rand(32)), decodeChallenge],
    ["auth", encodeAuth(a.publicKeys, rand(64)), decodeAuth],
    ["ready", encodeReady(ids.a), decodeReady],
    ["no route", encodeNoRoute(ids.a), decodeNoRoute],
  ];
  for (const [what, f, decode] of frames) {
    for (const cut of [0, 1, f.length - 1]) {
      assert.equal(decode(f.subarray(0, cut)), null, `${what} cut to ${cut}`);
    }
    assert.equal(decode(concatBytes(f, Uint8Array.of(0))), null, `${what} with a byte more`);
    const retyped = f.slice();
    retyped[0] ^= 0x40;
    assert.equal(decode(retyped), null, `${what} with another type byte`);
  }
  const v2 = encodeChallenge(rand(32));
  v2[1] = 2;
  assert.equal(decodeChallenge(v2), null, "another challenge version");
  for (const decode of [decodeSend, decodeDeliver]) {
    assert.equal(decode(new Uint8Array(0)), null);
    assert.equal(decode(encodeSend(ids.a, Uint8Array.of(1)).subarray(0, 33)), null, "no payload");
    assert.equal(decode(new Uint8Array(MAX_WS_MESSAGE + 1)), null, "too long");
  }
  assert.equal(decodeSend(encodeDeliver(ids.a, Uint8Array.of(1))), null);
  assert.equal(decodeError(Uint8Array.of(0x7f, 0)), null, "no room for the code");
  assert.equal(decodeError(Uint8Array.of(0x7f, 0, 1, 0xff)), null, "message not UTF-8");
  assert.equal(frameType(new Uint8Array(0)), null);
});

Deno.test("mailbox id: SHA-256 of the domain and the fingerprint hash", async () => {
  const [a, b] = await identities();
  const f = fromBase32(fingerprint(a.publicKeys));
  assert.equal(f.length, 32);
  const expected = sha256(concatBytes(utf8("den-mailbox-v1"), f));
  assert.deepEqual(mailboxId(f), expected);
  assert.deepEqual(mailboxIdOf(a.publicKeys), expected);
  assert.notDeepEqual(mailboxIdOf(b.publicKeys), expected);
  assert.throws(() => mailboxId(rand(31)), RangeError);
  assert.deepEqual(
    authSigningInput(Uint8Array.of(9)),
    concatBytes(utf8("den-relay-auth-v1"), Uint8Array.of(9)),
  );
});

Deno.test("mailbox auth: a real signature proves the mailbox; tampering does not", async () => {
  const [a, b] = await identities();
  const nonce = rand(32);
  const auth = decodeAuth(await signAuth(a.signing, a.publicKeys, nonce))!;
  assert.deepEqual(await verifyAuth(auth, nonce), mailboxIdOf(a.publicKeys));

  assert.equal(await verifyAuth(auth, rand(32)), null, "another nonce (a replayed AUTH)");
  const otherSigner = await ed25519Sign(b.signing, authSigningInput(nonce));
  assert.equal(
    await verifyAuth({ publicKeys: a.publicKeys, signature: otherSigner }, nonce),
    null,
    "signed by someone else",
  );
  const flipped = auth.signature.slice();
  flipped[10] ^= 1;
  assert.equal(await verifyAuth({ ...auth, signature: flipped }, nonce), null, "bit flipped");
  const rawNonce = await ed25519Sign(a.signing, nonce);
  assert.equal(
    await verifyAuth({ ...auth, signature: rawNonce }, nonce),
    null,
    "a signature over the bare nonce (no domain) does not count",
  );
  // Claiming someone else's keys with one's own signature: the signature checks the Ed25519 key,
  // and the id comes from all three keys, so mixing keys yields a different mailbox.
  const mixed = { ...a.publicKeys, mlkem768: b.publicKeys.mlkem768 };
  const id = await verifyAuth({ publicKeys: mixed, signature: auth.signature }, nonce);
  assert.ok(id !== null);
  assert.notDeepEqual(id, mailboxIdOf(b.publicKeys));
  assert.notDeepEqual(id, mailboxIdOf(a.publicKeys));
});

// ---------------------------------------------------------------- registry

function errorOf(actions: MailboxAction[], to: number): { code: number; reason: string } {
  const e = actions.find((a) => a.kind === "error" && a.to === to);
  assert.ok(e && e.kind === "error", `expected an error to ${to}: ${JSON.stringify(actions)}`);
  return { code: e.code, reason: e.reason };
}

/** Opens `conn` and runs AUTH through verification as the server would. */
async function authenticate(r: MailboxRegistry, conn: number, who: Identity) {
  const nonce = rand(32);
  const [challenge] = r.open(conn, nonce);
  assert.ok(challenge.kind === "send");
  assert.deepEqual(decodeChallenge(challenge.frame), nonce);
  const [verify] = r.message(conn, await signAuth(who.signing, who.publicKeys, nonce));
  assert.ok(verify.kind === "verify" && verify.conn === conn);
  assert.ok(r.authStarted(conn));
  return r.verified(conn, await verifyAuth(verify.auth, verify.nonce));
}

Deno.test("mailbox registry: AUTH → READY, SEND → DELIVER with the source id", async () => {
  const [a, b] = await identities();
  const r = new MailboxRegistry();
  const ready = await authenticate(r, 1, a);
  assert.equal(ready.length, 1);
  assert.ok(ready[0].kind === "send" && ready[0].to === 1);
  assert.deepEqual(decodeReady(ready[0].frame), mailboxIdOf(a.publicKeys));
  await authenticate(r, 2, b);
  assert.equal(r.size, 2);

  const payload = rand(100);
  const [d] = r.message(1, encodeSend(mailboxIdOf(b.publicKeys), payload));
  assert.ok(d.kind === "deliver" && d.to === 2);
  assert.deepEqual(
    decodeDeliver(concatBytes(d.header, d.payload)),
    { id: mailboxIdOf(a.publicKeys), payload },
  );
});

Deno.test("mailbox registry: NO_ROUTE for a mailbox that is not here", async () => {
  const [a] = await identities();
  const r = new MailboxRegistry();
  await authenticate(r, 1, a);
  const [nr] = r.message(1, encodeSend(ids.b, Uint8Array.of(1)));
  assert.ok(nr.kind === "send" && nr.to === 1 && nr.dropped === "no_route");
  assert.deepEqual(decodeNoRoute(nr.frame), ids.b);
});

Deno.test("mailbox registry: order and form errors", async () => {
  const [a] = await identities();
  const r = new MailboxRegistry();
  const nonce = rand(32);
  r.open(1, nonce);
  assert.deepEqual(errorOf(r.message(1, encodeSend(ids.a, Uint8Array.of(1))), 1), {
    code: 401,
    reason: "not_authenticated",
  });
  assert.deepEqual(errorOf(r.message(1, Uint8Array.of(0x02, 1, 2)), 1), {
    code: 400,
    reason: "malformed",
  });
  assert.deepEqual(errorOf(r.message(1, Uint8Array.of(0x55)), 1), {
    code: 400,
    reason: "unknown_type",
  });
  assert.deepEqual(errorOf(r.message(1, new Uint8Array(0)), 1), { code: 400, reason: "malformed" });
  assert.equal(r.authStarted(1), false);
  const auth = await signAuth(a.signing, a.publicKeys, nonce);
  assert.equal(r.message(1, auth)[0].kind, "verify");
  // A SEND while the signature is being checked is still before READY.
  assert.equal(errorOf(r.message(1, encodeSend(ids.a, Uint8Array.of(1))), 1).code, 401);
  assert.deepEqual(errorOf(r.message(1, auth), 1), { code: 400, reason: "second_auth" });
  r.verified(1, mailboxIdOf(a.publicKeys));
  assert.deepEqual(errorOf(r.message(1, auth), 1), { code: 400, reason: "second_auth" });
  assert.deepEqual(errorOf(r.message(1, Uint8Array.of(0x10, ...ids.a)), 1), {
    code: 400,
    reason: "malformed",
  });
});

Deno.test("mailbox registry: a bad signature is 403 and proves nothing", async () => {
  const [a] = await identities();
  const r = new MailboxRegistry();
  const nonce = rand(32);
  r.open(1, nonce);
  const [v] = r.message(1, await signAuth(a.signing, a.publicKeys, rand(32)));
  assert.ok(v.kind === "verify");
  const id = await verifyAuth(v.auth, v.nonce);
  assert.equal(id, null);
  assert.deepEqual(errorOf(r.verified(1, id), 1), { code: 403, reason: "bad_signature" });
  assert.equal(r.size, 0);
});

Deno.test("mailbox registry: the AUTH being verified is a copy of the input", async () => {
  const [a] = await identities();
  const r = new MailboxRegistry();
  const nonce = rand(32);
  r.open(1, nonce);
  const frame = await signAuth(a.signing, a.publicKeys, nonce);
  const [v] = r.message(1, frame);
  frame.fill(0); // the server's read buffer is reused while verification runs
  assert.ok(v.kind === "verify");
  assert.deepEqual(await verifyAuth(v.auth, v.nonce), mailboxIdOf(a.publicKeys));
});

Deno.test("mailbox registry: a second connection replaces the first (409)", async () => {
  const [a, b] = await identities();
  const r = new MailboxRegistry();
  await authenticate(r, 1, a);
  await authenticate(r, 2, b);
  const actions = await authenticate(r, 3, a);
  assert.ok(actions[0].kind === "send" && actions[0].to === 3, "READY to the new one");
  assert.deepEqual(errorOf(actions, 1), { code: 409, reason: "replaced" });
  assert.equal(r.size, 2);
  r.close(1); // the old connection's close must not remove the new holder
  const [d] = r.message(2, encodeSend(mailboxIdOf(a.publicKeys), Uint8Array.of(5)));
  assert.ok(d.kind === "deliver" && d.to === 3);
  assert.deepEqual(r.message(1, encodeSend(ids.a, Uint8Array.of(1))), [], "the old one is gone");
  r.close(3);
  const [nr] = r.message(2, encodeSend(mailboxIdOf(a.publicKeys), Uint8Array.of(5)));
  assert.ok(nr.kind === "send" && nr.dropped === "no_route");
  assert.deepEqual(r.verified(3, ids.a), [], "a verification that ends after close is ignored");
});
