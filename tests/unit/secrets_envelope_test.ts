import assert from "node:assert/strict";
import {
  arrayBufferView as view,
  concatBytes,
  fromBase64,
  fromHex,
  toBase64,
  toHex,
  utf8,
} from "../../src/crypto/encoding.ts";
import { sha256 } from "../../src/crypto/kdf.ts";
import { mlkemEncapsulate, x25519Ephemeral, x25519EphemeralShared } from "../../src/crypto/kem.ts";
import { fingerprint } from "../../src/identity/fingerprint.ts";
import { type Identity, identityFromSeeds, wipeIdentity } from "../../src/identity/keys.ts";
import {
  deriveKek,
  gcmOpen,
  gcmSeal,
  newDataKey,
  opContext,
  openValue,
  type RandomSource,
  type ReaderKeys,
  readerKeysFor,
  type Recipient,
  recipientOf,
  sealValue,
  unwrapDataKey,
  valueAad,
  valueKey,
  wrapDataKey,
} from "../../src/secrets/envelope.ts";
import {
  canRead,
  createOp,
  type Op,
  openEntries,
  openEntry,
  OpError,
} from "../../src/secrets/op.ts";

const TEAM = "0123456789abcdef".repeat(4);

const bytesFrom = (start: number, n: number) =>
  Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

interface Member {
  id: Identity;
  fp: string;
  recipient: Recipient;
  reader: ReaderKeys;
}

async function member(n: number): Promise<Member> {
  const id = await identityFromSeeds(`m${n}`, {
    ed25519: bytesFrom(n * 7, 32),
    x25519: bytesFrom(n * 7 + 1, 32),
    mlkem: bytesFrom(n * 7 + 2, 64),
  });
  const fp = fingerprint(id.publicKeys);
  return { id, fp, recipient: recipientOf(id.publicKeys), reader: await readerKeysFor(id) };
}

/** A reproducible RandomSource: SHA-256 of label and a counter. */
function stream(label: string): RandomSource {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      out.set(sha256(utf8(`${label}/${counter++}`)).subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  };
}

function rejects(code: string) {
  return (err: unknown) => err instanceof OpError && err.code === code;
}

/** A deep copy whose body can be edited (openEntry reads op.body). */
function edited(op: Op, edit: (body: Op["body"]) => void): Op {
  const body = structuredClone(op.body);
  edit(body);
  return { ...op, body };
}

function flipBase64(text: string, at = 0): string {
  const b = fromBase64(text);
  b[at] ^= 1;
  return toBase64(b);
}

Deno.test("envelope: the test vector in docs/SECRETS.md", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/SECRETS.md", import.meta.url));
  const field = (label: string) => {
    const m = doc.match(new RegExp(`^${label}:[ ]+(\\S.*)$`, "m"));
    assert.ok(m, `docs/SECRETS.md has no "${label}:" line`);
    return m[1].trim();
  };
  const hex = (label: string) => fromHex(field(label));
  const reader = await identityFromSeeds("reader", {
    ed25519: hex("reader ed25519 seed"),
    x25519: hex("reader x25519 seed"),
    mlkem: hex("reader ml-kem seed"),
  });
  const author = await identityFromSeeds("author", {
    ed25519: hex("author ed25519 seed"),
    x25519: hex("author x25519 seed"),
    mlkem: hex("author ml-kem seed"),
  });
  const readerFp = fingerprint(reader.publicKeys);
  assert.equal(readerFp, field("reader fingerprint"));
  assert.equal(fingerprint(author.publicKeys), field("author fingerprint"));
  const pos = {
    team: field("team"),
    env: field("env"),
    author: field("author fingerprint"),
    seq: Number(field("seq")),
  };
  const index = Number(field("index"));
  const key = field("key");
  const value = JSON.parse(field("value")) as string;
  const dataKey = hex("data key");

  const context = opContext(pos);
  assert.equal(toHex(context), field("context"));
  const eph = x25519Ephemeral(hex("ephemeral seed"));
  assert.equal(toHex(eph.publicKey), field("ephemeral public"));
  const ss1 = x25519EphemeralShared(eph.privateKey, reader.publicKeys.x25519);
  assert.equal(toHex(ss1), field("x25519 shared"));
  const kem = mlkemEncapsulate(reader.publicKeys.mlkem768, hex("ml-kem randomness"));
  assert.equal(toHex(sha256(kem.cipherText)), field("ml-kem ciphertext sha256"));
  assert.equal(toHex(kem.sharedSecret), field("ml-kem shared"));
  const kek = deriveKek(ss1, kem.sharedSecret, eph.publicKey, kem.cipherText, readerFp, context);
  assert.equal(toHex(kek), field("kek"));

  const wrap = await wrapDataKey(dataKey, recipientOf(reader.publicKeys), context, {
    ephemeralSeed: hex("ephemeral seed"),
    kemRandomness: hex("ml-kem randomness"),
    nonce: hex("wrap nonce"),
  });
  assert.equal(toHex(wrap.key), field("wrapped key"));
  assert.deepEqual(wrap.eph, eph.publicKey);
  assert.deepEqual(wrap.kem, kem.cipherText);
  const aad = valueAad(context, index, key);
  assert.equal(toHex(aad), field("value aad"));
  assert.equal(toHex(valueKey(dataKey, index)), field("value key"));
  const ct = sealValue(dataKey, index, value, aad, hex("value nonce"));
  assert.equal(toHex(ct), field("value ct"));

  // The reader's side, and an independent implementation (WebCrypto) of HKDF and AES-GCM.
  assert.deepEqual(await unwrapDataKey(wrap, await readerKeysFor(reader), context), dataKey);
  assert.equal(openValue(dataKey, index, ct, aad), value);
  const info = concatBytes(utf8("den-wrap-v1\0"), eph.publicKey, kem.cipherText, utf8(readerFp));
  const ikm = await crypto.subtle.importKey(
    "raw",
    view(concatBytes(ss1, kem.sharedSecret)),
    "HKDF",
    false,
    [
      "deriveBits",
    ],
  );
  const webKek = await crypto.subtle.deriveBits(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: view(concatBytes(info, context)),
    },
    ikm,
    256,
  );
  assert.equal(toHex(new Uint8Array(webKek)), field("kek"));
  const vk = await crypto.subtle.importKey(
    "raw",
    view(valueKey(dataKey, index)),
    "AES-GCM",
    false,
    [
      "decrypt",
    ],
  );
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: view(ct.slice(0, 12)), additionalData: view(aad), tagLength: 128 },
    vk,
    view(ct.slice(12)),
  );
  assert.equal(new TextDecoder().decode(plain), value);
});

Deno.test("envelope: an op round-trips for each of three readers", async () => {
  const [a, b, c] = await Promise.all([member(1), member(2), member(3)]);
  const values = ["postgres://x", "", "ünïcødé ✓ 🔑", 'line1\nline2\t"quoted"', "x".repeat(32768)];
  const op = await createOp(
    { fingerprint: a.fp, signing: a.id.signing },
    {
      team: TEAM,
      env: "prod",
      seq: 1,
      prev: null,
      lamport: 1,
      ts: 1700000000000,
      changes: [...values.map((value, i) => ({ key: `K${i}`, value })), {
        key: "GONE",
        delete: true,
      }],
    },
    [a.recipient, b.recipient, c.recipient],
  );
  for (const m of [a, b, c]) {
    assert.ok(canRead(op, m.fp));
    assert.deepEqual(await openEntries(op, m.reader), [...values, null]);
    assert.equal(await openEntry(op, 2, m.reader), values[2]);
  }
  assert.deepEqual(await openEntries(op, c.reader, [1]), [null, "", null, null, null, null]);
  await assert.rejects(openEntry(op, 5, a.reader), rejects("no_value"));
  await assert.rejects(openEntry(op, 6, a.reader), rejects("bad_index"));
  await assert.rejects(openEntry(op, -1, a.reader), rejects("bad_index"));
});

Deno.test("envelope: someone who is not a reader gets null, not an error or garbage", async () => {
  const [a, b, outsider] = await Promise.all([member(1), member(2), member(4)]);
  const op = await createOp(
    { fingerprint: a.fp, signing: a.id.signing },
    {
      team: TEAM,
      env: "prod",
      seq: 1,
      prev: null,
      lamport: 1,
      ts: 0,
      changes: [{ key: "K", value: "v" }],
    },
    [a.recipient, b.recipient],
  );
  assert.equal(canRead(op, outsider.fp), false);
  assert.equal(await openEntry(op, 0, outsider.reader), null);
  assert.equal(await openEntries(op, outsider.reader), null);
  // Claiming a reader's fingerprint without its keys does not open either.
  const impostor = { ...outsider.reader, fingerprint: b.fp };
  await assert.rejects(openEntry(op, 0, impostor), rejects("decrypt_failed"));
});

Deno.test("envelope: a changed wrap field, ct or op position does not decrypt", async () => {
  const [a, b] = await Promise.all([member(1), member(2)]);
  const author = { fingerprint: a.fp, signing: a.id.signing };
  const draft = {
    team: TEAM,
    env: "prod",
    seq: 2,
    prev: "ab".repeat(32),
    lamport: 5,
    ts: 0,
    changes: [{ key: "A", value: "alpha" }, { key: "B", value: "bravo" }],
  };
  const op = await createOp(author, draft, [a.recipient, b.recipient]);
  assert.equal(await openEntry(op, 0, b.reader), "alpha");
  const fails = async (o: Op, what: string) =>
    await assert.rejects(openEntry(o, 0, b.reader), rejects("decrypt_failed"), what);

  for (const f of ["eph", "kem", "key"] as const) {
    for (const at of [0, 15, -1]) {
      await fails(
        edited(op, (body) => {
          const w = body.wraps[1];
          w[f] = flipBase64(w[f], at < 0 ? fromBase64(w[f]).length - 1 : at);
        }),
        `wrap ${f} byte ${at}`,
      );
    }
  }
  // Another reader's wrap relabelled as b's.
  await fails(
    edited(op, (body) => {
      body.wraps[1] = { ...body.wraps[0], reader: b.fp };
    }),
    "a's wrap",
  );
  // The position the wrap and values are bound to.
  await fails(edited(op, (body) => void (body.seq = 3)), "seq");
  await fails(edited(op, (body) => void (body.env = "staging")), "env");
  await fails(edited(op, (body) => void (body.team = "f".repeat(64))), "team");
  await fails(edited(op, (body) => void (body.author = b.fp)), "author");
  // The ciphertext itself: flipped, truncated, cut below nonce + tag, moved or renamed.
  const ct = (body: Op["body"]) => body.entries[0] as { ct: string };
  await fails(edited(op, (body) => void (ct(body).ct = flipBase64(ct(body).ct, 20))), "ct byte");
  await fails(
    edited(op, (body) => void (ct(body).ct = toBase64(fromBase64(ct(body).ct).subarray(0, -1)))),
    "ct minus one byte",
  );
  await fails(
    edited(op, (body) => void (ct(body).ct = toBase64(fromBase64(ct(body).ct).subarray(0, 20)))),
    "ct shorter than nonce and tag",
  );
  await fails(edited(op, (body) => void (body.entries[0].key = "B0")), "renamed key");
  await fails(
    edited(
      op,
      (body) => void ([body.entries[0], body.entries[1]] = [body.entries[1], body.entries[0]]),
    ),
    "entries swapped",
  );
  await fails(
    edited(op, (body) => void (ct(body).ct = (body.entries[1] as { ct: string }).ct)),
    "ct of another entry",
  );
  await fails(
    edited(
      op,
      (body) =>
        void (body.entries[0] = { ...ct(body), op: "copy", of: op.hash, index: 0 } as never),
    ),
    "a set turned into a copy",
  );

  // The same data key (same random stream) in an op at another seq: only the binding differs.
  const one = await createOp(author, draft, [b.recipient], stream("same"));
  const two = await createOp(
    author,
    { ...draft, seq: 3, prev: one.hash },
    [b.recipient],
    stream("same"),
  );
  assert.equal(await openEntry(two, 0, b.reader), "alpha");
  await fails(
    edited(two, (body) => void (body.entries[0] = one.body.entries[0])),
    "ct moved from another op",
  );
  await fails(
    edited(two, (body) => void (body.wraps = one.body.wraps)),
    "wrap moved from another op",
  );
});

Deno.test("envelope: values are bound to their index, key name, kind and context", () => {
  const dataKey = newDataKey();
  const ctx = opContext({ team: TEAM, env: "prod", author: "a".repeat(52), seq: 9 });
  const aad = valueAad(ctx, 3, "KEY");
  const sealed = sealValue(dataKey, 3, "secret", aad);
  assert.equal(openValue(dataKey, 3, sealed, aad), "secret");
  assert.equal(openValue(dataKey, 4, sealed, valueAad(ctx, 3, "KEY")), null, "other index key");
  assert.equal(openValue(dataKey, 3, sealed, valueAad(ctx, 4, "KEY")), null, "other index aad");
  assert.equal(openValue(dataKey, 3, sealed, valueAad(ctx, 3, "KEY2")), null, "other key");
  assert.equal(
    openValue(dataKey, 3, sealed, valueAad(ctx, 3, "KEY", { op: "0".repeat(64), index: 0 })),
    null,
    "a copy's aad",
  );
  const ctx10 = opContext({ team: TEAM, env: "prod", author: "a".repeat(52), seq: 10 });
  assert.equal(openValue(dataKey, 3, sealed, valueAad(ctx10, 3, "KEY")), null, "other seq");
  assert.equal(openValue(newDataKey(), 3, sealed, aad), null, "other data key");
  assert.equal(openValue(dataKey, 3, sealed.subarray(0, 27), aad), null, "too short");
  // Length prefixes: moving a character between env and author changes the context.
  assert.notDeepEqual(
    opContext({ team: TEAM, env: "ab", author: "c", seq: 1 }),
    opContext({ team: TEAM, env: "a", author: "bc", seq: 1 }),
  );
  // Copies commit to the version they re-encrypt.
  const copy = valueAad(ctx, 0, "K", { op: "1".repeat(64), index: 2 });
  assert.notDeepEqual(copy, valueAad(ctx, 0, "K", { op: "1".repeat(64), index: 3 }));
  assert.notDeepEqual(copy, valueAad(ctx, 0, "K", { op: "2".repeat(64), index: 2 }));
});

Deno.test("envelope: unwrap refuses other contexts, readers and bad ephemeral keys", async () => {
  const [a, b] = await Promise.all([member(1), member(2)]);
  const dataKey = newDataKey();
  const ctx = opContext({ team: TEAM, env: "prod", author: a.fp, seq: 1 });
  const wrap = await wrapDataKey(dataKey, a.recipient, ctx);
  assert.deepEqual(await unwrapDataKey(wrap, a.reader, ctx), dataKey);
  const other = opContext({ team: TEAM, env: "prod", author: a.fp, seq: 2 });
  assert.equal(await unwrapDataKey(wrap, a.reader, other), null);
  assert.equal(await unwrapDataKey(wrap, b.reader, ctx), null);
  assert.equal(await unwrapDataKey(wrap, { ...a.reader, fingerprint: b.fp }, ctx), null);
  assert.equal(await unwrapDataKey({ ...wrap, eph: new Uint8Array(32) }, a.reader, ctx), null);
  assert.equal(await unwrapDataKey({ ...wrap, kem: wrap.kem.subarray(1) }, a.reader, ctx), null);
  assert.equal(await unwrapDataKey({ ...wrap, key: wrap.key.subarray(1) }, a.reader, ctx), null);
  // Fresh ephemerals: wrapping twice gives unrelated wraps.
  const again = await wrapDataKey(dataKey, a.recipient, ctx);
  assert.notDeepEqual(again.eph, wrap.eph);
  assert.notDeepEqual(again.kem, wrap.kem);
});

Deno.test("envelope: gcm helpers and reader keys refuse what they cannot use", async () => {
  const key = newDataKey(), nonce = bytesFrom(0, 12), aad = utf8("aad");
  const sealed = gcmSeal(key, nonce, utf8("hello"), aad);
  assert.equal(sealed.length, 12 + 5 + 16);
  assert.deepEqual(gcmOpen(key, sealed, aad), utf8("hello"));
  assert.equal(gcmOpen(key, sealed, utf8("other")), null);
  assert.equal(gcmOpen(newDataKey(), sealed, aad), null);
  assert.throws(() => gcmSeal(key.subarray(1), nonce, utf8("x"), aad), RangeError);
  assert.throws(() => newDataKey(() => new Uint8Array(31)), RangeError);

  const m = await member(5);
  wipeIdentity(m.id);
  await assert.rejects(readerKeysFor(m.id), RangeError, "a wiped seed is refused up front");
});
